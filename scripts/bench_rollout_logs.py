"""Benchmark of the rollout log keeper under a log flood: ``python scripts/bench_rollout_logs.py``.

Prints figures (it asserts nothing; tests assert behaviour). A real Session on the
in-memory backend; lines are pushed through the environment's log sink (the path the
keeper taps) at ``--rate`` lines/s, one in five from the canary, for ``--seconds``,
twice: with no rollout on (the keeper idle) and during a rollout (the keeper keeping
the canary's lines and writing them to the SQLite store in batches). For each: the
event loop's lag (a 10 ms ticker's lateness: what a key press would wait), CPU, and
for the rollout the lines kept and the batches written.

``scripts/bench_ui.py`` floods the rings directly (no rollout), so it does not see the
keeper; this does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def flood(sink, rate: int, seconds: float, lines: list) -> dict[str, float]:  # type: ignore[no-untyped-def]
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    tick = asyncio.create_task(ticker())
    sent = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate) - sent
        if due > 0:
            pos = sent % len(lines)
            batch = lines[pos : pos + due]
            if len(batch) < due:
                batch += lines[: due - len(batch)]
            sink(batch)
            sent += due
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    elapsed = time.perf_counter() - start
    stop = True
    await tick
    lags.sort()
    return {
        "rate": sent / elapsed,
        "cpu": cpu / elapsed * 100,
        "lag_p50_ms": statistics.median(lags) * 1000,
        "lag_p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000,
        "lag_max_ms": lags[-1] * 1000,
    }


async def main(rate: int, seconds: float) -> None:
    sys.path.insert(0, str(ROOT))
    import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
    from cockpit.adapters.memory import MemoryBackend
    from cockpit.engine.commands import Abort, StartRollout
    from cockpit.engine.session import Session
    from cockpit.model import LogLine, Track
    from cockpit.plan.loader import parse_plan
    from tests.ui_fixtures import plan_text

    state = Path(tempfile.mkdtemp(prefix="cockpit-bench-keeper-"))
    session = Session(parse_plan(plan_text(envs=("dev",), protected=(), interval="1s")), state_dir=state)
    await session.start()
    backend = session.controller("dev").backend
    assert isinstance(backend, MemoryBackend) and backend._sink is not None
    sink = backend._sink  # the ring, behind the keeper's tap
    lines = [
        LogLine(
            0.0,
            "dev",
            "canary 1.2.0 #1" if i % 5 == 0 else "stable 1.0.0 #1",
            Track.CANARY if i % 5 == 0 else Track.STABLE,
            f'{{"level": "info", "msg": "request", "path": "/api/orders/{i}", "status": 200}}',
        )
        for i in range(20_000)
    ]
    print(f"rollout log keeper: {rate:,} lines/s through the log sink (1 in 5 canary), {seconds:g} s each")
    idle = await flood(sink, rate, seconds, lines)
    assert (await session.submit("dev", StartRollout("1.2.0"))).ok
    busy = await flood(sink, rate, seconds, lines)
    writes: list[int] = []
    capture = session.rollout_logs.captures.get("dev")
    if capture is not None:
        writes = capture.written
    await session.submit("dev", Abort(), "bench")
    await session.close()
    for name, figures in (("no rollout (keeper idle)", idle), ("rollout on (keeper keeping)", busy)):
        print(
            f"  {name:<28} achieved {figures['rate']:>9,.0f} lines/s  cpu {figures['cpu']:4.0f}%"
            f"  loop lag p50 {figures['lag_p50_ms']:.1f} ms  p99 {figures['lag_p99_ms']:.1f} ms"
            f"  max {figures['lag_max_ms']:.1f} ms"
        )
    if writes:
        print(
            f"  batches written during the rollout: {len(writes)}, {sum(writes):,} lines"
            f" (median {statistics.median(writes):,.0f} per batch; the store keeps the newest 2,000)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
