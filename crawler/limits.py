"""Caps that keep one hostile page from hanging, flooding or crashing a crawl: extraction in
a child process with a deadline, links per page, plain-text fields (``crawler.extract.plain``,
re-exported); and the worker process side of the pool. It sits above ``crawler.extract``,
which never imports it. Worker processes import this module: it must not import Scrapy (nor
Twisted, sqlite-utils or datasketch), or every worker would carry them."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import re
import signal
import socket
import sys
import threading
import time
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from crawler.config import default, get_float, get_int
from crawler.extract import extract_article, extract_page
from crawler.extract.plain import plain_item, plain_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from multiprocessing.connection import Connection

    from scrapy.crawler import Crawler

    from crawler.items import ArticleItem

__all__ = [
    "ExtractFailed",
    "ExtractTimeout",
    "ExtractionWorker",
    "bounded_extract",
    "cap_links",
    "declares_entities",
    "extract_in_worker",
    "links_per_page_max",
    "plain_item",
    "plain_text",
    "spawn_worker",
    "strip_doctype",
    "worker_main",
]

logger = logging.getLogger(__name__)

DEFAULT_EXTRACT_MAX_MEMORY_MB: int = default("EXTRACT_MAX_MEMORY_MB")
_WORKER_START_TIMEOUT = 120.0
PIPE_BUFFER = 4 * 1024 * 1024
"""Bytes a worker's pipe holds unread each way, as far as the system allows
(``net.core.wmem_max``)."""
_ENTITY_DECL_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
# <!DOCTYPE name ...> with an optional [internal subset] (entity values may hold ">").
_DOCTYPE_RE = re.compile(
    rb"""<!DOCTYPE(?:[^\[>"']|"[^"]*"|'[^']*')*(?:\[(?:[^\]"']|"[^"]*"|'[^']*')*\])?\s*>""",
    re.IGNORECASE,
)


# -- links per page --------------------------------------------------------------------------
def cap_links(
    links: Iterable[Any], limit: int, crawler: Crawler | None = None, *, where: str = ""
) -> Iterator[Any]:
    """The first ``limit`` of ``links``; the rest are counted (``limits/links_capped``) and
    a warning names the page. ``limit <= 0`` means no cap."""
    taken = 0
    dropped = 0
    for link in links:
        if limit <= 0 or taken < limit:
            taken += 1
            yield link
        else:
            dropped += 1
    if dropped:
        if crawler is not None and crawler.stats is not None:
            crawler.stats.inc_value("limits/links_capped", dropped)
        logger.warning(
            "%s: %d more links ignored (LINKS_PER_PAGE_MAX = %d)", where or "page", dropped, limit
        )


def links_per_page_max(crawler: Crawler) -> int:
    return get_int(crawler.settings, "LINKS_PER_PAGE_MAX")


# -- XML ---------------------------------------------------------------------------------------
def declares_entities(body: bytes) -> bool:
    """Whether an XML document declares entities (in its DOCTYPE): the shape of "billion
    laughs" and external-entity (XXE) attacks. Feeds and sitemaps never need them."""
    head = body[:65536]
    return b"<!DOCTYPE" in head.upper() and bool(_ENTITY_DECL_RE.search(head))


def strip_doctype(body: bytes) -> bytes:
    """``body`` without its DOCTYPE declaration (and the entities it declares), so no XML
    parser, however configured, expands an entity bomb or reads an external entity: the
    references stay unexpanded text."""
    head = body[:65536]
    match = _DOCTYPE_RE.search(head)
    if match is None:
        return body
    return body[: match.start()] + body[match.end() :]


# -- extraction with a deadline --------------------------------------------------------------
class ExtractTimeout(Exception):
    """The page took longer than ``EXTRACT_TIMEOUT`` to extract; its worker was killed."""


class ExtractFailed(Exception):
    """The extraction raised, ran out of memory, or its worker process died."""


def prepare_worker_process(parent: int, memory_mb: int) -> None:
    """In a freshly spawned worker process: ignore Ctrl-C (the crawler's to handle), cap the
    address space at ``memory_mb`` (0 = no cap) and exit once ``parent`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_mb > 0:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)  # the crawler was killed: nothing left to work for

    threading.Thread(target=orphaned, daemon=True).start()


@contextlib.contextmanager
def _no_main_script() -> Iterator[None]:
    """While a process is being spawned: hide the parent's ``__main__``. multiprocessing's
    spawn re-runs the parent's main script in the child; for the ``scrapy`` command that is
    ``scrapy.cmdline`` and with it all of Scrapy and Twisted (~45 MB per worker), which the
    workers never use."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _widen(conn: Connection) -> None:
    """Let ``conn`` hold a few pages unread (``PIPE_BUFFER``, as far as the system allows):
    a sender, such as the reactor thread writing the next job, does not wait for the reader."""
    with contextlib.suppress(OSError):
        sock = socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)


def spawn_worker(target: Callable[..., None], *args: Any, name: str) -> tuple[Any, Connection]:
    """Start ``target(child_end, os.getpid(), *args)`` in a spawned process (fork is unsafe
    in a threaded reactor); return the process and the parent's end of the pipe."""
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    for conn in (parent_conn, child_conn):
        _widen(conn)
    proc = ctx.Process(target=target, args=(child_conn, os.getpid(), *args), name=name, daemon=True)
    with _no_main_script():
        proc.start()
    child_conn.close()
    return proc, parent_conn


def worker_main(
    conn: Connection,
    parent: int,
    memory_mb: int,
    preload: tuple[str, ...],
    preload_later: tuple[str, ...],
) -> None:
    """Child process of ``crawler.pool`` and of ``ExtractionWorker``: import ``preload`` and
    report ready, import ``preload_later`` (if any; ``module:function`` also calls the
    function, which loads what the module's jobs need) beside the first jobs and report warm;
    run ``(fn, args, kwargs)`` jobs from ``conn`` until the parent goes."""
    prepare_worker_process(parent, memory_mb)
    sending = threading.Lock()  # the warm-up thread and the job loop both write to conn
    # Two threads importing one package's modules at once can deadlock on Python's
    # per-module import locks (the package imports its module while the other thread holds
    # that module and waits for the package). The warm-up imports one module at a time under
    # ``importing`` and a job is unpickled and run under it, so the two never import together.
    importing = threading.Lock()

    def send(message: tuple[str, Any]) -> None:
        with sending:
            conn.send(message)

    def warm_up() -> None:
        for name in preload_later:
            module_name, _, function = name.partition(":")
            with importing, contextlib.suppress(ImportError):
                import_module(module_name)
            # Outside the lock (it imports nothing: its module has loaded what it uses), so
            # the first jobs do not wait for it; a failure shows where the crawl itself
            # loads the same thing.
            if function and module_name in sys.modules:
                with contextlib.suppress(Exception):
                    getattr(sys.modules[module_name], function)()
        with contextlib.suppress(OSError, ValueError):
            send(("warm", None))

    for name in preload:
        with contextlib.suppress(ImportError):
            import_module(name)
    try:
        send(("ready", None))
    except (OSError, ValueError):
        return  # the crawl ended while this worker was starting
    if preload_later:
        threading.Thread(target=warm_up, daemon=True).start()
    while True:
        try:
            job = conn.recv_bytes()
        except (EOFError, OSError):
            return
        with importing:
            try:
                fn, args, kwargs = pickle.loads(job)  # noqa: S301 - from the parent, as conn.recv()
                reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
            except MemoryError:
                reply = (
                    "error",
                    ExtractFailed(f"out of memory (EXTRACT_MAX_MEMORY_MB = {memory_mb})"),
                )
            except Exception as exc:  # noqa: BLE001 - handed to the caller, raised there
                reply = ("error", exc)
        try:
            send(reply)
        except (OSError, ValueError):
            return
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            send(("error", ExtractFailed(f"{type(exc).__name__}: {exc}")))


def extract_in_worker(body: bytes, **job: Any) -> ArticleItem:
    """The pool's extraction job: ``extract_page`` without the decoded page in its result.
    The crawler process holds the body and decodes it again with ``item.encoding``
    (``crawler.extract.encoding.decode_as``), which costs less than pickling the page back
    through the pipe."""
    item = extract_page(body, **job)
    item.html = None
    return item


class ExtractionWorker:
    """One child process running ``extract_article``: a page that runs past the deadline
    is abandoned and its process killed (a thread could not be stopped: lxml, regexes and
    tree walks do not check for interrupts); the next page starts a fresh process."""

    def __init__(self, *, memory_mb: int = DEFAULT_EXTRACT_MAX_MEMORY_MB) -> None:
        self.memory_mb = memory_mb
        self._proc: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self.restarts = 0
        """Worker processes killed (deadline) or lost (crash) so far."""

    def _start(self) -> None:
        proc, parent_conn = spawn_worker(
            worker_main, self.memory_mb, ("crawler.extract",), (), name="extract-worker"
        )
        if not parent_conn.poll(_WORKER_START_TIMEOUT):
            proc.kill()
            raise ExtractFailed("extraction worker did not start")
        parent_conn.recv()
        self._proc, self._conn = proc, parent_conn

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._proc = self._conn = None

    def run(self, timeout: float, **job: Any) -> ArticleItem:
        """``extract_article(**job)`` in the worker, within ``timeout`` seconds."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self.stop()
                self._start()
            assert self._conn is not None
            try:
                self._conn.send((extract_article, (), job))
                if not self._conn.poll(timeout):
                    self.stop()
                    self.restarts += 1
                    raise ExtractTimeout(f"extraction took longer than {timeout:g} s")
                status, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                self.stop()
                self.restarts += 1
                raise ExtractFailed(f"extraction worker died: {exc!r}") from None
        if status != "ok":
            if isinstance(value, ExtractFailed):
                raise value
            raise ExtractFailed(f"{type(value).__name__}: {value}")
        return value


_WORKER: ExtractionWorker | None = None
_WORKER_LOCK = threading.Lock()


def extraction_worker(memory_mb: int) -> ExtractionWorker:
    """The process-wide extraction worker (started on first use)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ExtractionWorker(memory_mb=memory_mb)
        return _WORKER


def bounded_extract(crawler: Crawler, **job: Any) -> ArticleItem | None:
    """``extract_article(**job)`` bounded by ``EXTRACT_TIMEOUT`` seconds (in a worker
    process; ``0`` runs it in-process, unbounded), fields made plain text.

    ``None`` when the page ran out of time or the extraction failed: counted as
    ``extract/timeout`` / ``extract/failed`` and ``article/failed/<reason>``, and logged.
    """
    settings = crawler.settings
    timeout = get_float(settings, "EXTRACT_TIMEOUT")
    started = time.monotonic()
    try:
        if timeout > 0:
            memory = get_int(settings, "EXTRACT_MAX_MEMORY_MB")
            item = extraction_worker(memory).run(timeout, **job)
        else:
            item = extract_article(**job)
    except ExtractTimeout as exc:
        crawler.stats.inc_value("extract/timeout")
        crawler.stats.inc_value("article/failed/extract_timeout")
        logger.warning("%s: not extracted: %s (EXTRACT_TIMEOUT)", job.get("url"), exc)
        return None
    except ExtractFailed as exc:
        crawler.stats.inc_value("extract/failed")
        crawler.stats.inc_value("article/failed/extract_error")
        logger.error("%s: extraction failed: %s", job.get("url"), exc)
        return None
    crawler.stats.max_value("extract/max_seconds", round(time.monotonic() - started, 3))
    return plain_item(item)
