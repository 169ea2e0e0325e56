"""Fixtures for the tests that need a real PostgreSQL.

scripts/test.sh starts one cluster per run (scripts/servers.sh: loopback, scram password for
the role ``cockpit``) and exports ``COCKPIT_TEST_POSTGRES=1``, ``COCKPIT_TEST_POSTGRES_URL``
(no password in it) and ``COCKPIT_TEST_POSTGRES_PASSWORD``. Run by hand without it these
tests skip with the reason; in CI a missing server fails them (``require_server``).

* ``postgres_db``: a fresh database per test (``CREATE DATABASE``, dropped after, with any
  connection a test left behind), as a :class:`PgDatabase`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from cockpit.migrations.open import open_target
from cockpit.migrations.runner import SqlTarget
from cockpit.plan.migrations import Database
from tests.conftest import require_server


@dataclass(frozen=True)
class PgDatabase:
    url: str  # postgresql://cockpit@127.0.0.1:PORT/NAME, no password
    password: str = field(repr=False)  # a failing test prints the fixture: never the password
    name: str

    def connect(self, **kw: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url, password=self.password, autocommit=True, **kw)

    def target(self, **db: Any) -> SqlTarget:
        """This database as a runner, its password from a ``[secrets]`` entry named "pg"."""
        secrets = {"pg": self.password}
        t = open_target(
            Database(url=self.url, password="pg", **db),
            service="shop", env="staging", state_dir="/", secret=secrets.__getitem__,
        )  # fmt: skip
        assert isinstance(t, SqlTarget)
        return t

    def tables(self) -> set[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        return {r[0] for r in rows}


@pytest.fixture(scope="session")
def postgres_server() -> tuple[str, str]:
    require_server("COCKPIT_TEST_POSTGRES", "PostgreSQL (scripts/servers.sh)")
    return os.environ["COCKPIT_TEST_POSTGRES_URL"], os.environ["COCKPIT_TEST_POSTGRES_PASSWORD"]


@pytest.fixture
def postgres_db(postgres_server: tuple[str, str]) -> Iterator[PgDatabase]:
    import psycopg
    from psycopg import sql

    url, password = postgres_server
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, password=password, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = url.rsplit("/", 1)[0]
    try:
        yield PgDatabase(f"{base}/{name}", password, name)
    finally:
        with psycopg.connect(url, password=password, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
