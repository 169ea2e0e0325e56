"""Benchmark the local backend's router: added latency and the highest sustainable rate.

Starts a real environment with the local backend (one demo replica behind the router,
logs read by this process as the cockpit would), then drives open-loop load from a
separate process (``cockpit.demo.traffic``) and prints:

* p50/p99 at a fixed rate, straight to the replica and through the router, and the p99
  the router adds;
* a ramp of rates through the router (and straight to the replica, for comparison): the
  highest rate that is sustained (>= 97 % of the target sent, no error, nothing skipped,
  p99 under ``--max-p99``).

Everything runs on this machine; the load generator, the router and the replica share
its cores, so the figures are a floor for the router, not a ceiling.

    python scripts/bench_router.py [--rate 500] [--duration 10] [--step 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.adapters.base import AdapterContext, LogLine, Track  # noqa: E402
from cockpit.adapters.local import LocalBackend  # noqa: E402

RAMP = (250, 500, 1000, 1500, 2000, 2500, 3000, 4000)


async def load(url: str, rate: float, seconds: float, paths: str = "/") -> dict:
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cockpit.demo.traffic", "--target", url, "--rps", str(rate)),
        *("--duration", str(seconds), "--paths", paths, "--concurrency", "512"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


def sustained(result: dict, target: float, max_p99: float) -> bool:
    return (
        result["sent"] >= 0.97 * target * result["elapsed_s"]
        and result["errors"] == 0
        and result["status_5xx"] == 0
        and result["skipped"] == 0
        and result["p99_ms"] is not None
        and result["p99_ms"] <= max_p99
    )


def row(label: str, r: dict) -> str:
    return (
        f"  {label:<28} {r['rate']:>8.1f} req/s  p50 {r['p50_ms']:>7.2f} ms  p99 {r['p99_ms']:>7.2f} ms"
        f"  max {r['max_ms']:>7.2f} ms  errors {r['errors'] + r['status_5xx']}  skipped {r['skipped']}"
    )


async def ramp(label: str, url: str, rates: Sequence[int], step: float, max_p99: float) -> float:
    best = 0.0
    for rate in rates:
        r = await load(url, rate, step)
        ok = sustained(r, rate, max_p99)
        print(row(f"{label} @ {rate}/s", r) + ("" if ok else "   <- not sustained"), flush=True)
        if not ok:
            break
        best = r["rate"]
    return best


async def main(args: argparse.Namespace) -> None:
    lines = 0

    def sink(batch: Sequence[LogLine]) -> None:
        nonlocal lines
        lines += len(batch)

    run_dir = Path(tempfile.mkdtemp(prefix="bench-router-"))
    ctx = AdapterContext(service="bench", env="bench", run_dir=run_dir)
    backend = LocalBackend(ctx, LocalBackend.Options(versions=["1.0.0"], replicas=1))
    backend.attach_log_sink(sink)
    await backend.start("1.0.0")
    try:
        router = (await backend.status()).url
        assert router is not None
        direct = backend.scrape_targets()[Track.STABLE][0].removesuffix("/metrics")
        print(f"router {router}  replica {direct}  (2 cores shared by load generator, router, replica)")

        await load(router, 200, 1)  # warm up connections and code paths
        print(f"\nfixed rate {args.rate}/s for {args.duration:g}s, path /:")
        d = await load(direct, args.rate, args.duration)
        print(row("direct to replica", d))
        v = await load(router, args.rate, args.duration)
        print(row("through router", v))
        print(
            f"  added latency: p50 {v['p50_ms'] - d['p50_ms']:+.2f} ms, "
            f"p99 {v['p99_ms'] - d['p99_ms']:+.2f} ms"
        )

        rates = RAMP[:4] if args.quick else RAMP
        print(
            f"\nramp, {args.step:g}s per step, sustained = >=97% sent, 0 errors, p99 <= {args.max_p99:g} ms:"
        )
        best_router = await ramp("through router", router, rates, args.step, args.max_p99)
        best_direct = await ramp("direct to replica", direct, rates, args.step, args.max_p99)
        state = await backend._require_control().state()
        print(f"\nmax sustained rate: through router {best_router:.0f} req/s, direct {best_direct:.0f} req/s")
        print(
            f"router counters: {sum(state['requests'].values())} requests, "
            f"{state['retries']} retries, {state['failed']} failed; {lines} log lines read"
        )
    finally:
        await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=500.0, help="fixed rate for the latency comparison")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds at the fixed rate")
    parser.add_argument("--step", type=float, default=5.0, help="seconds per ramp step")
    parser.add_argument("--max-p99", type=float, default=50.0, help="p99 limit (ms) for 'sustained'")
    parser.add_argument("--quick", action="store_true", help="ramp only up to 1500/s")
    asyncio.run(main(parser.parse_args()))
