"""A blue-green preview gets traffic before the switch (issue 8, item 11): the demo's
users send a share of their requests to it by header, the router routes them to the
canary track at weight 0, and the pre-promotion analysis measures them - real
processes, the demo plan turned blue-green."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cockpit.cli import demo_plan
from cockpit.demo.load import DEMO_TRAFFIC, PREVIEW_SHARE, traffic_argv, with_preview_testers
from cockpit.demo.session import DemoSession
from cockpit.engine.commands import StartRollout
from cockpit.engine.state import Outcome
from cockpit.plan.models import Plan
from tests.local_fixtures import service_fixture  # noqa: F401


def blue_green_demo(service: str) -> Plan:
    data = demo_plan(0).model_dump()
    data["service"]["name"] = service
    data["strategy"] = {"blue_green": {"pre_promotion_analysis": ["success-rate"], "auto_promote": False}}
    for check in data["analysis"]["checks"]:
        # The testers send ~1 req/s to the preview (10 % of dev's 10 req/s): a 1 s window
        # is empty often enough that four in a row (the no-data limit) happened under CI
        # load; 2 s windows expect two requests each.
        check["interval"], check["count"] = 2.0, 2
    return Plan.model_validate(data)


def test_preview_testers_are_asked_for_only_in_a_blue_green_demo() -> None:
    argv = traffic_argv("http://x", with_preview_testers(DEMO_TRAFFIC)["dev"])
    assert argv[argv.index("--preview-share") + 1] == f"{PREVIEW_SHARE:g}"
    assert "--preview-share" not in traffic_argv("http://x", DEMO_TRAFFIC["dev"])


@pytest.mark.asyncio
async def test_the_preview_at_weight_0_is_measured_on_its_testers_traffic(
    tmp_path: Path, service: str
) -> None:
    session = DemoSession(blue_green_demo(service), state_dir=tmp_path, user="t")
    try:
        assert await session.start(only=["dev"]) == []
        for _ in range(200):
            if "dev" in session.traffic.running:
                break
            await asyncio.sleep(0.05)
        result = await session.submit("dev", StartRollout("1.1.0"))
        assert result.ok, result.message
        view = session.view("dev")
        for _ in range(600):  # the preview deploys, then the analysis measures twice, 2 s apart
            view = session.view("dev")
            a = view.rollout.analysis
            if a is not None and a.outcome is not Outcome.RUNNING:
                break
            await asyncio.sleep(0.05)
        assert view.blue_green and view.rollout.weight == 0, "the preview takes no user traffic"
        assert view.preview_url and view.preview_url != view.url
        a = view.rollout.analysis
        assert a is not None and a.outcome is Outcome.SUCCESSFUL, a
        (check,) = a.checks
        # Measured on the testers' requests. The first windows may end before they arrive
        # (how many depends on the machine's load): what matters is that measurements came.
        assert check.taken == check.count == 2
        assert sum(m.value is not None for m in check.measurements) == 2
        assert any(w.canary.has_data for w in view.metrics), "the preview's own metrics show the testers"
    finally:
        await session.close()
