"""The http backend, cockpit driver, against the real deploy-API test service: the whole
canary walk, faults (500s retried only where idempotent, a timed-out deploy never sent
twice), a rejected token, and the token never in an error or a log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cockpit import secrets
from cockpit.adapters import registry
from cockpit.adapters.base import (
    AdapterContext,
    BackendError,
    BackendUnavailable,
    CommandRefused,
    HealthCheckFailed,
    LogLine,
    Track,
    VersionNotFound,
)
from cockpit.adapters.http.backend import HttpBackend
from cockpit.adapters.http.transport import CredentialRejected
from tests.deploy_api.fixtures import DeployApi, deploy_api_fixture, deploy_api_server_fixture  # noqa: F401

pytestmark = pytest.mark.deploy_api

E = "/api/apps/{service}/envs/{env}"


def plan_options(url: str, driver: str = "cockpit", **more: Any) -> dict[str, Any]:
    """The plan's ``[environments.backend.options]`` for the deploy API, as a team writes it."""
    options: dict[str, Any] = {
        "base_url": url,
        "driver": driver,
        "headers": {"Authorization": "Bearer {secret:deploy-token}"},
        "timeout": 2.0,
        "backoff": 0.02,
        "ready_timeout": 5.0,
        "poll_interval": 0.05,
        "actions": {
            "status": {"path": E + "/status"},
            "versions": {"path": E + "/versions"},
            "deploy_canary": {"method": "POST", "path": E + "/canary", "body": {"version": "{version}"}},
            "set_weight": {"method": "PUT", "path": E + "/weight", "body": {"weight": "{weight}"}, "idempotent": True},
            "promote": {"method": "POST", "path": E + "/promote"},
            "abort": {"method": "POST", "path": E + "/abort"},
            "rollback": {"method": "POST", "path": E + "/rollback", "body": {"version": "{version}"}},
        },
        "status": {
            "stable_version": "$.stable.version",
            "stable_desired": "$.stable.replicas",
            "stable_ready": "$.stable.ready",
            "canary_version": "$.canary.version",
            "canary_desired": "$.canary.replicas",
            "canary_ready": "$.canary.ready",
            "weight": "$.weight",
        },
        "versions": "$.versions[*]",
        "revisions": {"items": "$.revisions[*]", "number": "$.revision", "version": "$.version"},
        **more,
    }
    if driver == "platform":
        current = E + "/rollouts/current/"
        options["commands"] = {
            "set-image": {
                "method": "POST",
                "path": E + "/rollouts",
                "body": {"version": "{version}", "steps": "{steps}"},
            },
            **{c: {"method": "POST", "path": current + c} for c in ("promote", "promote-full", "resume", "abort", "retry")},
            "pause": {"method": "POST", "path": current + "pause", "body": {"by": "{by}"}},
            "set-weight": {"method": "PUT", "path": E + "/weight", "body": {"weight": "{weight}"}, "idempotent": True},
            "undo": {"method": "POST", "path": E + "/rollback", "body": {"version": "{version}"}},
        }
        options["rollout"] = {
            "phase": "$.rollout.phase",
            "step": "$.rollout.step",
            "version": "$.rollout.version",
            "message": "$.rollout.message",
            "steps": "$.rollout.stepsDescribed",
            "pause": "$.rollout.pause",
            "paused_by": "$.rollout.pausedBy",
            "paused_until": "$.rollout.pausedUntil",
        }
    return options


def resolver(token: str) -> Any:
    def secret(name: str) -> str:
        if name != "deploy-token":
            raise BackendError(f"secret {name} is not in the plan")
        secrets._remember(token)  # as cockpit.secrets.resolve does: redact() masks it from now on
        return token

    return secret


def make(api: DeployApi, tmp: Path, token: str | None = None, env: str = "staging", **more: Any) -> HttpBackend:
    ctx = AdapterContext(service=api.app, env=env, run_dir=tmp, secrets=resolver(token or api.token))
    backend = registry.create_backend("http", ctx, plan_options(api.url, **more))
    assert isinstance(backend, HttpBackend)
    return backend


@pytest_asyncio.fixture
async def backend(deploy_api: DeployApi, tmp_path: Path) -> AsyncIterator[HttpBackend]:
    b = make(deploy_api, tmp_path)
    try:
        yield b
    finally:
        await b.close()


def posts(api: DeployApi, suffix: str, method: str = "POST") -> list[dict[str, Any]]:
    return [c for c in api.calls() if c["method"] == method and c["path"].endswith(suffix)]


# ---------------------------------------------------------------------- the walk


@pytest.mark.asyncio
async def test_full_canary_walk(backend: HttpBackend, deploy_api: DeployApi) -> None:
    await backend.start("1.0.0")
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
    await backend.deploy_canary("1.1.0")
    status = await backend.status()
    assert status.canary is not None and status.canary.version == "1.1.0" and status.canary.healthy
    for weight in (20, 50):
        await backend.set_weight(weight)
        assert deploy_api.status("staging")["weight"] == weight
    await backend.promote_canary()
    seen = deploy_api.status("staging")
    assert seen["stable"]["version"] == "1.1.0" and seen["canary"] is None and seen["weight"] == 0
    assert seen["revisions"][-1] == {"revision": seen["revision"], "version": "1.1.0"}
    # Every mutating call carried its own idempotency key.
    keys = [c["idempotency_key"] for c in deploy_api.calls() if c["method"] != "GET"]
    assert len(keys) == 4 and all(keys) and len(set(keys)) == 4


@pytest.mark.asyncio
async def test_abort_and_rollback(backend: HttpBackend, deploy_api: DeployApi) -> None:
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.set_weight(30)
    await backend.remove_canary()
    seen = deploy_api.status("staging")
    assert seen["canary"] is None and seen["weight"] == 0 and seen["stable"]["version"] == "1.0.0"
    await backend.remove_canary()  # nothing to abort: no request at all
    assert len(posts(deploy_api, "/abort")) == 1

    await backend.deploy_canary("1.2.0")
    await backend.deploy_stable("1.1.0")  # rollback removes the canary first
    seen = deploy_api.status("staging")
    assert seen["canary"] is None and seen["stable"] == {"version": "1.1.0", "replicas": 2, "ready": 2}


@pytest.mark.asyncio
async def test_refusals_are_typed_and_change_nothing(backend: HttpBackend, deploy_api: DeployApi) -> None:
    await backend.start("1.0.0")
    with pytest.raises(VersionNotFound, match=r"9\.9\.9"):
        await backend.deploy_canary("9.9.9")
    with pytest.raises(CommandRefused, match="no canary"):
        await backend.set_weight(10)  # the platform's own words
    await backend.deploy_canary("1.1.0")
    with pytest.raises(CommandRefused, match=r"a canary of 1\.1\.0 exists"):
        await backend.mutate("deploy_canary", lambda s: False, "deploying canary 1.2.0", version="1.2.0")
    with pytest.raises(BackendError, match="between 0 and 100"):
        await backend.set_weight(101)
    with pytest.raises(VersionNotFound, match=r"9\.9\.9"):
        await backend.deploy_stable("9.9.9")  # a rollback to nothing leaves the canary alone
    assert deploy_api.status("staging")["canary"]["version"] == "1.1.0" and not posts(deploy_api, "/abort")
    assert [c["status"] for c in posts(deploy_api, "/weight", "PUT")] == [409]  # 101 was never sent


@pytest.mark.asyncio
async def test_broken_canary_fails_its_health_gate(deploy_api: DeployApi, tmp_path: Path) -> None:
    deploy_api.broken("1.2.0")
    b = make(deploy_api, tmp_path, ready_timeout=0.6)
    try:
        await b.start("1.0.0")
        with pytest.raises(HealthCheckFailed, match=r"canary 1\.2\.0 not ready after 0\.6s .*0/1 ready"):
            await b.deploy_canary("1.2.0")
        assert deploy_api.status("staging")["weight"] == 0
    finally:
        await b.close()


# ---------------------------------------------------------------------- faults


@pytest.mark.asyncio
async def test_500s_are_retried_only_where_idempotent(backend: HttpBackend, deploy_api: DeployApi) -> None:
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    deploy_api.fault(method="PUT", path_suffix="/weight", status=500, times=2)
    await backend.set_weight(20)  # idempotent: retried through the two 500s
    weights = posts(deploy_api, "/weight", "PUT")
    assert [c["status"] for c in weights] == [500, 500, 200]
    assert len({c["idempotency_key"] for c in weights}) == 1

    deploy_api.fault(method="POST", path_suffix="/promote", status=500, times=1)
    with pytest.raises(BackendUnavailable, match=r"POST .*/promote answered 500.*not confirmed and was not sent again"):
        await backend.promote_canary()
    assert len(posts(deploy_api, "/promote")) == 1  # a mutating call is never sent again blindly
    assert deploy_api.status("staging")["canary"]["version"] == "1.1.0"

    deploy_api.fault(method="GET", path_suffix="/status", status=503, times=2)
    assert (await backend.status()).weight == 20


@pytest.mark.asyncio
async def test_a_timed_out_deploy_is_never_sent_twice(deploy_api: DeployApi, tmp_path: Path) -> None:
    b = make(deploy_api, tmp_path, timeout=0.4)
    try:
        await b.start("1.0.0")
        deploy_api.fault(method="POST", path_suffix="/canary", delay=1.0, times=1)
        with pytest.raises(BackendUnavailable) as caught:
            await b.deploy_canary("1.1.0")
        message = str(caught.value)
        assert "no answer from" in message and "within 0.4s" in message
        assert "the status shows stable 1.0.0, no canary" in message and "not sent again" in message
        # The delayed call still takes effect: one deploy, never two.
        deploy_api.wait_for(lambda s: s["canary"] is not None, "staging", timeout=5)
        await asyncio.sleep(0.3)
        assert len(posts(deploy_api, "/canary")) == 1
        assert deploy_api.status("staging")["canary"]["version"] == "1.1.0"
    finally:
        await b.close()


@pytest.mark.asyncio
async def test_a_timed_out_deploy_that_took_effect_goes_on(deploy_api: DeployApi, tmp_path: Path) -> None:
    """The answer was lost but the status shows the canary: the deploy goes on (waits for
    it to be ready) without a second request."""
    b = make(deploy_api, tmp_path, timeout=0.3)
    b.options.actions["status"]
    try:
        await b.start("1.0.0")
        deploy_api.fault(method="POST", path_suffix="/canary", delay=0.35, times=1)
        # The status read after the timeout may come before the delayed deploy acts; a
        # slower status answer lets the platform finish first.
        deploy_api.fault(method="GET", path_suffix="/status", delay=0.3, times=1)
        await b.deploy_canary("1.1.0")
        assert len(posts(deploy_api, "/canary")) == 1
        assert (await b.status()).canary is not None
    finally:
        await b.close()


@pytest.mark.asyncio
async def test_401_names_the_secret_and_never_the_token(
    deploy_api: DeployApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "dk-wrong-" + deploy_api.token[::-1]
    b = make(deploy_api, tmp_path, token=wrong)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(CredentialRejected) as caught:
            await b.start("1.0.0")
        message = str(caught.value)
        assert "answered 401" in message and "credential was rejected" in message and "'deploy-token'" in message
        assert wrong not in message and deploy_api.token not in message
        assert len(deploy_api.calls()) == 1  # not retried
    finally:
        await b.close()
    assert wrong not in caplog.text and deploy_api.token not in caplog.text


@pytest.mark.asyncio
async def test_token_never_in_errors_or_log_lines(
    backend: HttpBackend, deploy_api: DeployApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await backend.start("1.0.0")
    deploy_api.fault(method="POST", path_suffix="/canary", status=500, times=1)
    with pytest.raises(BackendError) as caught:
        await backend.deploy_canary("1.1.0")
    deploy_api.fault(method="PUT", path_suffix="/weight", status=502, times=5)
    with pytest.raises(BackendError, match="not confirmed after 4 attempts"):
        await backend.set_weight(5)
    assert deploy_api.token not in str(caught.value)
    assert deploy_api.token not in caplog.text and "retrying" in caplog.text


@pytest.mark.asyncio
async def test_attach_reads_and_changes_nothing(backend: HttpBackend, deploy_api: DeployApi) -> None:
    await backend.attach()
    assert all(c["method"] == "GET" for c in deploy_api.calls())
    deploy_api.fault(method="GET", path_suffix="/status", status=404, times=1)
    other = make(deploy_api, backend.ctx.run_dir, env="nothing")
    with pytest.raises(BackendUnavailable, match="nothing is deployed"):
        await other.attach()
    await other.close()


# ---------------------------------------------------------------------- logs


@pytest.mark.parametrize(
    "mode,path",
    [("poll", E + "/logs"), ("ndjson", E + "/logs/stream"), ("sse", E + "/logs/events")],
)
@pytest.mark.asyncio
async def test_logs_reach_the_sink(deploy_api: DeployApi, tmp_path: Path, mode: str, path: str) -> None:
    b = make(deploy_api, tmp_path, logs={"mode": mode, "path": path, "interval": 0.1})
    got: list[LogLine] = []
    b.attach_log_sink(got.extend)
    try:
        await b.start("1.0.0")
        await b.deploy_canary("1.1.0")
        for _ in range(100):
            if any(line.track is Track.CANARY and "1.1.0" in line.source for line in got):
                break
            await asyncio.sleep(0.05)
        canary = [line for line in got if line.track is Track.CANARY]
        assert canary, got[-5:]
        assert canary[0].source.startswith("canary 1.1.0 ") and canary[0].env == "staging"
        if mode == "poll":
            # The cursor moves on: no line is handed over twice.
            texts = [(line.ts, line.source, line.text) for line in got]
            assert len(texts) == len(set(texts))
    finally:
        await b.close()
    assert all(deploy_api.token not in line.text for line in got)


@pytest.mark.parametrize("mode,path", [("poll", E + "/logs"), ("ndjson", E + "/logs/stream"), ("sse", E + "/logs/events")])
@pytest.mark.asyncio
async def test_logs_come_back_after_failures(deploy_api: DeployApi, tmp_path: Path, mode: str, path: str) -> None:
    """The log endpoint fails for a while: the follower backs off and reads again; a poll
    keeps its cursor through the failures, so no line is handed over twice."""
    b = make(deploy_api, tmp_path, retries=0, logs={"mode": mode, "path": path, "interval": 0.05})
    got: list[LogLine] = []
    b.attach_log_sink(got.extend)
    suffix = "/" + path.rsplit("/", 1)[-1]
    try:
        if mode == "poll":
            await b.start("1.0.0")
            await until_lines(got, 3)
        deploy_api.fault(method="GET", path_suffix=suffix, status=500, times=2)
        if mode != "poll":
            await b.start("1.0.0")  # the stream's first two connections fail
        before = len(got)
        await until_lines(got, before + 3)
        reads = [c["status"] for c in deploy_api.calls() if c["path"].endswith(suffix)]
        # Failed twice, then read again (an open stream's status is logged when it ends).
        first = reads.index(500)
        assert reads[first : first + 2] == [500, 500] and reads[first + 2] in (200, None), reads
        texts = [(line.ts, line.source, line.text) for line in got]
        assert len(texts) == len(set(texts))
    finally:
        await b.close()


async def until_lines(got: list[LogLine], count: int) -> None:
    for _ in range(200):
        if len(got) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(got)} log lines of {count}")
