"""Plan validation: every error names the file, the line, the field path and what was expected."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from cockpit.plan import PlanError, load_plan, parse_plan

EXAMPLES = Path(str(resources.files("cockpit.plan").joinpath("examples")))

GOOD = """
[service]
name = "shop"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]

[[environments]]
name = "production"
protected = true
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]
    port = 18099

[strategy.canary]
steps = [
  { set_weight = 20 },
  { pause = { duration = "30s" } },
  { analysis = { checks = ["ok-rate"] } },
]

[[analysis.checks]]
name = "ok-rate"
metric = "success-rate"
success = ">= 99"
interval = "2s"
"""


def issues_of(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.toml")
    return [str(i) for i in info.value.issues]


def test_good_plan_parses_into_typed_models() -> None:
    plan = parse_plan(GOOD, "plan.toml")
    assert [e.name for e in plan.environments] == ["dev", "production"]
    assert plan.environment("production").protected
    steps = plan.strategy.steps()
    assert steps[1].pause is not None and steps[1].pause.duration == 30.0
    check = plan.analysis.by_name("ok-rate")
    assert check.interval == 2.0 and check.success.holds(99.5) and not check.success.holds(98)
    assert check.failure_limit == 0  # Argo's default


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(path: Path) -> None:
    load_plan(path)


def test_demo_plan_is_valid() -> None:
    text = resources.files("cockpit.demo").joinpath("plan.toml").read_text()
    plan = parse_plan(text)
    assert [e.name for e in plan.environments] == ["dev", "staging", "production"]
    assert plan.environment("production").protected


def test_unknown_key_is_an_error_with_its_line() -> None:
    text = GOOD.replace("protected = true", "protected = true\nprotectd = false")
    (issue,) = issues_of(text)
    line = text.splitlines().index("protectd = false") + 1
    assert (
        issue
        == f"plan.toml:{line}: environments[1].protectd: unknown key 'protectd' (not part of the plan format);"
        " did you mean 'protected'?"
    )


def test_wrong_type_says_found_and_expected() -> None:
    (issue,) = issues_of(GOOD.replace("set_weight = 20", "set_weight = 120"))
    assert "strategy.canary.steps[0].set_weight" in issue
    assert "less than or equal to 100" in issue and "found 120" in issue
    assert issue.startswith("plan.toml:")


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = GOOD.replace('name = "shop"', 'name = "Shop!"').replace(
        'success = ">= 99"', 'success = "at least 99"'
    )
    issues = issues_of(text)
    assert len(issues) == 2
    assert any("service.name" in i for i in issues)
    assert any("analysis.checks[0].success" in i and "expected a condition" in i for i in issues)


def test_adapter_options_are_validated_with_their_path() -> None:
    issues = issues_of(GOOD.replace("port = 18099", "port = 18099\nreplicaz = 2"))
    assert len(issues) == 1
    assert "environments[1].backend.options.replicaz: unknown key" in issues[0]


def test_unknown_adapter_lists_known_ones() -> None:
    (issue,) = issues_of(GOOD.replace('adapter = "local"', 'adapter = "nomad"', 1))
    assert "environments[0].backend.adapter" in issue
    assert "unknown backend adapter 'nomad' (known: " in issue and "local" in issue


def test_contradictions_are_errors() -> None:
    text = GOOD.replace('checks = ["ok-rate"]', 'checks = ["p99"]').replace(
        'name = "production"', 'name = "dev"'
    )
    issues = issues_of(text)
    assert any("environments[1].name: environment 'dev' is defined twice" in i for i in issues)
    assert any(
        "steps[2].analysis.checks[0]: names check 'p99', which [analysis] does not define" in i
        for i in issues
    )


def test_step_with_two_kinds_is_rejected() -> None:
    (issue,) = issues_of(GOOD.replace("{ set_weight = 20 }", "{ set_weight = 20, pause = {} }"))
    assert "exactly one of set_weight, pause, analysis (found: set_weight, pause)" in issue


def test_custom_query_needs_a_query_capable_source() -> None:
    (issue,) = issues_of(GOOD.replace('metric = "success-rate"', 'query = "sum(rate(x[1m]))"'))
    assert "analysis.checks[0].query" in issue and "built-in metrics only" in issue


def test_secret_values_are_refused_and_not_echoed() -> None:
    text = GOOD + '\n[secrets]\ndb = "hunter2-very-secret"\n'
    (issue,) = issues_of(text)
    assert "secrets.db" in issue and "never holds secret values" in issue
    assert "hunter2" not in issue


def test_malformed_toml_names_the_line() -> None:
    (issue,) = issues_of(GOOD.replace('name = "dev"', 'name = "dev'))
    assert issue.startswith("plan.toml:") and "not valid TOML" in issue


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such file"):
        load_plan(tmp_path / "nope.toml")
    with pytest.raises(PlanError, match="is a directory"):
        load_plan(tmp_path)


def test_missing_required_keys() -> None:
    issues = issues_of('[service]\nname = "x"\n')
    assert any("environments: required key is missing" in i for i in issues)
    assert any("strategy: required key is missing" in i for i in issues)


def test_strategy_must_be_exactly_one() -> None:
    (issue,) = issues_of(GOOD.replace("[strategy.canary]", "[strategy.rolling]\n[strategy.canary]"))
    assert "choose exactly one strategy" in issue


def test_durations_accept_units_and_reject_nonsense() -> None:
    plan = parse_plan(GOOD.replace('duration = "30s"', 'duration = "2m"'))
    assert plan.strategy.steps()[1].pause.duration == 120.0
    (issue,) = issues_of(GOOD.replace('duration = "30s"', 'duration = "soon"'))
    assert "expected a duration" in issue
