#!/usr/bin/env bash
# Make sure a Chromium exists for sites with render_js = true (and their tests):
# Playwright's own browser, a system Chromium, or, failing both, try to install one.
set -u
py=${1:-.venv/bin/python}
if "$py" -c 'import sys; from crawler.browser import browser_executable, _playwright_has_chromium as p; sys.exit(0 if (browser_executable() or p()) else 1)' 2>/dev/null; then
  exit 0
fi
echo "ensure-browser: no Chromium found; trying 'playwright install chromium'" >&2
if "$py" -m playwright install chromium >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "ensure-browser: installing Debian's chromium with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 && exit 0
fi
echo "ensure-browser: no Chromium available; JavaScript sites will fail. Install chromium," >&2
echo "  or run '.venv/bin/playwright install chromium', or set CRAWLER_BROWSER=/path/to/chrome" >&2
exit 0
