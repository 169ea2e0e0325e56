"""The journal: append-only, durable through kill -9, filterable."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cockpit.engine.journal import Journal, current_user
from cockpit.engine.state import Revision

WRITER = """
import sys
from pathlib import Path
from cockpit.engine.journal import Journal
j = Journal(Path(sys.argv[1]))
n = 0
while True:
    n += 1
    j.append(service="shop", env="production", action="promote", outcome="ok", user="ann",
             reason="r" * 200, detail=f"record {n} " + "d" * 500, weight=n % 100, step=n)
    print(n, flush=True)
"""


def test_records_carry_who_when_why_and_outcome(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    before = time.time()
    j.append(
        service="shop",
        env="production",
        action="abort",
        outcome="ok",
        user="ann",
        reason="error spike",
        detail="aborted",
        duration_ms=12.5,
        phase="Aborted",
        weight=0,
    )
    (r,) = j.records()
    assert (r.user, r.env, r.action, r.reason, r.outcome, r.duration_ms) == (
        "ann",
        "production",
        "abort",
        "error spike",
        "ok",
        12.5,
    )
    assert before <= r.ts <= time.time()
    j.close()


def test_journal_is_append_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    j.append(service="s", env="e", action="a", outcome="ok", user="u")
    db = sqlite3.connect(tmp_path / "j.sqlite3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE journal SET outcome = 'forged'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM journal")
    db.close()
    assert j.records()[0].outcome == "ok"
    j.close()


def test_no_torn_records_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acknowledged = 0
    while acknowledged < 300:
        acknowledged = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    records = Journal(path).records(limit=100_000)
    # Every record the writer saw committed is there, and each one is whole.
    assert len(records) >= acknowledged
    for n, r in enumerate(records, start=1):
        assert r.detail == f"record {n} " + "d" * 500 and r.reason == "r" * 200 and r.step == n


def test_filters_and_read_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    for env, action in [("dev", "rollout"), ("production", "abort"), ("production", "promote")]:
        j.append(service="shop", env=env, action=action, outcome="ok", user="ann")
    j.append(service="other", env="dev", action="rollout", outcome="refused", user="bob")
    assert [r.action for r in j.records(service="shop", env="production")] == ["abort", "promote"]
    assert [r.user for r in j.records(text="refused")] == ["bob"]
    assert [r.action for r in j.records(limit=2)] == ["promote", "rollout"]  # newest two, oldest first
    j.close()
    ro = Journal(tmp_path / "j.sqlite3", read_only=True)
    assert ro.append(service="s", env="e", action="a", outcome="ok", user="u") == 0
    assert len(ro.records()) == 4
    ro.close()
    missing = Journal(tmp_path / "none.sqlite3", read_only=True)
    assert missing.records() == [] and not (tmp_path / "none.sqlite3").exists()


def test_revisions_and_last_snapshot(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    for n, v in enumerate(["1.0.0", "1.1.0", "1.2.0"], start=1):
        j.add_revision("shop", "production", Revision(n, v, float(n), "ann"))
    assert [r.version for r in j.revisions("shop", "production", limit=2)] == ["1.1.0", "1.2.0"]
    assert j.last_snapshot("shop", "production") is None
    j.append(
        service="shop",
        env="production",
        action="x",
        outcome="ok",
        user="u",
        phase="Paused",
        target_version="1.2.0",
    )
    j.append(service="shop", env="production", action="y", outcome="ok", user="u")
    snap = j.last_snapshot("shop", "production")
    assert snap is not None and snap.phase == "Paused" and snap.target_version == "1.2.0"


def test_current_user_names_the_person(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COCKPIT_USER", raising=False)
    plain = current_user()
    assert plain
    monkeypatch.setenv("COCKPIT_USER", "ann")
    assert current_user() in ("ann", f"ann ({plain})")
