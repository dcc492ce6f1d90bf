"""URL canonicalisation: one spelling per article URL, whatever tracking, AMP or host variant
was linked. Pure functions, used by the dedupe step, the archive and the incremental crawl."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from courlan import extract_domain
from w3lib.url import canonicalize_url, url_query_cleaner

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "canonical_key",
    "canonical_url",
    "carried_url",
    "registered_domain",
    "same_site",
    "site_of",
    "url_key",
    "url_keys",
]

TRACKING_PARAMS = frozenset(
    {
        # ad and social click ids
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "epik", "srsltid",
        # newsletters and marketing automation
        "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp",
        "hsctatracking", "vero_id", "oly_anon_id", "oly_enc_id", "rb_clickid", "sc_cid",
        "wt.mc_id", "wt_mc", "s_cid", "cmpid", "ocid", "ncid", "icid", "smid", "sr_share",
        "xtor", "ito", "spm", "scm", "soc_src", "soc_trk", "trk", "trkcampaign",
        # referrers and share widgets
        "ref", "ref_src", "ref_url", "referrer", "referer", "share", "__twitter_impression",
        "fb_action_ids", "fb_action_types", "fb_source", "fb_ref", "action_object_map",
        "action_type_map", "action_ref_map", "guccounter", "guce_referrer",
        "guce_referrer_sig", "_ga", "_gl",
        # AMP viewers
        "amp", "amp_js_v", "amp_gsa", "amp_r", "usqp", "_js_v", "__amp_source_origin",
    }
)  # fmt: skip
"""Query parameters that never identify an article (compared in lower case)."""
TRACKING_PREFIXES = (
    "utm_", "mc_", "pk_", "mtm_", "matomo_", "piwik_", "hsa_", "itm_", "stm_", "ns_",
    "at_", "cm_", "_hs", "__hs", "fb_", "oly_", "vero_", "trk_", "ga_",
)  # fmt: skip
"""Parameter name prefixes of analytics suites (``utm_source``, ``pk_campaign``, ...)."""
RENDERING_PARAMS = {
    "outputtype": {"amp"}, "output": {"amp"}, "view": {"amp"}, "format": {"amp"},
    "m": {"0", "1"},
}  # fmt: skip
"""Parameters that select a rendering of the same page only with these values: the AMP
version (``?outputType=amp``) and Blogger's mobile and desktop views (``?m=1``, ``?m=0``)."""

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_PREFIX_RE = re.compile(r"^(?:www\d{0,3}|amp|m|mobile)\.(?=[^.]+\.[^.]+)")
"""``www.``, ``www2.``, ``amp.``, ``m.`` and ``mobile.`` name the same site as the bare host
(kept when only a registered domain would be left of a two-label name like ``m.co``)."""
_AMP_SEGMENT_RE = re.compile(r"(?<=/)(?:amp|amphtml)(?:/|$)", re.IGNORECASE)
_AMP_SUFFIX_RE = re.compile(r"\.amp(?=\.html?$|$)", re.IGNORECASE)
_SLASHES_RE = re.compile(r"/{2,}")
_AMP_CACHE_RE = re.compile(r"^/[cvi]/(?:s/)?([^/]+)(/.*)?$")
"""Google AMP cache: ``https://www-example-com.cdn.ampproject.org/c/s/www.example.com/x``."""
_CARRIED_RE = re.compile(r"^(?:https?://[^/\s]+|/(?!/))", re.IGNORECASE)
"""A query value that is a URL: absolute http(s), or a path on the same host."""


def _is_tracking(name: str, value: str) -> bool:
    key = name.lower()
    if key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES):
        return True
    return value.lower() in RENDERING_PARAMS.get(key, ())


def _unwrap_amp_cache(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith(".cdn.ampproject.org") and (m := _AMP_CACHE_RE.match(parts.path)):
        scheme = "https" if "/s/" in parts.path[:5] else "http"
        return urlunsplit((scheme, m.group(1), m.group(2) or "/", parts.query, ""))
    return url


def _clean_path(path: str) -> str:
    path = _SLASHES_RE.sub("/", path or "/")
    path = _AMP_SUFFIX_RE.sub("", path)
    while _AMP_SEGMENT_RE.search(path):
        path = _AMP_SEGMENT_RE.sub("", path, count=1)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path or "/"


@lru_cache(maxsize=4096)
def canonical_url(url: str) -> str:
    """``url`` in the one spelling every variant of it shares.

    Lower-case scheme and host, no default port, no fragment, no tracking or AMP-viewer
    query parameters (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``ref``, ``amp=1``, ...),
    remaining parameters sorted (article ids such as ``?id=123`` stay), ``www.``/``m.``/
    ``amp.`` hosts folded into the bare host, AMP paths (``/amp/``, ``/amp``, ``.amp.html``,
    the Google AMP cache) resolved, no trailing slash, percent-encoding normalised.
    A string that is not an http(s) URL is returned stripped but otherwise unchanged.
    """
    url = _unwrap_amp_cache(url.strip())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return url
    host = parts.hostname.lower().rstrip(".")
    host = _HOST_PREFIX_RE.sub("", host)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    dropped = [k for k, v in parse_qsl(parts.query, keep_blank_values=True) if _is_tracking(k, v)]
    query_url = urlunsplit(("http", "x", "/", parts.query, ""))
    if dropped:
        query_url = url_query_cleaner(query_url, dropped, remove=True, unique=False)
    query = urlsplit(query_url).query
    rebuilt = urlunsplit((scheme, netloc, _clean_path(parts.path), query, ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def carried_url(url: str) -> str | None:
    """The URL that a redirector link carries in its query (``/go?to=https://…``,
    ``out.php?u=…``, ``/hub/out?url=%2Fwire%2Fstory``), absolute (a carried path is taken on
    the link's own host); ``None`` when no query value is a URL. The first such value wins.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        value = value.strip()
        if _CARRIED_RE.match(value):
            target = urljoin(url, value)
            return None if target == url else target
    return None


def url_key(url: str) -> str:
    """The archive's lookup key of ``url``: its canonical form without the scheme
    (``example.com/a/story?id=1``), so ``http`` and ``https`` copies meet too."""
    canonical = canonical_url(url)
    scheme, sep, rest = canonical.partition("://")
    return rest if sep and scheme in DEFAULT_PORTS else canonical


@lru_cache(maxsize=4096)
def registered_domain(host: str) -> str:
    """The registrable domain of ``host`` (``news.bbc.co.uk`` -> ``bbc.co.uk``, with the
    public-suffix list's private suffixes: ``foo.blogspot.com`` stays whole); an IP address
    or an unlisted name (``localhost``) is its own domain."""
    host = host.lower().strip("[]").rstrip(".")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    return (extract_domain(f"http://{host}/") or host).lower()


def site_of(url: str) -> tuple[str, int | None] | None:
    """The site ``url`` belongs to: its registered domain and its port when not the
    default (hosts on one machine differ by port); ``None`` for a non-http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port == DEFAULT_PORTS[parts.scheme.lower()]:
        port = None
    return registered_domain(parts.hostname), port


def same_site(url: str, other: str) -> bool:
    """Whether both URLs are on one registered domain (and port, for hosts on one machine)."""
    site = site_of(url)
    return site is not None and site == site_of(other)


def canonical_key(url: str, canonical: str | None) -> str | None:
    """The key of a page's declared canonical URL (``rel=canonical``/``og:url``) when it can
    be trusted to name the same article: on the page's own registered domain, and not the
    site's front page (a template that points every page at ``/``). ``None`` otherwise.

    A canonical on another domain (a re-post crediting its source) is left to the content
    dedupe: the page is a copy, not the same URL.
    """
    if not canonical or not same_site(url, canonical):
        return None
    if _clean_path(urlsplit(canonical).path) == "/" and not urlsplit(canonical).query:
        return None
    return url_key(canonical)


def url_keys(
    url: str,
    canonical: str | None = None,
    request_url: str | None = None,
    *,
    aliases: Iterable[str] = (),
) -> list[str]:
    """Every key a page is known by: its URL, its trusted canonical URL, the URL that was
    requested before a redirect and further ``aliases`` (every URL of a redirect chain, the
    redirector or aggregator link that led to it); in that order, without repeats."""
    keys = [url_key(url), canonical_key(url, canonical)]
    keys += [url_key(u) for u in (request_url, *aliases) if u]
    return list(dict.fromkeys(k for k in keys if k))
