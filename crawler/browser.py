"""Which Chromium renders ``render_js`` sites: Playwright's own, or one on the system."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _playwright_has_chromium() -> bool:
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or str(Path.home() / ".cache/ms-playwright")
    return any(Path(root).glob("chromium*")) if Path(root).is_dir() else False


def browser_executable() -> str | None:
    """``CRAWLER_BROWSER`` if set; else ``None`` (Playwright's own Chromium) when
    ``playwright install chromium`` has been run; else a Chromium found on ``PATH``
    (e.g. Debian's ``/usr/bin/chromium``)."""
    explicit = os.environ.get("CRAWLER_BROWSER")
    if explicit:
        return explicit
    if _playwright_has_chromium():
        return None
    return next(filter(None, map(shutil.which, _SYSTEM_BROWSERS)), None)
