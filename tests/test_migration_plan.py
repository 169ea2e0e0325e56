"""The plan checks of ``[[migrations]]`` and ``[environments.database]``: each problem is
refused at its field, with what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.plan.loader import PlanError, load_plan, parse_plan


def plan_text(database: str, migrations: str, secrets: str = 'pg = "env:PG_PASSWORD"') -> str:
    return f"""
[service]
name = "shop"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.database]
  {database}
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]

[strategy.canary]
steps = [{{ set_weight = 50 }}]

[secrets]
{secrets}

{migrations}
"""


EXPAND = """
[[migrations]]
name = "add-name"
release = "1.1.0"
phase = "expand"
up = { sql = "ALTER TABLE orders ADD COLUMN customer_name text;" }
down = { sql = "ALTER TABLE orders DROP COLUMN customer_name;" }
"""

CONTRACT = """
[[migrations]]
name = "drop-customer"
release = "1.1.0"
phase = "contract"
irreversible = true
up = { sql = "ALTER TABLE orders DROP COLUMN customer;" }
"""

SQLITE = 'url = "sqlite:///{state_dir}/{env}.db"'


def issues(text: str, file: str = "plan.toml") -> list[str]:
    with pytest.raises(PlanError) as err:
        parse_plan(text, file)
    return [str(i) for i in err.value.issues]


def test_a_good_plan_parses() -> None:
    plan = parse_plan(
        plan_text('url = "postgresql://cockpit@db:5432/shop"\n  password = "pg"', EXPAND + CONTRACT)
    )
    assert [m.name for m in plan.migrations] == ["add-name", "drop-customer"]
    assert parse_plan(plan_text(SQLITE, EXPAND)).environments[0].database is not None


def test_duplicate_names_are_refused() -> None:
    (issue,) = issues(plan_text(SQLITE, EXPAND + EXPAND))
    assert "migrations[1].name" in issue and "'add-name' is defined twice" in issue


def test_contract_before_its_expand_is_refused() -> None:
    (issue,) = issues(plan_text(SQLITE, CONTRACT + EXPAND))
    assert "migrations[0].phase" in issue and "comes before expand 'add-name' of 1.1.0" in issue
    # A later release's expand after an earlier contract is the normal order.
    later = EXPAND.replace('"1.1.0"', '"1.2.0"').replace("add-name", "add-email")
    parse_plan(plan_text(SQLITE, EXPAND + CONTRACT + later))


def test_password_in_url_is_refused_without_echoing_it() -> None:
    (issue,) = issues(plan_text('url = "postgresql://cockpit:S3cretPass@db/shop"', EXPAND))
    assert "environments[0].database.url" in issue and "holds a password" in issue
    assert "S3cretPass" not in issue


def test_sqlite_path_must_be_absolute_and_password_known() -> None:
    (issue,) = issues(plan_text('url = "sqlite://shop.db"', EXPAND))
    assert "database.url" in issue and "sqlite:///absolute" in issue
    (issue,) = issues(plan_text('url = "postgresql://cockpit@db/shop"\n  password = "nope"', EXPAND))
    assert "database.password" in issue and "names no [secrets] entry" in issue


def test_sql_files_must_exist_next_to_the_plan(tmp_path: Path) -> None:
    step = EXPAND.replace(
        '{ sql = "ALTER TABLE orders ADD COLUMN customer_name text;" }', '{ file = "sql/up.sql" }'
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text(SQLITE, step))
    with pytest.raises(PlanError) as err:
        load_plan(plan)
    (issue,) = [str(i) for i in err.value.issues]
    assert "migrations[0].up.file" in issue and "no such SQL file" in issue and "sql/up.sql" in issue
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "up.sql").write_text("SELECT 1;")
    assert load_plan(plan).migrations[0].up.file == "sql/up.sql"


def test_command_secret_env_must_name_a_secret() -> None:
    step = EXPAND.replace(
        '{ sql = "ALTER TABLE orders ADD COLUMN customer_name text;" }',
        '{ command = ["alembic", "upgrade", "head"], secret_env = { DB_PASSWORD = "missing" } }',
    )
    (issue,) = issues(plan_text(SQLITE, step))
    assert "migrations[0].up.secret_env.DB_PASSWORD" in issue and "names no [secrets] entry" in issue
