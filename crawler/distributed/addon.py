"""The switch: with ``REDIS_URL`` set, a crawl becomes a worker of the shared frontier.

Scrapy applies add-ons after every other source of settings (``-s`` included), so this one
sees the final ``REDIS_URL``. Without it nothing changes and no Redis module is imported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from crawler.config import get_str
from crawler.distributed.config import WRITER, distributed

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

SCHEDULER = "crawler.distributed.frontier.FrontierScheduler"
DUPEFILTER = "scrapy_redis.dupefilter.RFPDupeFilter"
FRONTIER_MIDDLEWARE = "crawler.distributed.frontier.FrontierMiddleware"
PUSH_PIPELINE = "crawler.distributed.queue.PushPipeline"

# Components that would read or write the SQLite file, and what a worker uses instead.
WORKER_SWAPS = {
    "ITEM_PIPELINES": {
        "pipelines.clean.CleanPipeline": "crawler.distributed.shared.SharedCleanPipeline",
        "pipelines.dedupe.DedupePipeline": None,  # the writer dedupes
        "pipelines.store.StorePipeline": None,  # ... and stores
    },
    "SPIDER_MIDDLEWARES": {
        "crawler.middlewares.incremental.SkipStoredMiddleware": (
            "crawler.distributed.shared.SharedSkipStoredMiddleware"
        ),
    },
    "DOWNLOADER_MIDDLEWARES": {
        "crawler.middlewares.incremental.ConditionalGetMiddleware": (
            "crawler.distributed.shared.SharedConditionalGetMiddleware"
        ),
        # Redirect targets are judged by the writer's dedupe step.
        "crawler.middlewares.incremental.RedirectGateMiddleware": None,
    },
    "EXTENSIONS": {
        # The runs rows go through the writer's queue.
        "crawler.extensions.RunRecorder": "crawler.distributed.runs.RunReporter",
    },
}


def _path(component: object) -> str:
    if isinstance(component, str):
        return component
    return f"{component.__module__}.{component.__qualname__}"  # type: ignore[attr-defined]


def swap_components(settings: BaseSettings, name: str, swaps: dict[str, str | None]) -> None:
    """Replace (or, for ``None``, disable) components of the priority dict ``name``, keeping
    their order values; the setting's priority is unchanged."""
    components = settings.getdict(name)
    changed = False
    for key in list(components):
        path = _path(key)
        if path not in swaps:
            continue
        order = components.pop(key)
        new = swaps[path]
        components[new or key] = order if new else None
        changed = True
    if changed:
        settings.set(name, components, settings.getpriority(name) or 0)


class DistributedAddon:
    """``REDIS_URL`` set: the scrapy-redis scheduler and duplicate filter (one frontier per
    site and run, shared by every worker), items pushed to Redis for the writer instead of
    deduped and stored here, and the incremental memory, conditional-GET cache and learned
    boilerplate read from Redis. ``DISTRIBUTED_ROLE = "writer"`` (``scrapy ingest``) keeps
    the single-machine components: the writer is the only process with the SQLite file."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not distributed(settings):
            return
        if get_str(settings, "DISTRIBUTED_ROLE") == WRITER:
            return
        settings.set("SCHEDULER", SCHEDULER, priority="addon")
        settings.set("DUPEFILTER_CLASS", DUPEFILTER, priority="addon")
        # Nothing is flushed when one worker closes: the frontier belongs to all of them
        # (a site's run keys are dropped by the last worker to leave, see frontier.py).
        settings.set("SCHEDULER_PERSIST", True, priority="addon")
        for name, swaps in WORKER_SWAPS.items():
            swap_components(settings, name, swaps)
        pipelines = settings.getdict("ITEM_PIPELINES")
        pipelines[PUSH_PIPELINE] = 500
        settings.set("ITEM_PIPELINES", pipelines, settings.getpriority("ITEM_PIPELINES") or 0)
        middlewares = settings.getdict("SPIDER_MIDDLEWARES")
        middlewares[FRONTIER_MIDDLEWARE] = 10  # nearest the engine: sees the final output
        settings.set(
            "SPIDER_MIDDLEWARES", middlewares, settings.getpriority("SPIDER_MIDDLEWARES") or 0
        )
