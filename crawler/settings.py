"""Scrapy settings of the news crawler.

The project's own settings (``DB_PATH``, ``DEDUPE_*``, ``SSRF_*`` ...) are declared once in
``crawler/config.py``, with their defaults and documentation (``docs/settings.md``); they are
set here from that declaration. This file holds the values given to Scrapy's own settings
(and scrapy-playwright's) and the components that make up the crawler."""

from __future__ import annotations

from crawler import config
from crawler.browser import browser_executable

globals().update(config.defaults())

BOT_NAME = "newscrawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
SPIDER_LOADER_CLASS = "crawler.spiderloader.SiteSpiderLoader"
COMMANDS_MODULE = "crawler.commands"

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
RETRY_ENABLED = True
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 5
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # a page that keeps failing is counted, not a crawl error
METAREFRESH_MAXDELAY = 10  # a <meta refresh> waiting longer is a page, not a redirect

# -- safety: the SSRF guard in front of every download --------------------------------------
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.ssrf.SSRFGuardMiddleware": 40,  # before robots.txt and offsite
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.retry.RetryAfterMiddleware": 550,
    "crawler.middlewares.download_limits.DownloadLimitsMiddleware": 610,  # sees 3xx first
    # Conditional GET of feeds, sitemaps and listings (incremental crawling).
    "crawler.middlewares.incremental.ConditionalGetMiddleware": 50,
    # A redirect to a page already stored, dropped or fetched in this run goes no further.
    "crawler.middlewares.incremental.RedirectGateMiddleware": 60,
}
# Article URLs already stored are not requested again (incremental crawling).
SPIDER_MIDDLEWARES = {"crawler.middlewares.incremental.SkipStoredMiddleware": 950}
TWISTED_DNS_RESOLVER = "crawler.middlewares.ssrf.GuardedResolver"  # checks at connect time
DOWNLOAD_HANDLERS = {"file": None, "data": None, "ftp": None, "s3": None}  # http(s) only
PLAYWRIGHT_ABORT_REQUEST = "crawler.middlewares.ssrf.abort_request"

# -- pipelines, in run order: validate -> clean -> dedupe -> tag -> store --------------------
# Scrapy starts this many tasks for the output of every response, whatever it holds (its
# default, 100, costs ~0.6 ms of CPU per response); an article page holds one item.
CONCURRENT_ITEMS = 16
ITEM_PIPELINES = {
    "pipelines.validate.ValidatePipeline": 100,
    "pipelines.clean.CleanPipeline": 200,
    "pipelines.tag.TagPipeline": 400,
    "pipelines.dedupe.DedupePipeline": 300,
    "pipelines.store.StorePipeline": 500,
}

EXTENSIONS = {
    # CPU-heavy steps (extraction, cleaning) in worker processes: POOL_WORKERS.
    "crawler.pool.PoolExtension": 100,
    # log_count/<LEVEL> per crawler: in crawlall, one site's errors do not count for all.
    "scrapy.extensions.logcount.LogCount": None,
    "crawler.extensions.SiteLogCount": 0,
    "crawler.extensions.RunRecorder": 500,
    "crawler.progress.Progress": 900,  # after RunRecorder: the summary shows its verdict
    "crawler.extensions.FreezeStartup": 1000,  # last: everything else has been built
}

# -- distributed mode: N workers on one Redis frontier, one writer ----------------------------
# REDIS_URL set (redis://host:6379/0): crawl/crawlall run as workers of the shared frontier
# (scrapy-redis) and push items to Redis; `scrapy ingest` alone writes DB_PATH. "" = one machine.
ADDONS = {"crawler.distributed.addon.DistributedAddon": 0}  # does nothing without REDIS_URL

# -- JavaScript pages (sites with render_js = true) -------------------------------------------
# Spiders whose site has render_js = true (or run with -a render_js=true) download through
# scrapy-playwright; the others keep Scrapy's plain downloader (crawler/spiders/base.py).
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
    "source_url", "via", "via_position", "publisher", "publisher_url", "removed",
    "duplicate_of", "duplicate_kind", "similarity", "tags", "is_korea", "korea_score",
    "korea_evidence",
]  # fmt: skip
LOG_LEVEL = "INFO"
