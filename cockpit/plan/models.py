"""The release plan as typed, validated models.

Every model forbids unknown keys: a typo in a plan is an error, never silently
ignored. Field docstrings double as the reference for plan authors.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cockpit import jsonpath
from cockpit.plan.base import Strict
from cockpit.plan.conditions import Condition, Unit
from cockpit.plan.migrations import Database, Migration
from cockpit.units import Duration, PositiveDuration, format_duration

NAME = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


# --------------------------------------------------------------------------- analysis

BuiltinMetric = Literal["success-rate", "error-rate", "latency-p95", "latency-p99", "request-rate"]
"""Built-in checks measured on the canary track (Flagger's spirit):
success-rate and error-rate in percent (non-5xx / 5xx), latencies in milliseconds,
request-rate in requests per second."""

METRIC_UNITS: dict[str, str] = {
    "success-rate": "%",
    "error-rate": "%",
    "latency-p95": "ms",
    "latency-p99": "ms",
    "request-rate": "req/s",
}
"""The unit each built-in metric is measured (and its conditions written) in."""


class Check(Strict):
    """One metric check of an analysis (Argo Rollouts' AnalysisTemplate metric).

    Measured every ``interval`` until ``count`` measurements were judged. A check ends
    Failed at ``failure_limit + 1`` failed measurements, Inconclusive at
    ``inconclusive_limit + 1`` inconclusive ones (Argo's limits, same defaults). "No data"
    and errors reading the source are neither: they are retried at the next interval up
    to ``no_data_limit`` / ``error_limit`` and never count towards ``count``."""

    name: str = Field(pattern=NAME)
    """Short name used by analysis steps and shown on screen."""
    metric: BuiltinMetric | None = None
    """A built-in measurement of the canary; exclusive with ``query``."""
    query: str | None = None
    """A query for the environment's metrics source (PromQL for prometheus), evaluated for
    the canary and for stable (placeholders such as ``{track}`` and ``{version}``)."""
    unit: Unit | None = None
    """What ``query`` returns, so conditions may carry units ("s" or "ms" convert, "%",
    "req/s"); built-in metrics have their own unit."""
    success: Condition
    """The measurement passes when this holds: ``">= 99"``, ``"<= 250ms"``, or relative
    to stable over the same window: ``"<= stable * 1.2 + 10ms"``, ``"<= stable + 1%"``."""
    failure: Condition | None = None
    """The measurement fails when this holds. Without it, failure is "success does not
    hold"; with it, a value where neither holds is Inconclusive (a human decides)."""
    interval: PositiveDuration = 5.0
    """Time between measurements; each is measured over this window."""
    count: int = Field(default=3, ge=1, le=1000)
    """Measurements to judge; the check succeeds when all are taken within the limits."""
    failure_limit: int = Field(default=0, ge=0)
    """Failed measurements tolerated; one more fails the analysis (Argo default 0)."""
    inconclusive_limit: int = Field(default=0, ge=0)
    """Inconclusive measurements tolerated before the rollout pauses for a human."""
    no_data: Literal["inconclusive", "failed"] = "inconclusive"
    """What the check ends as when "no data" goes past ``no_data_limit`` (no canary
    traffic, or a relative condition whose stable has none). Never Successful."""
    no_data_limit: int = Field(default=3, ge=0)
    """Measurements with no data tolerated (retried at the next interval)."""
    error_limit: int = Field(default=4, ge=0)
    """Consecutive errors reading the metrics source tolerated; they are retried at the next
    interval (Argo's consecutiveErrorLimit, default 4). One more aborts the rollout."""

    @field_validator("success", "failure", mode="wrap")
    @classmethod
    def _condition_fits_the_metric(cls, value: Any, handler: Any, info: ValidationInfo) -> Condition | None:
        """Errors start with the check's name ("unknown word 'baseline'"); a condition's
        unit must be the metric's (ms and s convert), and its threshold is stored in it."""
        name = info.data.get("name", "?")
        try:
            condition: Condition | None = handler(value)
        except ValidationError as err:
            if not isinstance(value, str):
                raise  # a table: pydantic's errors already point at the wrong key
            reason = err.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"check {name!r}: {reason}") from None
        if condition is None:
            return None
        metric, unit = info.data.get("metric"), info.data.get("unit")
        if metric is None and info.data.get("query") is None:
            return condition  # the metric itself is wrong: reported on its own
        what = metric if metric is not None else "the query's result"
        measured = METRIC_UNITS[metric] if metric is not None else (unit or "")
        try:
            return condition.in_unit(measured, str(what))
        except ValueError as err:
            raise ValueError(f"check {name!r}: {err}") from None

    @model_validator(mode="after")
    def _one_source(self) -> Check:
        if (self.metric is None) == (self.query is None):
            raise ValueError("a check needs exactly one of 'metric' (built-in) or 'query'")
        if self.metric is not None and self.unit is not None:
            raise ValueError(
                f"check {self.name!r}: {self.metric} is measured in {METRIC_UNITS[self.metric]};"
                " 'unit' is for query checks"
            )
        return self

    @property
    def value_unit(self) -> str:
        """The unit values of this check are shown in ("%", "ms", "req/s", "" ...)."""
        return METRIC_UNITS[self.metric] if self.metric is not None else (self.unit or "")

    @property
    def relative(self) -> bool:
        """Some condition compares with stable: stable must be measured too."""
        return self.success.relative or (self.failure is not None and self.failure.relative)


class Analysis(Strict):
    checks: list[Check] = Field(default_factory=list)
    """The checks analysis steps may name."""

    @field_validator("checks")
    @classmethod
    def _unique(cls, checks: list[Check]) -> list[Check]:
        seen: set[str] = set()
        for check in checks:
            if check.name in seen:
                raise ValueError(f"check {check.name!r} is defined twice")
            seen.add(check.name)
        return checks

    def by_name(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


# --------------------------------------------------------------------------- smoke checks

SMOKE_PLACEHOLDERS = ("{version}", "{env}")
"""What an expected value or a body regex may name: the version the checked track runs
(as the cockpit deployed it) and the environment's name."""
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def fill_placeholders(text: str, version: str, env: str, escape: bool = False) -> str:
    """``text`` with ``{version}`` and ``{env}`` replaced (regex-escaped when ``escape``).
    Plain replacement, not ``str.format``: a regex's own braces (``\\d{3}``) stay as written."""
    for name, value in (("{version}", version), ("{env}", env)):
        text = text.replace(name, re.escape(value) if escape else value)
    return text


def _unknown_placeholders(text: str) -> list[str]:
    return [p for p in _PLACEHOLDER.findall(text) if p not in SMOKE_PLACEHOLDERS]


class SmokeCheck(Strict):
    """One HTTP request to the service through its router, on one track, and what its
    answer must be. Defined once in ``[[smoke]]``; smoke steps and a blue-green's
    ``pre_promotion_smoke`` name it."""

    name: str = Field(pattern=NAME)
    """Short name used by smoke steps and shown on screen."""
    path: str = Field(max_length=2000)
    """Path (and query) requested, e.g. ``"/healthz"``."""
    track: Literal["canary", "stable"] = "canary"
    """The track asked for, whatever the weight (the router's ``x-cockpit-track`` header):
    the canary (a blue-green preview) before it takes traffic, or stable for comparison."""
    method: Literal["GET", "HEAD"] = "GET"
    """Smoke checks only read: they run against production on every rollout."""
    expect_status: int = Field(default=200, ge=100, le=599)
    """The HTTP status the answer must have."""
    body_json_path: str | None = None
    """A JSON path into the answer (``"$.version"``) whose value must equal ``expect_value``."""
    expect_value: str | int | float | bool | None = None
    """The value at ``body_json_path``; a string may name ``{version}`` (the track's
    version as deployed) and ``{env}``."""
    body_regex: str | None = None
    """A regular expression the body must contain a match of (``{version}``, ``{env}`` as above)."""
    max_latency: PositiveDuration | None = None
    """The answer must be complete within this, e.g. ``"300ms"``."""
    timeout: PositiveDuration = 5.0
    """Give up on one request after this long (counts as a failed attempt)."""
    attempts: int = Field(default=3, ge=1, le=20)
    """Requests tried until one passes; the check fails when none does."""
    interval: PositiveDuration = 1.0
    """Wait between attempts."""

    @field_validator("path")
    @classmethod
    def _request_path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError(
                f"expected a path such as '/healthz' (starting with '/', no spaces; the address"
                f" comes from the backend), found {value!r}"
            )
        return value

    @field_validator("body_json_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            jsonpath.parse(value)  # JsonPathError is a ValueError: reported at the field
        return value

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if unknown := _unknown_placeholders(value):
            raise ValueError(
                f"unknown placeholder {unknown[0]}; a body regex may use {', '.join(SMOKE_PLACEHOLDERS)}"
            )
        try:
            re.compile(fill_placeholders(value, "1.0.0", "env", escape=True))
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err}): {value!r}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmokeCheck:
        if (self.body_json_path is None) != (self.expect_value is None):
            raise ValueError(
                "'body_json_path' and 'expect_value' go together: the value found at the path must equal it"
            )
        if self.method == "HEAD" and (self.body_json_path is not None or self.body_regex is not None):
            raise ValueError("a HEAD request has no body to match; use method GET or drop the body check")
        if isinstance(self.expect_value, str) and (unknown := _unknown_placeholders(self.expect_value)):
            raise ValueError(
                f"unknown placeholder {unknown[0]} in expect_value; use {', '.join(SMOKE_PLACEHOLDERS)}"
            )
        if self.max_latency is not None and self.max_latency > self.timeout:
            raise ValueError(
                f"max_latency {format_duration(self.max_latency)} is longer than timeout"
                f" {format_duration(self.timeout)}: the request would be given up before the limit is reached"
            )
        return self

    def json_path(self) -> jsonpath.JsonPath | None:
        return None if self.body_json_path is None else jsonpath.parse(self.body_json_path)

    def describe(self) -> str:
        """``GET /healthz on canary: 200, $.version == "{version}", < 300ms``."""
        wants = [str(self.expect_status)]
        if self.body_json_path is not None:
            wants.append(f"{self.body_json_path} == {_shown(self.expect_value)}")
        if self.body_regex is not None:
            wants.append(f"body ~ /{self.body_regex}/")
        if self.max_latency is not None:
            wants.append(f"< {format_duration(self.max_latency)}")
        return f"{self.method} {self.path} on {self.track}: {', '.join(wants)}"


def _shown(value: object) -> str:
    return json.dumps(value)


# --------------------------------------------------------------------------- strategy


class Pause(Strict):
    duration: Duration | None = None
    """Seconds to wait before going on; without it the rollout waits for a promote."""


class AnalysisStep(Strict):
    checks: list[str] = Field(min_length=1)
    """Names of checks from [analysis]; all run side by side."""


class SmokeStep(Strict):
    checks: list[str] = Field(min_length=1)
    """Names of checks from [[smoke]]; run one after the other, all must pass."""


class Step(Strict):
    """One canary step; exactly one of its keys is set."""

    set_weight: int | None = Field(default=None, ge=0, le=100)
    """Send this percent of traffic to the canary."""
    pause: Pause | None = None
    """Wait for a duration or until promoted."""
    analysis: AnalysisStep | None = None
    """Run metric checks; Failed aborts, Inconclusive pauses for a human."""
    smoke: SmokeStep | None = None
    """Send the [[smoke]] checks named; any failing aborts the rollout."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        set_keys = [k for k in ("set_weight", "pause", "analysis", "smoke") if getattr(self, k) is not None]
        if len(set_keys) != 1:
            found = ", ".join(set_keys) or "none"
            raise ValueError(
                f"a step needs exactly one of set_weight, pause, analysis, smoke (found: {found})"
            )
        return self

    @property
    def kind(self) -> str:
        if self.set_weight is not None:
            return "set_weight"
        return "pause" if self.pause else "smoke" if self.smoke else "analysis"

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"set weight {self.set_weight}%"
        if self.pause is not None:
            return "pause" if self.pause.duration is None else f"pause {self.pause.duration:g}s"
        if self.smoke is not None:
            return "smoke " + ", ".join(self.smoke.checks)
        assert self.analysis is not None
        return "analysis " + ", ".join(self.analysis.checks)


class Canary(Strict):
    steps: list[Step] = Field(min_length=1)
    """Walked in order; after the last step the canary is promoted to 100 %."""


class BlueGreen(Strict):
    pre_promotion_smoke: list[str] = Field(default_factory=list)
    """[[smoke]] checks sent to the preview (green) stack before anything else; one
    failing aborts before any user is switched."""
    pre_promotion_analysis: list[str] = Field(default_factory=list)
    """Checks run against the preview (green) stack before the switch."""
    auto_promote: bool = False
    """Switch without waiting for a promote once the preview is healthy."""


class Rolling(Strict):
    max_surge: int = Field(default=1, ge=1)
    """Replicas of the new version started at once."""


class Strategy(Strict):
    canary: Canary | None = None
    blue_green: BlueGreen | None = None
    rolling: Rolling | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Strategy:
        chosen = [k for k in ("canary", "blue_green", "rolling") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"choose exactly one strategy of canary, blue_green, rolling (found: {', '.join(chosen) or 'none'})"
            )
        return self

    def steps(self) -> list[Step]:
        """The strategy as canary steps: blue-green is a switch 0 -> 100 behind optional
        smoke checks, an analysis and a pause; rolling is a single full shift."""
        if self.canary:
            return list(self.canary.steps)
        if self.blue_green:
            steps: list[Step] = []
            if self.blue_green.pre_promotion_smoke:
                steps.append(Step(smoke=SmokeStep(checks=self.blue_green.pre_promotion_smoke)))
            if self.blue_green.pre_promotion_analysis:
                steps.append(Step(analysis=AnalysisStep(checks=self.blue_green.pre_promotion_analysis)))
            if not self.blue_green.auto_promote:
                steps.append(Step(pause=Pause()))
            return steps or [Step(set_weight=100)]
        return [Step(set_weight=100)]


# --------------------------------------------------------------------------- environments


class Backend(Strict):
    adapter: str
    """Registered backend adapter name (``cockpit adapters`` lists them), e.g. "local"."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Adapter options, validated by the adapter's own schema."""


class Metrics(Strict):
    source: str = "scrape"
    """Registered metrics source: "scrape" reads the workloads' /metrics directly."""
    interval: PositiveDuration = 1.0
    """How often the screen's live metrics are refreshed."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Options of the metrics source."""


class Logs(Strict):
    source: Literal["backend", "none"] = "backend"
    """Where log lines come from: the backend's workloads, or none."""


class Environment(Strict):
    name: str = Field(pattern=NAME)
    """Short lowercase name shown as the column title (dev, staging, production)."""
    protected: bool = False
    """Actions here ask for the environment's name typed out and a reason."""
    initial_version: str
    """The version that runs as stable before any release is journaled."""
    backend: Backend
    metrics: Metrics = Field(default_factory=Metrics)
    logs: Logs = Field(default_factory=Logs)
    database: Database | None = None
    """Where this environment's [[migrations]] are applied (none: the plan's migrations
    cannot run here)."""
    strategy: Strategy | None = None
    """This environment's own strategy, replacing the plan's [strategy] here only, e.g.
    pauses that wait for a promote in production where dev and staging pause for 5s."""


class FreezeWindow(Strict):
    start: str = Field(pattern=TIME_OF_DAY)
    """Start of the daily freeze, ``HH:MM`` (UTC)."""
    end: str = Field(pattern=TIME_OF_DAY)
    """End of the daily freeze, ``HH:MM`` (UTC)."""
    environments: list[str] = Field(default_factory=list)
    """Environments frozen (empty: all)."""

    @model_validator(mode="after")
    def _not_empty(self) -> FreezeWindow:
        # start == end is a window that never holds: a freeze that silently freezes nothing.
        if self.start == self.end:
            raise ValueError(
                f"a freeze window from {self.start} to {self.end} is empty; make start and end differ"
            )
        return self


class Guardrails(Strict):
    require_reason: bool = False
    """Every action on any environment asks for a reason (protected ones always do)."""
    freeze: list[FreezeWindow] = Field(default_factory=list)
    """Daily windows in which rollouts may not start."""
    history_limit: int = Field(default=10, ge=1, le=100)
    """Revisions retained per environment for rollback."""


class Service(Strict):
    name: str = Field(pattern=NAME)
    """The service this plan releases."""
    description: str = ""


class Plan(Strict):
    service: Service
    environments: list[Environment] = Field(min_length=1, max_length=6)
    """Shown side by side in this order (1 to 6)."""
    strategy: Strategy
    analysis: Analysis = Field(default_factory=Analysis)
    smoke: list[SmokeCheck] = Field(default_factory=list)
    """HTTP checks smoke steps name (``[[smoke]]`` tables)."""
    migrations: list[Migration] = Field(default_factory=list)
    """Schema changes (``[[migrations]]`` tables), applied in this order."""
    guardrails: Guardrails = Field(default_factory=Guardrails)
    secrets: dict[str, str] = Field(default_factory=dict)
    """Named references, ``keyring:service/name`` or ``env:NAME``; never values."""

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    def smoke_check(self, name: str) -> SmokeCheck:
        return next(c for c in self.smoke if c.name == name)

    def strategy_for(self, env: str) -> Strategy:
        """The strategy rollouts on ``env`` walk: its own, else the plan's."""
        return self.environment(env).strategy or self.strategy
