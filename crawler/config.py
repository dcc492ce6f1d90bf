"""Every setting of the project, declared once: name, type, default, one line of doc, topic.

``crawler/settings.py`` takes its defaults from here (so ``scrapy settings --get NAME`` shows
them), the config objects of the steps read their values through the typed getters below, and
``docs/settings.md`` is generated from it: ``python -m crawler.config > docs/settings.md``.
Scrapy's own settings (and scrapy-playwright's) stay in ``crawler/settings.py``.

Importing this module needs nothing beyond the standard library: pool workers import it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

T = TypeVar("T")

_MiB = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    """One setting: what ``-s NAME=VALUE`` changes."""

    name: str
    type: type
    """``str``, ``int``, ``float``, ``bool`` or ``list``: the getter that reads it."""
    default: Any
    """The value when nothing sets it (``None``: unset, for a ``str`` setting)."""
    group: str
    """The topic it is listed under in ``docs/settings.md`` (a key of ``GROUPS``)."""
    doc: str
    """One line: what the setting does."""
    shown: str | None = None
    """How the documentation shows a default that depends on the machine."""


GROUPS = {
    "files": "Files",
    "validate": "Validate step",
    "clean": "Clean step",
    "dedupe": "Dedupe step",
    "incremental": "Incremental crawling",
    "aggregators": "Aggregators: Google News links",
    "tag": "Tag step",
    "store": "Store step and database",
    "limits": "Size and time caps",
    "safety": "Rendered pages and the SSRF guard",
    "throughput": "Throughput: worker processes",
    "operations": "Daily operations: crawlall, progress, run checks",
    "distributed": "Distributed mode: Redis workers and one writer",
}
"""Topics, in the order ``docs/settings.md`` lists them."""

SETTINGS: tuple[Setting, ...] = (
    # -- Files
    Setting("DB_PATH", str, "data/news.db", "files", "the SQLite archive"),
    Setting("SITES_FILE", str, "data/sites.toml", "files", "the sites file"),
    # -- Validate step
    Setting("VALIDATE_ENABLED", bool, True, "validate", "`False` switches the validate step off"),
    Setting("VALIDATE_MIN_CHARS", int, 200, "validate",
            "letters and digits an article body needs before and after cleaning, else it is "
            "dropped as `too_short` (a Hangul syllable counts 2, a Han or kana character 3)"),
    # -- Clean step
    Setting("CLEAN_ENABLED", bool, True, "clean", "`False` switches the clean step off"),
    Setting("CLEAN_RULES_FILE", str, None, "clean",
            "rules file to use instead of the bundled `data/clean_rules.toml`"),
    Setting("CLEAN_BOILERPLATE_MIN_ARTICLES", int, 3, "clean",
            "distinct stories of a domain that make a line boilerplate (at least 2; "
            "longer and slot-filled lines need one more)"),
    Setting("CLEAN_LEARN", bool, True, "clean",
            "`False`: no learned boilerplate (no sightings read or written)"),
    # -- Dedupe step
    Setting("DEDUPE_ENABLED", bool, True, "dedupe",
            "the dedupe step (off: every stored URL is still recorded once by the store step)"),
    Setting("DEDUPE_NEAR_THRESHOLD", float, 0.4, "dedupe",
            "Jaccard of word shingles at or above which two texts are one story"),
    Setting("DEDUPE_CONTAINMENT_THRESHOLD", float, 0.7, "dedupe",
            "... or this share of the shorter text's shingles found in the other"),
    Setting("DEDUPE_CONTAINMENT_MIN_SHINGLES", int, 40, "dedupe",
            "... provided the shorter text has this many shingles"),
    Setting("DEDUPE_SHINGLE_SIZE", int, 4, "dedupe",
            "words (CJK: characters) per shingle; a change rebuilds the index"),
    Setting("DEDUPE_NUM_PERM", int, 120, "dedupe",
            "MinHash permutations; a change rebuilds the index"),
    Setting("DEDUPE_BANDS", int, 40, "dedupe",
            "LSH bands of `NUM_PERM / BANDS` rows; a change rebuilds the index"),
    Setting("DEDUPE_SEED", int, 1, "dedupe", "MinHash seed; a change rebuilds the index"),
    Setting("DEDUPE_MAX_CANDIDATES", int, 10, "dedupe",
            "stored stories compared word for word per page"),
    Setting("DEDUPE_ANCHORS", int, 3, "dedupe",
            "opening sentences indexed word for word (finds partial copies)"),
    # -- Incremental crawling
    Setting("INCREMENTAL_ENABLED", bool, True, "incremental",
            "skip stored articles; conditional GET of sources"),
    Setting("INCREMENTAL_REVISIT_DAYS", float, 0.0, "incremental",
            "re-fetch stored articles last seen this many days ago (0: never)"),
    Setting("INCREMENTAL_CONDITIONAL_GET", bool, True, "incremental",
            "send `If-None-Match` / `If-Modified-Since` for feeds, sitemaps and listing pages"),
    Setting("INCREMENTAL_CACHE_MAX_BYTES", int, 5 * _MiB, "incremental",
            "larger source bodies are not stored, so always fetched in full"),
    Setting("INCREMENTAL_DROPPED_RETRY_DAYS", float, 1.0, "incremental",
            "a page dropped as not an article is fetched again after this many days, sooner "
            "when its feed entry changes (0: every run)"),
    # -- Aggregators: Google News links
    Setting("GNEWS_BASE_URL", str, "https://news.google.com", "aggregators",
            "the Google News host whose article links are decoded, and where its article pages "
            "and `batchexecute` endpoint are asked"),
    Setting("GNEWS_BATCH_SIZE", int, 10, "aggregators",
            "article ids decoded per `batchexecute` request"),
    Setting("GNEWS_DECODE_DELAY", float, 1.0, "aggregators",
            "seconds between two decode requests of one process"),
    # -- Tag step
    Setting("TAG_ENABLED", bool, True, "tag", "`False` switches the tag step off"),
    Setting("TAG_LEXICON_FILE", str, "data/korea_lexicon.toml", "tag",
            "the lexicon; a relative path is looked up in the working directory, then in the "
            "repository"),
    Setting("TAG_KOREA_THRESHOLD", float, 5.5, "tag", "score from which a story is tagged `korea`"),
    Setting("TAG_MENTION_THRESHOLD", float, 0.5, "tag",
            "score from which a story that is not `korea` is tagged `korea_mention`"),
    # -- Store step and database
    Setting("STORE_ENABLED", bool, True, "store", "`False` switches the store step off"),
    Setting("STORE_KEEP_HTML", bool, True, "store",
            "keep each stored page's HTML (zstd) in the `pages` table for re-processing"),
    Setting("STORE_BATCH_SIZE", int, 100, "store", "writes per transaction"),
    Setting("STORE_FLUSH_INTERVAL", float, 2.0, "store",
            "seconds before an open batch is committed anyway"),
    Setting("DB_BUSY_TIMEOUT", float, 30.0, "store",
            "seconds a write waits for a lock held by another process"),
    # -- Size and time caps
    Setting("SITEMAP_MAX_BYTES", int, 50 * _MiB, "limits",
            "largest sitemap file accepted, also after gunzip (the sitemap protocol's own cap)"),
    Setting("RETRY_AFTER_MAX", float, 120.0, "limits",
            "seconds: a 429/503 `Retry-After` up to this is waited for, a longer one not retried"),
    Setting("EXTRACT_TIMEOUT", float, 20.0, "limits",
            "seconds per page, in a worker process that is killed past it (0: in-process, "
            "unbounded)"),
    Setting("EXTRACT_MAX_MEMORY_MB", int, 2048, "limits",
            "address-space cap of that worker process (0: none)"),
    Setting("LINKS_PER_PAGE_MAX", int, 1000, "limits",
            "article links taken from one listing or aggregator page, feed or sitemap"),
    # -- Rendered pages and the SSRF guard
    Setting("CRAWLER_RENDER_JS", bool, False, "safety",
            "route every request of the run through Chromium (else only sites with `render_js`)"),
    Setting("SSRF_GUARD_ENABLED", bool, True, "safety",
            "the guard, its resolver check and the browser proxy; `False` turns all off (not for "
            "production)"),
    Setting("SSRF_ALLOWED_HOSTS", list, [], "safety",
            "hosts, `.suffixes` or CIDR networks allowed for every site"),
    Setting("PLAYWRIGHT_ABORT_RESOURCE_TYPES", list,
            ["image", "media", "font", "imageset", "beacon", "ping"], "safety",
            "requests of a rendered page aborted by resource type (nothing the text needs)"),
    Setting("PLAYWRIGHT_ABORT_HOSTS", list, [], "safety",
            "more ad/tracker hosts (with their subdomains) whose requests a rendered page aborts"),
    Setting("PLAYWRIGHT_PAGE_LIFETIME", float, 60.0, "safety",
            "seconds a rendered page may live before it is closed"),
    Setting("PLAYWRIGHT_GUARD_PROXY", bool, True, "safety",
            "rendered pages reach the network only through the guard proxy"),
    # -- Throughput: worker processes
    Setting("POOL_WORKERS", int, os.cpu_count() or 1, "throughput",
            "worker processes for extraction and cleaning; 0 runs them in the reactor thread",
            shown="number of CPU cores"),
    Setting("POOL_MAX_JOBS", int, 0, "throughput",
            "jobs running or queued in the pool at most (0: 4 per worker); more callers wait"),
    # -- Daily operations: crawlall, progress, run checks
    Setting("CRAWLALL_SITE_TIMEOUT", float, 600.0, "operations",
            "seconds per site in `crawlall` (0: no limit); then the site is closed"),
    Setting("CRAWLALL_RUN_TIMEOUT", float, 1500.0, "operations",
            "seconds for the whole `crawlall` run (0: no limit); keep it below the cron interval"),
    Setting("CRAWLALL_STOP_GRACE", float, 60.0, "operations",
            "seconds after the run limit before sites still closing are forced"),
    Setting("CRAWLALL_LOG_FILE", str, "", "operations",
            "the rotating log of `crawlall` (empty: `logs/crawlall.log` next to `DB_PATH`)"),
    Setting("CRAWLALL_LOG_MAX_BYTES", int, 5 * _MiB, "operations",
            "size at which that log (and the `ingest` log) rotates"),
    Setting("CRAWLALL_LOG_BACKUPS", int, 5, "operations", "rotated logs kept"),
    Setting("PROGRESS_ENABLED", bool, True, "operations",
            "progress line on stderr and a summary at the end of `scrapy crawl` in a terminal"),
    Setting("PROGRESS_INTERVAL", float, 5.0, "operations", "seconds between progress lines"),
    Setting("PROGRESS_FORCE", bool, False, "operations",
            "print them even when stderr is not a terminal"),
    Setting("RUNS_ENABLED", bool, True, "operations",
            "record runs (and judge them) in the `runs` table"),
    Setting("ANOMALY_HISTORY_RUNS", int, 10, "operations",
            "a site's recent history: its last N finished runs"),
    Setting("ANOMALY_MIN_RUNS", int, 3, "operations",
            "finished runs needed before history checks apply"),
    Setting("ANOMALY_ZERO_MIN_MEDIAN", float, 1.0, "operations",
            "zero articles is an anomaly when the recent median is at least this"),
    Setting("ANOMALY_DROP_RATIO", float, 0.25, "operations",
            "fewer articles than this share of the recent median is an anomaly ..."),
    Setting("ANOMALY_DROP_MIN_MEDIAN", float, 8.0, "operations",
            "... for sites whose recent median is at least this"),
    Setting("ANOMALY_ERROR_RATE_MIN", float, 0.25, "operations",
            "error-rate anomaly: errors / attempted pages of at least this ..."),
    Setting("ANOMALY_ERROR_RATE_FACTOR", float, 3.0, "operations",
            "... and at least this many times the recent median rate ..."),
    Setting("ANOMALY_ERROR_MIN_COUNT", int, 3, "operations",
            "... when the run had at least this many errors"),
    Setting("ANOMALY_SEEN_STATS", list,
            ["store/inserted", "store/duplicates", "incremental/skipped", "incremental/claimed"],
            "operations",
            'the stats summed as "articles the site offered"'),
    # -- Distributed mode: Redis workers and one writer
    Setting("REDIS_URL", str, "", "distributed",
            "`redis://[:password@]host:port/db`: crawls become workers of the shared frontier and "
            "push items for `scrapy ingest`; empty: one machine, no Redis"),
    Setting("DISTRIBUTED_PREFIX", str, "newscrawler", "distributed",
            "first part of every Redis key: one prefix per archive sharing a Redis server"),
    Setting("DISTRIBUTED_HEARTBEAT", float, 1.0, "distributed",
            "seconds between a worker's heartbeats (per site)"),
    Setting("DISTRIBUTED_IDLE_CLOSE", float, 10.0, "distributed",
            "a worker closes a site once its frontier has been empty and idle this long"),
    Setting("DISTRIBUTED_WORKER_TIMEOUT", float, 30.0, "distributed",
            "a worker silent this long is taken for dead: its in-flight requests are requeued"),
    Setting("DISTRIBUTED_RUN_TTL", float, 600.0, "distributed",
            "a site's run keys outlive its workers' last heartbeat by this long"),
    Setting("DISTRIBUTED_MAX_HELD", int, 0, "distributed",
            "requests of a site one worker takes at once (0: twice "
            "`CONCURRENT_REQUESTS_PER_DOMAIN`)"),
    Setting("DISTRIBUTED_HTTP_CACHE_DAYS", float, 14.0, "distributed",
            "days sources' validators and bodies (conditional GET) are kept in Redis"),
    Setting("DISTRIBUTED_BOILERPLATE_DAYS", float, 30.0, "distributed",
            "days after its last sighting a learned-boilerplate line expires in Redis"),
    Setting("DISTRIBUTED_ROLE", str, "", "distributed",
            "`writer` for `scrapy ingest` (set by it): keeps the single-machine steps"),
    Setting("INGEST_BATCH_SIZE", int, 100, "distributed",
            "items the writer commits and acknowledges together"),
    Setting("INGEST_POLL_INTERVAL", float, 0.5, "distributed",
            "seconds between the writer's looks at an empty queue"),
    Setting("INGEST_UNTIL_EMPTY", bool, False, "distributed",
            "set by `scrapy ingest --until-empty`: stop once the queue stays empty"),
    Setting("INGEST_IDLE", float, 0.0, "distributed",
            "set by `scrapy ingest --idle SECONDS`: how long the queue must stay empty"),
)  # fmt: skip
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}


def declared(name: str) -> Setting:
    """The declaration of ``name``; ``KeyError`` naming it when it is not declared."""
    try:
        return SETTING[name]
    except KeyError:
        raise KeyError(f"{name} is not a declared setting (crawler/config.py)") from None


def default(name: str) -> Any:
    """The declared default of ``name`` (a copy: lists are not shared)."""
    return copy.deepcopy(declared(name).default)


def defaults() -> dict[str, Any]:
    """``{name: default}`` of every declared setting (what ``crawler/settings.py`` sets)."""
    return {s.name: copy.deepcopy(s.default) for s in SETTINGS}


# -- typed getters ------------------------------------------------------------------------------
def _checked(name: str, kind: type) -> Setting:
    setting = declared(name)
    if setting.type is not kind:
        raise TypeError(f"{name} is declared {setting.type.__name__}, not {kind.__name__}")
    return setting


def get_bool(settings: BaseSettings, name: str) -> bool:
    return settings.getbool(name, _checked(name, bool).default)


def get_int(settings: BaseSettings, name: str) -> int:
    return settings.getint(name, _checked(name, int).default)


def get_float(settings: BaseSettings, name: str) -> float:
    return settings.getfloat(name, _checked(name, float).default)


def get_list(settings: BaseSettings, name: str) -> list[str]:
    return settings.getlist(name, copy.copy(_checked(name, list).default))


def get_str(settings: BaseSettings, name: str) -> Any:
    """A ``str`` setting; its default when unset or empty (``None`` for settings unset by
    default). Paths given as ``Path`` objects come back as ``str``."""
    setting = _checked(name, str)
    value = settings.get(name)
    if value is None or value == "":
        return setting.default
    return str(value)


_GETTERS = {bool: get_bool, int: get_int, float: get_float, list: get_list, str: get_str}


def get(settings: BaseSettings, name: str) -> Any:
    """``name`` read with the getter of its declared type."""
    return _GETTERS[declared(name).type](settings, name)


def db_path_for(settings: BaseSettings) -> str:
    """The SQLite archive ``DB_PATH`` names."""
    return get_str(settings, "DB_PATH")


# -- config objects ----------------------------------------------------------------------------
def setting(name: str) -> Any:
    """A dataclass field holding setting ``name``: its declared default (``list`` settings as
    tuples), filled from the settings by ``read_config``."""
    value = declared(name).default
    if isinstance(value, list):
        value = tuple(value)
    return field(default=value, metadata={"setting": name})


def setting_fields(cls: type) -> dict[str, str]:
    """``{field: setting name}`` of the ``setting(...)`` fields of dataclass ``cls``."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}


def read_config(cls: type[T], settings: BaseSettings, **values: Any) -> T:
    """Dataclass ``cls`` with each ``setting(...)`` field read from ``settings`` (typed
    getter of its declared type); ``values`` give the other fields or override."""
    for attr, name in setting_fields(cls).items():
        if attr not in values:
            value = get(settings, name)
            values[attr] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


# -- docs/settings.md ----------------------------------------------------------------------------
def _shown(value: Any) -> str:
    if value is None:
        return "*(unset)*"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value) if value else "`[]`"
    if value == "":
        return '`""`'
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= _MiB
        and not value % _MiB
    ):
        return f"`{value}` ({value // _MiB} MiB)"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def scrapy_overrides(module: str = "crawler.settings") -> dict[str, Any]:
    """Scrapy's (and scrapy-playwright's) settings that ``module`` sets: every upper-case
    name of it that is not declared here."""
    from importlib import import_module

    values = vars(import_module(module))
    return {
        k: v for k, v in sorted(values.items()) if k.isupper() and not k.startswith("_")
        and k not in SETTING
    }  # fmt: skip


def settings_page(overrides: dict[str, Any] | None = None) -> str:
    """``docs/settings.md``: every declared setting by topic, then the values this project
    gives to Scrapy's own settings."""
    out = [
        "# Settings",
        "",
        "<!-- Generated by `python -m crawler.config > docs/settings.md` from the declarations",
        "in crawler/config.py; edit those, not this page. -->",
        "",
        "Every setting can be given on the command line (`scrapy crawl NAME -s NAME=VALUE`), in",
        "`crawler/settings.py`, or per spider. The project's own settings:",
        "",
    ]
    for group, title in GROUPS.items():
        members = [s for s in SETTINGS if s.group == group]
        out += [f"## {title}", "", "| setting | type | default | meaning |", "|---|---|---|---|"]
        for s in members:
            shown = s.shown or _shown(s.default)
            out.append(f"| `{s.name}` | {s.type.__name__} | {_cell(shown)} | {_cell(s.doc)} |")
        out.append("")
    out += [
        "## Scrapy's own settings, as this project sets them",
        "",
        "Documented in Scrapy's settings reference (and scrapy-playwright's README for",
        "`PLAYWRIGHT_*`); component lists and other structured values are in",
        "`crawler/settings.py`.",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for name, value in (scrapy_overrides() if overrides is None else overrides).items():
        if isinstance(value, (dict, list, tuple)):
            shown = "*(see `crawler/settings.py`)*"
        else:
            shown = _cell(_shown(value))
        out.append(f"| `{name}` | {shown} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(settings_page())
