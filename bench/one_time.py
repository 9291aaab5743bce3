"""The single-use store alone on SQLite: CPU a value, log in memory against the unique table (issue 18).

Every private_key_jwt token, and every federated one under `--replay jti`, consumes one value
(`keyless.store.one_time`). On SQLite the server decides it in memory and appends it to a log
(`keyless.store.one_time_memory`); with a capacity of 0 the index is always full and every value goes
to the unique table of `one_time_uses`, which is how every value was decided before. The token
endpoint's benchmark starts each server on a fresh database, where the unique table is small and
cheap; a server that has run for a while holds up to `exp` + skew of values (31.5 minutes at most),
and each new value then lands on a random page of a larger index. So this script fills the store with
`--live` values first, then times `--values` more, `--concurrency` at a time (the batches the token
endpoint's concurrent requests form), in the process's CPU time (its threads included):

    taskset -c 0 .venv/bin/python bench/one_time.py --live 0,100000,400000 --values 24000

Each row is the median of `--rounds` runs, each on a fresh database in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from keyless.store import db, one_time
from keyless.store.directory import SqlDirectoryStore

KIND, OWNER = "client_assertion", "6f1c1f0e-1b7c-4a51-9d7e-3f0a2b9c8d71"


async def _fill(store: SqlDirectoryStore, count: int, expires_at: float, concurrency: int) -> float:
    """Consume `count` new values, `concurrency` at a time; the CPU seconds it took."""
    values = [str(uuid.uuid4()) for _ in range(count)]
    start = time.process_time()
    for at in range(0, count, concurrency):
        chunk = values[at:at + concurrency]
        taken = await asyncio.gather(*[store.consume(KIND, OWNER, v, expires_at) for v in chunk])
        if not all(taken):
            raise SystemExit("a new value was refused: the store is broken")
    return time.process_time() - start


async def _run(live: int, values: int, concurrency: int) -> float:
    """µs of CPU a value after `live` values, on a fresh database."""
    with tempfile.TemporaryDirectory(prefix="keyless-one-time-") as tmp:
        engine = db.create_engine(db.sqlite_url(Path(tmp) / "keyless.db"))
        await db.migrate(engine)
        store = SqlDirectoryStore(engine)
        try:
            expires_at = time.time() + 1800
            await _fill(store, live, expires_at, 500)
            return 1e6 * await _fill(store, values, expires_at, concurrency) / values
        finally:
            await store.release()
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", default="0,100000", help="live values before timing, comma-separated")
    parser.add_argument("--values", type=int, default=24000, help="values timed a run")
    parser.add_argument("--concurrency", type=int, default=8, help="values consumed at once")
    parser.add_argument("--rounds", type=int, default=3, help="runs a row (the median is shown)")
    args = parser.parse_args()
    print(f"single-use store on SQLite: CPU a value (µs), {args.values} values, {args.concurrency} at a time, "
          f"median of {args.rounds}")
    print(f"{'live values':>12}  {'log + memory':>13}  {'unique table':>13}  saved")
    capacity = one_time.MEMORY_CAPACITY
    for live in (int(n) for n in args.live.split(",")):
        results: dict[int, list[float]] = {capacity: [], 0: []}
        for _ in range(args.rounds):
            for cap in results:  # alternated: the machine's drift touches both alike
                one_time.MEMORY_CAPACITY = cap
                results[cap].append(asyncio.run(_run(live, args.values, args.concurrency)))
        log, unique = statistics.median(results[capacity]), statistics.median(results[0])
        print(f"{live:>12,}  {log:>13.1f}  {unique:>13.1f}  {unique - log:5.1f}")


if __name__ == "__main__":
    main()
