"""``cockpit gate PLAN --env E``: each gate of the plan's analysis measured once, now.

For every check: the canary value, the stable value beside it, the limit it is judged
against and the verdict, as the analysis would take one measurement at this moment
(:func:`cockpit.engine.analysis.take_measurement`), so relative conditions and no-data
rules read the same here as in a rollout. Read-only: nothing is deployed or changed;
the backend is constructed (no I/O) only because a metrics source is given one.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, BackendError, MetricsSource
from cockpit.engine.analysis import UNITS, take_measurement
from cockpit.engine.state import Measurement, Outcome
from cockpit.model import Track
from cockpit.paths import state_dir
from cockpit.plan.models import Check, Environment, Plan
from cockpit.secrets import SecretError, redact, resolve

EXIT_USAGE = 2


@dataclass(frozen=True)
class GateLine:
    name: str
    what: str  # the metric, or "query"
    canary: float | None
    stable: float | None
    limit: str  # the number judged against, or the condition when it is absolute
    verdict: str  # Successful, Failed, Inconclusive, NoData, Error
    unit: str
    message: str = ""


def make_source(plan: Plan, env: Environment) -> MetricsSource:
    """The environment's metrics source as a session would build it (secrets by name)."""

    def secret(name: str) -> str:
        try:
            return resolve(plan.secrets.get(name, name))
        except SecretError as err:
            raise BackendError(str(err)) from None

    def context(options: dict) -> AdapterContext:
        return AdapterContext(
            service=plan.service.name,
            env=env.name,
            # The path only: building adapters creates nothing (checking a plan writes nothing).
            run_dir=state_dir(None) / "run" / plan.service.name / env.name,
            options=options,
            secrets=secret,
        )

    backend = registry.create_backend(env.backend.adapter, context(env.backend.options), env.backend.options)
    return registry.create_metrics_source(
        env.metrics.source, context(env.metrics.options), env.metrics.options, backend
    )


async def measure_gate(check: Check, source: MetricsSource) -> GateLine:
    measurement = await take_measurement(check, source)
    stable, message = measurement.stable_value, measurement.message
    if check.query is not None and stable is None and measurement.outcome is not Outcome.ERROR:
        # A custom query measured on the canary only: read stable the same way, for comparison.
        try:
            stable = await source.query(check.query, track=Track.STABLE, seconds=check.interval)
        except BackendError as err:
            message = f"stable: {err}"
    return GateLine(
        name=check.name,
        what=check.metric or "query",
        canary=measurement.value,
        stable=stable,
        limit=_limit(check, measurement),
        verdict=measurement.outcome.value,
        unit=UNITS.get(check.metric or "", ""),
        message=redact(message),
    )


def _limit(check: Check, measurement: Measurement) -> str:
    """The comparison as judged: ``< 100``; a relative one with its number of the moment
    and how it was computed (``<= 162 (<= stable * 1.2 + 10ms)``)."""
    condition = check.success
    if measurement.limit is None:
        return str(condition)
    judged = f"{condition.op} {measurement.limit:g}"
    return f"{judged} ({condition})" if getattr(condition, "relative", False) else judged


async def gate_report(plan: Plan, env_name: str) -> list[GateLine]:
    """Every check of the plan's analysis, measured once on ``env_name`` side by side."""
    source = make_source(plan, plan.environment(env_name))
    try:
        return list(await asyncio.gather(*(measure_gate(c, source) for c in plan.analysis.checks)))
    finally:
        await source.close()


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    return f"{value:.4g}{' ' + unit if unit and unit != '%' else unit}"


def format_report(lines: list[GateLine], env_name: str, source: str) -> str:
    if not lines:
        return f"{env_name}: the plan's analysis has no checks"
    header = f"{'gate':<16} {'metric':<13} {'canary':>12} {'stable':>12}  {'limit':<12} verdict"
    rows = [f"{env_name} (metrics: {source})", header]
    for line in lines:
        rows.append(
            f"{line.name:<16} {line.what:<13} {_number(line.canary, line.unit):>12}"
            f" {_number(line.stable, line.unit):>12}  {line.limit:<12} {line.verdict}"
            + (f"  - {line.message}" if line.message else "")
        )
    return "\n".join(rows)


def run_gate_command(plan: Plan, env_name: str) -> None:
    """``cockpit gate``: print the report; exit 2 for an unknown environment, 1 when the
    metrics source could not be built, else 0 (the verdicts are what is printed)."""
    try:
        env = plan.environment(env_name)
    except KeyError:
        names = ", ".join(e.name for e in plan.environments)
        print(f"error: no environment {env_name!r} in the plan (environments: {names})", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    try:
        lines = asyncio.run(gate_report(plan, env_name))
    except BackendError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        sys.exit(1)
    print(format_report(lines, env.name, env.metrics.source))


def check_promql(plan: Plan) -> tuple[list[str], bool]:
    """``cockpit check``'s PromQL lines: each environment read through Prometheus has its
    templates and the plan's check queries parsed by its server, when it answers."""
    lines: list[str] = []
    ok = True
    queries = {c.name: c.query for c in plan.analysis.checks if c.query is not None}
    for env in plan.environments:
        if env.metrics.source != "prometheus":
            continue
        # Imported only here: the prometheus extra (its client needs requests) is optional,
        # and a plan that reads no Prometheus must check without it.
        from cockpit.adapters.prometheus.source import PrometheusMetricsSource
        from cockpit.adapters.prometheus.validate import report

        source = make_source(plan, env)
        assert isinstance(source, PrometheusMetricsSource)
        try:
            env_lines, env_ok = report(env.name, source, queries)
        finally:
            source.server.close()
        lines += env_lines
        ok = ok and env_ok
    return lines, ok
