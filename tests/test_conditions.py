"""Analysis conditions: absolute and relative to stable, parsed into typed values, with
errors that name the check and what is wrong, as the plan loader shows them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cockpit.plan import PlanError, parse_plan
from cockpit.plan.conditions import Condition
from cockpit.plan.models import Check

PLAN = """
[service]
name = "shop"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]

[strategy.canary]
steps = [{ set_weight = 20 }, { analysis = { checks = ["p99"] } }]

[[analysis.checks]]
name = "p99"
metric = "latency-p99"
success = "<= stable * 1.2 + 10ms"
interval = "2s"
"""


def check(**kw: object) -> Check:
    return Check.model_validate({"name": "p99", "metric": "latency-p99", "success": "<= 250"} | kw)


def error_of(**kw: object) -> str:
    with pytest.raises(ValidationError) as info:
        check(**kw)
    (error,) = info.value.errors(include_url=False)
    return str(error["msg"]).removeprefix("Value error, ")


@pytest.mark.parametrize(
    ("text", "op", "relative", "factor", "threshold", "unit"),
    [
        (">= 99", ">=", False, 1.0, 99.0, ""),
        ("<= 250ms", "<=", False, 1.0, 250.0, "ms"),
        ("<= 0.25s", "<=", False, 1.0, 250.0, "ms"),  # converted to the metric's unit
        ("<= stable * 1.2 + 10ms", "<=", True, 1.2, 10.0, "ms"),
        ("<=stable*1.5", "<=", True, 1.5, 0.0, ""),
        ("<= 1.5 * stable", "<=", True, 1.5, 0.0, ""),
        ("< stable - 5", "<", True, 1.0, -5.0, ""),
        ("<= stable * 2 + 0.01s", "<=", True, 2.0, 10.0, "ms"),
    ],
)
def test_conditions_parse_into_typed_values(
    text: str, op: str, relative: bool, factor: float, threshold: float, unit: str
) -> None:
    cond = check(success=text).success
    assert (cond.op, cond.relative, cond.factor, cond.unit) == (op, relative, factor, unit)
    assert cond.threshold == pytest.approx(threshold)


def test_relative_limit_is_computed_from_stable_at_that_moment() -> None:
    cond = check(success="<= stable * 1.2 + 10ms").success
    assert cond.limit(450.0) == pytest.approx(550.0)
    assert cond.holds(550.0, 450.0) and not cond.holds(551.0, 450.0)
    assert cond.holds(130.0, 100.0)  # the same rule at a quiet hour: a lower limit
    with pytest.raises(ValueError, match="needs stable's value"):
        cond.limit(None)  # never guessed: the engine turns this into "no data"
    assert str(cond) == "<= stable * 1.2 + 10ms"


def test_error_rate_relative_condition_adds_percentage_points() -> None:
    cond = check(name="errors", metric="error-rate", success="<= stable + 1%").success
    assert cond.limit(0.2) == pytest.approx(1.2)  # 0.2 % on stable: the canary may reach 1.2 %
    assert str(cond) == "<= stable + 1%"


def test_absolute_conditions_print_as_before() -> None:
    assert str(check(success=">= 99").success) == ">= 99"
    assert str(check(success="<= 250ms").success) == "<= 250ms"
    assert str(check(success="< stable - 5").success) == "< stable - 5"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"success": "<= stable + 1%"},
            "check 'p99': '<= stable + 1%' has a limit in %, but latency-p99 is measured in ms",
        ),
        (
            {"metric": "error-rate", "success": "<= 2ms"},
            "check 'p99': '<= 2ms' has a limit in ms, but error-rate is measured in %",
        ),
        (
            {"metric": None, "query": "x", "success": "<= 250ms"},
            "check 'p99': '<= 250ms' has a limit in ms, but the query's result has no declared unit"
            " (set the check's 'unit')",
        ),
        (
            {"success": "<= baseline * 1.2"},
            "check 'p99': condition '<= baseline * 1.2': unknown word 'baseline'; expected a number or"
            " 'stable' after the operator (such as '>= 99', '<= 250ms' or '<= stable * 1.2 + 10ms')",
        ),
        (
            {"success": "<= stable * 1.2 + 10 msec"},
            "check 'p99': condition '<= stable * 1.2 + 10 msec': unknown word 'msec'; nothing more was"
            " expected after the limit (such as '>= 99', '<= 250ms' or '<= stable * 1.2 + 10ms')",
        ),
        (
            {"success": "<= stable * 1.2ms"},
            "check 'p99': condition '<= stable * 1.2ms': the factor 1.2 multiplies stable and takes no unit",
        ),
        (
            {"success": "<= stable * 0"},
            "check 'p99': condition '<= stable * 0': the factor of stable must be greater than 0, found 0",
        ),
        (
            {"success": ">= nan"},
            "check 'p99': condition '>= nan': unknown word 'nan'; expected a number or 'stable' after the"
            " operator (such as '>= 99', '<= 250ms' or '<= stable * 1.2 + 10ms')",
        ),
        (
            {"success": "stable * 1.2"},
            "check 'p99': expected a condition such as '>= 99', '<= 250ms' or '<= stable * 1.2 + 10ms',"
            " found 'stable * 1.2'",
        ),
    ],
)
def test_wrong_conditions_say_which_check_and_what_is_wrong(kw: dict[str, object], expected: str) -> None:
    assert error_of(**kw) == expected


def test_failure_condition_errors_name_the_check_too() -> None:
    msg = error_of(success="<= stable * 1.2", failure="> stable * two")
    assert msg.startswith("check 'p99': condition '> stable * two': unknown word 'two'")


def test_query_checks_declare_their_unit_and_conditions_convert_to_it() -> None:
    c = check(metric=None, query="histogram_quantile(0.99, x)", unit="s", success="<= stable * 1.2 + 10ms")
    assert c.success.threshold == pytest.approx(0.01) and c.success.unit == "s"
    assert c.value_unit == "s" and c.relative
    assert error_of(unit="ms") == "check 'p99': latency-p99 is measured in ms; 'unit' is for query checks"


def test_table_form_is_typed_and_checked() -> None:
    cond = Condition.model_validate({"op": "<=", "threshold": 10, "relative": True, "factor": 1.2, "unit": "ms"})
    assert str(cond) == "<= stable * 1.2 + 10ms"
    with pytest.raises(ValidationError, match="a factor multiplies stable's value"):
        Condition.model_validate({"op": "<=", "threshold": 10, "factor": 1.2})


def test_the_loader_shows_condition_errors_with_file_line_and_path() -> None:
    text = PLAN.replace('success = "<= stable * 1.2 + 10ms"', 'success = "<= stable + 1%"')
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.toml")
    (issue,) = [str(i) for i in info.value.issues]
    line = text.splitlines().index('success = "<= stable + 1%"') + 1
    assert issue == (
        f"plan.toml:{line}: analysis.checks[0].success: check 'p99': '<= stable + 1%' has a limit in %,"
        " but latency-p99 is measured in ms"
    )


def test_a_relative_plan_loads() -> None:
    plan = parse_plan(PLAN, "plan.toml")
    assert plan.analysis.by_name("p99").success.relative


def test_no_data_policy_is_one_of_two_words() -> None:
    text = PLAN + 'no_data = "pass"\n'
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.toml")
    (issue,) = [str(i) for i in info.value.issues]
    assert "analysis.checks[0].no_data" in issue and "'inconclusive' or 'failed'" in issue and "'pass'" in issue
    failed = parse_plan(PLAN + 'no_data = "failed"\n').analysis.by_name("p99")
    assert failed.no_data == "failed"
