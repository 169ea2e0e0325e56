"""The demo service's orders database: SQLite (a file, or private memory by default) or
PostgreSQL (``postgresql://`` URL, psycopg imported only then; the password comes from
``PGPASSWORD`` in the environment, never from the command line).

Each version reads and writes the column of its schema (:func:`schema.customer_column`),
so a schema change the running version does not expect fails its requests for real.
Calls are blocking and run on one worker thread: one connection, used in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cockpit.demo.schema import Dialect, create_table, customer_column

T = TypeVar("T")
MEMORY = "sqlite:///:memory:"
BUSY_TIMEOUT_MS = 5000  # a migration holding the SQLite write lock delays requests, not fails them


class OrdersDbError(Exception):
    """The database cannot be opened; ``str(err)`` says why (never with a password)."""


def dialect_of(url: str) -> Dialect:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise OrdersDbError(f"--db must be sqlite:///path.db or postgresql://user@host/db, not {scheme or url!r}")


class OrdersDb:
    def __init__(self, url: str, version: str) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.version = version
        self.column = customer_column(version)
        self._conn: Any = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orders-db")

    # ------------------------------------------------------------------ blocking side

    def open(self) -> None:
        """Connect, and create the table as this version reads it when there is none yet."""
        try:
            self._conn = self._connect()
            self._create_baseline()
        except OrdersDbError:
            raise
        except Exception as exc:  # sqlite3.Error, psycopg.Error: both name the problem
            raise OrdersDbError(f"cannot open the orders database: {exc}") from None

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            path = self.url[len("sqlite:///") :] if self.url.startswith("sqlite:///") else ""
            if not path:
                raise OrdersDbError("a sqlite URL is sqlite:///path.db (or sqlite:///:memory:)")
            path = path if path == ":memory:" else "/" + path.lstrip("/")
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            return conn
        import psycopg  # only a PostgreSQL demo needs it (the `migrations` extra)

        # libpq reads PGPASSWORD itself; the URL carries none.
        return psycopg.connect(self.url, autocommit=True, application_name="cockpit-demo-shop")

    def _create_baseline(self) -> None:
        ddl = create_table(self.dialect, self.version)
        try:
            self._conn.execute(ddl)
        except Exception:
            # Two replicas starting together can both try the CREATE; the loser sees the
            # winner's table (PostgreSQL reports a duplicate type). Try once more.
            self._conn.execute(ddl)

    def _create(self, customer: str, total_cents: int) -> int:
        sql = f"INSERT INTO orders ({self.column}, total_cents) VALUES (%s, %s) RETURNING id"
        with self._lock:
            row = self._conn.execute(self._param(sql), (customer, total_cents)).fetchone()
        return int(row[0])

    def _recent(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            count = self._conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            rows = self._conn.execute(
                self._param(f"SELECT id, {self.column}, total_cents FROM orders ORDER BY id DESC LIMIT %s"),
                (limit,),
            ).fetchall()
        return int(count), [{"id": r[0], "customer": r[1], "total_cents": r[2]} for r in rows]

    def _param(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.dialect == "sqlite" else sql

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ async side

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        await self._run(self.open)

    async def create_order(self, customer: str, total_cents: int) -> int:
        return await self._run(self._create, customer, total_cents)

    async def recent_orders(self, limit: int = 5) -> tuple[int, list[dict[str, Any]]]:
        return await self._run(self._recent, limit)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)
