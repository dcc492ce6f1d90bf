"""Scrapy settings of the news crawler. Every custom setting is documented in README.md."""

from __future__ import annotations

import os

from crawler.browser import browser_executable

BOT_NAME = "newscrawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
SPIDER_LOADER_CLASS = "crawler.spiderloader.SiteSpiderLoader"
COMMANDS_MODULE = "crawler.commands"

# -- where things are -----------------------------------------------------------------------
DB_PATH = "data/news.db"
SITES_FILE = "data/sites.toml"

# -- politeness ------------------------------------------------------------------------------
USER_AGENT = (
    "newscrawler/0.1 (+https://github.com/your-org/newscrawler; contact: crawler-admin@example.org)"
)
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.25
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
COOKIES_ENABLED = False

# -- limits ----------------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
SITEMAP_MAX_BYTES = 50 * 1024 * 1024  # the sitemap protocol's own cap per file
RETRY_ENABLED = True
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 5
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # a page that keeps failing is counted, not a crawl error
METAREFRESH_MAXDELAY = 10  # a <meta refresh> waiting longer is a page, not a redirect
RETRY_AFTER_MAX = 120  # seconds: a 429/503 Retry-After up to this is waited for, longer skipped
EXTRACT_TIMEOUT = 20  # seconds per page, in a worker process that is killed past it (0 = off)
EXTRACT_MAX_MEMORY_MB = 2048  # address-space cap of that worker process
LINKS_PER_PAGE_MAX = 1000  # article links taken from one listing/aggregator page, feed, sitemap

# -- safety: SSRF guard, rendered pages (README: Safety and limits) ------------------------
SSRF_GUARD_ENABLED = True  # refuse loopback/private/link-local/... and non-http(s) requests
SSRF_ALLOWED_HOSTS: list[str] = []  # extra hosts, ".suffixes" or CIDRs allowed anyway
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.ssrf.SSRFGuardMiddleware": 40,  # before robots.txt and offsite
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.retry.RetryAfterMiddleware": 550,
    "crawler.middlewares.download_limits.DownloadLimitsMiddleware": 610,  # sees 3xx before Redirect
    # Conditional GET of feeds, sitemaps and listings (README: Dedupe).
    "crawler.middlewares.incremental.ConditionalGetMiddleware": 50,
}
# Article URLs already stored are not requested again (README: Dedupe).
SPIDER_MIDDLEWARES = {"crawler.middlewares.incremental.SkipStoredMiddleware": 950}
TWISTED_DNS_RESOLVER = "crawler.middlewares.ssrf.GuardedResolver"  # checks at connect time
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}  # http(s) only
PLAYWRIGHT_ABORT_REQUEST = "crawler.middlewares.ssrf.abort_request"
PLAYWRIGHT_ABORT_RESOURCE_TYPES = ["image", "media", "font", "imageset", "beacon", "ping"]
PLAYWRIGHT_ABORT_HOSTS: list[str] = []  # more ad/tracker hosts (with subdomains) to abort
PLAYWRIGHT_PAGE_LIFETIME = 60  # seconds a rendered page may live before it is closed
PLAYWRIGHT_GUARD_PROXY = True  # rendered pages reach the network only through the guard proxy

# -- pipelines, in run order: validate -> clean -> dedupe -> tag -> store --------------------
ITEM_PIPELINES = {
    "pipelines.validate.ValidatePipeline": 100,
    "pipelines.clean.CleanPipeline": 200,
    "pipelines.tag.TagPipeline": 400,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.store.StorePipeline": 500,
}
VALIDATE_MIN_CHARS = 200
# -- dedupe and incremental crawl (README: Dedupe; defaults from bench/bench_dedupe.py) ----
DEDUPE_ENABLED = True
DEDUPE_NEAR_THRESHOLD = 0.4  # word-shingle Jaccard at or above which a text is the same story
DEDUPE_CONTAINMENT_THRESHOLD = 0.7  # ... or this share of the shorter text inside the other
DEDUPE_CONTAINMENT_MIN_SHINGLES = 40  # ... when the shorter text has at least this many shingles
DEDUPE_SHINGLE_SIZE = 4  # words (or CJK characters) per shingle
DEDUPE_NUM_PERM = 120  # MinHash permutations
DEDUPE_BANDS = 40  # LSH bands of NUM_PERM / BANDS rows
# (a change of SHINGLE_SIZE, NUM_PERM, BANDS, SEED or ANCHORS rebuilds the index on next open)
DEDUPE_SEED = 1
DEDUPE_MAX_CANDIDATES = 10  # LSH candidates compared word for word per item
DEDUPE_ANCHORS = 3  # opening sentences indexed word for word (finds partial copies)
INCREMENTAL_ENABLED = True
INCREMENTAL_REVISIT_DAYS = 0  # re-fetch stored articles last seen this many days ago (0 = never)
INCREMENTAL_CONDITIONAL_GET = True  # ETag / Last-Modified for feeds, sitemaps, listing pages
INCREMENTAL_CACHE_MAX_BYTES = 5 * 1024 * 1024  # larger source bodies are always fetched in full
STORE_KEEP_HTML = True
STORE_BATCH_SIZE = 100
STORE_FLUSH_INTERVAL = 2.0
DB_BUSY_TIMEOUT = 30.0

# -- throughput: CPU-heavy steps in worker processes (README: Throughput) --------------------
POOL_WORKERS = os.cpu_count() or 1  # extraction and cleaning; 0 = in the reactor thread
POOL_MAX_JOBS = 0  # jobs running or queued at most (0 = 4 per worker); more callers wait

EXTENSIONS = {
    "crawler.pool.PoolExtension": 100,
    # log_count/<LEVEL> per crawler: in crawlall, one site's errors do not count for all.
    "scrapy.extensions.logcount.LogCount": None,
    "crawler.extensions.SiteLogCount": 0,
    "crawler.extensions.RunRecorder": 500,
    "crawler.progress.Progress": 900,  # after RunRecorder: the summary shows its verdict
}

# -- distributed mode: N workers on one Redis frontier, one writer (README: Scaling out) -------
# REDIS_URL set (redis://host:6379/0): crawl/crawlall run as workers of the shared frontier
# (scrapy-redis) and push items to Redis; `scrapy ingest` alone writes DB_PATH. "" = one machine.
REDIS_URL = ""
ADDONS = {"crawler.distributed.addon.DistributedAddon": 0}  # does nothing without REDIS_URL
DISTRIBUTED_PREFIX = "newscrawler"  # first part of every Redis key (one per archive)
DISTRIBUTED_HEARTBEAT = 1.0  # seconds between a worker's heartbeats, per site
DISTRIBUTED_IDLE_CLOSE = 10.0  # close a site after its frontier is empty and idle this long
DISTRIBUTED_WORKER_TIMEOUT = 30.0  # a worker silent this long is dead: its requests requeued
DISTRIBUTED_RUN_TTL = 600.0  # keys of a site's run outlive its workers' last heartbeat by this
DISTRIBUTED_MAX_HELD = 0  # requests of a site one worker takes at once (0 = 2 x PER_DOMAIN)
DISTRIBUTED_HTTP_CACHE_DAYS = 14.0  # sources' validators and bodies (conditional GET) in Redis
DISTRIBUTED_BOILERPLATE_DAYS = 30.0  # learned boilerplate sightings in Redis expire after this
INGEST_BATCH_SIZE = 100  # items the writer commits and acknowledges together
INGEST_POLL_INTERVAL = 0.5  # seconds between the writer's looks at an empty queue

# -- daily operations: crawlall, progress, anomaly checks (README: Running it every day) ----
CRAWLALL_SITE_TIMEOUT = 600  # seconds per site (0 = none); then closespider_timeout
CRAWLALL_RUN_TIMEOUT = 1500  # seconds for the whole run (0 = none): keep below the cron interval
CRAWLALL_STOP_GRACE = 60  # seconds after the run limit before sites still closing are forced
CRAWLALL_LOG_FILE = ""  # default: logs/crawlall.log next to DB_PATH (rotated)
CRAWLALL_LOG_MAX_BYTES = 5 * 1024 * 1024
CRAWLALL_LOG_BACKUPS = 5
PROGRESS_ENABLED = True  # scrapy crawl in a terminal: progress line on stderr, summary at the end
PROGRESS_INTERVAL = 5.0
ANOMALY_HISTORY_RUNS = 10  # a site's recent history: its last N finished runs
ANOMALY_MIN_RUNS = 3
ANOMALY_ZERO_MIN_MEDIAN = 1.0
ANOMALY_DROP_RATIO = 0.25
ANOMALY_DROP_MIN_MEDIAN = 8.0
ANOMALY_ERROR_RATE_MIN = 0.25
ANOMALY_ERROR_RATE_FACTOR = 3.0
ANOMALY_ERROR_MIN_COUNT = 3

# -- JavaScript pages (sites with render_js = true) -------------------------------------------
# Spiders whose site has render_js = true (or run with -a render_js=true) download through
# scrapy-playwright; the others keep Scrapy's plain downloader (crawler/spiders/base.py).
CRAWLER_RENDER_JS = False
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000
# Playwright's own Chromium when installed, else a system Chromium on PATH; the
# CRAWLER_BROWSER environment variable names a binary explicitly (crawler/browser.py).
PLAYWRIGHT_LAUNCH_OPTIONS = {"headless": True}
if _browser := browser_executable():
    PLAYWRIGHT_LAUNCH_OPTIONS["executable_path"] = _browser

# -- output ----------------------------------------------------------------------------------
FEED_EXPORT_ENCODING = "utf-8"
# -O out.jsonl exports everything but the raw HTML (kept in the database's pages table).
FEED_EXPORT_FIELDS = [
    "url", "canonical_url", "site", "domain", "title", "authors", "published_at",
    "published_raw", "language", "description", "text", "fetched_at", "source_kind",
    "source_url", "via", "via_position", "removed", "duplicate_of", "duplicate_kind",
    "similarity", "tags", "is_korea", "korea_score", "korea_evidence",
]  # fmt: skip
LOG_LEVEL = "INFO"
