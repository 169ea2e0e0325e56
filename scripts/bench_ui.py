"""Benchmark of the cockpit screen under a log flood: ``python scripts/bench_ui.py``.

Prints figures (it asserts nothing; tests assert behaviour):

* **flood**: the real app (memory backend, three environments, log pane split into
  three views) runs in a pseudo-terminal of 160x48 - so every frame is really
  encoded and written - while a feeder on the app's loop appends 50,000 lines/s in
  total to the three LogBuffers, in batches, for 20 s. Every line is accounted
  for: indexed by a view (shown, or scrolled past at the tail) or missed (it left
  its ring before the view's next refresh). Also: peak RSS, refresh rate, and
  key -> screen latency: a thread posts Left/Right key events into the app (not
  Pilot, which waits for idle) and the time to the next frame written after the key
  was handled is recorded;
* **ramp**: the same at rising rates, 5 s each, to find the highest aggregate rate
  the screen sustains (feeder on target, nothing missed, refresh >= 8 Hz);
* **first frame**: ``python -m cockpit demo`` started in a pseudo-terminal; the time
  from spawning the process to the first frame showing the header.

Options: ``--seconds``, ``--rate``, ``--no-ramp``, ``--no-first-frame``, ``--first-frame-runs``,
``--profile FILE`` (the split flood under pyinstrument, if installed: where the loop's time
goes, written to FILE as text).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import resource
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLS, ROWS = 160, 48
GOALS = {"rss_mb": 150, "rate": 100_000, "first_frame_s": 0.5}


# --------------------------------------------------------------------------- pty helpers


def spawn_in_pty(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    full_env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": str(COLS),
        "LINES": str(ROWS),
        **(env or {}),
    }
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=full_env, cwd=ROOT, start_new_session=True
    )
    os.close(slave)
    return proc, master


def drain(
    master: int,
    proc: subprocess.Popen[bytes],
    until: float,
    watch: bytes | None = None,
    keep: bytearray | None = None,
) -> float | None:
    """Read the terminal until the process ends (or ``until``); returns when ``watch`` first appeared."""
    seen: float | None = None
    tail = b""
    while time.monotonic() < until and proc.poll() is None:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if keep is not None:
            keep += chunk
            del keep[: max(0, len(keep) - (1 << 16))]
        if watch is not None and seen is None:
            tail = (tail + chunk)[-(1 << 16) :]
            if watch in tail:
                seen = time.monotonic()
    return seen


# --------------------------------------------------------------------------- the flooded app (child)


def child(mode: str, rates: list[int], seconds: float, out: str, profile: str | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    from textual import events

    import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
    from cockpit.adapters.base import LogLine, Track
    from cockpit.engine.session import Session
    from cockpit.plan.loader import parse_plan
    from cockpit.ui.app import CockpitApp
    from cockpit.ui.config import UIConfig
    from cockpit.ui.screens.main import MainScreen
    from cockpit.ui.widgets.log_pane import LogPane
    from tests.ui_fixtures import plan_text

    state = Path(tempfile.mkdtemp(prefix="cockpit-bench-"))
    session = Session(
        parse_plan(plan_text(interval="1s")), state_dir=state, user="bench", log_capacity=20_000
    )
    envs = [v.name for v in session.views()]
    pools = {
        env: [
            LogLine(
                0.0,
                env,
                f"{'canary' if i % 5 == 0 else 'stable'} 1.1.0 #{i % 2 + 1}",
                Track.CANARY if i % 5 == 0 else Track.STABLE,
                f'{{"ts": 1767260465.{i % 1000:03d}, "level": "{"error" if i % 97 == 0 else "info"}",'
                f' "msg": "request", "path": "/api/orders/{i}", "status": {500 if i % 97 == 0 else 200},'
                f' "duration_ms": {i % 40 / 7:.2f}, "version": "1.1.0"}}',
            )
            for i in range(20_000)
        ]
        for env in envs
    }
    results: dict[str, object] = {"phases": []}
    latencies: list[float] = []
    frames: list[float] = []
    pending: dict[str, float] = {}  # key posted at -> handled?

    class BenchApp(CockpitApp):
        def _display(self, screen, renderable):  # type: ignore[no-untyped-def]
            super()._display(screen, renderable)
            if renderable is None:
                return
            now = time.perf_counter()
            frames.append(now)
            if "handled" in pending:
                latencies.append(now - pending.pop("posted"))
                pending.clear()

    original_move = MainScreen._move

    def move(self: MainScreen, step: int) -> None:
        original_move(self, step)
        if "posted" in pending:
            pending["handled"] = time.perf_counter()

    MainScreen._move = move  # type: ignore[method-assign]

    app = BenchApp(session, config=UIConfig(log_mode=mode, log_height=50))  # type: ignore[arg-type]

    def key_thread(stop: threading.Event) -> None:
        right = True
        while not stop.wait(0.25):
            if pending:
                continue  # the previous key has not been painted yet
            key = "right" if right else "left"
            right = not right
            pending["posted"] = time.perf_counter()
            # Not call_from_thread (it waits for the result): post and measure.
            app._loop.call_soon_threadsafe(app.post_message, events.Key(key, None))  # type: ignore[union-attr]

    async def flood(rate: int, duration: float) -> dict[str, object]:
        pane = app.screen.query_one(LogPane)
        views = pane.views
        rings = [session.logs.buffers[e] for e in envs]
        for view in views:
            view.flush()
        base_indexed = sum(v.indexed for v in views)
        base_missed = sum(v.missed for v in views)
        base_dropped = sum(r.dropped for r in rings)
        base_end = sum(r.end for r in rings)
        latencies.clear()
        frames.clear()
        stop = threading.Event()
        keys = threading.Thread(target=key_thread, args=(stop,), daemon=True)
        keys.start()
        cursor = dict.fromkeys(envs, 0)
        sent = 0
        start = time.perf_counter()
        cpu0 = time.process_time()
        while (now := time.perf_counter()) - start < duration:
            due = int((now - start) * rate) - sent
            if due > 0:
                share = due // len(envs)
                for i, env in enumerate(envs):
                    n = share + (1 if i < due - share * len(envs) else 0)
                    pos = cursor[env]
                    pool = pools[env]
                    batch = pool[pos : pos + n]
                    if len(batch) < n:
                        batch += pool[: n - len(batch)]
                    cursor[env] = (pos + n) % len(pool)
                    session.logs.buffers[env].extend(batch)
                sent += due
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        stop.set()
        keys.join()
        await asyncio.sleep(0.3)  # the last refresh indexes what is left
        for view in views:
            view.flush()
        appended = sum(r.end for r in rings) - base_end
        indexed = sum(v.indexed for v in views) - base_indexed
        missed = sum(v.missed for v in views) - base_missed
        refresh_hz = (len(frames) - 1) / (frames[-1] - frames[0]) if len(frames) > 1 else 0.0
        lat = sorted(latencies)
        return {
            "target_rate": rate,
            "seconds": round(elapsed, 2),
            "appended": appended,
            "achieved_rate": round(appended / elapsed),
            "indexed": indexed,
            "missed": missed,
            "accounted": indexed + missed == appended,
            "ring_dropped": sum(r.dropped for r in rings) - base_dropped,
            "frames_per_s": round(refresh_hz, 1),
            "cpu_share": round(cpu / elapsed, 2),
            "key_samples": len(lat),
            "key_p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
            "key_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else None,
            "key_max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    async def bench() -> None:
        try:
            await run_phases()
        except Exception:  # reported in the results: the parent prints it
            import traceback

            results["error"] = traceback.format_exc()
            Path(out).write_text(json.dumps(results))
            app.exit()

    async def run_phases() -> None:
        while not app.session_started:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        results["rss_before_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        for rate in rates:
            profiler = None
            if profile:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.001, async_mode="disabled")  # every thread's loop time
                profiler.start()
            results["phases"].append(await flood(rate, seconds))  # type: ignore[union-attr]
            if profiler is not None:
                profiler.stop()
                Path(profile).write_text(profiler.output_text(unicode=True, show_all=False))
            Path(out).write_text(json.dumps(results))
        await app.action_quit()

    original_start = BenchApp._run_session_start

    async def start_then_bench(self: BenchApp) -> None:
        await original_start(self)
        self.run_worker(bench(), name="bench", exit_on_error=False)

    BenchApp._run_session_start = start_then_bench  # type: ignore[method-assign]
    app.run()
    Path(out).write_text(json.dumps(results))


def run_child(mode: str, rates: list[int], seconds: float, profile: str | None = None) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    argv = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--rates",
        ",".join(map(str, rates)),
        "--seconds",
        str(seconds),
        "--out",
        out,
        *(["--profile", profile] if profile else []),
    ]
    proc, master = spawn_in_pty(argv)
    screen = bytearray()
    drain(master, proc, time.monotonic() + 60 + seconds * len(rates) * 2, keep=screen)
    if proc.poll() is None:
        proc.kill()
    os.close(master)
    try:
        text = Path(out).read_text()
        if not text:
            print("the benchmark app failed; its last output:\n" + screen.decode(errors="replace")[-3000:])
        return json.loads(text or "{}")
    finally:
        Path(out).unlink(missing_ok=True)


# --------------------------------------------------------------------------- first frame


def first_frame(runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="cockpit-ff-") as state:
            argv = [sys.executable, "-m", "cockpit", "demo", "--port-base", "0", "--state-dir", state]
            started = time.monotonic()
            proc, master = spawn_in_pty(argv)
            seen = drain(master, proc, time.monotonic() + 15, watch=b"driving")
            if seen is not None:
                times.append(seen - started)
            os.write(master, b"q")
            drain(master, proc, time.monotonic() + 20)
            if proc.poll() is None:
                proc.kill()
            os.close(master)
    return times


# --------------------------------------------------------------------------- report


def show(phase: dict[str, object]) -> None:
    print(
        f"  target {phase['target_rate']:>7,} lines/s  achieved {phase['achieved_rate']:>7,}  "
        f"appended {phase['appended']:>9,}  indexed {phase['indexed']:>9,}  missed {phase['missed']:>7,}  "
        f"accounted {'yes' if phase['accounted'] else 'NO'}  ring-dropped {phase['ring_dropped']:,}"
    )
    print(
        f"      frames {phase['frames_per_s']}/s  cpu {phase['cpu_share']:.0%}  "
        f"key->frame p50 {phase['key_p50_ms']} ms  p99 {phase['key_p99_ms']} ms  max {phase['key_max_ms']} ms "
        f"({phase['key_samples']} keys)  peak RSS {phase['rss_mb']} MB"
    )


def sustained(phase: dict[str, object]) -> bool:
    return (
        phase["achieved_rate"] >= 0.95 * phase["target_rate"]  # type: ignore[operator]
        and phase["missed"] == 0
        and phase["frames_per_s"] >= 8
    )  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=50_000)
    parser.add_argument("--no-ramp", action="store_true")
    parser.add_argument("--no-first-frame", action="store_true")
    parser.add_argument("--first-frame-runs", type=int, default=7)
    parser.add_argument("--profile", metavar="FILE", help="profile the split flood (pyinstrument) into FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rates", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, [int(r) for r in args.rates.split(",")], args.seconds, args.out, args.profile)
        return

    print(f"cockpit UI benchmark - {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {COLS}x{ROWS} pty")
    print(
        f"\nflood: {args.rate:,} lines/s over 3 environments, log pane split in 3 views, {args.seconds:g} s"
    )
    result = run_child("split", [args.rate], args.seconds, args.profile)
    if args.profile:
        print(f"  profile of the flood written to {args.profile}")
    if "error" in result:
        print(result["error"])
    for phase in result.get("phases", []):  # type: ignore[union-attr]
        show(phase)
    print(f"  RSS before the flood {result.get('rss_before_mb')} MB (goal: peak <= {GOALS['rss_mb']} MB)")

    print(f"\nflood, merged: the same {args.rate:,} lines/s in one view merged by time, 10 s")
    result = run_child("merged", [args.rate], 10.0)
    for phase in result.get("phases", []):  # type: ignore[union-attr]
        show(phase)

    if not args.no_ramp:
        rates = [50_000, 100_000, 200_000, 400_000, 600_000, 800_000]
        print("\nramp: 5 s per rate (sustained = feeder on target, nothing missed, >= 8 frames/s)")
        result = run_child("split", rates, 5.0)
        best = 0
        for phase in result.get("phases", []):  # type: ignore[union-attr]
            show(phase)
            if sustained(phase):
                best = max(best, phase["achieved_rate"])  # type: ignore[type-var]
        print(f"  highest aggregate rate sustained: {best:,} lines/s (goal >= {GOALS['rate']:,})")

    if not args.no_first_frame:
        times = first_frame(args.first_frame_runs)
        if times:
            print(
                f"\nfirst frame of `python -m cockpit demo` in a pty: median {statistics.median(times):.3f} s, "
                f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs "
                f"(goal <= {GOALS['first_frame_s']} s)"
            )
        else:
            print("\nfirst frame: the header never appeared")


if __name__ == "__main__":
    main()
