"""Broken plans by the hundred: each mutation of the demo plan must fail `cockpit check`
with exit 2 and a located message (file:LINE: or file:LINE:COL: and the field path),
never a traceback, and never print a secret value back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from cockpit.cli import cli

DEMO = resources.files("cockpit.demo").joinpath("plan.toml").read_text(encoding="utf-8")
SECRET = "s3cr3t-hunter2-value"


@dataclass(frozen=True)
class Mutation:
    id: str
    text: str
    path: str | None  # the field path the message must name; None: a TOML syntax error
    line: int | None = None  # the line it must point at, when the mutation knows it


def replaced(old: str, new: str, nth: int = 0) -> tuple[str, int]:
    """The demo plan with the nth ``old`` replaced by ``new``, and the line it stands on."""
    at = -1
    for _ in range(nth + 1):
        at = DEMO.index(old, at + 1)
    return DEMO[:at] + new + DEMO[at + len(old) :], DEMO.count("\n", 0, at) + 1


def value_mutations() -> list[Mutation]:
    """Every scalar of the demo plan given values of the wrong type, non-finite, negative
    or out of range."""
    targets = [
        # (text in the demo plan, key, nth occurrence, field path, bad values)
        ('name = "shop"', "name", 0, "service.name", ["5", "true", '"Shop!"', '""', "[]"]),
        ('name = "dev"', "name", 0, "environments[0].name", ["7", '"DEV"', "{}"]),
        (
            'initial_version = "1.0.0"',
            "initial_version",
            1,
            "environments[1].initial_version",
            ["1", "true", '"9.9.9"'],
        ),
        ('adapter = "local"', "adapter", 0, "environments[0].backend.adapter", ["1", '"nomad"', "[]"]),
        (
            "replicas = 1",
            "replicas",
            0,
            "environments[0].backend.options.replicas",
            ['"2"', "true", "-1", "0", "1.5", "nan", "99"],
        ),
        (
            "port = 18080",
            "port",
            0,
            "environments[0].backend.options.port",
            ['"18080"', "true", "-1", "70000", "inf", "18080.0"],
        ),
        (
            'versions = ["1.0.0", "1.1.0", "1.2.0"]',
            "versions",
            0,
            "environments[0].backend.options.versions",
            ['"1.0.0"', "[]", '["1.0.0", "1.0.0"]', "[1, 2]"],
        ),
        (
            next(line.strip() for line in DEMO.splitlines() if line.strip().startswith("command =")),
            "command",
            0,
            "environments[0].backend.options.command",
            ['["{pyth0n}"]', "[]", '"python"', '["{port"]'],
        ),
        ("protected = true", "protected", 0, "environments[2].protected", ['"off"', '"true"', "1", "0"]),
    ]
    out: list[Mutation] = []
    for old, key, nth, path, values in targets:
        for value in values:
            text, line = replaced(old, f"{key} = {value}", nth)
            out.append(Mutation(f"{path}={value}", text, path, line))
    return out


def step_and_check_mutations() -> list[Mutation]:
    out: list[Mutation] = []
    steps = "strategy.canary.steps"  # the demo's: [0] a smoke check, [1] 20 %, [2] a pause, [3] an analysis
    for value in ['"20"', "true", "-5", "101", "20.0", "nan"]:
        text, line = replaced("{ set_weight = 20 }", f"{{ set_weight = {value} }}")
        out.append(Mutation(f"set_weight={value}", text, f"{steps}[1].set_weight", line))
    for value in ["nan", "inf", "-1", '"soon"', "true", '"-5s"', '"99999h"', '"1e3s"']:
        text, line = replaced('{ pause = { duration = "5s" } }', f"{{ pause = {{ duration = {value} }} }}")
        out.append(Mutation(f"pause={value}", text, f"{steps}[2].pause.duration", line))
    for value in [
        "{ set_weight = 20, pause = {} }",
        "{}",
        '{ sleep = "5s" }',
        "{ analysis = { checks = [] } }",
    ]:
        text, line = replaced("{ set_weight = 20 }", value)
        out.append(Mutation(f"step={value}", text, f"{steps}[1]", line))
    text, line = replaced('checks = ["success-rate", "latency-p99"]', 'checks = ["success-rate", "p95"]')
    out.append(Mutation("unknown-check", text, f"{steps}[3].analysis.checks[1]", line))

    check = "analysis.checks[0]"
    for value in ["nan", "inf", "0", "-1", '"0s"', '"soon"', "true", '"nan"']:
        text, line = replaced('interval = "3s"', f"interval = {value}")
        out.append(Mutation(f"interval={value}", text, f"{check}.interval", line))
    for value in ['"3"', "true", "0", "-3", "3.5", "1001"]:
        text, line = replaced("count = 3", f"count = {value}")
        out.append(Mutation(f"count={value}", text, f"{check}.count", line))
    for value in [
        '{ op = ">=", threshold = nan }',
        '{ op = ">=", threshold = inf }',
        '{ op = ">=", threshold = -inf }',
        '{ op = ">=", threshold = "95" }',
        '{ op = "~", threshold = 95 }',
        '{ op = ">=" }',
        '{ op = ">=", threshold = 95, strict = true }',
        '"at least 95"',
        '">= nan"',
        "95",
        "true",
    ]:
        text, line = replaced('success = ">= 95"', f"success = {value}")
        out.append(Mutation(f"success={value}", text, f"{check}.success", line))
    for value in ['"p50"', "1", '""']:
        text, line = replaced('metric = "success-rate"', f"metric = {value}")
        out.append(Mutation(f"metric={value}", text, f"{check}.metric", line))
    for value in ['"10"', "true", "0", "101", "nan"]:
        text, line = replaced("history_limit = 10", f"history_limit = {value}")
        out.append(Mutation(f"history_limit={value}", text, "guardrails.history_limit", line))
    return out


def structure_mutations() -> list[Mutation]:
    """Unknown keys, deleted required keys, bad times, duplicates, contradictions."""
    out: list[Mutation] = []
    for old, new, path in [
        ("protected = true", "protectd = true", "environments[2].protectd"),
        ("replicas = 1", "replicaz = 1", "environments[0].backend.options.replicaz"),
        ('interval = "3s"', 'intervl = "3s"', "analysis.checks[0].intervl"),
        ("history_limit = 10", "history_limt = 10", "guardrails.history_limt"),
        ('description = "Demo web shop API"', 'descripton = "x"', "service.descripton"),
        ('adapter = "local"', 'adaptor = "local"', "environments[0].backend.adaptor"),
    ]:
        text, line = replaced(old, new)
        out.append(Mutation(f"unknown:{new}", text, path, line))
    for old, path in [
        ('initial_version = "1.0.0"\n', "environments[0].initial_version"),
        ('adapter = "local"\n', "environments[0].backend.adapter"),
        ('name = "shop"\n', "service.name"),
        ('name = "dev"\n', "environments[0].name"),
        ('metric = "success-rate"\n', "analysis.checks[0]"),
        ('success = ">= 95"\n', "analysis.checks[0].success"),
        ('versions = ["1.0.0", "1.1.0", "1.2.0"]\n', "environments[0].backend.options.versions"),
    ]:
        text, _ = replaced(old, "")
        out.append(Mutation(f"deleted:{old.strip()}", text, path))
    for start, end, which in [
        ('"25:99"', '"06:00"', "start"),
        ('"24:00"', '"06:00"', "start"),
        ('"7:00"', '"08:00"', "start"),
        ('"12:60"', '"13:00"', "start"),
        ('"22:00"', "900", "end"),
        ('"22:00"', '"22:00:00"', "end"),
        ('"22:00"', '"10pm"', "end"),
    ]:
        text = DEMO + f"\n[[guardrails.freeze]]\nstart = {start}\nend = {end}\n"
        line = text.count("\n") - (1 if which == "end" else 2) + 1
        out.append(Mutation(f"freeze-{which}={start}-{end}", text, f"guardrails.freeze[0].{which}", line))
    text = DEMO + '\n[[guardrails.freeze]]\nstart = "22:00"\nend = "22:00"\n'
    out.append(Mutation("freeze-empty", text, "guardrails.freeze[0]"))
    text = DEMO + '\n[[guardrails.freeze]]\nstart = "22:00"\nend = "06:00"\nenvironments = ["prod"]\n'
    out.append(Mutation("freeze-unknown-env", text, "guardrails.freeze[0].environments[0]"))
    text, line = replaced('name = "staging"', 'name = "dev"')
    out.append(Mutation("duplicate-env", text, "environments[1].name", line))
    text, line = replaced("port = 18081", "port = 18080")
    out.append(Mutation("duplicate-port", text, "environments[1].backend.options.port", line))
    text, line = replaced('name = "latency-p99"', 'name = "success-rate"')
    out.append(Mutation("duplicate-check", text, "analysis.checks", None))
    text, line = replaced('initial_version = "1.0.0"', 'initial_version = "0.9.0"', 2)
    out.append(Mutation("initial-not-in-versions", text, "environments[2].initial_version", line))
    text, _ = replaced("[strategy.canary]", "[strategy.rolling]\n[strategy.canary]")
    out.append(Mutation("two-strategies", text, "strategy"))
    return out


def toml_mutations() -> list[Mutation]:
    out: list[Mutation] = []
    for old, new in [
        ('name = "dev"', 'name = "dev'),
        ('name = "dev"', 'name "dev"'),
        ("replicas = 1", "replicas = 1\nreplicas = 2"),
        ("{ set_weight = 20 },", "{ set_weight = 20 ,"),
        ("[service]", "[service"),
        ("port = 18080", "port = 18_080_"),
        ("port = 18080", "port = 0x"),
        ('name = "shop"', "name = 'shop\n"),
    ]:
        text, _ = replaced(old, new)
        out.append(Mutation(f"toml:{new!r}", text, None))
    out.append(Mutation("toml:truncated", DEMO[: DEMO.index("{ set_weight = 50 }")], None))
    return out


def secret_mutations() -> list[Mutation]:
    """A secret value pasted where only a reference belongs: it must never be printed."""
    out = [Mutation("secrets-table", DEMO + f'\n[secrets]\ndb = "{SECRET}"\n', "secrets.db")]
    out.append(Mutation("secrets-number-key", DEMO + f'\n[secrets]\ndb = ["{SECRET}"]\n', "secrets.db"))
    for key, value, path in [
        ("port = 18080", f'port = "{SECRET}"', "port"),
        ("replicas = 1", f'replicas = "{SECRET}"', "replicas"),
        ("replicas = 1", f'api_token = "{SECRET}"', "api_token"),
        ("replicas = 1", f'env = ["{SECRET}"]', "env"),
        ("replicas = 1", f'health_path = "{SECRET}"', "health_path"),
        ('versions = ["1.0.0", "1.1.0", "1.2.0"]', f'versions = ["{SECRET}"]', None),
        ("replicas = 1", f'drain_timeout = "--token={SECRET}"', "drain_timeout"),
    ]:
        text, line = replaced(key, value)
        where = f"environments[0].backend.options.{path}" if path else "environments[0].initial_version"
        out.append(Mutation(f"secret:{value.split(' =')[0]}", text, where, line if path else None))
    text, line = replaced('initial_version = "1.0.0"', f'initial_version = "{SECRET}"')
    out.append(Mutation("secret:initial-version", text, "environments[0].initial_version", line))
    text, line = replaced('success = ">= 95"', f'success = "{SECRET}"')
    out.append(Mutation("secret:condition", text, "analysis.checks[0].success", line))
    # A broken plan elsewhere must not hide the pasted secret's error, nor print it.
    text, _ = replaced("count = 3", 'count = "3"')
    out.append(Mutation("secret-and-other", text + f'\n[secrets]\ndb = "{SECRET}"\n', "secrets.db"))
    return out


MUTATIONS = (
    value_mutations()
    + step_and_check_mutations()
    + structure_mutations()
    + toml_mutations()
    + secret_mutations()
)


def test_there_are_at_least_100_distinct_mutations() -> None:
    assert len(MUTATIONS) >= 100
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    assert len({m.text for m in MUTATIONS}) == len(MUTATIONS)  # no mutation left the plan as it was
    assert DEMO not in {m.text for m in MUTATIONS}


def assert_rejected(mutation: Mutation, file: str, code: int, out: str) -> None:
    assert "Traceback" not in out, out
    assert SECRET not in out, out
    assert code == 2, f"{mutation.id}: exit {code}\n{out}"
    if mutation.path is None:
        assert re.search(rf"^  {re.escape(file)}:\d+:\d+: \(plan\): not valid TOML: ", out, re.M), out
        return
    located = re.findall(
        rf"^  {re.escape(file)}:(\d+)(?::\d+)?: {re.escape(mutation.path)}(?=[:.\[])", out, re.M
    )
    assert located, f"{mutation.id}: no located message for {mutation.path}\n{out}"
    if mutation.line is not None:
        assert str(mutation.line) in located, f"{mutation.id}: expected line {mutation.line}\n{out}"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.id)
def test_broken_plan_is_rejected_with_a_located_error(
    mutation: Mutation, runner: CliRunner, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(mutation.text, encoding="utf-8")
    result = runner.invoke(cli, ["check", str(plan)])
    assert_rejected(mutation, str(plan), result.exit_code, result.output)


def test_the_demo_plan_itself_passes(runner: CliRunner, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(DEMO, encoding="utf-8")
    result = runner.invoke(cli, ["check", str(plan)])
    assert result.exit_code == 0, result.output


SUBPROCESS_IDS = [
    "secrets-table",
    "toml:truncated",
    "duplicate-port",
    'success={ op = ">=", threshold = nan }',
]


@pytest.mark.parametrize("mutation_id", SUBPROCESS_IDS)
def test_broken_plan_through_a_real_process(mutation_id: str, tmp_path: Path) -> None:
    mutation = next(m for m in MUTATIONS if m.id == mutation_id)
    plan = tmp_path / "plan.toml"
    plan.write_text(mutation.text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "check", str(plan)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COCKPIT_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.stdout == ""  # errors go to stderr
    assert_rejected(mutation, str(plan), result.returncode, result.stderr)
