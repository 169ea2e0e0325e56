"""A database URL of the plan, filled and checked: where a runner connects, and how it is
described to people (never with a password)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from cockpit.migrations.api import MigrationError

POSTGRES_SCHEMES = ("postgresql", "postgres")


class BadDatabaseUrl(MigrationError):
    """The plan's database URL cannot be used: says why."""


@dataclass(frozen=True, slots=True)
class SqliteUrl:
    path: Path

    @property
    def description(self) -> str:
        return f"sqlite:///{str(self.path).lstrip('/')}"


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    conninfo: str  # the URL as psycopg takes it, without a password
    user: str
    host: str
    port: int | None
    dbname: str

    @property
    def description(self) -> str:
        port = f":{self.port}" if self.port else ""
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.host}{port}/{self.dbname}"


DatabaseUrl = SqliteUrl | PostgresUrl


def fill(url: str, *, service: str, env: str, state_dir: Path | str) -> str:
    """The URL with ``{state_dir}``, ``{env}`` and ``{service}`` filled in."""
    return (
        url.replace("{state_dir}", str(Path(state_dir).absolute()))
        .replace("{env}", env)
        .replace("{service}", service)
    )


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (squawk lints only PostgreSQL's SQL)."""
    return url.split(":", 1)[0].lower() in POSTGRES_SCHEMES


def has_password(url: str) -> bool:
    """Whether a postgresql:// URL carries a password (in its user part or a query key)."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return True
    except ValueError:
        return False
    return any(p.split("=", 1)[0].lower() == "password" for p in parts.query.split("&") if p)


def parse(url: str) -> DatabaseUrl:
    """A filled URL as a target: ``sqlite:///abs/path.db`` or ``postgresql://user@host:port/db``.
    Raises :class:`BadDatabaseUrl` naming the problem (never echoing a password)."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise BadDatabaseUrl("a sqlite URL is sqlite:///absolute/path.db")
        # sqlite:///abs/path and sqlite:////abs/path (SQLAlchemy's spelling) are both absolute.
        raw = "/" + unquote(url[len("sqlite:///") :].split("?", 1)[0]).lstrip("/")
        path = Path(raw)
        if raw == "/" or ".." in path.parts:
            raise BadDatabaseUrl(f"the sqlite path must be absolute (no '..') after placeholders: {raw!r}")
        return SqliteUrl(path)
    if scheme in POSTGRES_SCHEMES:
        if has_password(url):
            raise BadDatabaseUrl(
                "the database URL holds a password: remove it and name a [secrets] entry in 'password'"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as err:
            raise BadDatabaseUrl(f"the PostgreSQL URL cannot be read: {err}") from None
        dbname = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not dbname:
            raise BadDatabaseUrl("a PostgreSQL URL is postgresql://user@host:port/dbname")
        user = unquote(parts.username or "")
        host = parts.hostname
        netloc = (quote(user, safe="") + "@" if user else "") + (f"[{host}]" if ":" in host else host)
        netloc += f":{port}" if port else ""
        conninfo = f"postgresql://{netloc}/{quote(dbname, safe='')}" + (
            f"?{parts.query}" if parts.query else ""
        )
        return PostgresUrl(conninfo, user, host, port, dbname)
    shown = url.split("://", 1)[0] if "://" in url else url[:20]
    raise BadDatabaseUrl(f"unsupported database URL {shown!r}: use postgresql:// or sqlite:///")
