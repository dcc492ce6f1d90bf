"""Process pool for the CPU-heavy steps (extraction, cleaning): ``await offload(fn,
*args)`` runs ``fn`` in a worker process, off the reactor thread; without a pool, in-process."""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReadDescriptor, IWriteDescriptor
from zope.interface import implementer

from crawler.config import get_float, get_int
from crawler.limits import ExtractFailed, ExtractTimeout, spawn_worker, worker_main

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from typing import Self

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

PRELOAD = ("crawler.extract",)
"""Modules a worker imports before it reports ready: extraction can start ~1 s after spawn."""
PRELOAD_LATER = ("pipelines.clean", "pipelines.dedupe.core", "pipelines.tag.pipeline:warm_up")
"""Modules it imports next, beside its first jobs, before it reports warm: the pipelines
hand work to the pool only once a worker is warm (until then it runs in-process, at once,
which keeps a small crawl as quick as without a pool)."""
_START_TIMEOUT = 120.0
MAX_START_FAILURES = 3
JOBS_PER_WORKER = 2
"""Jobs a worker holds at once: while it runs one, the next waits in its pipe, so it does not
wait for the reactor (busy with the pipelines' own work) between two jobs."""
_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")
_READ_SIZE = 1 << 18
STOP_GRACE = 0.2
"""Seconds a worker has to exit once its pipe is closed before it is killed (it holds no
state: every job was answered)."""


@dataclass(frozen=True)
class PoolConfig:
    """``POOL_*`` settings (and the per-job deadline and memory cap of ``EXTRACT_*``)."""

    workers: int
    """Worker processes; 0 runs every job in-process, in the reactor thread."""
    max_jobs: int
    """Jobs running or queued at most; ``offload`` waits for a free place beyond that."""
    timeout: float
    """Seconds a job may run before its worker is killed (0 = no deadline)."""
    memory_mb: int
    """Address-space cap of each worker process (0 = none)."""

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> PoolConfig:
        workers = get_int(settings, "POOL_WORKERS")
        if workers < 0:
            raise ValueError(f"POOL_WORKERS must be >= 0, not {workers}")
        max_jobs = get_int(settings, "POOL_MAX_JOBS") or 4 * max(1, workers)
        return cls(
            workers=workers,
            max_jobs=max(max_jobs, workers),
            timeout=get_float(settings, "EXTRACT_TIMEOUT"),
            memory_mb=get_int(settings, "EXTRACT_MAX_MEMORY_MB"),
        )


@implementer(IReadDescriptor, IWriteDescriptor)
class _Worker:
    """One worker process. Its pipe is watched by the reactor and never blocks it: jobs are
    written as the pipe takes them and results read as they arrive, all in the reactor thread
    (no GIL hand-offs between threads on each job). A worker holds up to ``JOBS_PER_WORKER``
    jobs: the one it runs and the next, already in its pipe."""

    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.proc: Any = None
        self.conn: Connection | None = None
        self.ready = False
        """Started: takes jobs."""
        self.warm = False
        """Has imported the pipelines' modules too."""
        self.jobs: deque[_Job] = deque()
        """Jobs sent, in order; the first is running, its result is the next to arrive."""
        self._deadline: Any = None
        self._frames = _Frames()

    # IReadDescriptor, IWriteDescriptor
    def fileno(self) -> int:
        return self.conn.fileno() if self.conn is not None else -1

    def logPrefix(self) -> str:
        return f"pool-worker-{self.number}"

    def connectionLost(self, reason: Any) -> None:
        self._died("its pipe closed")

    def doRead(self) -> None:
        if self.conn is None:
            return
        try:
            messages = self._frames.read(self.conn.fileno())
        except (EOFError, OSError) as exc:
            self._died(repr(exc))
            return
        for status, value in messages:
            if self.conn is None:
                return
            self._received(status, value)

    def doWrite(self) -> None:
        if self.conn is None:
            return
        try:
            done = self._frames.write(self.conn.fileno())
        except OSError as exc:
            self._died(repr(exc))
            return
        if done:
            from twisted.internet import reactor

            reactor.removeWriter(self)

    def _received(self, status: str, value: Any) -> None:
        if status == "warm":
            self.warm = True
            return
        if status == "ready":
            self.ready = True
            self._cancel_deadline()
            self.pool.start_failures = 0
            self.pool._dispatch()
            return
        self._cancel_deadline()
        job = self.jobs.popleft() if self.jobs else None
        if self.jobs:
            self._start_deadline(self.jobs[0])  # the next job has started
        if job is not None:
            if status == "ok":
                job.done.callback(value)
            else:
                job.done.errback(value)
        self.pool._dispatch()

    # life cycle
    def start(self) -> None:
        from twisted.internet import reactor

        proc, parent_conn = spawn_worker(
            worker_main,
            self.pool.config.memory_mb,
            PRELOAD,
            PRELOAD_LATER,
            name=f"pool-worker-{self.number}",
        )
        os.set_blocking(parent_conn.fileno(), False)
        self.proc, self.conn, self.ready, self.warm = proc, parent_conn, False, False
        self._frames = _Frames()
        reactor.addReader(self)
        self._deadline = reactor.callLater(_START_TIMEOUT, self._late_start)

    def _late_start(self) -> None:
        self._deadline = None
        logger.error("pool worker %d did not start within %g s", self.number, _START_TIMEOUT)
        self._kill()
        self.pool._start_failed(self)

    @property
    def takes_jobs(self) -> int:
        """How many more jobs this worker takes now."""
        if not self.ready or self.conn is None:
            return 0
        return JOBS_PER_WORKER - len(self.jobs)

    def run(self, job: _Job) -> None:
        from twisted.internet import reactor

        assert self.conn is not None
        try:
            frame = _frame((job.fn, job.args, job.kwargs))
        except Exception as exc:  # noqa: BLE001 - arguments that do not pickle
            job.done.errback(exc)
            return
        self.jobs.append(job)
        if len(self.jobs) == 1:
            self._start_deadline(job)
        if self._frames.queue(frame):
            try:
                done = self._frames.write(self.conn.fileno())
            except OSError as exc:
                self._died(repr(exc))
                return
            if not done:
                reactor.addWriter(self)

    def _start_deadline(self, job: _Job) -> None:
        from twisted.internet import reactor

        if job.timeout > 0:
            self._deadline = reactor.callLater(job.timeout, self._overdue)

    def _overdue(self) -> None:
        self._deadline = None
        job = self.jobs.popleft() if self.jobs else None
        self._kill()
        self.pool._worker_lost(
            self, job, ExtractTimeout(f"took longer than {job.timeout:g} s") if job else None
        )

    def _died(self, why: str) -> None:
        job = self.jobs.popleft() if self.jobs else None
        self._cancel_deadline()
        self._kill()
        self.pool._worker_lost(self, job, ExtractFailed(f"pool worker died: {why}"))

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _kill(self) -> None:
        """Stop the process; the jobs it held but had not started go back to the queue."""
        from twisted.internet import reactor

        if self.conn is not None:
            reactor.removeReader(self)
            reactor.removeWriter(self)
            self.conn.close()
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(5)
        self.proc = self.conn = None
        self.ready = False
        waiting, self.jobs = self.jobs, deque()
        self.pool._requeue(waiting)

    def hang_up(self) -> None:
        """Close the pipe: the worker exits when it reads the end of it."""
        from twisted.internet import reactor

        self._cancel_deadline()
        jobs, self.jobs = self.jobs, deque()
        for job in jobs:
            job.done.errback(ExtractFailed("pool closed"))
        if self.conn is not None:
            reactor.removeReader(self)
            reactor.removeWriter(self)
            self.conn.close()
        self.conn = None

    def reap(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the process to exit, then kill it."""
        if self.proc is not None:
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
        self.proc = None


def _frame(message: Any) -> bytes:
    """``message`` pickled and framed as ``multiprocessing.Connection.send`` does (a 4-byte
    big-endian length, or -1 and an 8-byte one), so the worker reads it with ``recv``."""
    payload = ForkingPickler.dumps(message)
    size = len(payload)
    if size > 0x7FFFFFFF:
        return _SIZE.pack(-1) + _LONG_SIZE.pack(size) + payload
    return _SIZE.pack(size) + payload


class _Frames:
    """The parent's end of a worker's pipe, non-blocking: bytes to write, bytes read so far
    and the messages complete in them (the framing of ``multiprocessing.Connection``)."""

    def __init__(self) -> None:
        self._out: deque[memoryview] = deque()
        self._in = bytearray()

    def queue(self, frame: bytes) -> bool:
        """Add a message to write; whether the pipe was idle (the caller writes at once)."""
        idle = not self._out
        self._out.append(memoryview(frame))
        return idle

    def write(self, fd: int) -> bool:
        """Write what the pipe takes now; whether everything queued is written."""
        while self._out:
            head = self._out[0]
            try:
                sent = os.write(fd, head)
            except BlockingIOError:
                return False
            if sent < len(head):
                self._out[0] = head[sent:]
                return False
            self._out.popleft()
        return True

    def read(self, fd: int) -> list[Any]:
        """Read what arrived; the messages complete so far. ``EOFError`` when the worker
        closed its end."""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return []
        if not data:
            raise EOFError("the worker closed its pipe")
        buf = self._in
        buf += data
        messages = []
        while len(buf) >= _SIZE.size:
            (size,) = _SIZE.unpack_from(buf)
            start = _SIZE.size
            if size == -1:
                if len(buf) < start + _LONG_SIZE.size:
                    break
                (size,) = _LONG_SIZE.unpack_from(buf, start)
                start += _LONG_SIZE.size
            if len(buf) < start + size:
                break
            messages.append(ForkingPickler.loads(buf[start : start + size]))
            del buf[: start + size]
        return messages


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    timeout: float
    done: Deferred[Any]


# -- the pool ---------------------------------------------------------------------------------
class WorkerPool:
    """``workers`` processes fed from one queue, driven from the reactor thread.

    Jobs enter through ``run``: at most ``max_jobs`` are running or queued, later callers
    wait their turn, so pages handed over cannot pile up in memory. A job past its deadline
    has its worker killed (lxml and regexes cannot be interrupted) and raises
    ``ExtractTimeout``; a worker that dies raises ``ExtractFailed``; an exception of the job
    itself is raised as is. A lost worker is replaced at once.
    """

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._queue: deque[_Job] = deque()
        self._waiting: deque[Deferred[None]] = deque()
        self.jobs_open = 0
        """Jobs running or queued."""
        self.jobs_done = 0
        self.max_open = 0
        self.restarts = 0
        self.start_failures = 0
        self.closed = False
        self.broken = False
        self._workers = [_Worker(self, i) for i in range(config.workers)]
        for worker in self._workers:
            worker.start()

    @property
    def warm(self) -> bool:
        """Whether a worker has imported the pipelines' modules (``PRELOAD_LATER``)."""
        return any(w.warm and w.conn is not None for w in self._workers)

    def _dispatch(self) -> None:
        """Hand queued jobs to the workers: first one to each idle worker, then the next."""
        for depth in range(1, JOBS_PER_WORKER + 1):
            for worker in self._workers:
                if not self._queue:
                    return
                if worker.takes_jobs > JOBS_PER_WORKER - depth:
                    worker.run(self._queue.popleft())

    def _requeue(self, jobs: deque[_Job]) -> None:
        """Jobs a lost worker held but had not started: first in line again."""
        if not jobs:
            return
        if self.closed or self.broken:
            for job in jobs:
                job.done.errback(ExtractFailed("pool closed"))
            return
        self._queue.extendleft(reversed(jobs))
        self._dispatch()

    def _worker_lost(self, worker: _Worker, job: _Job | None, exc: Exception | None = None) -> None:
        self.restarts += 1
        if job is not None:
            job.done.errback(exc or ExtractFailed("pool worker lost"))
        if not self.closed:
            worker.start()

    def _start_failed(self, worker: _Worker) -> None:
        """A worker did not start: retry, and after ``MAX_START_FAILURES`` in a row give up
        (queued and later jobs fail with ``ExtractFailed``) rather than hang the crawl."""
        self.start_failures += 1
        if self.start_failures < MAX_START_FAILURES:
            self._worker_lost(worker, None)
            return
        logger.error("pool: workers cannot start; extraction jobs fail from now on")
        self.broken = True
        while self._queue:
            self._queue.popleft().done.errback(ExtractFailed("pool workers cannot start"))

    async def run(
        self, fn: Callable[..., R], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> R:
        """``fn(*args, **kwargs)`` in a worker; call and await in the reactor thread."""
        if self.broken:
            raise ExtractFailed("pool workers cannot start")
        while self.jobs_open >= self.config.max_jobs:
            turn: Deferred[None] = Deferred()
            self._waiting.append(turn)
            await maybe_deferred_to_future(turn)
        self.jobs_open += 1
        self.max_open = max(self.max_open, self.jobs_open)
        try:
            done: Deferred[R] = Deferred()
            deadline = self.config.timeout if timeout is None else timeout
            self._queue.append(_Job(fn, args, kwargs, deadline, done))
            self._dispatch()
            return await maybe_deferred_to_future(done)
        finally:
            self.jobs_open -= 1
            self.jobs_done += 1
            if self._waiting:
                self._waiting.popleft().callback(None)

    def close(self) -> None:
        """Stop the workers (jobs still queued fail with ``ExtractFailed``)."""
        self.closed = True
        while self._queue:
            self._queue.popleft().done.errback(ExtractFailed("pool closed"))
        for worker in self._workers:
            worker.hang_up()
        for worker in self._workers:
            worker.reap(STOP_GRACE)


# -- the process-wide pool ----------------------------------------------------------------------
_POOL: WorkerPool | None = None
_USERS = 0
_LOCK = threading.Lock()


def acquire_pool(config: PoolConfig) -> WorkerPool | None:
    """The process-wide pool, started by its first user (``None`` for ``workers = 0``).
    Crawlers of one process share it; the first one's configuration applies."""
    global _POOL, _USERS
    if config.workers <= 0:
        return None
    with _LOCK:
        if _POOL is None:
            _POOL = WorkerPool(config)
            logger.info(
                "pool: %d worker processes, at most %d jobs open, %g s per job",
                config.workers,
                config.max_jobs,
                config.timeout,
            )
        _USERS += 1
        return _POOL


def release_pool() -> None:
    """Drop one user; the last one stops the workers."""
    global _POOL, _USERS
    with _LOCK:
        _USERS -= 1
        if _USERS > 0 or _POOL is None:
            return
        pool, _POOL = _POOL, None
    pool.close()
    logger.info(
        "pool: %d jobs done, at most %d open at once, %d workers restarted",
        pool.jobs_done,
        pool.max_open,
        pool.restarts,
    )


def pool_active() -> bool:
    """Whether ``offload`` hands work to worker processes now."""
    return _POOL is not None


def pool_warm() -> bool:
    """Whether the pool is there and a worker of it has the pipelines' modules loaded: the
    pipelines offload only then, and run their step in-process while the workers start."""
    return _POOL is not None and _POOL.warm


async def offload(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` in the process-wide pool when there is one, else here.

    ``fn``, its arguments and its result must pickle (module-level functions, plain data);
    its result is the same either way. In a worker, the job is bounded by ``EXTRACT_TIMEOUT``
    (``ExtractTimeout``) and a crashed worker raises ``ExtractFailed``.
    """
    pool = _POOL
    if pool is None:
        return fn(*args, **kwargs)
    return await pool.run(fn, *args, **kwargs)


class PoolExtension:
    """Starts the worker processes as the crawler is set up, before its middlewares and
    pipelines are built: they import the extraction and pipeline modules while this process
    builds the rest, and are warm when the first pages arrive. Stops them when the last
    spider of the process closes. ``POOL_WORKERS = 0`` disables it: everything runs
    in-process.

    Stats: ``pool/workers``, ``pool/jobs`` (jobs done by the pool while the spider ran),
    ``pool/max_open``, ``pool/restarts``.
    """

    def __init__(self, crawler: Crawler, config: PoolConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.pool: WorkerPool | None = None
        self._jobs_at_open = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = PoolConfig.from_settings(crawler.settings)
        if config.workers == 0:
            raise NotConfigured("POOL_WORKERS = 0: CPU-heavy steps run in-process")
        ext = cls(crawler, config)
        ext.pool = acquire_pool(config)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.engine_stopped, signal=signals.engine_stopped)
        return ext

    def spider_opened(self, spider: Spider) -> None:
        if self.pool is not None:
            self._jobs_at_open = self.pool.jobs_done
            self.crawler.stats.set_value("pool/workers", self.pool.config.workers)

    def engine_stopped(self) -> None:
        """A crawl that stopped before its spider opened (or without closing it) lets go of
        the pool too."""
        if self.pool is not None:
            self.pool = None
            release_pool()

    def spider_closed(self, spider: Spider) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        stats = self.crawler.stats
        stats.set_value("pool/jobs", pool.jobs_done - self._jobs_at_open)
        stats.set_value("pool/max_open", pool.max_open)
        if pool.restarts:
            stats.set_value("pool/restarts", pool.restarts)
        release_pool()
