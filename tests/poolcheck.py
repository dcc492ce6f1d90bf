"""Run jobs through a real ``crawler.pool.WorkerPool`` under the asyncio reactor (one
subprocess per check: a reactor cannot be restarted) and pickle what came back.

Usage: ``python -m tests.poolcheck IN.pickle OUT.pickle``. IN holds ``{"config": {...},
"jobs": [(fn, args, kwargs), ...]}``; OUT gets ``{"results": [("ok", value) | ("error",
exception)], "stats": {...}}``.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
from pathlib import Path

from twisted.internet import asyncioreactor


def loaded_modules() -> set[str]:
    """The modules a process has imported (a job run in a pool worker: what it loaded)."""
    return set(sys.modules)


def lexicon_loads() -> tuple[int, int]:
    """(loads, lexicons held) of the tag step's lexicon cache in this process."""
    from pipelines.tag.loader import load_lexicon

    info = load_lexicon.cache_info()
    return info.misses, info.currsize


def main(source: str, target: str) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import defer, reactor, task

    from crawler.pool import PoolConfig, WorkerPool

    spec = pickle.loads(Path(source).read_bytes())

    async def one(pool: WorkerPool, fn, args, kwargs) -> tuple[str, object]:
        try:
            return ("ok", await pool.run(fn, *args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            return ("error", exc)

    async def run_all() -> None:
        pool = WorkerPool(PoolConfig(**spec["config"]))
        try:
            results = await asyncio.gather(
                *(one(pool, fn, args, kwargs) for fn, args, kwargs in spec["jobs"])
            )
        finally:
            pool.close()
        stats = {"max_open": pool.max_open, "restarts": pool.restarts, "done": pool.jobs_done}
        Path(target).write_bytes(pickle.dumps({"results": list(results), "stats": stats}))

    def start(_reactor: object) -> defer.Deferred[None]:
        return defer.Deferred.fromFuture(asyncio.ensure_future(run_all()))

    del reactor
    task.react(start)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
