"""The demo shop's orders table and its one schema change, tied to release 1.1.0.

* ``1.0.0`` writes and reads ``orders.customer`` (the baseline). A service that finds no
  ``orders`` table creates it as its own version reads it (:func:`create_table`): the
  demo's environments all start at 1.0.0, so their databases start at the baseline.
* 1.1.0's **expand** (``orders-customer-name``) adds ``customer_name``, backfills it from
  ``customer`` and keeps the two in step with triggers while 1.0.0 and 1.1.0 both run
  (pgroll's model). Reversible.
* ``1.1.0`` (and later) writes and reads ``customer_name`` only.
* 1.1.0's **contract** (``drop-customer``) drops the triggers and ``customer``.
  Irreversible, and it breaks every 1.0.0 process still running: their queries name a
  column that is gone. That is why the cockpit refuses it while 1.0.0 runs anywhere.

The SQL is kept here per dialect (SQLite for the embedded demo's per-environment files,
PostgreSQL for a ``postgresql://`` database); :func:`migrations_toml` writes the plan's
``[[migrations]]`` tables from it, and the demo plans carry that text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cockpit.migrations.order import release_key

Dialect = Literal["sqlite", "postgresql"]

RENAME_RELEASE = "1.1.0"  # the first version that reads and writes customer_name
EXPAND_STEP = "orders-customer-name"
CONTRACT_STEP = "drop-customer"


def customer_column(version: str) -> str:
    """The column a version of the service reads and writes."""
    return "customer_name" if release_key(version) >= release_key(RENAME_RELEASE) else "customer"


# The 1.0.0 schema. SQLite checks NOT NULL before an AFTER trigger could fill the column
# 1.1.0 no longer writes, so ``customer`` is nullable there; PostgreSQL's BEFORE trigger
# fills it first, so it stays NOT NULL.
BASELINE: dict[Dialect, str] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS orders ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT, "
        "total_cents INTEGER NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ),
    "postgresql": (
        "CREATE TABLE IF NOT EXISTS orders ("
        "id bigserial PRIMARY KEY, customer text NOT NULL, "
        "total_cents integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    ),
}


def create_table(dialect: Dialect, version: str) -> str:
    """``CREATE TABLE IF NOT EXISTS orders`` as ``version`` reads it: the baseline for
    1.0.0, the contracted schema (``customer_name`` only) for 1.1.0 and later."""
    ddl = BASELINE[dialect]
    if customer_column(version) == "customer_name":
        ddl = ddl.replace("customer text NOT NULL", "customer_name text NOT NULL")
        ddl = ddl.replace("customer TEXT", "customer_name TEXT")
    return ddl


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    phase: Literal["expand", "contract"]
    up: str
    down: str | None  # None: irreversible


SQLITE_STEPS = (
    Step(
        EXPAND_STEP,
        "expand",
        up="""
ALTER TABLE orders ADD COLUMN customer_name TEXT;
UPDATE orders SET customer_name = customer WHERE customer_name IS NULL;
-- While 1.0.0 (customer) and 1.1.0 (customer_name) both write, each insert fills the other.
CREATE TRIGGER orders_customer_to_name AFTER INSERT ON orders
  WHEN NEW.customer_name IS NULL AND NEW.customer IS NOT NULL
  BEGIN UPDATE orders SET customer_name = NEW.customer WHERE id = NEW.id; END;
CREATE TRIGGER orders_name_to_customer AFTER INSERT ON orders
  WHEN NEW.customer IS NULL AND NEW.customer_name IS NOT NULL
  BEGIN UPDATE orders SET customer = NEW.customer_name WHERE id = NEW.id; END;
""",
        down="""
DROP TRIGGER IF EXISTS orders_customer_to_name;
DROP TRIGGER IF EXISTS orders_name_to_customer;
ALTER TABLE orders DROP COLUMN customer_name;
""",
    ),
    Step(
        CONTRACT_STEP,
        "contract",
        up="""
DROP TRIGGER IF EXISTS orders_customer_to_name;
DROP TRIGGER IF EXISTS orders_name_to_customer;
ALTER TABLE orders DROP COLUMN customer;
""",
        down=None,
    ),
)

POSTGRES_STEPS = (
    Step(
        EXPAND_STEP,
        "expand",
        up="""
ALTER TABLE orders ADD COLUMN customer_name text;
UPDATE orders SET customer_name = customer WHERE customer_name IS NULL;
-- While 1.0.0 (customer) and 1.1.0 (customer_name) both write, each write fills the other,
-- before the NOT NULL check on customer.
CREATE FUNCTION orders_sync_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.customer IS DISTINCT FROM OLD.customer THEN
    NEW.customer_name := NEW.customer;
  ELSIF TG_OP = 'UPDATE' AND NEW.customer_name IS DISTINCT FROM OLD.customer_name THEN
    NEW.customer := NEW.customer_name;
  ELSE
    NEW.customer := coalesce(NEW.customer, NEW.customer_name);
    NEW.customer_name := coalesce(NEW.customer_name, NEW.customer);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER orders_sync_customer BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_sync_customer();
""",
        down="""
DROP TRIGGER IF EXISTS orders_sync_customer ON orders;
DROP FUNCTION IF EXISTS orders_sync_customer();
ALTER TABLE orders DROP COLUMN customer_name;
""",
    ),
    Step(
        CONTRACT_STEP,
        "contract",
        up="""
DROP TRIGGER IF EXISTS orders_sync_customer ON orders;
DROP FUNCTION IF EXISTS orders_sync_customer();
ALTER TABLE orders DROP COLUMN customer;
""",
        down=None,
    ),
)

STEPS: dict[Dialect, tuple[Step, ...]] = {"sqlite": SQLITE_STEPS, "postgresql": POSTGRES_STEPS}


def _toml_text(sql: str) -> str:
    # A TOML multi-line literal string: no escapes, so the SQL reads as written.
    assert "'''" not in sql
    return "'''" + sql.strip("\n") + "\n'''"


def migrations_toml(dialect: Dialect) -> str:
    """The ``[[migrations]]`` tables of the demo's schema change in ``dialect``."""
    out = []
    for step in STEPS[dialect]:
        lines = [
            "[[migrations]]",
            f'name = "{step.name}"',
            f'release = "{RENAME_RELEASE}"',
            f'phase = "{step.phase}"',
        ]
        if step.down is None:
            lines.append("irreversible = true")
        lines.append(f"up.sql = {_toml_text(step.up)}")
        if step.down is not None:
            lines.append(f"down.sql = {_toml_text(step.down)}")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
