"""Settings, Redis key names and the Redis connection of the distributed mode."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from crawler.config import get_str, read_config, setting

if TYPE_CHECKING:
    import redis
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

WRITER = "writer"
"""``DISTRIBUTED_ROLE`` of the ``scrapy ingest`` process (set by its spider)."""
WORKER = "worker"


def distributed(settings: BaseSettings) -> bool:
    """Whether ``settings`` switch the distributed mode on (``REDIS_URL`` set)."""
    return bool(get_str(settings, "REDIS_URL").strip())


@dataclass(frozen=True)
class DistributedConfig:
    """The ``REDIS_URL`` and ``DISTRIBUTED_*`` settings, read once and checked."""

    redis_url: str
    prefix: str = setting("DISTRIBUTED_PREFIX")
    """First part of every Redis key: several archives can share one Redis server."""
    heartbeat: float = setting("DISTRIBUTED_HEARTBEAT")
    """Seconds between a worker's heartbeats (per site it crawls)."""
    idle_close: float = setting("DISTRIBUTED_IDLE_CLOSE")
    """A worker closes a site once its frontier has been empty, and no worker busy with it,
    for this long (other workers may still find links that refill it)."""
    worker_timeout: float = setting("DISTRIBUTED_WORKER_TIMEOUT")
    """A worker silent this long is taken for dead: its requests go back to the frontier."""
    run_ttl: float = setting("DISTRIBUTED_RUN_TTL")
    """Seconds the keys of a site's run outlive the last heartbeat of its workers."""
    http_cache_days: float = setting("DISTRIBUTED_HTTP_CACHE_DAYS")
    """Validators and bodies of sources (conditional GET) are kept this long in Redis."""
    boilerplate_days: float = setting("DISTRIBUTED_BOILERPLATE_DAYS")
    """Boilerplate sightings (learned per domain by the clean step) expire after this."""

    def __post_init__(self) -> None:
        if not self.redis_url:
            raise ValueError("REDIS_URL is not set")
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ValueError(f"DISTRIBUTED_PREFIX must be a word, not {self.prefix!r}")
        if min(self.heartbeat, self.idle_close, self.worker_timeout, self.run_ttl) <= 0:
            raise ValueError(
                "DISTRIBUTED_HEARTBEAT, DISTRIBUTED_IDLE_CLOSE, DISTRIBUTED_WORKER_TIMEOUT and "
                "DISTRIBUTED_RUN_TTL must be > 0 (seconds)"
            )
        if self.worker_timeout < 2 * self.heartbeat:
            raise ValueError("DISTRIBUTED_WORKER_TIMEOUT must be at least 2 heartbeats")
        if min(self.http_cache_days, self.boilerplate_days) <= 0:
            raise ValueError("DISTRIBUTED_HTTP_CACHE_DAYS and DISTRIBUTED_BOILERPLATE_DAYS > 0")

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> DistributedConfig:
        return read_config(cls, settings, redis_url=get_str(settings, "REDIS_URL").strip())

    # -- key names ---------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        """``<prefix>:<part>:<part>...``"""
        return ":".join((self.prefix, *parts))

    @property
    def items_key(self) -> str:
        """List of finished items waiting for the writer."""
        return self.key("items")

    @property
    def processing_key(self) -> str:
        """Items the writer has taken and not yet acknowledged (committed)."""
        return self.key("items", "processing")

    @property
    def dead_key(self) -> str:
        """Payloads the writer could not decode (kept for inspection, never retried)."""
        return self.key("items", "dead")

    @property
    def url_keys_key(self) -> str:
        """Hash of stored URL keys -> ``article_id|last_seen`` (``pending`` until stored)."""
        return self.key("urlkeys")


@lru_cache(maxsize=8)
def connect(url: str) -> redis.Redis:
    """The process's Redis client for ``url`` (thread-safe, pooled; bytes replies)."""
    import redis  # late import: only the distributed mode needs the client

    return redis.Redis.from_url(
        url, socket_timeout=30, socket_connect_timeout=10, retry_on_timeout=True
    )


@lru_cache(maxsize=1)
def worker_id() -> str:
    """This process, as its heartbeats and in-flight lists name it: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
