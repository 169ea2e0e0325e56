"""Benchmark: from a regression's start to the abort, with the gates read from a real Prometheus.

The demo's own Prometheus (cockpit/demo/prometheus.py: 1 s scrape, file SD re-read every
second) and, through the cockpit's engine, the demo plan of ``cockpit demo --prometheus``
cut to production with its users (40 requests/s, /api/checkout among them), half the
traffic on the canary, and the plan's success-rate and latency-p99 checks measured every
``--interval`` seconds with failure_limit 0. Each round rolls out 1.2.0 (its regression
is on /api/checkout) and prints, in seconds:

* targets queryable: from the canary's target written to the file SD file until
  Prometheus answers ``up`` for it (the floor of any gate on a new canary);
* analysis start -> abort (the bound of the issue: interval x (failure_limit + 1) + 5 s);
* regression start -> abort: from the canary taking traffic (weight set) to the abort,
  with traffic back on stable.

Then the median, min and max over ``--rounds``.

    python scripts/bench_prometheus_abort.py [--rounds 3] [--interval 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.cli import demo_plan  # noqa: E402
from cockpit.demo.prometheus import DemoPrometheus, PrometheusError  # noqa: E402
from cockpit.demo.session import DemoSession  # noqa: E402
from cockpit.engine.commands import StartRollout  # noqa: E402
from cockpit.engine.state import Activity, Phase  # noqa: E402
from cockpit.plan.models import Plan  # noqa: E402

CHECKS = ["success-rate", "latency-p99"]


def gated_plan(service: str, server: DemoPrometheus, interval: float) -> Plan:
    data = demo_plan(0, "prometheus", server).model_dump()
    data["service"]["name"] = service
    (prod,) = [e for e in data["environments"] if e["name"] == "production"]
    prod.update(protected=False, strategy=None)
    prod["metrics"]["options"]["file_sd"] = str(server.sd_dir / f"{service}.json")
    data["environments"] = [prod]
    data["strategy"] = {"canary": {"steps": [{"set_weight": 50}, {"analysis": {"checks": CHECKS}}]}}
    for check in data["analysis"]["checks"]:
        check.update(interval=interval, count=3, failure_limit=0)
    return Plan.model_validate(data)


def prometheus_has(server: DemoPrometheus, query: str) -> bool:
    url = f"{server.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(json.load(response)["data"]["result"])
    except OSError:
        return False


async def one_round(server: DemoPrometheus, state: Path, interval: float) -> dict[str, float]:
    service = f"b{uuid.uuid4().hex[:8]}"
    plan = gated_plan(service, server, interval)
    sd_file = Path(plan.environments[0].metrics.options["file_sd"])
    session = DemoSession(plan, state_dir=state, user="bench")
    marks: dict[str, float] = {}

    def changed() -> None:
        s = session.controller("production").state
        now = time.monotonic()
        if s.weight > 0 and s.canary_version:
            marks.setdefault("weight", now)
        if s.activity is Activity.ANALYSING:
            marks.setdefault("analysis", now)
        if s.phase is Phase.ABORTED:
            marks.setdefault("aborted", now)

    session.add_change_listener(changed)
    try:
        if await session.start():
            raise RuntimeError("production did not start")
        deadline = time.monotonic() + 60
        while "production" not in session.traffic.running:
            if time.monotonic() > deadline:
                raise RuntimeError("the demo's users did not start")
            await asyncio.sleep(0.05)
        result = await session.submit("production", StartRollout("1.2.0"))
        if not result.ok:
            raise RuntimeError(result.message)
        canary_up = f'up{{service="{service}",track="canary"}} == 1'
        deadline = time.monotonic() + 120
        while "aborted" not in marks or "queryable" not in marks:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no abort within 120 s: {session.controller('production').state}")
            if "written" not in marks and sd_file.exists() and '"canary"' in sd_file.read_text():
                marks["written"] = time.monotonic()
            looking = "written" in marks and "queryable" not in marks and "aborted" not in marks
            if looking and await asyncio.to_thread(prometheus_has, server, canary_up):
                marks["queryable"] = time.monotonic()
            if "aborted" in marks and "queryable" not in marks:
                marks["queryable"] = float("nan")  # aborted before it was seen: not measured
            await asyncio.sleep(0.05)
        if session.controller("production").state.cause is None:
            raise RuntimeError("aborted without a cause")
    finally:
        await session.close()
    return {
        "targets queryable": marks["queryable"] - marks["written"],
        "analysis start -> abort": marks["aborted"] - marks["analysis"],
        "regression start -> abort": marks["aborted"] - marks["weight"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-prom.") as tmp:
        server = DemoPrometheus(Path(tmp) / "prometheus")
        try:
            started = time.monotonic()
            server.start()
        except PrometheusError as err:
            print(f"skipped: {err}")
            return 0
        print(f"prometheus ready in {time.monotonic() - started:.2f} s on {server.url}")
        figures: dict[str, list[float]] = {}
        try:
            for n in range(args.rounds):
                got = asyncio.run(one_round(server, Path(tmp) / f"state{n}", args.interval))
                print(f"round {n + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in got.items()))
                for key, value in got.items():
                    if value == value:  # NaN: not measured this round
                        figures.setdefault(key, []).append(value)
        finally:
            server.stop()
    bound = args.interval * (0 + 1) + 5.0
    print(f"over {args.rounds} rounds (interval {args.interval:g} s, failure_limit 0, bound {bound:g} s):")
    for key, values in figures.items():
        print(
            f"  {key:<26} median {statistics.median(values):6.2f} s"
            f"  min {min(values):6.2f} s  max {max(values):6.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
