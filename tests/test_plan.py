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
    assert (check.inconclusive_limit, check.error_limit) == (0, 4)  # Argo's inconclusiveLimit, consecutiveErrorLimit
    assert check.no_data == "inconclusive"  # no traffic never passes, and pauses for a human


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
    assert "exactly one of set_weight, pause, analysis, smoke (found: set_weight, pause)" in issue


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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90.0), ("1h 15m", 4500.0), ("2m500ms", 120.5), ("1.5s", 1.5), ("250ms", 0.25), ("45", 45.0)],
)
def test_compound_durations_are_read(text: str, seconds: float) -> None:
    plan = parse_plan(GOOD.replace('duration = "30s"', f'duration = "{text}"'))
    assert plan.strategy.steps()[1].pause.duration == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s1m", "units of a duration once each, largest first"),  # order: a typo, never summed
        ("1m1m", "units of a duration once each, largest first"),
        ("1m 30", "cannot read '30'"),  # a number without its unit
        ("1d", "cannot read '1d'"),  # days are not a unit here
        ("", "found an empty string"),
    ],
)
def test_bad_compound_durations_say_which_part(text: str, expected: str) -> None:
    (issue,) = issues_of(GOOD.replace('duration = "30s"', f'duration = "{text}"'))
    assert issue.startswith("plan.toml:26: strategy.canary.steps[1].pause.duration: expected")
    assert expected in issue


PER_ENV = """
  [environments.strategy.canary]
  steps = [{ set_weight = 20 }, { analysis = { checks = ["ok-rate"] } }, { pause = {} }]
"""


def test_an_environment_may_walk_its_own_strategy() -> None:
    plan = parse_plan(GOOD.replace("    port = 18099\n", "    port = 18099\n" + PER_ENV))
    assert [s.describe() for s in plan.strategy_for("production").steps()] == [
        "set weight 20%",
        "analysis ok-rate",
        "pause",
    ]
    assert plan.strategy_for("dev") is plan.strategy  # the others walk the plan's


def test_an_environment_strategy_is_validated_like_the_plans() -> None:
    unknown = PER_ENV.replace('"ok-rate"', '"ok-rat"')
    (issue,) = issues_of(GOOD.replace("    port = 18099\n", "    port = 18099\n" + unknown))
    assert issue == (
        "plan.toml:24: environments[1].strategy.canary.steps[1].analysis.checks[0]: names check 'ok-rat',"
        " which [analysis] does not define (defined: ok-rate)"
    )
    two_in_one = PER_ENV.replace("{ pause = {} }", "{ pause = {}, set_weight = 5 }")
    (issue,) = issues_of(GOOD.replace("    port = 18099\n", "    port = 18099\n" + two_in_one))
    assert "environments[1].strategy.canary.steps[2]: a step needs exactly one of set_weight, pause, analysis" in issue
    (typo,) = issues_of(GOOD.replace("    port = 18099\n", "    port = 18099\n  [environments.stratgy.canary]\n"))
    assert "unknown key 'stratgy'" in typo and "did you mean 'strategy'?" in typo


def test_the_demo_pauses_for_a_person_in_production_only() -> None:
    plan = load_plan(Path(str(resources.files("cockpit.demo").joinpath("plan.toml"))))
    production = [s.describe() for s in plan.strategy_for("production").steps()]
    assert "pause" in production and not any(s.startswith("pause ") for s in production)
    assert production.index("analysis success-rate, latency-p99") < production.index("pause")
    assert all(s.pause is None or s.pause.duration for s in plan.strategy_for("dev").steps())


# --------------------------------------------------------------------------- values that switch safety off


@pytest.mark.parametrize(
    ("old", "new", "path", "expected"),
    [
        ('success = ">= 99"', 'success = { op = ">=", threshold = nan }', "success.threshold", "finite"),
        ('success = ">= 99"', 'success = { op = ">=", threshold = inf }', "success.threshold", "finite"),
        ("protected = true", 'protected = "off"', "environments[1].protected", "expected true or false"),
        ("set_weight = 20", 'set_weight = "20"', "steps[0].set_weight", "expected a whole number"),
        ("set_weight = 20", "set_weight = true", "steps[0].set_weight", "expected a whole number"),
        ('interval = "2s"', "interval = nan", "checks[0].interval", "finite duration"),
        ('interval = "2s"', "interval = inf", "checks[0].interval", "finite duration"),
        ('interval = "2s"', "interval = 0", "checks[0].interval", "greater than 0"),
        ("port = 18099", "port = 18099\ndrain_timeout = nan", "options.drain_timeout", "finite duration"),
        ("port = 18099", "port = 18099\nhealth_timeout = 0", "options.health_timeout", "greater than 0"),
        ("port = 18099", 'port = "18099"', "options.port", "expected a whole number"),
        ("port = 18099", "port = 18099\nhealth_interval = nan", "options.health_interval", "finite"),
    ],
)
def test_values_that_would_switch_safety_off_are_refused(old: str, new: str, path: str, expected: str) -> None:
    (issue,) = issues_of(GOOD.replace(old, new, 1))
    assert path in issue and expected in issue, issue


def test_integers_are_still_numbers_and_drain_may_be_zero() -> None:
    text = GOOD.replace('success = ">= 99"', 'success = { op = ">=", threshold = 99 }').replace(
        "port = 18099", "port = 18099\ndrain_timeout = 0\nhealth_interval = 5"
    )
    plan = parse_plan(text.replace('interval = "2s"', "interval = 2"))
    check = plan.analysis.by_name("ok-rate")
    assert check.success.threshold == 99.0 and check.interval == 2.0


@pytest.mark.parametrize("bad", ["25:99", "24:00", "12:60", "7:00", "07:5"])
def test_freeze_times_are_real_times_of_day(bad: str) -> None:
    (issue,) = issues_of(GOOD + f'\n[[guardrails.freeze]]\nstart = "{bad}"\nend = "06:00"\n')
    assert "guardrails.freeze[0].start: expected a time of day as HH:MM (00:00 to 23:59)" in issue
    plan = parse_plan(GOOD + '\n[[guardrails.freeze]]\nstart = "23:59"\nend = "00:00"\n')
    assert plan.guardrails.freeze[0].start == "23:59"


def test_initial_version_must_be_one_the_backend_has() -> None:
    text = GOOD.replace('initial_version = "1.0.0"', 'initial_version = "0.9.0"', 1)
    (issue,) = issues_of(text)
    line = text.splitlines().index('initial_version = "0.9.0"') + 1
    assert issue == (
        f"plan.toml:{line}: environments[0].initial_version: version '0.9.0' is not one of the backend's"
        " versions (1.0.0, 1.1.0)"
    )


def test_two_local_routers_cannot_share_a_port_but_may_both_pick_a_free_one() -> None:
    text = GOOD.replace('versions = ["1.0.0", "1.1.0"]\n', 'versions = ["1.0.0", "1.1.0"]\n    port = 18099\n', 1)
    issues = issues_of(text)
    assert issues == [
        f"plan.toml:{text.splitlines().index('    port = 18099', 20) + 1}: environments[1].backend.options.port:"
        " port 18099 is already used by environment 'dev'; each needs its own (or 0)"
    ]
    parse_plan(GOOD.replace("port = 18099", "port = 0"))


def test_every_error_is_found_in_one_round() -> None:
    # A broken model (service.name) no longer hides the adapter options and the cross checks.
    text = (
        GOOD.replace('name = "shop"', 'name = "Shop!"')
        .replace("port = 18099", "port = 18099\nreplicas = true")
        .replace('initial_version = "1.0.0"', 'initial_version = "0.1.0"', 1)
    )
    issues = issues_of(text + '\n[secrets]\ndb = "hunter2-very-secret"\n')
    paths = [i.split(": ")[1] for i in issues]
    assert paths == [
        "service.name",
        "environments[0].initial_version",
        "environments[1].backend.options.replicas",
        "secrets.db",
    ]


def test_unknown_keys_suggest_the_nearest_field() -> None:
    text = GOOD.replace('interval = "2s"', 'intreval = "2s"').replace("port = 18099", "prot = 18099")
    issues = issues_of(text)
    assert any("analysis.checks[0].intreval" in i and i.endswith("did you mean 'interval'?") for i in issues)
    assert any("backend.options.prot" in i and i.endswith("did you mean 'port'?") for i in issues)
    (far,) = issues_of(GOOD.replace("protected = true", "protected = true\nzzz = 1"))
    assert "did you mean" not in far


def test_toml_syntax_errors_carry_line_and_column() -> None:
    (issue,) = issues_of(GOOD.replace("replicas", "x").replace('adapter = "local"', 'adapter "local"', 1))
    line = GOOD.splitlines().index('  adapter = "local"') + 1
    assert issue.startswith(f"plan.toml:{line}:11: (plan): not valid TOML: ")


def test_secret_values_are_never_echoed_in_any_message() -> None:
    secret = "s3cr3t-hunter2-value"
    for pasted in (
        f'\n[secrets]\ndb = ["{secret}"]\n',
        "\n[secrets]\ndb = 987654321\n",
    ):
        (issue,) = issues_of(GOOD + pasted)
        assert "secrets.db" in issue and secret not in issue and "987654321" not in issue
    for old, new in (
        ("port = 18099", f'port = "{secret}"'),
        ("port = 18099", f'health_path = "--token={secret}"'),
        ('versions = ["1.0.0", "1.1.0"]', f'versions = ["{secret}"]'),
    ):
        issues = issues_of(GOOD.replace(old, new, 1))
        assert issues and not any(secret in i for i in issues), issues


# --------------------------------------------------------------------------- bounded input


def test_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    # A FIFO is tried through a real process in test_cli (a regression would hang, not fail).
    with pytest.raises(PlanError, match="is a character device, expected a regular"):
        load_plan("/dev/zero")


def test_files_over_one_mib_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text(GOOD + "#" * (1 << 20))
    with pytest.raises(PlanError, match="a plan may be at most 1 MiB"):
        load_plan(big)


def test_text_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[service]\nname = "sh\xffop"\n')
    with pytest.raises(PlanError) as info:
        load_plan(bad)
    assert str(info.value) == f"{bad}:2:11: (plan): not UTF-8 text (byte 0xff)"


def test_secret_env_must_name_a_secret_the_plan_defines() -> None:
    # Otherwise the replica fails at start, in the middle of a release.
    text = GOOD.replace(
        'versions = ["1.0.0", "1.1.0"]\n', 'versions = ["1.0.0", "1.1.0"]\n    secret_env = { DB_URL = "db-url" }\n', 1
    )
    (issue,) = issues_of(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "secret_env" in row)
    assert issue.startswith(f"plan.toml:{line}:")
    # (the name itself is masked: under a key named like a credential, the loader echoes nothing)
    assert "environments[0].backend.options.secret_env.DB_URL: names secret" in issue
    assert issue.endswith("which [secrets] does not define (defined: none)")
    parse_plan(text + '\n[secrets]\ndb-url = "env:DB_URL"\n')
