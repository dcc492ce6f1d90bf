"""Spider loader that turns every site of the sites file into a spider of its kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.spiderloader import SpiderLoader

from crawler.config import get_str
from crawler.sites import KINDS, SiteSet

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.settings import BaseSettings

    from crawler.sites import Site


def site_spider_class(base: type[Spider], site: Site) -> type[Spider]:
    """A subclass of the kind's spider bound to ``site`` and named after it."""
    return type(
        f"{base.__name__}_{site.name}",
        (base,),
        {"name": site.name, "configured_site": site, "__module__": base.__module__},
    )


class SiteSpiderLoader(SpiderLoader):
    """Loads the generic spiders (``feed``, ``sitemap``, ``listing``, ``aggregator``) from
    ``SPIDER_MODULES`` and one spider per site of ``SITES_FILE``.

    The sites file is read on first use, so commands that need no site (``scrapy crawl feed
    -a url=...``) work even while the file is broken, and a broken file surfaces as a
    ``SitesError`` (exit code 2, message naming site and key) from the command that needs it.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.sites_file = get_str(settings, "SITES_FILE")
        self._sites: SiteSet | None = None
        self._site_spiders: dict[str, type[Spider]] = {}

    @property
    def sites(self) -> SiteSet:
        if self._sites is None:
            self._sites = SiteSet.load(self.sites_file)
            for site in self._sites.sites:
                base = self._spiders[site.kind]
                self._site_spiders[site.name] = site_spider_class(base, site)
        return self._sites

    def load(self, spider_name: str) -> type[Spider]:
        if spider_name not in KINDS:
            self.sites  # noqa: B018 - reads the sites file on first use
            if spider_name in self._site_spiders:
                return self._site_spiders[spider_name]
        return super().load(spider_name)

    def list(self) -> list[str]:
        return [*KINDS, *(s.name for s in self.sites.enabled())]
