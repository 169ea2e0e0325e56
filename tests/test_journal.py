"""The journal: append-only, durable through kill -9, filterable, private to its owner,
tamper-evident (hash chain), versioned, redacted, and failing with one typed error."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit import secrets
from cockpit.engine.journal import (
    SCHEMA_VERSION,
    BrokenLink,
    Journal,
    JournalWriteError,
    current_user,
    keep_aside,
)
from cockpit.engine.state import Revision
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import sys
from pathlib import Path
from cockpit.engine.journal import Journal
j = Journal(Path(sys.argv[1]))
# What the writer's own connection runs with, read back from SQLite.
print("synchronous", j.settings()["synchronous"], flush=True)
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
    # kill -9 kills the process, not the machine: what it wrote sits in the OS page cache
    # and survives whether SQLite fsynced it or not, so this test passes with
    # synchronous=OFF too. Only a power cut or kernel crash tells FULL from OFF, which a
    # test cannot cause here; the setting itself is asserted instead, on the writer's
    # own connection (2 = FULL; synchronous is per connection, never stored in the file).
    assert proc.stdout.readline().split() == ["synchronous", "2"]
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


def test_current_user_names_the_person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COCKPIT_USER", raising=False)
    monkeypatch.setenv("COCKPIT_CONFIG_DIR", str(tmp_path))  # no [user] name from the real config
    plain = current_user()
    assert plain
    monkeypatch.setenv("COCKPIT_USER", "ann")
    assert current_user() in ("ann", f"ann ({plain})")


def test_the_old_names_are_the_store_and_identity_ones() -> None:
    """Code written against this module keeps working: the names are re-exports, not copies."""
    from cockpit import identity
    from cockpit.engine import store

    assert Journal is store.SQLiteStore and JournalWriteError is store.JournalWriteError
    assert BrokenLink is store.BrokenLink and keep_aside is store.keep_aside
    assert current_user is identity.current_user


def test_the_writer_runs_in_wal_with_synchronous_full(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    assert j.settings() == {"journal_mode": "wal", "synchronous": 2, "schema_version": SCHEMA_VERSION}
    j.close()


# --------------------------------------------------------------------------- only the owner reads it

NOBODY_READS = "import sys; open(sys.argv[1], 'rb').read(100); print('read')"


def as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    """Try to read ``path`` as the OS user nobody, with the system Python (which nobody
    can execute; the project's venv may sit in a directory nobody cannot enter)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        message = "reading as another OS user needs root and setpriv (util-linux)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"]
        + [NOBODY_READS, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A 0755 directory anyone can enter (pytest's tmp_path sits in a 0700 parent, where
    nobody could never read anything and the test would prove nothing)."""
    path = Path(tempfile.mkdtemp(prefix="cockpit-journal-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def modes(path: Path) -> dict[str, int]:
    found = {"dir": stat.S_IMODE(path.parent.stat().st_mode)}
    for suffix in ("", "-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            found[suffix or "db"] = stat.S_IMODE(side.stat().st_mode)
    return found


def test_a_new_journal_is_private_to_its_owner(open_dir: Path) -> None:
    path = open_dir / "state" / "journal.sqlite3"
    old_umask = os.umask(0o022)  # what a user commonly has: 0644 files, 0755 dirs
    try:
        j = Journal(path)
        j.append(service="s", env="e", action="a", outcome="ok", user="u", reason="private")
        assert modes(path) == {"dir": 0o700, "db": 0o600, "-wal": 0o600, "-shm": 0o600}
        result = as_nobody(path)
        assert result.returncode != 0 and "PermissionError" in result.stderr, result
        j.close()
    finally:
        os.umask(old_umask)


def test_an_old_world_readable_journal_is_narrowed_on_open(open_dir: Path) -> None:
    path = open_dir / "journal.sqlite3"
    old_umask = os.umask(0o022)
    try:
        db = sqlite3.connect(path)
        db.executescript("PRAGMA journal_mode=WAL;" + OLD_SCHEMA)
        db.close()
        assert modes(path) == {"dir": 0o755, "db": 0o644}
        before = as_nobody(path)  # the control: this reader can read what is not closed to it
        assert before.returncode == 0 and before.stdout.strip() == "read", before
        j = Journal(path)
        assert modes(path) == {"dir": 0o700, "db": 0o600, "-wal": 0o600, "-shm": 0o600}
        after = as_nobody(path)
        assert after.returncode != 0 and "PermissionError" in after.stderr, after
        j.close()
    finally:
        os.umask(old_umask)


# --------------------------------------------------------------------------- the hash chain


def five_records(path: Path) -> None:
    j = Journal(path)
    for n in range(1, 6):
        j.append(service="shop", env="production", action="promote", outcome="ok", user="ann",
                 reason=f"step {n}", weight=n * 20, step=n, duration_ms=n / 3)  # fmt: skip
    j.close()


def tamper(path: Path, sql: str) -> None:
    """What a careful forger does: drop the triggers with plain sqlite3, then edit."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER journal_no_update")
    db.execute("DROP TRIGGER journal_no_delete")
    db.execute(sql)
    db.close()


def refused(path: Path, sql: str) -> str:
    """The error a plain sqlite3 client gets for ``sql`` (its connection closed after,
    so its write lock does not outlive the attempt)."""
    db = sqlite3.connect(path)
    try:
        db.execute(sql)
    except sqlite3.DatabaseError as err:
        return str(err)
    finally:
        db.close()
    return "accepted"


def cockpit_cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_verify_finds_a_rewritten_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    five_records(path)
    j = Journal(path, read_only=True)
    assert j.verify() is None
    j.close()
    intact = cockpit_cli("history", "--verify", state=tmp_path)
    assert intact.returncode == 0 and intact.stdout.splitlines()[0] == "journal intact: 5 records", intact
    tamper(path, "UPDATE journal SET reason = 'nothing to see' WHERE id = 3")
    j = Journal(path, read_only=True)
    assert j.records()[2].reason == "nothing to see"  # the rewrite itself went through
    assert j.verify() == BrokenLink(3, "its content does not match its hash (the record was rewritten)")
    j.close()
    broken = cockpit_cli("history", "--verify", state=tmp_path)
    assert broken.returncode == 1 and broken.stdout.startswith("journal broken at record 3: its content"), (
        broken
    )
    # Reopening for writing brings the triggers back, and new records do not heal the break.
    w = Journal(path)
    w.append(service="shop", env="production", action="abort", outcome="ok", user="ann")
    assert w.verify() is not None and w.verify().record_id == 3  # type: ignore[union-attr]
    assert refused(path, "UPDATE journal SET reason = 'again' WHERE id = 2") == "the journal is append-only"
    w.close()


def test_verify_finds_a_record_deleted_in_the_middle_or_at_the_end(tmp_path: Path) -> None:
    middle, tail = tmp_path / "middle.sqlite3", tmp_path / "tail.sqlite3"
    five_records(middle)
    five_records(tail)
    tamper(middle, "DELETE FROM journal WHERE id = 3")
    tamper(tail, "DELETE FROM journal WHERE id = 5")
    for path, expected in [
        (middle, BrokenLink(4, "record(s) 3 before it are missing (deleted)")),
        (tail, BrokenLink(5, "records after 4 are missing (the tail was deleted)")),
    ]:
        j = Journal(path, read_only=True)
        assert j.verify() == expected
        j.close()
    # A writer after a removed tail does not reuse its ids: the gap stays visible.
    w = Journal(tail)
    assert w.append(service="s", env="e", action="a", outcome="ok", user="u") == 6
    assert w.verify() == BrokenLink(6, "record(s) 5 before it are missing (deleted)")
    w.close()


def test_verify_of_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    result = cockpit_cli("history", "--verify", state=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no journal at {tmp_path / 'journal.sqlite3'} to verify"


# --------------------------------------------------------------------------- schema migrations

# The journal's schema as cockpit wrote it before it had a version (user_version 0),
# frozen here so the migration is tested against what is really on users' disks.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    duration_ms REAL,
    phase TEXT,
    stable_version TEXT,
    canary_version TEXT,
    target_version TEXT,
    weight INTEGER,
    step INTEGER,
    revision INTEGER
);
CREATE INDEX IF NOT EXISTS journal_env ON journal(service, env, id);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    user TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS revisions_no_update BEFORE UPDATE ON revisions
    BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS revisions_no_delete BEFORE DELETE ON revisions
    BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
"""


def old_journal(path: Path, records: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SCHEMA)
    for n in range(1, records + 1):
        db.execute(
            "INSERT INTO journal (ts, user, service, env, action, reason, outcome, detail, duration_ms,"
            " phase, stable_version, canary_version, target_version, weight, step, revision)"
            " VALUES (?, 'ann', 'shop', 'production', 'promote', ?, 'ok', '', 1.5, 'Paused', '1.0.0',"
            " '1.1.0', '1.1.0', ?, ?, 1)",
            (1000.0 + n, f"old {n}", n * 10, n),
        )
    db.execute("INSERT INTO revisions (service, env, number, version, ts, user) VALUES "
               "('shop', 'production', 1, '1.0.0', 1.0, 'ann')")  # fmt: skip
    db.close()


def test_an_unversioned_journal_is_migrated_and_chained(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old_journal(path, 4)
    ro = Journal(path, read_only=True)
    before = ro.records()
    assert ro.verify() is not None and ro.verify().record_id == 0  # type: ignore[union-attr]
    ro.close()
    j = Journal(path)
    assert j.settings()["schema_version"] == SCHEMA_VERSION == 3
    assert j.records() == before  # nothing lost, nothing changed
    assert [r.version for r in j.revisions("shop", "production")] == ["1.0.0"]
    assert j.verify() is None  # the existing records got their chain
    j.append(service="shop", env="production", action="abort", outcome="ok", user="bob")
    assert j.verify() is None and j.count() == 5
    j.close()
    # The migration left the triggers in place.
    assert refused(path, "UPDATE journal SET outcome = 'forged'") == "the journal is append-only"
    # And a second open finds nothing to do.
    again = Journal(path)
    assert again.records() == [*before, again.records()[-1]] and again.verify() is None
    again.close()


def test_a_version_2_journal_gains_the_rollout_log_tables_and_keeps_its_records(tmp_path: Path) -> None:
    from cockpit.engine.journal import MIGRATIONS
    from cockpit.engine.store import KeptLine

    path = tmp_path / "journal.sqlite3"
    old_journal(path, 3)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    MIGRATIONS[1](db)  # 1 -> 2 by hand: a journal as the previous cockpit left it
    db.execute("PRAGMA user_version = 2")
    db.execute("COMMIT")
    db.close()
    ro = Journal(path, read_only=True)  # history on a journal not migrated yet: no kept logs, no error
    assert ro.rollout_log_for("shop", "production", 3) is None and ro.rollout_log_lines(1) == []
    before = ro.records()
    ro.close()
    j = Journal(path)
    assert j.settings()["schema_version"] == 3 and j.records() == before and j.verify() is None
    log_id = j.open_rollout_log("shop", "production", "1.2.0", 3, 5.0)
    j.keep_rollout_lines(log_id, [KeptLine(1, 5.0, "canary 1.2.0 #1", "boom")], keep=10)
    j.close_rollout_log(log_id, "Aborted", 6.0, 1)
    kept = j.rollout_log_for("shop", "production", 3)
    assert kept is not None and kept.finished and kept.outcome == "Aborted"
    assert [line.text for line in j.rollout_log_lines(log_id)] == ["boom"]
    assert j.verify() is None  # kept lines are beside the chain, not in it
    j.close()


def test_a_journal_from_a_newer_cockpit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalWriteError, match=r"schema version 99 is newer than this cockpit knows \(3\)"):
        Journal(path)


# --------------------------------------------------------------------------- redaction


def test_every_text_field_is_redacted_before_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"hunter-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("COCKPIT_TEST_JOURNAL_SECRET", value)
    assert secrets.resolve("env:COCKPIT_TEST_JOURNAL_SECRET") == value
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    j.append(service=f"shop-{value}", env=f"prod-{value}", action=f"rollout {value}", outcome=f"ok {value}",
             user=f"ann {value}", reason=f"typed {value}", detail=f"detail {value}", phase=f"P {value}",
             stable_version=value, canary_version=value, target_version=value)  # fmt: skip
    j.add_revision("shop", "production", Revision(2, f"2.0-{value}", 1.0, f"bob {value}"))
    (record,) = j.records()
    texts = [v for v in record.to_json().values() if isinstance(v, str)]
    assert len(texts) == 11 and all(secrets.MASK in t and value not in t for t in texts)
    assert value not in repr(j.revisions("shop", "production"))
    j.close()
    # Nowhere on disk either (database, write-ahead log).
    for side in tmp_path.iterdir():
        assert value.encode() not in side.read_bytes(), side


# --------------------------------------------------------------------------- write failures


def test_a_full_disk_is_a_journal_write_error_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"tok-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("COCKPIT_TEST_FULL_SECRET", value)
    secrets.resolve("env:COCKPIT_TEST_FULL_SECRET")
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    j.append(service="s", env="e", action="rollout", outcome="ok", user="u")
    # A real SQLITE_FULL: the database may not grow past the pages it has. max_page_count
    # is a setting of the connection, so it is pinned on the journal's own one.
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    assert j._db.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0] == pages
    with pytest.raises(JournalWriteError) as caught:
        j.append(service="s", env="e", action="promote", outcome="ok", user="u", detail=f"{value} " * 5000)
    message = str(caught.value)
    assert message.startswith(f"cannot write a 'promote' record to the journal {path}: ")
    assert "database or disk is full (SQLITE_FULL)" in message and value not in message
    with pytest.raises(JournalWriteError, match="SQLITE_FULL"):
        j.add_revision("s", "e", Revision(2, "2.0-" + "v" * 100_000, 1.0, "u"))
    assert j.count() == 1 and not j._db.in_transaction  # rolled back, the connection still usable
    j._db.execute("PRAGMA max_page_count = 1073741823")  # the disk is freed
    assert j.append(service="s", env="e", action="abort", outcome="ok", user="u") == 2
    assert j.verify() is None
    j.close()


def test_a_refused_record_leaves_the_journal_usable(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.sqlite3")
    # SQLite stores NaN as NULL: the hash must cover what is stored, not what was given.
    j.append(service="s", env="e", action="promote", outcome="ok", user="u", duration_ms=float("nan"))
    assert j.records()[0].duration_ms is None and j.verify() is None
    # A constraint failure rolls back only the statement; the transaction must go too,
    # or every later write would fail with "cannot start a transaction within a transaction".
    with pytest.raises(JournalWriteError, match=r"NOT NULL constraint failed: journal\.ts"):
        j.append(service="s", env="e", action="abort", outcome="ok", user="u", ts=float("nan"))
    assert j.append(service="s", env="e", action="abort", outcome="ok", user="u") == 2
    assert j.verify() is None
    j.close()


WRITE_ONCE = """
import sys
from pathlib import Path
from cockpit.engine.journal import Journal, JournalWriteError
try:
    Journal(Path(sys.argv[1])).append(service="s", env="e", action="abort", outcome="ok", user="u")
except JournalWriteError as err:
    print(f"JournalWriteError: {err}")
    sys.exit(3)
print("written")
"""


def write_without_override(path: Path) -> subprocess.CompletedProcess[str]:
    """Append once in a process that file modes bind: root overrides them, so as root
    the process runs without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH."""
    command = [sys.executable, "-c", WRITE_ONCE, str(path)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            message = "a read-only journal cannot be tested as root without setpriv (util-linux)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)


@pytest.mark.parametrize(
    ("file_mode", "dir_mode", "reason"),
    [
        (0o400, 0o700, "attempt to write a readonly database (SQLITE_READONLY)"),
        (0o600, 0o500, "attempt to write a readonly database (SQLITE_READONLY_DIRECTORY)"),
    ],
    ids=["read-only-file", "read-only-dir"],
)
def test_a_read_only_journal_is_a_journal_write_error(
    tmp_path: Path, file_mode: int, dir_mode: int, reason: str
) -> None:
    state = tmp_path / "state"
    path = state / "journal.sqlite3"
    five_records(path)
    assert write_without_override(path).stdout.strip() == "written"  # the control: writable, it writes
    path.chmod(file_mode)
    state.chmod(dir_mode)
    try:
        result = write_without_override(path)
    finally:
        state.chmod(0o700)
        path.chmod(0o600)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == f"JournalWriteError: cannot open the journal {path} for writing: {reason}"
    assert "Traceback" not in result.stderr
    assert Journal(path, read_only=True).count() == 6


# --------------------------------------------------------------------------- demo --reset

KILLED_WRITER = """
import sys, time
from pathlib import Path
from cockpit.engine.journal import Journal
j = Journal(Path(sys.argv[1]))
for n in range(1, 21):
    j.append(service="demo", env="production", action="promote", outcome="ok", user="ann", reason=f"r{n}")
print("done", flush=True)
time.sleep(60)
"""


def test_demo_reset_keeps_a_readable_copy_of_the_old_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    # A cockpit killed mid-demo: its records are still in journal.sqlite3-wal.
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Path(f"{path}-wal").stat().st_size > 0
    kept = keep_aside(path)
    assert kept is not None and kept.parent == tmp_path and kept.name.endswith(".old")
    assert not path.exists() and not Path(f"{path}-wal").exists()  # the next start is fresh
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert not Path(f"{kept}-wal").exists()  # one self-contained file
    copy = Journal(kept, read_only=True)
    assert [r.reason for r in copy.records()] == [f"r{n}" for n in range(1, 21)]
    assert copy.verify() is None
    copy.close()
    assert keep_aside(path) is None  # nothing to keep: nothing happens


def test_demo_reset_refuses_bad_input_before_touching_the_journal(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    five_records(demo / "journal.sqlite3")
    result = cockpit_cli("demo", "--reset", "--headless", state=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --headless needs --version (for example --version 1.1.0)"
    assert sorted(p.name for p in demo.iterdir()) == ["journal.sqlite3"]
