"""The shared frontier: scrapy-redis's scheduler and duplicate filter, one frontier per site and
run, seeded by one worker, drained by all, with the requests of a dead worker given back."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from crawler.config import get_int
from crawler.distributed.config import DistributedConfig, connect, worker_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

INFLIGHT = "frontier_inflight"
"""Request meta: the in-flight entry of a request taken from the frontier (sha1 of its
payload). Released once the request's outcome is safe: its follow-up requests back in the
frontier, its items pushed to the writer."""

# Take the best request and note it as in flight for this worker, in one step.
_POP = """
local r = redis.call('ZPOPMIN', KEYS[1])
if #r == 0 then return false end
redis.call('HSET', KEYS[2], redis.sha1hex(r[1]), r[1])
return r[1]
"""
# Give the in-flight requests of a worker silent for more than ARGV[3] s (or of ARGV[4]=1:
# this worker, leaving early) back to the frontier. Returns how many, or -1 if it is alive.
_REQUEUE = """
local seen = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[4] ~= '1' then
  if not seen or tonumber(ARGV[2]) - tonumber(seen) <= tonumber(ARGV[3]) then return -1 end
end
local held = redis.call('HVALS', KEYS[3])
for _, payload in ipairs(held) do redis.call('ZADD', KEYS[4], 0, payload) end
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return #held
"""
# Leave a run; the last worker out ends it (drops the pointer, if still this run's).
_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
  return 1
end
return 0
"""


def payload_token(payload: bytes) -> str:
    """The in-flight entry name of a frontier payload (what ``redis.sha1hex`` gives)."""
    return hashlib.sha1(payload).hexdigest()  # noqa: S324 - a name, not security


class SiteRun:
    """One site's run on the shared frontier, as seen by this worker.

    The pointer ``<prefix>:site:<site>:run`` names the current run. The worker that creates
    it (``SET NX``) is the run's seeder: only its start requests (feeds, sitemaps, listing
    pages) enter the frontier, so each source is fetched once per run however many workers
    crawl the site. Every key of the run carries the run id, so the next run starts with an
    empty duplicate filter: a page that failed, or was dropped, is tried again then.
    """

    def __init__(
        self, server: redis.Redis, config: DistributedConfig, site: str, run_id: str, *,
        seeder: bool, worker: str,
    ) -> None:  # fmt: skip
        self.server = server
        self.config = config
        self.site = site
        self.run_id = run_id
        self.seeder = seeder
        self.worker = worker

    @staticmethod
    def pointer(config: DistributedConfig, site: str) -> str:
        return config.key("site", site, "run")

    @classmethod
    def join(
        cls, server: redis.Redis, config: DistributedConfig, site: str, worker: str
    ) -> SiteRun:
        """Join the site's current run, or start one (and seed it) when there is none."""
        pointer = cls.pointer(config, site)
        ttl = max(1, int(config.run_ttl))
        while True:
            new_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            if server.set(pointer, new_id, nx=True, ex=ttl):
                run = cls(server, config, site, new_id, seeder=True, worker=worker)
                break
            current = server.get(pointer)
            if current is not None:  # else: the last worker just ended it; start anew
                run = cls(server, config, site, current.decode(), seeder=False, worker=worker)
                break
        server.hset(run.key("alive"), worker, repr(time.time()))
        return run

    def key(self, *parts: str) -> str:
        return self.config.key("site", self.site, self.run_id, *parts)

    @property
    def queue_key(self) -> str:
        return self.key("requests")

    @property
    def dupefilter_key(self) -> str:
        return self.key("dupefilter")

    def inflight_key(self, worker: str | None = None) -> str:
        return self.key("inflight", worker or self.worker)

    def keys(self) -> list[str]:
        """The run's keys this worker keeps alive (and the last one out deletes)."""
        return [
            self.queue_key,
            self.dupefilter_key,
            self.key("alive"),
            self.key("busy"),
            self.inflight_key(),
        ]


class Inflight:
    """Which in-flight entry each item came from; an entry is released when the response
    that holds it has given all its output and every item of it is pushed, dropped or
    failed (``item_scraped`` comes after the last pipeline, the push)."""

    def __init__(self, crawler: Crawler) -> None:
        self.release: Callable[[str], None] | None = None
        self._items: dict[int, str] = {}
        self._outstanding: Counter[str] = Counter()
        self._exhausted: set[str] = set()
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(self.item_done, signal=signal)

    def hold(self, token: str, item: Any) -> None:
        self._items[id(item)] = token
        self._outstanding[token] += 1

    def output_done(self, token: str) -> None:
        if self._outstanding[token] > 0:
            self._exhausted.add(token)
            return
        del self._outstanding[token]
        self._release(token)

    def item_done(self, item: Any, **kwargs: Any) -> None:
        token = self._items.pop(id(item), None)
        if token is None:
            return
        self._outstanding[token] -= 1
        if self._outstanding[token] <= 0 and token in self._exhausted:
            del self._outstanding[token]
            self._exhausted.discard(token)
            self._release(token)

    def _release(self, token: str) -> None:
        if self.release is not None:
            self.release(token)


class _State:
    def __init__(self, crawler: Crawler) -> None:
        self.inflight = Inflight(crawler)
        self.run: SiteRun | None = None


_STATES: weakref.WeakKeyDictionary[Crawler, _State] = weakref.WeakKeyDictionary()


def state_for(crawler: Crawler) -> _State:
    """The frontier state of ``crawler`` (shared by its scheduler and middleware)."""
    state = _STATES.get(crawler)
    if state is None:
        state = _STATES[crawler] = _State(crawler)
    return state


class FrontierQueue(PriorityQueue):
    """scrapy-redis's priority queue; a popped request is noted in the worker's in-flight
    hash ``inflight_key`` in the same step."""

    def __init__(self, *args: Any, inflight_key: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inflight_key = inflight_key
        self._pop = self.server.register_script(_POP)

    def pop(self, timeout: int = 0) -> Request | None:
        payload = self._pop(keys=[self.key, self.inflight_key])
        if not payload:
            return None
        request = self._decode_request(payload)
        request.meta[INFLIGHT] = payload_token(payload)
        return request


def _wake(crawler: Crawler) -> None:
    """Ask the engine to look at the scheduler now rather than at its next 5 s heartbeat."""
    slot = getattr(getattr(crawler, "engine", None), "_slot", None)
    if slot is not None and slot.closing is None:
        slot.nextcall.schedule()


class FrontierScheduler(Scheduler):
    """scrapy-redis's scheduler on the site's current run (``SiteRun``).

    Every ``DISTRIBUTED_HEARTBEAT`` seconds the worker says it is alive (and busy, when it
    has work), keeps the run's keys from expiring, gives the requests of workers silent for
    ``DISTRIBUTED_WORKER_TIMEOUT`` back to the frontier and wakes its engine when the
    frontier has requests while it idles. An idle worker stays open while the frontier has
    requests, while a worker was busy in the last ``DISTRIBUTED_IDLE_CLOSE`` seconds (it may
    still find links) and while a worker has gone missing without being given up yet.

    Stats: ``distributed/seeded`` or ``distributed/joined``, ``distributed/requeued``.
    """

    crawler: Crawler
    config: DistributedConfig
    max_held: int
    """Requests of this site this worker holds at most (``DISTRIBUTED_MAX_HELD``; default
    twice ``CONCURRENT_REQUESTS_PER_DOMAIN``)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.config = DistributedConfig.from_settings(crawler.settings)
        scheduler.debug = crawler.settings.getbool("DUPEFILTER_DEBUG")
        settings = crawler.settings
        scheduler.max_held = get_int(settings, "DISTRIBUTED_MAX_HELD") or 2 * settings.getint(
            "CONCURRENT_REQUESTS_PER_DOMAIN", 8
        )
        return scheduler

    def open(self, spider: Spider) -> None:
        self.server = connect(self.config.redis_url)
        self.worker = worker_id()
        self.run = SiteRun.join(self.server, self.config, spider.name, self.worker)
        state = state_for(self.crawler)
        state.run = self.run
        state.inflight.release = self.release
        self.spider = spider
        # scrapy-redis's open(), on the run's keys (and without its deprecated spider.log).
        self.queue_key = self.run.queue_key
        self.queue = FrontierQueue(
            server=self.server,
            spider=spider,
            key=self.queue_key,
            serializer=self.serializer,
            inflight_key=self.run.inflight_key(),
        )
        self.df = RFPDupeFilter(self.server, key=self.run.dupefilter_key, debug=self.debug)
        self._requeue = self.server.register_script(_REQUEUE)
        self._leave = self.server.register_script(_LEAVE)
        self.opened_at = time.time()
        self.last_busy = self.opened_at
        self._failing_since: float | None = None
        self._closing = False
        self._worked = True
        stats = self.crawler.stats
        stats.set_value("distributed/run", self.run.run_id)
        stats.inc_value("distributed/seeded" if self.run.seeder else "distributed/joined")
        logger.info(
            "%s run %s of %s (worker %s)",
            "started" if self.run.seeder else "joined",
            self.run.run_id,
            spider.name,
            self.worker,
            extra={"spider": spider},
        )
        self.crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        self._ticker = task.LoopingCall(self.tick)
        self._ticker.start(self.config.heartbeat, now=True)

    # -- requests ---------------------------------------------------------------------------
    def enqueue_request(self, request: Request) -> bool:
        # scrapy-redis's own, with today's stats API. A retry, redirect or replayed 304
        # takes the place of the request it came from: that one's in-flight entry goes.
        token = request.meta.pop(INFLIGHT, None)
        try:
            if not request.dont_filter and self.df.request_seen(request):
                self.df.log(request, self.spider)
                return False
            self.queue.push(request)
            self.stats.inc_value("scheduler/enqueued/redis")
            return True
        finally:
            if token:
                self.release(token)

    def next_request(self) -> Request | None:
        # Take no more than this worker can start downloading soon: what waits in its
        # downloader is lost to the others (until given back, if this worker dies).
        downloader = getattr(getattr(self.crawler, "engine", None), "downloader", None)
        if downloader is not None and len(downloader.active) >= self.max_held:
            return None
        request = self.queue.pop()
        if request is not None:
            self._worked = True
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def release(self, token: str) -> None:
        """The request noted as ``token`` is done: forget it."""
        self.server.hdel(self.run.inflight_key(), token)

    # -- heartbeat, idling, leaving ------------------------------------------------------------
    def _engine_idle(self) -> bool:
        try:
            return self.crawler.engine.spider_is_idle()
        except (AttributeError, RuntimeError):  # no engine or slot: closing
            return True

    def tick(self) -> None:
        now = time.time()
        run = self.run
        try:
            idle = self._engine_idle()  # asks the frontier's length too
            busy = self._worked or not idle
            self._worked = False
            pipe = self.server.pipeline(transaction=False)
            pipe.hset(run.key("alive"), self.worker, repr(now))
            if busy:
                self.last_busy = now
                pipe.hset(run.key("busy"), self.worker, repr(now))
            ttl = max(1, int(self.config.run_ttl))
            for key in [SiteRun.pointer(self.config, run.site), *run.keys()]:
                pipe.expire(key, ttl)
            pipe.hgetall(run.key("alive"))
            pipe.zcard(run.queue_key)
            *_, alive, queued = pipe.execute()
            for other, seen in alive.items():
                name = other.decode()
                if name != self.worker and now - float(seen) > self.config.worker_timeout:
                    self._give_back(name, now)
        except Exception as exc:  # noqa: BLE001 - a Redis hiccup must not stop the heartbeat
            logger.warning("heartbeat of %s failed: %s", run.site, exc)
            self._unreachable(now)
            return
        self._failing_since = None
        if idle or queued:
            _wake(self.crawler)  # requests to take, or time to decide about closing

    def _unreachable(self, now: float) -> None:
        """Redis has not answered for ``DISTRIBUTED_WORKER_TIMEOUT``: the other workers take
        this one for dead and give its requests away, so it stops (``redis_unavailable``)."""
        self._failing_since = self._failing_since or now
        if now - self._failing_since <= self.config.worker_timeout or self._closing:
            return
        self._closing = True
        logger.error(
            "Redis unreachable for more than %ss: closing %s",
            self.config.worker_timeout,
            self.run.site,
            extra={"spider": self.spider},
        )
        engine = getattr(self.crawler, "engine", None)
        if engine is not None:
            deferred_from_coro(engine.close_spider_async(reason="redis_unavailable"))

    def _give_back(self, worker: str, now: float, *, own: bool = False) -> int:
        run = self.run
        keys = [run.key("alive"), run.key("busy"), run.inflight_key(worker), run.queue_key]
        args = [worker, repr(now), self.config.worker_timeout, "1" if own else "0"]
        count = int(self._requeue(keys=keys, args=args))
        if count >= 0 and not own:
            logger.warning(
                "worker %s silent for more than %ss: %d of its requests back in the frontier",
                worker,
                self.config.worker_timeout,
                count,
            )
        if count > 0:
            self.crawler.stats.inc_value("distributed/requeued", count)
        return count

    def spider_idle(self, spider: Spider) -> None:
        """Stay open while the site's frontier may still grow (see the class docstring)."""
        now = time.time()
        run = self.run
        pipe = self.server.pipeline(transaction=False)
        pipe.zcard(run.queue_key)
        pipe.hgetall(run.key("busy"))
        pipe.hgetall(run.key("alive"))
        queued, busy, alive = pipe.execute()
        if queued:
            logger.debug("idle, %d requests queued: staying", queued, extra={"spider": spider})
            raise DontCloseSpider
        last = max([self.opened_at, self.last_busy, *(float(v) for v in busy.values())])
        if now - last < self.config.idle_close:
            logger.debug(
                "idle; a worker was busy %.1f s ago: staying", now - last, extra={"spider": spider}
            )
            raise DontCloseSpider
        present = 3 * self.config.heartbeat
        missing = [
            w.decode()
            for w, seen in alive.items()
            if w.decode() != self.worker and now - float(seen) > present
        ]
        if missing:
            logger.debug("idle; waiting for missing workers %s", missing, extra={"spider": spider})
            raise DontCloseSpider  # its requests go back to the frontier when it is given up

    def close(self, reason: str) -> None:
        ticker = getattr(self, "_ticker", None)
        if ticker is not None and ticker.running:
            ticker.stop()
        run = getattr(self, "run", None)
        if run is None:
            return
        now = time.time()
        try:
            if reason == "finished":
                # Only requests that failed for good are left; they are tried next run.
                self.server.delete(run.inflight_key())
            else:
                # Closed early (time limit, Ctrl-C): the others finish what this one held.
                given = self._give_back(self.worker, now, own=True)
                logger.info(
                    "closed early (%s): %d requests given back to the frontier",
                    reason,
                    given,
                    extra={"spider": self.spider},
                )
            keys = [run.key("alive"), run.key("busy"), SiteRun.pointer(self.config, run.site)]
            if self._leave(keys=keys, args=[self.worker, run.run_id]):
                self.server.delete(*run.keys())
                logger.info(
                    "run %s of %s ended (last worker out)",
                    run.run_id,
                    run.site,
                    extra={"spider": self.spider},
                )
        except Exception as exc:  # noqa: BLE001 - the keys expire after DISTRIBUTED_RUN_TTL
            logger.warning("leaving run %s of %s failed: %s", run.run_id, run.site, exc)
        super().close(reason)


class FrontierMiddleware:
    """Spider middleware (nearest the engine): only the run's seeder lets the spider's start
    requests through, and each response's in-flight entry is released once its output is
    given (requests are in the frontier by then) and its items are through the pipelines.

    Stats: ``distributed/start_skipped``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.inflight = state_for(crawler).inflight

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierMiddleware:
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for item_or_request in start:
            run = state_for(self.crawler).run
            if isinstance(item_or_request, Request) and run is not None and not run.seeder:
                self.crawler.stats.inc_value("distributed/start_skipped")
                continue
            yield item_or_request

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        request = getattr(response, "request", None)
        token = request.meta.get(INFLIGHT) if request is not None else None
        try:
            async for output in result:
                if token and not isinstance(output, Request):
                    self.inflight.hold(token, output)
                yield output
        finally:
            if token:
                self.inflight.output_done(token)
