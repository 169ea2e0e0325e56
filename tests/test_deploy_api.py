"""The deploy-API test service's own behaviour (tests/deploy_api): auth, idempotency keys,
faults, the calls log and the state that changes over time. The http backend's end-to-end
tests (tests/test_http_e2e.py) rely on every one of these."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.deploy_api.fixtures import DeployApi, deploy_api_fixture, deploy_api_server_fixture  # noqa: F401

pytestmark = pytest.mark.deploy_api

STEPS = [{"setWeight": 20}, {"pause": {"duration": 0.5}}, {"pause": {}}, {"setWeight": 50}]


def canary_ready(status: dict) -> bool:
    return status["canary"] is not None and status["canary"]["ready"] == 1


def phase(name: str, step: int | None = None):
    def check(status: dict) -> bool:
        rollout = status["rollout"]
        return rollout is not None and rollout["phase"] == name and (step is None or rollout["step"] == step)

    return check


# --------------------------------------------------------------------------- auth


def test_api_routes_need_the_bearer_token(deploy_api: DeployApi) -> None:
    path = deploy_api.env_path("prod") + "/status"
    missing = deploy_api.client.get(path)
    wrong = deploy_api.client.get(path, headers={"Authorization": "Bearer not-the-token"})
    basic = deploy_api.client.get(path, headers={"Authorization": f"Basic {deploy_api.token}"})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.json() == {"error": "invalid token"}
    assert deploy_api.api("GET", path).status_code == 200
    assert [c["status"] for c in deploy_api.calls()] == [401, 401, 401, 200]


def test_a_refused_call_changes_nothing(deploy_api: DeployApi) -> None:
    path = deploy_api.env_path("prod") + "/canary"
    response = deploy_api.client.post(path, json={"version": "1.1.0"}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 401
    assert deploy_api.status("prod")["canary"] is None


# --------------------------------------------------------------------------- state over time


def test_a_new_canary_becomes_ready_after_a_moment(deploy_api: DeployApi) -> None:
    response = deploy_api.api("POST", deploy_api.env_path("prod") + "/canary", json={"version": "1.1.0"})
    assert response.status_code == 202
    assert response.json()["deployment"].startswith("d-")
    first = deploy_api.status("prod")
    assert first["canary"] == {"version": "1.1.0", "replicas": 1, "ready": 0}
    ready = deploy_api.wait_for(canary_ready, "prod", timeout=5)
    assert ready["stable"] == {"version": "1.0.0", "replicas": 2, "ready": 2}


def test_a_broken_version_never_becomes_ready(deploy_api: DeployApi) -> None:
    deploy_api.broken("1.2.0")
    deploy_api.api("POST", deploy_api.env_path("prod") + "/canary", json={"version": "1.2.0"})
    time.sleep(0.6)  # twice the time a healthy replica needs
    assert deploy_api.status("prod")["canary"]["ready"] == 0


def test_weight_promote_abort_and_rollback_move_the_state(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    assert deploy_api.api("PUT", env + "/weight", json={"weight": 10}).status_code == 409  # no canary
    deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"})
    other = deploy_api.api("POST", env + "/canary", json={"version": "1.2.0"})
    assert other.status_code == 409 and "1.1.0" in other.json()["error"]
    assert deploy_api.api("POST", env + "/canary", json={"version": "9.9.9"}).status_code == 404
    assert deploy_api.api("PUT", env + "/weight", json={"weight": 101}).status_code == 400
    weighted = deploy_api.api("PUT", env + "/weight", json={"weight": 20})
    assert weighted.status_code == 200 and weighted.json()["weight"] == 20
    again = deploy_api.api("PUT", env + "/weight", json={"weight": 20})
    assert again.json() == weighted.json()  # idempotent: same body, same state

    promoted = deploy_api.api("POST", env + "/promote").json()
    assert promoted["stable"]["version"] == "1.1.0" and promoted["canary"] is None
    assert promoted["revision"] == 2
    assert promoted["revisions"][-1] == {"revision": 2, "version": "1.1.0"}

    deploy_api.api("POST", env + "/canary", json={"version": "1.2.0"})
    deploy_api.api("PUT", env + "/weight", json={"weight": 50})
    aborted = deploy_api.api("POST", env + "/abort").json()
    assert aborted["canary"] is None and aborted["weight"] == 0
    assert aborted["stable"]["version"] == "1.1.0"

    rolled = deploy_api.api("POST", env + "/rollback", json={"version": "1.0.0"}).json()
    assert rolled["stable"]["version"] == "1.0.0" and rolled["revision"] == 3
    assert deploy_api.api("GET", env + "/versions").json() == {"versions": ["1.0.0", "1.1.0", "1.2.0"]}


def test_configure_gives_an_environment_its_own_versions(deploy_api: DeployApi) -> None:
    deploy_api.configure("edge", versions=["2.0.0", "2.1.0"], stable="2.0.0", replicas=3)
    status = deploy_api.status("edge")
    assert status["stable"] == {"version": "2.0.0", "replicas": 3, "ready": 3}
    assert (
        deploy_api.api("POST", deploy_api.env_path("edge") + "/canary", json={"version": "1.1.0"}).status_code
        == 404
    )


# --------------------------------------------------------------------------- idempotency and faults


def test_a_repeated_idempotency_key_returns_the_first_answer_and_deploys_nothing(
    deploy_api: DeployApi,
) -> None:
    env = deploy_api.env_path("prod")
    headers = {"Idempotency-Key": "k-1"}
    first = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers)
    second = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers)
    assert second.status_code == first.status_code == 202
    assert second.json() == first.json()
    calls = deploy_api.calls()
    assert [(c["idempotency_key"], c["replayed"]) for c in calls] == [("k-1", False), ("k-1", True)]
    deploys = [
        line
        for line in deploy_api.api("GET", env + "/logs").json()["lines"]
        if "deploy d-" in line["message"]
    ]
    assert len(deploys) == 1

    # The same key for another request is a client bug, refused rather than guessed.
    reused = deploy_api.api("POST", env + "/canary", json={"version": "1.2.0"}, headers=headers)
    assert reused.status_code == 422


def test_without_a_key_a_repeated_deploy_deploys_again(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    first = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}).json()
    second = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}).json()
    assert first["deployment"] != second["deployment"]  # the platform really acted twice


def test_status_faults_answer_without_acting_then_run_out(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"})
    deploy_api.fault(method="PUT", path_suffix="/weight", status=500, times=2)
    answers = [deploy_api.api("PUT", env + "/weight", json={"weight": 30}) for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 500, 200]
    assert "injected fault" in answers[0].json()["error"]
    weight_calls = [c for c in deploy_api.calls() if c["method"] == "PUT"]
    assert [c["fault"] is not None for c in weight_calls] == [True, True, False]
    assert deploy_api.status("prod")["weight"] == 30


def test_a_delayed_call_acts_even_when_the_client_gave_up(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    deploy_api.fault(method="POST", path_suffix="/canary", delay=0.8, times=1)
    with pytest.raises(httpx.ReadTimeout):
        deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, timeout=0.2)
    assert deploy_api.status("prod")["canary"] is None  # still working on it
    status = deploy_api.wait_for(lambda s: s["canary"] is not None, "prod", timeout=5)
    assert status["canary"]["version"] == "1.1.0"
    assert [c["status"] for c in deploy_api.calls() if c["method"] == "POST"] == [202]


def test_a_retry_with_the_key_while_the_first_is_in_flight_waits_for_it(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    headers = {"Idempotency-Key": "k-slow"}
    deploy_api.fault(method="POST", path_suffix="/canary", delay=0.6, times=1)
    with pytest.raises(httpx.ReadTimeout):
        deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers, timeout=0.2)
    retry = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers)
    assert retry.status_code == 202
    posts = [c for c in deploy_api.calls() if c["method"] == "POST"]
    assert [c["replayed"] for c in posts] == [False, True]
    assert posts[0]["status"] == 202  # the first call finished after its client left
    deploys = [
        line
        for line in deploy_api.api("GET", env + "/logs").json()["lines"]
        if "deploy d-" in line["message"]
    ]
    assert [line["message"].split(":")[0] for line in deploys] == [f"deploy {retry.json()['deployment']}"]


def test_a_server_error_is_not_kept_for_the_key(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    headers = {"Idempotency-Key": "k-500"}
    deploy_api.fault(method="POST", path_suffix="/canary", status=503, times=1)
    failed = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers)
    assert failed.status_code == 503
    retried = deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"}, headers=headers)
    assert retried.status_code == 202
    assert deploy_api.status("prod")["canary"]["version"] == "1.1.0"


def test_reset_clears_state_calls_and_faults(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"})
    deploy_api.fault(method="GET", path_suffix="/status", status=500, times=5)
    deploy_api.reset()
    assert deploy_api.calls() == []
    assert deploy_api.status("prod")["canary"] is None  # also proves the fault is gone


# --------------------------------------------------------------------------- the platform-walked rollout


def start_rollout(
    deploy_api: DeployApi, env: str = "prod", version: str = "1.1.0", steps=STEPS
) -> httpx.Response:
    return deploy_api.api(
        "POST", deploy_api.env_path(env) + "/rollouts", json={"version": version, "steps": steps}
    )


def command(deploy_api: DeployApi, name: str, env: str = "prod", **body: object) -> httpx.Response:
    return deploy_api.api("POST", deploy_api.env_path(env) + f"/rollouts/current/{name}", json=body)


def test_the_platform_walks_the_steps_on_its_own_timers(deploy_api: DeployApi) -> None:
    started = start_rollout(deploy_api)
    assert started.status_code == 202 and started.json()["rollout"].startswith("r-")
    timed = deploy_api.wait_for(phase("Paused", 1), "prod", timeout=5)
    assert timed["weight"] == 20 and timed["rollout"]["pause"] == "step"
    assert timed["rollout"]["pausedUntil"] > time.time() - 1
    # The timed pause ends by itself; the next one waits for promote.
    waiting = deploy_api.wait_for(phase("Paused", 2), "prod", timeout=5)
    assert waiting["rollout"]["pausedUntil"] is None
    time.sleep(0.3)
    assert deploy_api.status("prod")["rollout"]["step"] == 2  # still waiting
    assert (
        deploy_api.api("PUT", deploy_api.env_path("prod") + "/weight", json={"weight": 5}).status_code == 409
    )
    assert command(deploy_api, "promote").status_code == 200
    done = deploy_api.wait_for(phase("Healthy"), "prod", timeout=5)
    assert done["stable"]["version"] == "1.1.0" and done["canary"] is None
    assert done["revision"] == 2 and done["rollout"]["step"] == 4
    assert command(deploy_api, "abort").status_code == 409  # nothing left to abort


def test_pause_freezes_a_timed_pause_until_resume(deploy_api: DeployApi) -> None:
    start_rollout(deploy_api, steps=[{"setWeight": 10}, {"pause": {"duration": 0.4}}, {"setWeight": 60}])
    deploy_api.wait_for(phase("Paused", 1), "prod", timeout=5)
    assert command(deploy_api, "pause", by="alice").status_code == 200
    assert command(deploy_api, "pause").status_code == 409
    time.sleep(0.7)  # longer than the pause step
    held = deploy_api.status("prod")["rollout"]
    assert (held["phase"], held["step"], held["pause"], held["pausedBy"]) == ("Paused", 1, "user", "alice")
    assert command(deploy_api, "resume").status_code == 200
    assert command(deploy_api, "resume").status_code == 409
    deploy_api.wait_for(phase("Healthy"), "prod", timeout=5)


def test_abort_and_retry_of_a_platform_rollout(deploy_api: DeployApi) -> None:
    start_rollout(deploy_api)
    deploy_api.wait_for(phase("Paused", 2), "prod", timeout=5)
    aborted = command(deploy_api, "abort").json()
    assert aborted["rollout"]["phase"] == "Aborted"
    assert aborted["canary"] is None and aborted["weight"] == 0
    assert aborted["stable"]["version"] == "1.0.0"
    assert command(deploy_api, "promote").status_code == 409
    assert command(deploy_api, "retry").status_code == 200
    again = deploy_api.wait_for(phase("Paused", 1), "prod", timeout=5)
    assert again["canary"]["version"] == "1.1.0" and again["weight"] == 20
    full = command(deploy_api, "promote-full").json()
    assert full["rollout"]["phase"] == "Healthy" and full["stable"]["version"] == "1.1.0"
    assert command(deploy_api, "explode").status_code == 404


def test_a_canary_that_never_becomes_ready_degrades_the_rollout(deploy_api: DeployApi) -> None:
    deploy_api.configure("prod", progress_deadline=0.5)
    deploy_api.broken("1.2.0")
    start_rollout(deploy_api, version="1.2.0")
    degraded = deploy_api.wait_for(phase("Degraded"), "prod", timeout=5)
    assert degraded["weight"] == 0 and degraded["rollout"]["step"] == 0
    assert "did not become ready" in degraded["rollout"]["message"]
    assert start_rollout(deploy_api, steps=[{"setWeight": 30}]).status_code == 202  # a new one may start
    deploy_api.wait_for(phase("Healthy"), "prod", timeout=5)


def test_rollouts_check_their_steps(deploy_api: DeployApi) -> None:
    bad = start_rollout(deploy_api, steps=[{"setWeight": 20}, {"analysis": {}}])
    assert bad.status_code == 400 and "step 1" in bad.json()["error"]
    assert start_rollout(deploy_api, steps=[]).status_code == 400
    assert start_rollout(deploy_api, steps=[{"pause": {"duration": "2x"}}]).status_code == 400
    assert start_rollout(deploy_api, version="1.0.0").status_code == 409  # already stable
    assert command(deploy_api, "promote").status_code == 404  # no rollout yet


# --------------------------------------------------------------------------- logs


def test_logs_by_polling_follow_next(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    deploy_api.api("POST", env + "/canary", json={"version": "1.1.0"})
    first = deploy_api.api("GET", env + "/logs", params={"after": 0}).json()
    assert first["lines"][0]["message"].startswith("deploy d-")
    time.sleep(0.5)  # about 10 request lines per ready replica and second
    later = deploy_api.api("GET", env + "/logs", params={"after": first["next"]}).json()
    seqs = [line["seq"] for line in later["lines"]]
    assert seqs and seqs[0] == first["next"] and seqs == sorted(seqs)
    assert {line["replica"] for line in later["lines"]} >= {"stable-0", "stable-1", "canary-0"}
    assert later["next"] == seqs[-1] + 1


def test_logs_stream_as_ndjson_and_server_sent_events(deploy_api: DeployApi) -> None:
    env = deploy_api.env_path("prod")
    deploy_api.status("prod")
    headers = {"Authorization": f"Bearer {deploy_api.token}"}
    with deploy_api.client.stream(
        "GET", env + "/logs/stream", params={"after": 1}, headers=headers
    ) as stream:
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        lines = []
        for text in stream.iter_lines():
            lines.append(json.loads(text))
            if len(lines) == 5:
                break
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    with deploy_api.client.stream("GET", env + "/logs/events", headers=headers) as events:
        data = []
        for text in events.iter_lines():
            if text.startswith("data: "):
                data.append(json.loads(text.removeprefix("data: ")))
            if len(data) == 3:
                break
    assert data[0]["seq"] > 5 and data[0]["track"] == "stable"
    unauthorised = deploy_api.client.get(env + "/logs/stream")
    assert unauthorised.status_code == 401
