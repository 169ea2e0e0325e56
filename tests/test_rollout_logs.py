"""Each rollout's canary lines are kept with it in the store: bounded, redacted, written
in batches off the event loop, and still there after the live rings forgot them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.ui_fixtures  # also registers the "memory" adapters
from cockpit.adapters.memory import MemoryBackend
from cockpit.adapters.memory_platform import MemoryPlatform
from cockpit.engine.commands import Abort, StartRollout
from cockpit.engine.rollout_logs import RolloutLogKeeper
from cockpit.engine.session import Session
from cockpit.engine.state import Phase
from cockpit.engine.store import KeptLine, SQLiteStore
from cockpit.model import LogLine, Track
from cockpit.plan.loader import parse_plan
from cockpit.secrets import MASK, resolve
from tests.ui_fixtures import plan_text

pytestmark = pytest.mark.asyncio


async def until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def session_in(tmp_path: Path, capacity: int = 500) -> Session:
    session = Session(
        parse_plan(plan_text(envs=("dev",), protected=())),
        state_dir=tmp_path / "state",
        user="alice",
        log_capacity=capacity,
    )
    keeper = session.rollout_logs
    keeper.after_seconds, keeper.flush_seconds = 0.3, 0.05  # the same rules, sooner
    return session


def backend(session: Session) -> MemoryBackend | MemoryPlatform:
    b = session.controller("dev").backend
    assert isinstance(b, MemoryBackend | MemoryPlatform)
    return b


async def abort_with_canary_lines(session: Session, lines: list[str]) -> int:
    """Start a rollout, have the canary say ``lines``, abort it; returns the abort record id."""
    await session.start()
    assert (await session.submit("dev", StartRollout("1.2.0"))).ok
    dev = backend(session)
    for text in lines:
        dev.emit(text, Track.CANARY)
        dev.emit("stable is fine", Track.STABLE)
    assert (await session.submit("dev", Abort(), "canary throws 500s")).ok
    assert session.view("dev").rollout.phase is Phase.ABORTED
    dev.emit("canary: shutting down after abort", Track.CANARY)
    aborts = [r for r in session.journal.records(env="dev") if r.action == "abort" and r.outcome == "ok"]
    return aborts[-1].id


@pytest.mark.parametrize("driver", ["machine", "mirror"])
async def test_an_aborted_rollouts_canary_lines_outlive_the_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, driver: str
) -> None:
    # The cockpit walks the steps (machine driver) or the platform does (mirror): either way.
    monkeypatch.setattr(tests.ui_fixtures, "DRIVER", driver)
    session = session_in(tmp_path, capacity=500)
    writes: list[tuple[int, int]] = []  # (thread, lines) of every write of kept lines
    original = session.journal.keep_rollout_lines

    def spy(log_id: int, lines: list[KeptLine], keep: int) -> None:
        writes.append((threading.get_ident(), len(lines)))
        original(log_id, lines, keep)

    session.journal.keep_rollout_lines = spy  # type: ignore[method-assign]
    try:
        abort_id = await abort_with_canary_lines(session, [f"ERROR order {i} failed" for i in range(300)])
        for i in range(2000):  # the ring (500 lines) forgets the canary entirely
            backend(session).emit(f"stable line {i}", Track.STABLE)
        assert not any(line.track is Track.CANARY for line in session.logs.buffers["dev"].tail(500))
        kept_log = session.journal.rollout_log_for("shop", "dev", abort_id)
        assert kept_log is not None
        await until(lambda: session.journal.rollout_log_for("shop", "dev", abort_id).finished, what="closed")  # type: ignore[union-attr]
        finished = session.journal.rollout_log_for("shop", "dev", abort_id)
        assert finished is not None and finished.outcome == "Aborted" and finished.target_version == "1.2.0"
        lines = session.journal.rollout_log_lines(finished.id)
        texts = [line.text for line in lines]
        assert '"msg":"started","version":"1.2.0"' in texts[0]  # the canary's own first words
        assert [t for t in texts if t.startswith("ERROR")] == [f"ERROR order {i} failed" for i in range(300)]
        assert texts[-1] == "canary: shutting down after abort"
        assert "stable is fine" not in texts and all("canary" in line.source for line in lines)
        assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
        assert finished.lines_seen == len(lines) == 302
        # Batches, off the event loop's thread: many lines, few transactions.
        assert sum(n for _, n in writes) == 302 and len(writes) <= 4
        assert threading.get_ident() not in {thread for thread, _ in writes}
    finally:
        await session.close()


async def test_kept_lines_are_bounded_to_the_newest_and_the_end(tmp_path: Path) -> None:
    session = session_in(tmp_path)
    session.rollout_logs.keep, session.rollout_logs.after_lines = 50, 5
    try:
        await session.start()
        assert (await session.submit("dev", StartRollout("1.2.0"))).ok
        dev = backend(session)
        for i in range(400):
            dev.emit(f"before {i}", Track.CANARY)
            if i % 100 == 0:
                await asyncio.sleep(0.1)  # several flushes: the store prunes as it goes
        assert (await session.submit("dev", Abort(), "bad")).ok
        assert dev._sink is not None
        # The canary's last words: one batch of 20 after the end, of which 5 are kept.
        dev._sink([LogLine(time.time(), "dev", "canary 1.2.0 #1", Track.CANARY, f"after {i}") for i in range(20)])
        dev.emit("after the batch", Track.CANARY)
        await session.rollout_logs.close()
        log_ = session.journal.rollout_log_for("shop", "dev", session.journal.count())
        assert log_ is not None
        texts = [line.text for line in session.journal.rollout_log_lines(log_.id)]
        assert texts == [f"before {i}" for i in range(350, 400)] + [f"after {i}" for i in range(5)]
        assert log_.lines_seen == 1 + 400 + 5  # the deploy's "started", before, after (bounded)
    finally:
        await session.close()


async def test_a_secret_value_never_reaches_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_DB_PASSWORD", "hunter2-very-secret")
    secret = resolve("env:COCKPIT_DB_PASSWORD")
    session = session_in(tmp_path)
    try:
        abort_id = await abort_with_canary_lines(session, [f"connecting with password={secret}"])
        await session.rollout_logs.close()
        log_ = session.journal.rollout_log_for("shop", "dev", abort_id)
        assert log_ is not None
        texts = [line.text for line in session.journal.rollout_log_lines(log_.id)]
        assert f"connecting with password={MASK}" in texts
    finally:
        await session.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("journal*") if p.is_file())
    assert raw and secret.encode() not in raw


async def test_only_the_newest_rollouts_keep_their_lines(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "j.sqlite3")
    try:
        ids = []
        for n in range(5):
            record = store.append(service="shop", env="dev", action="rollout", outcome="started", user="a")
            log_id = store.open_rollout_log("shop", "dev", f"1.{n}.0", record, float(n), retain=3)
            store.keep_rollout_lines(log_id, [KeptLine(1, float(n), "canary", f"line of {n}")], keep=10)
            ids.append(log_id)
        kept = [store.rollout_log_lines(i) for i in ids]
        assert [len(k) for k in kept] == [0, 0, 1, 1, 1]
        # A record belongs to the newest rollout started at or before it, of its environment.
        assert store.rollout_log_for("shop", "dev", 3) is not None
        assert store.rollout_log_for("shop", "dev", 3).target_version == "1.2.0"  # type: ignore[union-attr]
        assert store.rollout_log_for("shop", "staging", 3) is None
        assert store.rollout_log_for("shop", "dev", 0) is None
    finally:
        store.close()


async def test_a_store_that_cannot_be_written_loses_lines_not_the_rollout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = session_in(tmp_path)
    try:
        await session.start()
        store = session.journal

        def broken(*_args: object, **_kwargs: object) -> None:
            from cockpit.engine.store import JournalWriteError

            raise JournalWriteError("cannot write rollout log lines to the journal: disk full")

        store.keep_rollout_lines = broken  # type: ignore[method-assign]
        assert (await session.submit("dev", StartRollout("1.2.0"))).ok
        for i in range(10):
            backend(session).emit(f"canary {i}", Track.CANARY)
        await session.rollout_logs.flush()
        await session.rollout_logs.flush()
        assert (await session.submit("dev", Abort(), "bad")).ok
        assert session.view("dev").rollout.phase is Phase.ABORTED
        warnings = [r for r in caplog.records if "not being kept" in r.getMessage()]
        assert len(warnings) == 1 and "disk full" in warnings[0].getMessage()
    finally:
        await session.close()


async def test_the_tap_costs_nothing_when_no_rollout_is_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "j.sqlite3")
    keeper = RolloutLogKeeper(store, "shop")
    seen: list[int] = []
    feed = keeper.tap("dev", lambda lines: seen.append(len(lines)))

    feed([LogLine(1.0, "dev", "canary 1.1.0 #1", Track.CANARY, "hello")] * 3)
    assert seen == [3] and not keeper.captures  # the ring got them; nothing kept: no rollout
    store.close()
