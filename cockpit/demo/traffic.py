"""Steady open-loop HTTP load, the stand-in for real users of the demo service.

Run as ``python -m cockpit.demo.traffic --target URL --rps N --paths /,/api/orders``.
With ``--preview-share 0.1`` a tenth of the requests ask the router for the canary track
(header ``x-cockpit-track: canary``): the testers of a blue-green preview at weight 0.

Open loop: requests are started on a fixed schedule whatever the latency, as real users
would, so a slow canary shows up as latency instead of silently lowering the load.
Concurrency is bounded; a request that would exceed the bound is counted as skipped
rather than queued. Nothing is printed per request: one summary line every
``--report-every`` seconds on stderr, and one JSON summary line on stdout at exit
(SIGTERM, SIGINT or ``--duration``), which tests and the router benchmark read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

TRACK_HEADER = "x-cockpit-track"  # the router's (cockpit.adapters.router.protocol); asks for a track
MAX_SAMPLES = 200_000  # latency reservoir: bounded memory on a demo left running for days


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Stats:
    sent: int = 0
    ok: int = 0  # answered with a status below 500
    status_5xx: int = 0
    errors: int = 0  # no answer at all: refused, reset, timeout
    skipped: int = 0  # not sent because the concurrency bound was reached
    statuses: Counter[int] = field(default_factory=Counter)
    tracks: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seen: int = 0  # latencies offered to the reservoir

    def add_latency(self, seconds: float) -> None:
        self.seen += 1
        if len(self.latencies) < MAX_SAMPLES:
            self.latencies.append(seconds)
        else:  # reservoir sampling keeps an unbiased sample in bounded memory
            slot = random.randrange(self.seen)
            if slot < MAX_SAMPLES:
                self.latencies[slot] = seconds

    def summary(self, elapsed: float) -> dict[str, object]:
        lat = sorted(self.latencies)

        def ms(q: float) -> float | None:
            value = percentile(lat, q)
            return None if value is None else round(value * 1000, 3)

        return {
            "msg": "traffic summary",
            "elapsed_s": round(elapsed, 3),
            "sent": self.sent,
            "ok": self.ok,
            "status_5xx": self.status_5xx,
            "errors": self.errors,
            "skipped": self.skipped,
            "rate": round(self.sent / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": ms(0.50),
            "p90_ms": ms(0.90),
            "p99_ms": ms(0.99),
            "max_ms": None if not lat else round(lat[-1] * 1000, 3),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "tracks": dict(self.tracks),
            "error_kinds": dict(self.error_kinds),
        }


class Generator:
    def __init__(
        self,
        target: str,
        rps: float,
        paths: list[str],
        concurrency: int,
        timeout: float,
        preview_share: float = 0.0,
    ) -> None:
        self.target = target.rstrip("/")
        self.preview_share = preview_share
        self.rps = rps
        self.paths = paths
        self.concurrency = concurrency
        self.timeout = timeout
        self.total = Stats()
        self.period = Stats()
        self.in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _one(self, session: aiohttp.ClientSession, path: str) -> None:
        self.in_flight += 1
        started = time.perf_counter()
        preview = self.preview_share > 0 and random.random() < self.preview_share
        headers = {TRACK_HEADER: "canary"} if preview else None
        try:
            async with session.get(self.target + path, headers=headers) as resp:
                await resp.read()
                status = resp.status
                track = resp.headers.get("x-cockpit-track")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            for stats in (self.total, self.period):
                stats.errors += 1
                stats.error_kinds[type(exc).__name__] += 1
            return
        finally:
            self.in_flight -= 1
        elapsed = time.perf_counter() - started
        for stats in (self.total, self.period):
            stats.statuses[status] += 1
            if status >= 500:
                stats.status_5xx += 1
            else:
                stats.ok += 1
            if track:
                stats.tracks[track] += 1
            stats.add_latency(elapsed)

    async def run(self, stop: asyncio.Event, duration: float | None, report_every: float) -> dict:
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        started = loop.time()
        next_report = started + report_every
        period_start = started
        due_total = 0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            while not stop.is_set():
                now = loop.time()
                if duration is not None and now - started >= duration:
                    break
                # Start every request that is due by now: one tick can start several, so
                # the rate holds even when the loop wakes late.
                due = int((now - started) * self.rps)
                if due - due_total > self.rps:  # more than 1 s behind: do not burst
                    skipped = due - due_total - int(self.rps)
                    self.total.skipped += skipped
                    self.period.skipped += skipped
                    due_total += skipped
                while due_total < due:
                    path = self.paths[due_total % len(self.paths)]
                    due_total += 1
                    if self.in_flight >= self.concurrency:
                        self.total.skipped += 1
                        self.period.skipped += 1
                        continue
                    self.total.sent += 1
                    self.period.sent += 1
                    task = asyncio.create_task(self._one(session, path))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if now >= next_report:
                    line = self.period.summary(now - period_start)
                    print(
                        "traffic: {sent} sent, {ok} ok, {status_5xx} 5xx, {errors} errors, "
                        "{skipped} skipped, p99 {p99_ms} ms".format(**line),
                        file=sys.stderr,
                        flush=True,
                    )
                    self.period = Stats()
                    period_start = now
                    next_report = now + report_every
                next_due = started + (due_total + 1) / self.rps
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.001, next_due - loop.time()))
            # Let requests in flight finish so the summary counts every request sent.
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=self.timeout)
        return self.total.summary(loop.time() - started)


async def amain(args: argparse.Namespace) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    paths = [p if p.startswith("/") else "/" + p for p in args.paths.split(",") if p]
    gen = Generator(args.target, args.rps, paths, args.concurrency, args.timeout, args.preview_share)
    return await gen.run(stop, args.duration, args.report_every)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cockpit.demo.traffic", description=__doc__)
    parser.add_argument("--target", required=True, help="base URL, e.g. http://127.0.0.1:18080")
    parser.add_argument("--rps", type=float, required=True, help="requests per second")
    parser.add_argument("--paths", default="/", help="comma-separated paths, used in turn")
    parser.add_argument(
        "--preview-share", type=float, default=0.0, help="share of requests sent to the canary by header"
    )
    parser.add_argument("--concurrency", type=int, default=128, help="max requests in flight")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many s")
    parser.add_argument("--report-every", type=float, default=10.0, help="stderr summary period")
    args = parser.parse_args(argv)
    if args.rps <= 0:
        parser.error("--rps must be > 0")
    if not 0 <= args.preview_share <= 1:
        parser.error("--preview-share must be from 0 to 1")
    summary = asyncio.run(amain(args))
    print(json.dumps(summary, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
