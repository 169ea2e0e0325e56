"""End-to-end log benchmark: ``python scripts/bench_logs.py`` (prints figures, asserts nothing).

Unlike the flood of scripts/bench_ui.py, which appends to the LogBuffers directly, the
lines here take the whole read path: real child processes (this script in ``--writer``
mode, run as the *service* of each environment by the local backend) write JSON lines to
their stdout pipes; the local backend's supervision (cockpit/adapters/supervise/) reads
them and hands them to the LogHub (logs.py), which delivers them to the session's
LogBuffers; the log pane indexes them and the app paints them, in a 160x48 pseudo-terminal.

Printed:

* **lines/s** written by the services (target and achieved: a pipe that fills up slows
  its writer down: back-pressure, not loss) and received by the cockpit;
* **latency** write -> read (the line reached its LogBuffer) and write -> screen (the
  first frame painted once a log view had indexed it), p50 / p99 / max, from probe
  lines that carry their write time (one line in 50);
* **CPU** of the cockpit process (all its threads), as a share of one core;
* **dropped**: lines a writer wrote that never reached the cockpit (from sequence
  numbers), and lines that left a ring before a view indexed them (missed).

Options: ``--rate`` (total lines/s, default 50,000), ``--seconds`` (default 15),
``--envs`` (environments, one writer each, default 3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ui import COLS, ROOT, ROWS, drain, spawn_in_pty

PROBE_EVERY = 50  # one line in 50 carries its write time first, for the latency figures

PLAN_ENV = """
[[environments]]
name = "{name}"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    command = ["{{python}}", "{script}", "--writer", "--rate", "{rate}", "--port", "{{port}}"]
    versions = ["1.0.0"]
    replicas = 1
    port = 0
"""
PLAN_TAIL = """
[strategy.canary]
steps = [{ set_weight = 20 }, { pause = {} }]
"""


# --------------------------------------------------------------------------- the service (writer)


def writer(rate: int, port: int) -> None:
    """Serve 200 on every path (health probes, scrapes) and write ``rate`` JSON lines/s to
    stdout in 10 ms batches. A full pipe blocks the write: the achieved rate shows it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet: stdout carries the flood
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = sys.stdout
    seq = 0
    start = time.time()
    while True:
        now = time.time()
        due = int((now - start) * rate) - seq
        if due > 0:
            lines = []
            for n in range(seq, seq + due):
                if n % PROBE_EVERY == 0:
                    lines.append(
                        f'{{"probe": {time.time():.6f}, "seq": {n}, "level": "info", "msg": "probe"}}\n'
                    )
                else:
                    lines.append(
                        f'{{"ts": {now:.3f}, "level": "info", "msg": "request", "seq": {n},'
                        f' "path": "/api/orders/{n % 997}", "status": 200, "duration_ms": {n % 40 / 7:.2f}}}\n'
                    )
            out.write("".join(lines))
            out.flush()
            seq += due
        time.sleep(0.01)


# --------------------------------------------------------------------------- the cockpit (child)


def child(rate: int, seconds: float, envs: int, out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from cockpit.engine import logbuffer
    from cockpit.engine.session import Session
    from cockpit.plan.loader import parse_plan
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.config import UIConfig
    from cockpit.ui.widgets.log_pane import LogPane

    names = ["dev", "staging", "production", "qa", "perf", "eu"][:envs]
    text = (
        '[service]\nname = "logbench"\n'
        + "".join(PLAN_ENV.format(name=n, script=Path(__file__).resolve(), rate=rate // envs) for n in names)
        + PLAN_TAIL
    )
    measuring = threading.Event()
    received: dict[tuple[int, str], int] = {}  # (ring, source) -> lines received
    first_probe: dict[tuple[int, str], tuple[int, int]] = {}  # -> (seq, received by then)
    last_probe: dict[tuple[int, str], tuple[int, int]] = {}
    read_lat: list[float] = []
    pending: list[tuple[object, int, float]] = []  # (ring, position, written at) awaiting a frame
    screen_lat: list[float] = []
    original_extend = logbuffer.LogBuffer.extend

    def extend(self: logbuffer.LogBuffer, lines: list) -> None:  # type: ignore[type-arg]
        start = self.end
        original_extend(self, lines)
        if not measuring.is_set():
            return
        now = time.time()
        key_ring = id(self)
        for offset, line in enumerate(lines):
            if line.track is None:
                continue  # the supervisor's own notes
            key = (key_ring, line.source)
            count = received.get(key, 0) + 1
            received[key] = count
            if line.text.startswith('{"probe"'):
                record = json.loads(line.text)
                read_lat.append(now - record["probe"])
                first_probe.setdefault(key, (record["seq"], count))
                last_probe[key] = (record["seq"], count)
                pending.append((self, start + offset, record["probe"]))

    logbuffer.LogBuffer.extend = extend  # type: ignore[method-assign] - before the session binds its sinks

    state = Path(tempfile.mkdtemp(prefix="cockpit-benchlogs-"))
    session = Session(parse_plan(text), state_dir=state, user="bench", log_capacity=20_000)
    frames: list[float] = []

    class BenchApp(CockpitApp):
        def _display(self, screen, renderable):  # type: ignore[no-untyped-def]
            super()._display(screen, renderable)
            if renderable is None or not measuring.is_set() or not pending:
                return
            now = time.time()
            frames.append(now)
            views = self.screen.query_one(LogPane).views
            still = []
            for ring, position, written in pending:
                if any(
                    ring is view_ring and view._scanned[i] > position
                    for view in views
                    for i, view_ring in enumerate(view._rings)
                ):
                    screen_lat.append(now - written)
                else:
                    still.append((ring, position, written))
            pending[:] = still

    app = BenchApp(session, config=UIConfig(log_mode="split", log_height=50))
    results: dict[str, object] = {}

    async def measure() -> None:
        import asyncio

        try:
            while not app.session_started or not all(v.up for v in session.views()):
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)  # the writers are up and steady
            views = app.screen.query_one(LogPane).views
            missed0 = sum(v.missed for v in views)
            measuring.set()
            cpu0, t0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            measuring.clear()
            cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
            await asyncio.sleep(0.5)
            # Between a writer's first and last probe of the window, it wrote (seq1 - seq0)
            # lines; the cockpit received (count1 - count0) of them.
            written = sum(last_probe[k][0] - first_probe[k][0] for k in last_probe)
            got = sum(last_probe[k][1] - first_probe[k][1] for k in last_probe)
            results.update(
                target_rate=rate,
                seconds=round(elapsed, 2),
                writers=len(last_probe),
                received=sum(received.values()),
                received_rate=round(sum(received.values()) / elapsed),
                dropped=written - got,
                missed=sum(v.missed for v in views) - missed0,
                cpu_share=round(cpu / elapsed, 2),
                read_ms=percentiles(read_lat),
                screen_ms=percentiles(screen_lat),
                unpainted_probes=len(pending),
                frames_per_s=round(len(frames) / elapsed, 1),
            )
        except Exception:  # reported: the parent prints it
            import traceback

            results["error"] = traceback.format_exc()
        Path(out).write_text(json.dumps(results))
        await app.action_quit()

    original_start = BenchApp._run_session_start

    async def start_then_measure(self: BenchApp) -> None:
        await original_start(self)
        self.run_worker(measure(), name="bench", exit_on_error=False)

    BenchApp._run_session_start = start_then_measure  # type: ignore[method-assign]
    app.run()


def percentiles(samples: list[float]) -> dict[str, float | int | None]:
    if not samples:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    s = sorted(samples)
    return {
        "n": len(s),
        "p50": round(statistics.median(s) * 1000, 1),
        "p99": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 1),
        "max": round(s[-1] * 1000, 1),
    }


# --------------------------------------------------------------------------- report (parent)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--envs", type=int, default=3, choices=range(1, 7))
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(args.rate, args.port)
        return
    if args.child:
        child(args.rate, args.seconds, args.envs, args.out)
        return

    print(
        f"cockpit end-to-end log benchmark - {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {COLS}x{ROWS} pty"
    )
    print(
        f"{args.envs} services (local backend, one replica each) write {args.rate:,} JSON lines/s in total"
        f" through their pipes for {args.seconds:g} s; log pane split in {args.envs} views"
    )
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    argv = [sys.executable, __file__, "--child", "--rate", str(args.rate), "--seconds", str(args.seconds),
            "--envs", str(args.envs), "--out", out]  # fmt: skip
    proc, master = spawn_in_pty(argv)
    screen = bytearray()
    drain(master, proc, time.monotonic() + 90 + args.seconds, keep=screen)
    if proc.poll() is None:
        proc.kill()
    os.close(master)
    text = Path(out).read_text() if Path(out).exists() else ""
    Path(out).unlink(missing_ok=True)
    if not text:
        print("the benchmark app failed; its last output:\n" + screen.decode(errors="replace")[-3000:])
        return
    r = json.loads(text)
    if "error" in r:
        print(r["error"])
        return
    read, shown = r["read_ms"], r["screen_ms"]
    print(f"  received {r['received']:,} lines in {r['seconds']} s from {r['writers']} writers:"
          f" {r['received_rate']:,} lines/s sustained (target {r['target_rate']:,})")  # fmt: skip
    print(
        f"  write -> read   p50 {read['p50']} ms  p99 {read['p99']} ms  max {read['max']} ms  ({read['n']} probes)"
    )
    print(f"  write -> screen p50 {shown['p50']} ms  p99 {shown['p99']} ms  max {shown['max']} ms"
          f"  ({shown['n']} probes; {r['unpainted_probes']} not yet painted at the end)")  # fmt: skip
    print(f"  cockpit CPU {r['cpu_share']:.0%} of a core; {r['frames_per_s']} frames/s")
    print(
        f"  dropped between writer and cockpit: {r['dropped']:,}; missed by the views (left a ring first): {r['missed']:,}"
    )


if __name__ == "__main__":
    main()
