"""Scrapy settings of the news crawler. Every custom setting is documented in README.md."""

from __future__ import annotations

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

# -- pipelines, in run order: validate -> clean -> dedupe -> tag -> store --------------------
ITEM_PIPELINES = {
    "pipelines.validate.ValidatePipeline": 100,
    "pipelines.clean.CleanPipeline": 200,
    "pipelines.tag.TagPipeline": 400,
    "pipelines.store.StorePipeline": 500,
}
VALIDATE_MIN_CHARS = 200
STORE_KEEP_HTML = True
STORE_BATCH_SIZE = 100
STORE_FLUSH_INTERVAL = 2.0
DB_BUSY_TIMEOUT = 30.0

EXTENSIONS = {
    "crawler.extensions.RunRecorder": 500,
}

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
