"""Load and validate ``data/sites.toml``: one ``[[site]]`` table per source."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cssselect import SelectorError
from parsel.csstranslator import HTMLTranslator
from scrapy.exceptions import UsageError

KINDS = ("feed", "sitemap", "listing", "aggregator")
_CSS_TRANSLATOR = HTMLTranslator()
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class SitesError(UsageError):
    """A sites file that cannot be used. The message names the file, the site and the key.

    It is a ``UsageError`` so every Scrapy command that meets it exits with code 2 and
    prints the message instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, print_help=False)


@dataclass(frozen=True, kw_only=True)
class Site:
    """One configured source. Every key of a ``[[site]]`` table is a field here."""

    name: str
    """Spider name (``scrapy crawl NAME``): lower-case letters, digits, ``-``, ``_``, ``.``."""
    kind: str
    """``feed``, ``sitemap``, ``listing`` or ``aggregator``."""
    start_urls: tuple[str, ...]
    """Feeds, sitemaps or pages to start from (http/https)."""
    enabled: bool = True
    """Disabled sites are kept in the file but not listed or crawled."""
    group: str = "default"
    """Group name for ``scrapy crawlall --group``."""
    article_pattern: str | None = None
    """Regex (searched) that an article URL must match."""
    exclude_pattern: str | None = None
    """Regex (searched): URLs matching it are never taken as articles."""
    link_selector: str | None = None
    """CSS selector of the article links on a listing or aggregator page (``a`` elements
    or containers of them)."""
    next_selector: str | None = None
    """CSS selector of the "next page" link of a listing page."""
    max_pages: int = 1
    """Listing/aggregator pages to walk per start URL, following ``next_selector``; for a
    sitemap index, the number of child sitemaps to read."""
    max_articles: int = 100
    """Article pages requested per run at most."""
    recency_days: float | None = None
    """Skip feed/sitemap entries older than this many days (when they carry a date)."""
    render_js: bool = False
    """Render article and listing pages in Chromium (scrapy-playwright)."""
    wait_for: str | None = None
    """With ``render_js``: CSS selector to wait for before the page is taken."""
    wait_timeout: float = 15.0
    """With ``render_js``: seconds to wait for ``wait_for``."""
    timezone: str | None = None
    """IANA zone (``Asia/Seoul``) for publication times the site gives without a zone;
    default UTC."""
    language: str | None = None
    """Language hint (ISO 639-1) used when a page does not declare one."""
    publisher_selector: str | None = None
    """For an aggregator whose article pages are its own copies (a portal such as Naver
    News): CSS selector of the element naming the original publisher (its text, or the
    ``alt`` of the press logo in it); ``::attr(...)`` and ``::text`` may pick the string."""
    publisher_link_selector: str | None = None
    """For such a portal: CSS selector of the link to the publisher's own page of the
    story (kept as ``publisher_url`` when it leads off the portal)."""
    allowed_domains: tuple[str, ...] = ()
    """Hosts (besides those of ``start_urls``) whose article links are followed; not used
    by ``aggregator``, which follows links to any host."""
    verified: str | None = None
    """Where the start URLs were checked (documentation page, date); informational."""
    notes: str | None = None
    """Free text; informational."""

    @property
    def hosts(self) -> frozenset[str]:
        """Hosts the person running the crawl declared for this site."""
        hosts = {urlsplit(u).hostname or "" for u in self.start_urls}
        hosts.update(d.lower() for d in self.allowed_domains)
        return frozenset(h for h in hosts if h)


_FIELDS = {f.name: f for f in fields(Site)}
_REQUIRED = ("name", "kind", "start_urls")
_BOOL = ("enabled", "render_js")
_STR = (
    "group",
    "article_pattern",
    "exclude_pattern",
    "link_selector",
    "next_selector",
    "wait_for",
    "publisher_selector",
    "publisher_link_selector",
    "language",
    "timezone",
    "verified",
    "notes",
)
_REGEX = ("article_pattern", "exclude_pattern")
_CSS = (
    "link_selector",
    "next_selector",
    "wait_for",
    "publisher_selector",
    "publisher_link_selector",
)


def _check_url(where: str, key: str, url: Any) -> str:
    if not isinstance(url, str):
        raise SitesError(f"{where}: key '{key}': {url!r} is not a string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SitesError(f"{where}: key '{key}': {url!r} is not an http(s) URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise SitesError(f"{where}: key '{key}': {url!r}: {exc}") from None
    return url.strip()


def _check_css(where: str, key: str, value: str) -> None:
    try:
        _CSS_TRANSLATOR.css_to_xpath(value)
    except SelectorError as exc:
        raise SitesError(f"{where}: key '{key}': bad CSS selector {value!r}: {exc}") from None


def parse_site(raw: Any, *, where: str, adhoc: bool = False) -> Site:
    """Validate one ``[[site]]`` table; ``where`` prefixes every error message.

    ``adhoc`` relaxes nothing but the name check (``-a name=`` may be anything sane).
    """
    if not isinstance(raw, dict):
        raise SitesError(f"{where}: a [[site]] entry must be a table")
    name = raw.get("name")
    if isinstance(name, str):
        where = f"{where}: site '{name}'"
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        known = ", ".join(sorted(_FIELDS))
        raise SitesError(f"{where}: key '{unknown[0]}': unknown key (known keys: {known})")
    for key in _REQUIRED:
        if key not in raw:
            raise SitesError(f"{where}: key '{key}': missing (required: {', '.join(_REQUIRED)})")
    values: dict[str, Any] = {}
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SitesError(
            f"{where}: key 'name': {name!r} must be 1-63 lower-case letters, digits, '-', '_' or '.'"
        )
    if not adhoc and name in KINDS:
        raise SitesError(f"{where}: key 'name': {name!r} is reserved for the generic spider")
    values["name"] = name
    if raw["kind"] not in KINDS:
        raise SitesError(f"{where}: key 'kind': {raw['kind']!r} is not one of {', '.join(KINDS)}")
    values["kind"] = raw["kind"]
    urls = raw["start_urls"]
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not urls:
        raise SitesError(f"{where}: key 'start_urls': must be a non-empty list of URLs")
    values["start_urls"] = tuple(_check_url(where, "start_urls", u) for u in urls)
    for key in _BOOL:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise SitesError(f"{where}: key '{key}': {raw[key]!r} is not true or false")
            values[key] = raw[key]
    for key in _STR:
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key].strip():
                raise SitesError(f"{where}: key '{key}': {raw[key]!r} is not a non-empty string")
            values[key] = raw[key].strip()
    for key in _REGEX:
        if key in values:
            try:
                re.compile(values[key])
            except re.error as exc:
                raise SitesError(
                    f"{where}: key '{key}': bad regex {values[key]!r}: {exc}"
                ) from None
    for key in _CSS:
        if key in values:
            _check_css(where, key, values[key])
    for key in ("max_pages", "max_articles"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SitesError(f"{where}: key '{key}': {v!r} is not a whole number >= 1")
            values[key] = v
    for key in ("recency_days", "wait_timeout"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise SitesError(f"{where}: key '{key}': {v!r} is not a number > 0")
            values[key] = float(v)
    if "allowed_domains" in raw:
        doms = raw["allowed_domains"]
        if not isinstance(doms, list) or not all(isinstance(d, str) and d for d in doms):
            raise SitesError(f"{where}: key 'allowed_domains': must be a list of host names")
        values["allowed_domains"] = tuple(d.lower() for d in doms)
    if "timezone" in values:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise SitesError(
                f"{where}: key 'timezone': {values['timezone']!r} is not an IANA time zone "
                "(e.g. Asia/Seoul)"
            ) from None
    for key in ("publisher_selector", "publisher_link_selector"):
        if key in values and values["kind"] != "aggregator":
            raise SitesError(f"{where}: key '{key}': only meaningful with kind = \"aggregator\"")
    if "wait_for" in values and not values.get("render_js"):
        raise SitesError(f"{where}: key 'wait_for': only meaningful with render_js = true")
    if values["kind"] == "listing" and not (
        values.get("article_pattern") or values.get("link_selector")
    ):
        raise SitesError(
            f"{where}: key 'article_pattern': a listing site needs article_pattern or "
            "link_selector to tell article links from the rest"
        )
    return Site(**values)


def parse_sites(data: dict[str, Any], *, source: str) -> list[Site]:
    """Validate the parsed TOML of a sites file; ``source`` names it in errors."""
    unknown = sorted(set(data) - {"site"})
    if unknown:
        raise SitesError(f"{source}: unknown top-level key '{unknown[0]}' (expected [[site]])")
    raw_sites = data.get("site", [])
    if not isinstance(raw_sites, list):
        raise SitesError(f"{source}: 'site' must be an array of tables: write [[site]]")
    sites: list[Site] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_sites, 1):
        site = parse_site(raw, where=f"{source}: [[site]] #{i}")
        if site.name in seen:
            raise SitesError(
                f"{source}: [[site]] #{i}: site '{site.name}': key 'name': duplicate name "
                f"(already used by [[site]] #{seen[site.name]})"
            )
        seen[site.name] = i
        sites.append(site)
    return sites


def load_sites(path: str | Path) -> list[Site]:
    """Read and validate a sites file; raise ``SitesError`` naming site and key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SitesError(f"{path}: sites file not found (set SITES_FILE or --sites)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SitesError(f"{path}: cannot read sites file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SitesError(f"{path}: not valid TOML: {exc}") from None
    return parse_sites(data, source=str(path))


@dataclass
class SiteSet:
    """The sites of one file, with lookups the commands need."""

    path: Path
    sites: list[Site] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> SiteSet:
        return cls(Path(path), load_sites(path))

    def enabled(self, group: str | None = None) -> list[Site]:
        return [s for s in self.sites if s.enabled and (group is None or s.group == group)]

    def get(self, name: str) -> Site | None:
        return next((s for s in self.sites if s.name == name), None)
