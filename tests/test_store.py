"""The Store contract: what every journal store promises the engine, run against each kind.

SQLite is the only kind today. A PostgreSQL store (with pairing) joins by adding one entry
to :data:`KINDS`, a way to open it; every test below then runs against it unchanged.
SQLite's own promises (WAL, file modes, kill -9, migrations) stay in tests/test_journal.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cockpit import paths, secrets
from cockpit.engine.state import Revision
from cockpit.engine.store import (
    GENESIS,
    JournalWriteError,
    Record,
    SQLiteStore,
    Store,
    StoreSettings,
    chain_hash,
    open_store,
)
from cockpit.plan import parse_plan

# A kind of store: given a fresh directory, a function that opens the same store (again
# after close, or read-only beside a writer).
Opener = Callable[..., Store]
KINDS: dict[str, Callable[[Path], Opener]] = {
    "sqlite": lambda where: (
        lambda read_only=False: open_store(
            StoreSettings("sqlite", where / "journal.sqlite3"), where, read_only=read_only
        )
    ),
}


@pytest.fixture(params=sorted(KINDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return KINDS[request.param](tmp_path)


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    opened = opener()
    yield opened
    opened.close()


def write(store: Store, n: int = 1, **fields: object) -> list[int]:
    given: dict[str, object] = {"service": "shop", "env": "production", "action": "promote", "outcome": "ok"}
    given["user"] = "ann (root)"
    given.update(fields)
    return [store.append(**given) for _ in range(n)]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- shape


def test_the_store_has_every_method_of_the_interface_with_its_signature(store: Store) -> None:
    assert isinstance(store, Store)
    members = [name for name in vars(Store) if not name.startswith("_") and callable(getattr(Store, name))]
    assert {"append", "add_revision", "revisions", "records", "last_snapshot", "verify", "count"} <= set(
        members
    )
    for name in members:
        wanted = inspect.signature(getattr(Store, name))
        given = inspect.signature(getattr(type(store), name))
        # Same names, kinds and defaults: the engine calls with keywords and relies on defaults.
        assert [(p.name, p.kind, p.default) for p in given.parameters.values()] == [
            (p.name, p.kind, p.default) for p in wanted.parameters.values()
        ], name


# --------------------------------------------------------------------------- records


def test_ids_start_at_one_and_rise_by_one(store: Store) -> None:
    assert store.count() == 0 and store.records() == []
    assert write(store, 3) == [1, 2, 3]
    assert store.count() == 3


def test_a_record_reads_back_as_written(store: Store) -> None:
    store.append(
        service="shop", env="production", action="set-weight", outcome="ok", user="ann (root)",
        reason="checking", detail="10 -> 20", duration_ms=12.5, phase="Paused", stable_version="1.0.0",
        canary_version="1.1.0", target_version="1.1.0", weight=20, step=2, revision=3, ts=1234.5,
    )  # fmt: skip
    write(store, outcome="refused", ts=1300.0)
    first, second = store.records()
    assert first == Record(
        1, 1234.5, "ann (root)", "shop", "production", "set-weight", "checking", "ok", "10 -> 20",
        12.5, "Paused", "1.0.0", "1.1.0", "1.1.0", 20, 2, 3,
    )  # fmt: skip
    assert (second.reason, second.detail, second.duration_ms, second.phase, second.weight) == (
        "",
        "",
        None,
        None,
        None,
    )
    assert second.ts == 1300.0


def test_records_are_the_newest_oldest_first_and_filter(store: Store) -> None:
    for n in range(6):
        write(store, env="production" if n % 2 else "staging", detail=f"record {n}")
    write(store, service="other", detail="elsewhere")
    assert [r.id for r in store.records()] == [1, 2, 3, 4, 5, 6, 7]
    assert [r.id for r in store.records(limit=2)] == [6, 7]
    assert [r.id for r in store.records(service="shop", env="production")] == [2, 4, 6]
    assert [r.id for r in store.records(service="shop", env="production", limit=1)] == [6]
    assert [r.id for r in store.records(after_id=5)] == [6, 7]
    assert [r.id for r in store.records(text="elsewhere")] == [7]
    assert [r.id for r in store.records(text="ann")] == [1, 2, 3, 4, 5, 6, 7]  # the user is searched too


def test_last_snapshot_is_the_newest_record_with_a_phase(store: Store) -> None:
    assert store.last_snapshot("shop", "production") is None
    write(store, phase="Progressing", weight=10)
    write(store, phase="Paused", weight=20)
    write(store)  # no phase: not a snapshot
    write(store, env="staging", phase="Aborted")
    snapshot = store.last_snapshot("shop", "production")
    assert snapshot is not None and (snapshot.id, snapshot.phase, snapshot.weight) == (2, "Paused", 20)
    assert store.last_snapshot("shop", "dev") is None


def test_revisions_are_per_environment_newest_kept_oldest_first(store: Store) -> None:
    assert store.revisions("shop", "production") == []
    for n in range(1, 5):
        store.add_revision("shop", "production", Revision(n, f"1.{n}.0", float(n), "ann"))
    store.add_revision("shop", "staging", Revision(1, "9.0.0", 9.0, "bob"))
    assert [r.number for r in store.revisions("shop", "production")] == [1, 2, 3, 4]
    assert store.revisions("shop", "production", limit=2) == [
        Revision(3, "1.3.0", 3.0, "ann"),
        Revision(4, "1.4.0", 4.0, "ann"),
    ]
    assert store.revisions("shop", "staging") == [Revision(1, "9.0.0", 9.0, "bob")]


def test_text_is_redacted_before_it_is_stored(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    value = f"hunter-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("COCKPIT_TEST_STORE_SECRET", value)
    assert secrets.resolve("env:COCKPIT_TEST_STORE_SECRET") == value
    write(store, reason=f"typed {value}", detail=f"detail {value}", user=f"ann {value}")
    store.add_revision("shop", "production", Revision(2, f"2.0-{value}", 1.0, f"bob {value}"))
    assert value not in repr(store.records()) and value not in repr(store.revisions("shop", "production"))
    assert secrets.MASK in store.records()[0].reason


# --------------------------------------------------------------------------- the chain


def test_the_head_is_the_shared_hash_chain_over_every_record(store: Store) -> None:
    assert store.head() == GENESIS and store.verify() is None
    write(store, 3, detail="x")
    previous = GENESIS
    for record in store.records():
        # Every store hashes the same canonical content, so a head noted from one store
        # pins the same past in another.
        previous = chain_hash(previous, tuple(dataclasses.astuple(record)))
    assert store.head() == previous
    assert store.verify() is None


# --------------------------------------------------------------------------- lifecycle


def test_records_outlive_the_store_and_ids_keep_rising(opener: Opener) -> None:
    first = opener()
    write(first, 2)
    head = first.head()
    first.close()
    again = opener()
    assert (again.count(), again.head()) == (2, head)
    assert write(again) == [3]
    assert again.verify() is None
    again.close()


def test_a_read_only_store_reads_and_never_writes(opener: Opener) -> None:
    writer = opener()
    write(writer, 2)
    reader = opener(read_only=True)
    assert reader.read_only and not writer.read_only
    assert [r.id for r in reader.records()] == [1, 2] and reader.head() == writer.head()
    assert write(reader) == [0]
    reader.add_revision("shop", "production", Revision(1, "1.0.0", 1.0, "ann"))
    assert writer.count() == 2 and writer.revisions("shop", "production") == []
    reader.close()
    writer.close()


def test_a_write_that_fails_is_a_journal_write_error(opener: Opener) -> None:
    store = opener()
    store.close()
    # Never the driver's own exception: the engine catches exactly this one.
    with pytest.raises(JournalWriteError):
        write(store)
    with pytest.raises(JournalWriteError):
        store.add_revision("shop", "production", Revision(1, "1.0.0", 1.0, "ann"))


# --------------------------------------------------------------------------- the factory


DEMO = Path(__file__).resolve().parent.parent / "cockpit" / "demo" / "plan.toml"


def test_a_plan_gets_the_sqlite_store_in_its_state_dir(tmp_path: Path) -> None:
    plan = parse_plan(DEMO.read_text(), DEMO)
    store = open_store(plan, tmp_path)
    assert isinstance(store, SQLiteStore) and store.path == paths.journal_path(tmp_path)
    store.close()


def test_a_read_only_store_of_nothing_creates_nothing(tmp_path: Path) -> None:
    store = open_store(None, tmp_path, read_only=True)
    assert store.records() == [] and store.head() == GENESIS
    store.close()
    assert not paths.journal_path(tmp_path).exists()


def test_an_unknown_kind_of_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown store kind 'postgres'"):
        open_store(StoreSettings("postgres"), tmp_path)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rollout logs


def test_rollout_lines_are_kept_bounded_redacted_and_read_only_drops_them(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cockpit.engine.store import KeptLine

    secret = "s3cret-" + uuid.uuid4().hex
    monkeypatch.setenv("COCKPIT_STORE_TEST_SECRET", secret)
    secrets.resolve("env:COCKPIT_STORE_TEST_SECRET")
    store = opener()
    try:
        first = write(store, env="dev", action="rollout", outcome="started")[0]
        log_id = store.open_rollout_log("shop", "dev", "1.2.0", first, 10.0)
        lines = [KeptLine(n, 10.0 + n, "canary 1.2.0 #1", f"line {n} token={secret}") for n in range(1, 31)]
        store.keep_rollout_lines(log_id, lines[:20], keep=25)
        store.keep_rollout_lines(log_id, lines[20:], keep=25)
        kept = store.rollout_log_lines(log_id)
        assert [line.seq for line in kept] == list(range(6, 31))  # the newest 25
        assert all(secret not in line.text and secrets.MASK in line.text for line in kept)
        later = write(store, env="dev", action="abort", outcome="ok")[0]
        found = store.rollout_log_for("shop", "dev", later)
        assert found is not None and found.id == log_id and not found.finished
        store.close_rollout_log(log_id, "Aborted", 50.0, 30)
        found = store.rollout_log_for("shop", "dev", later)
        assert found is not None and found.finished and found.outcome == "Aborted" and found.lines_seen == 30
        assert store.rollout_log_for("shop", "dev", first - 1) is None
    finally:
        store.close()
    reader = opener(read_only=True)
    try:
        assert reader.open_rollout_log("shop", "dev", "9.9.9", 1, 1.0) == 0
        assert len(reader.rollout_log_lines(log_id)) == 25
    finally:
        reader.close()
