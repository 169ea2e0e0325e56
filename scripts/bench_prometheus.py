"""CPU cost of reading gates from a real Prometheus: 3 environments x 6 queries every 2 s.

Each environment has its own ``prometheus`` metrics source (generic preset) over targets
published by file SD (stable + canary exporters per environment, counters growing), and
every 2 s runs its six queries side by side (the five built-in templates on the canary
and one custom check), as the analysis and the live metrics do. The figure is this
process' CPU time (user + system, every thread: the queries run in worker threads) over
the run, as a share of one core; the goal is <= 5 %. Also printed: query latency.

Needs the test Prometheus: ``source <(bash scripts/servers.sh start RT prometheus)``
(scripts/bench.sh does it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext
from cockpit.model import Track
from tests.prometheus_fixtures import Exporter, instant

ENVS = ("dev", "staging", "production")
METRICS = ("request-rate", "error-rate", "success-rate", "latency-p95", "latency-p99")
CUSTOM = (
    'sum(rate(http_requests_total{service="{service}",env="{env}",track="{track}",code=~"5.."}[{interval}]))'
)


def exposition(rate: float) -> object:
    def text(t: float) -> str:
        total = 1000 + rate * t
        lines = [
            f'http_requests_total{{code="200"}} {total * 0.99}',
            f'http_requests_total{{code="500"}} {total * 0.01}',
        ]
        for le, share in (("0.05", 0.6), ("0.1", 0.9), ("0.25", 1.0), ("+Inf", 1.0)):
            lines.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {total * share}')
        return "\n".join(lines) + "\n"

    return text


async def poll(env: str, url: str, service: str, until: float, latencies: list[float]) -> int:
    ctx = AdapterContext(service=service, env=env, run_dir=Path("/nonexistent"))
    source = registry.create_metrics_source("prometheus", ctx, {"url": url}, None)  # type: ignore[arg-type]
    queries = [source.templates[m] for m in METRICS] + [CUSTOM]  # type: ignore[attr-defined]
    done = 0

    async def one(expr: str) -> None:
        started = time.perf_counter()
        await source.query(expr, track=Track.CANARY, seconds=10)
        latencies.append(time.perf_counter() - started)

    next_tick = time.monotonic()
    while next_tick < until:
        await asyncio.gather(*(one(q) for q in queries))
        done += len(queries)
        next_tick += 2.0
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    await source.close()
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to poll (default 20)")
    args = parser.parse_args()
    url = os.environ.get("COCKPIT_TEST_PROMETHEUS_URL")
    sd = os.environ.get("COCKPIT_TEST_PROMETHEUS_SD")
    if not url or not sd:
        sys.exit(
            "bench_prometheus: COCKPIT_TEST_PROMETHEUS_URL/_SD not set; source scripts/servers.sh start RT prometheus"
        )
    service = f"bench{os.getpid()}"
    exporters = [
        (env, track, Exporter(exposition(20.0 if track is Track.STABLE else 5.0)))
        for env in ENVS
        for track in Track
    ]
    sd_file = Path(sd) / f"{service}.json"
    groups = [
        {"targets": [e.address], "labels": {"service": service, "env": env, "track": t.value}}
        for env, t, e in exporters
    ]
    sd_file.write_text(json.dumps(groups))
    try:
        deadline = time.monotonic() + 30
        while not instant(url, f'count(http_requests_total{{service="{service}"}}) >= {2 * len(exporters)}'):
            if time.monotonic() > deadline:
                sys.exit("bench_prometheus: Prometheus did not scrape the exporters within 30 s")
            time.sleep(0.2)
        time.sleep(3)  # a few samples for rate()
        latencies: list[float] = []
        cpu0, wall0 = time.process_time(), time.monotonic()
        until = wall0 + args.seconds

        async def run() -> list[int]:
            return await asyncio.gather(*(poll(env, url, service, until, latencies) for env in ENVS))

        counts = asyncio.run(run())
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        sd_file.unlink(missing_ok=True)
        for _, _, exporter in exporters:
            exporter.close()
    # The exporters' scrapes (Prometheus -> this process, 6 per second) are counted too:
    # they run here, so the figure is an upper bound for the source alone.
    latencies.sort()
    print(
        f"polled     {len(ENVS)} environments x 6 queries every 2 s for {wall:.1f} s: {sum(counts)} queries"
    )
    print(f"cpu        {cpu:.2f} s of process time = {100 * cpu / wall:.2f} % of one core (goal <= 5 %)")
    print(
        f"latency    median {1000 * statistics.median(latencies):.1f} ms,"
        f" p95 {1000 * latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, max {1000 * latencies[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
