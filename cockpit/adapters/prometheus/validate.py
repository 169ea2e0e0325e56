"""PromQL syntax checks against a live server, for ``cockpit check``.

Prometheus (2.42+) parses a query without running it at ``GET /api/v1/format_query``:
200 with the formatted query when it parses, 400 with the parser's error when not. The
templates are rendered first (placeholders filled with the source's values), so what is
checked is what would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.adapters.base import BackendConfigError, BackendError, BackendUnavailable
from cockpit.adapters.prometheus.source import PrometheusMetricsSource
from cockpit.model import Track
from cockpit.secrets import redact

VALIDATION_WINDOW = 60.0  # any window parses the same; {interval} needs one


@dataclass(frozen=True)
class QueryVerdict:
    label: str  # what the query is: "check 'p99'", "template latency-p99"
    query: str  # as it would be sent
    error: str  # "" when it parses


class Unreachable(Exception):
    """The server could not be asked; the message says which and why."""


def validate_queries(source: PrometheusMetricsSource, queries: dict[str, str]) -> list[QueryVerdict]:
    """Parse each of ``queries`` (label -> template) on the source's server. Raises
    :class:`Unreachable` when the server cannot be asked at all. Blocking."""
    verdicts = []
    for label, template in queries.items():
        try:
            promql = source.render(template, Track.CANARY, VALIDATION_WINDOW)
        except BackendConfigError as err:
            verdicts.append(QueryVerdict(label, template, str(err)))
            continue
        try:
            response = source.server.get("/api/v1/format_query", {"query": promql})
        except BackendUnavailable as err:
            raise Unreachable(
                f"could not validate PromQL: Prometheus at {source.options.url} unreachable ({err})"
            ) from None
        except BackendError as err:
            raise Unreachable(f"could not validate PromQL: {err}") from None
        if response.status_code == 200:
            verdicts.append(QueryVerdict(label, promql, ""))
        elif response.status_code == 400:
            verdicts.append(QueryVerdict(label, promql, redact(_error_of(response))))
        elif response.status_code == 404:
            raise Unreachable(
                f"could not validate PromQL: Prometheus at {source.options.url} has no format_query API"
                " (it needs Prometheus 2.42 or newer)"
            )
        else:
            raise Unreachable(
                f"could not validate PromQL: Prometheus at {source.options.url} answered {response.status_code}"
            )
    return verdicts


def _error_of(response: object) -> str:
    try:
        payload = response.json()  # type: ignore[attr-defined]
    except ValueError:
        return "the query does not parse"
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, str) else "the query does not parse"


def plan_queries(source: PrometheusMetricsSource, check_queries: dict[str, str]) -> dict[str, str]:
    """What to parse for one environment: every built-in template the source would send
    (preset or overridden) and every custom check's query."""
    queries = {f"template {metric}": template for metric, template in source.templates.items()}
    queries.update({f"check {name!r}": query for name, query in check_queries.items()})
    return queries


def report(
    env: str, source: PrometheusMetricsSource, check_queries: dict[str, str]
) -> tuple[list[str], bool]:
    """Lines for ``cockpit check`` about one environment's PromQL, and whether all parse
    (True too when the server could not be asked: that is said, not failed)."""
    try:
        verdicts = validate_queries(source, plan_queries(source, check_queries))
    except Unreachable as err:
        return [f"promql    {env}: {err}"], True
    bad = [v for v in verdicts if v.error]
    if not bad:
        return [f"promql    {env}: {len(verdicts)} queries parse (Prometheus at {source.options.url})"], True
    lines = [
        f"promql    {env}: {v.label} does not parse: {v.error}\n            query: {v.query}" for v in bad
    ]
    return lines, False
