"""HTTP smoke checks: a real request to the service, on one track, judged on its answer.

A check (``[[smoke]]`` in the plan) is sent where users reach the service - the URL the
backend reports (the router, an ingress) - with the ``x-cockpit-track`` header naming
the track, so the canary (or a blue-green preview at weight 0) answers it before it takes
any user traffic. A backend without such a URL but with a preview address has the canary
checked there directly. Each check is tried up to ``attempts`` times and passes on the
first answer that has the expected status, body and latency; the result says what was
asked, what came back and, when it failed, what was expected instead.

Any backend fits: only the observed :class:`~cockpit.model.BackendStatus` is used.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from cockpit import jsonpath
from cockpit.engine.state import SmokeResult
from cockpit.engine.views import EnvView
from cockpit.model import BackendStatus
from cockpit.plan.models import Plan, SmokeCheck, fill_placeholders
from cockpit.secrets import redact
from cockpit.units import format_duration

# The router's header (cockpit.adapters.router.protocol.TRACK_HEADER; the engine does not
# import a concrete adapter): on a request it picks the track, on an answer it names the
# track that served it. tests/test_smoke.py pins the two to the same name.
TRACK_HEADER = "x-cockpit-track"
MAX_BODY = 1 << 20  # a smoke answer is small; a huge one is read this far and judged on it
EXCERPT = 160  # characters of a body quoted in a failure

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a check's request goes and what ``{version}``/``{env}`` stand for there."""

    base_url: str
    via_router: bool  # send the track header (and hold the answer to it)
    version: str
    env: str


def target_for(
    check: SmokeCheck, status: BackendStatus | None, versions: dict[str, str | None], env: str
) -> Target | str:
    """The target of ``check`` from what the backend reports, or why there is none.
    ``versions`` maps a track to the version the cockpit deployed on it."""
    version = versions.get(check.track)
    if version is None:
        return f"no {check.track} is deployed to check"
    if status is None:
        return "the backend's status is not known yet"
    if status.url:
        return Target(status.url, True, version, env)
    if check.track == "canary" and status.preview_url:
        return Target(status.preview_url, False, version, env)
    return f"the backend reports no URL where the {check.track} track can be reached"


async def run_checks(
    checks: Sequence[SmokeCheck],
    resolve: Callable[[SmokeCheck], Awaitable[Target | str]],
    *,
    sleep: Sleep = asyncio.sleep,
    on_result: Callable[[SmokeResult], None] | None = None,
    stop_at_failure: bool = True,
) -> tuple[SmokeResult, ...]:
    """Run ``checks`` one after the other; a rollout's step stops at the first that fails
    (it is aborted on it: asking a bad canary more only delays traffic going back to stable)."""
    results: list[SmokeResult] = []
    async with httpx.AsyncClient(follow_redirects=False) as client:
        for check in checks:
            target = await resolve(check)
            if isinstance(target, str):
                asked = f"{check.method} {check.path} on track {check.track}"
                result = SmokeResult(check.name, False, asked, problem=f"cannot run: {target}")
            else:
                result = await run_check(check, target, client, sleep=sleep)
            results.append(result)
            if on_result is not None:
                on_result(result)
            if stop_at_failure and not result.passed:
                break
    return tuple(results)


async def run_check(
    check: SmokeCheck, target: Target, client: httpx.AsyncClient, *, sleep: Sleep = asyncio.sleep
) -> SmokeResult:
    """Try ``check`` against ``target`` until an answer passes or the attempts run out."""
    url = target.base_url.rstrip("/") + check.path
    request = f"{check.method} {redact(url)}" + (
        f" on track {check.track}" if target.via_router else " direct"
    )
    headers: dict[str, str] = {TRACK_HEADER: check.track} if target.via_router else {}
    result = SmokeResult(check.name, False, request)
    for attempt in range(1, check.attempts + 1):
        if attempt > 1:
            await sleep(check.interval)
        result = await _attempt(check, target, client, url, headers, request, attempt)
        if result.passed:
            break
    return result


async def _attempt(
    check: SmokeCheck,
    target: Target,
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    request: str,
    attempt: int,
) -> SmokeResult:
    failed = SmokeResult(check.name, False, request, attempts=attempt)
    started = time.perf_counter()
    try:
        # One deadline for the whole exchange (httpx's own timeouts are per phase).
        async with asyncio.timeout(check.timeout):
            async with client.stream(check.method, url, headers=headers, timeout=check.timeout) as response:
                body = await _read(response)
    except TimeoutError:
        return _with(failed, problem=f"no complete answer within {format_duration(check.timeout)}")
    except httpx.TimeoutException:
        return _with(failed, problem=f"no complete answer within {format_duration(check.timeout)}")
    except httpx.HTTPError as err:
        return _with(failed, problem=f"request failed: {redact(f'{type(err).__name__}: {err}')}")
    latency = time.perf_counter() - started
    served_by = response.headers.get(TRACK_HEADER, "") if target.via_router else ""
    problems = judge(check, target, response.status_code, body, latency, served_by)
    return SmokeResult(
        check.name,
        not problems,
        request,
        status=response.status_code,
        latency=latency,
        served_by=served_by,
        attempts=attempt,
        problem="; ".join(problems),
    )


async def _read(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY:
            break
    return b"".join(chunks)[:MAX_BODY]


def _with(result: SmokeResult, problem: str) -> SmokeResult:
    return SmokeResult(result.name, False, result.request, attempts=result.attempts, problem=problem)


def judge(
    check: SmokeCheck, target: Target, status: int, body: bytes, latency: float, served_by: str
) -> list[str]:
    """Everything wrong with one answer, in words that say what was expected and what came."""
    problems: list[str] = []
    if served_by and served_by != check.track:
        # The router fell back to the other track (no replica on the one asked for) or
        # answered itself: whatever the body says, it is not the track under test.
        problems.append(f"answered by {served_by!r}, not the {check.track} track")
    if status != check.expect_status:
        excerpt = _excerpt(body)
        problems.append(
            f"expected status {check.expect_status}, got {status}" + (f": {excerpt}" if excerpt else "")
        )
    path = check.json_path()
    if path is not None:
        problems += _json_problems(check, path, target, body)
    if check.body_regex is not None:
        pattern = fill_placeholders(check.body_regex, target.version, target.env, escape=True)
        text = body.decode("utf-8", errors="replace")
        if re.search(pattern, text) is None:
            problems.append(
                f"expected the body to match /{pattern}/, got {_excerpt(body) or 'an empty body'}"
            )
    if check.max_latency is not None and latency > check.max_latency:
        problems.append(
            f"took {latency * 1000:.0f} ms, over the limit of {format_duration(check.max_latency)}"
        )
    return problems


def _json_problems(check: SmokeCheck, path: jsonpath.JsonPath, target: Target, body: bytes) -> list[str]:
    expected = check.expect_value
    if isinstance(expected, str):
        expected = fill_placeholders(expected, target.version, target.env)
    wanted = f"{path} == {json.dumps(expected)}"
    try:
        document = json.loads(body)
    except ValueError:
        return [f"expected a JSON body with {wanted}, got {_excerpt(body) or 'an empty body'}"]
    try:
        found = path.find(document)
    except jsonpath.Missing as missing:
        return [f"expected {wanted}, but {missing}"]
    if not same_json(found, expected):
        return [f"expected {wanted}, got {_trim(json.dumps(found))}"]
    return []


def same_json(found: object, expected: object) -> bool:
    """JSON equality without Python's ``True == 1``: a boolean only equals a boolean."""
    if isinstance(expected, bool) or isinstance(found, bool):
        return isinstance(expected, bool) and isinstance(found, bool) and found is expected
    return found == expected


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return _trim(redact(text))


def _trim(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


# --------------------------------------------------------------------------- on demand


def select_checks(plan: Plan, names: Sequence[str]) -> list[SmokeCheck]:
    """The ``[[smoke]]`` checks named (all of them when none is), or ``ValueError`` naming
    what the plan does not define."""
    defined = [c.name for c in plan.smoke]
    if not defined:
        raise ValueError("the plan defines no [[smoke]] checks")
    unknown = [n for n in names if n not in defined]
    if unknown:
        raise ValueError(f"unknown smoke check {unknown[0]!r} (defined: {', '.join(defined)})")
    return [plan.smoke_check(n) for n in dict.fromkeys(names)] if names else list(plan.smoke)


async def check_environment(
    view: EnvView, checks: Sequence[SmokeCheck], *, sleep: Sleep = asyncio.sleep
) -> tuple[SmokeResult, ...]:
    """Run ``checks`` against an environment as ``view`` shows it now, every one of them
    (``cockpit smoke``: a pipeline step, or a look before pressing promote). ``{version}``
    is what the backend reports on each track."""
    status = view.backend
    versions = {
        "canary": status.canary.version if status and status.canary else view.rollout.canary_version,
        "stable": status.stable.version if status and status.stable else view.rollout.stable_version,
    }

    async def resolve(check: SmokeCheck) -> Target | str:
        return target_for(check, status, versions, view.name)

    return await run_checks(checks, resolve, sleep=sleep, stop_at_failure=False)


def result_line(result: SmokeResult) -> str:
    """One line of ``cockpit smoke``'s output."""
    if result.passed:
        return f"ok    {result.summary()} ({result.request})"
    return f"FAIL  {result.failure()}"
