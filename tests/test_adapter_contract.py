"""The shipped backend contract (cockpit.adapters.testing), run against this project's
backends. A backend in another package runs the same suite the same way: see
tests/thirdparty_backend and tests/test_thirdparty_contract.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from cockpit.adapters.base import DeployBackend
from cockpit.adapters.memory import MemoryBackend
from cockpit.adapters.testing import BackendContract, contract_context
from tests.local_fixtures import ROOT, make_backend, service_fixture  # noqa: F401


class TestLocalBackendContract(BackendContract):
    @pytest.fixture
    def service(self, service: str) -> str:
        # The module's leak-checking ``service`` (local_fixtures): after each test, no
        # process of it may be alive.
        return service

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return make_backend(run_dir, service, env="contract", versions=["1.0.0", "1.1.0"])


class TestMemoryBackendContract(BackendContract):
    """The in-memory backend the screen tests use must keep the same promises."""

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return MemoryBackend(contract_context(run_dir, service), MemoryBackend.Options(versions=["1.0.0", "1.1.0"]))


# --------------------------------------------------------------------------- the suite itself

# Each backend breaks one promise; the shipped suite must fail that test (and may fail
# others). Without this, a check deleted from cockpit.adapters.testing would go unnoticed.
MUTANTS = '''
from cockpit.adapters.base import BackendError, BackendStatus
from cockpit.adapters.memory import MemoryBackend
from cockpit.adapters.testing import BackendContract, contract_context


class Contract(BackendContract):
    backend_class = MemoryBackend

    def make_backend(self, run_dir, service):
        options = self.backend_class.Options(versions=["1.0.0", "1.1.0"])
        return self.backend_class(contract_context(run_dir, service), options)


class DuplicateVersions(MemoryBackend):
    async def versions(self):
        return ["1.0.0", "1.1.0", "1.0.0"]


class AttachesToNothing(MemoryBackend):
    async def attach(self):
        pass


class StableNeverReady(MemoryBackend):
    async def status(self):
        s = await super().status()
        return BackendStatus(s.stable and s.stable.__class__(s.stable.version, 2, 0), s.canary, s.weight)


class PromoteKeepsCanary(MemoryBackend):
    async def promote_canary(self):
        self.stable = self.canary


class AnyWeight(MemoryBackend):
    async def set_weight(self, weight):
        if self.canary is None:
            raise BackendError("no canary")
        self.weight = weight


class HalfAppliedWeight(MemoryBackend):
    async def set_weight(self, weight):
        self.weight = weight  # changed before it is refused
        await super().set_weight(weight)


class UntypedErrors(MemoryBackend):
    async def deploy_canary(self, version):
        if version not in self.options.versions:
            raise BackendError("no such version")
        await super().deploy_canary(version)


class AliveAfterClose(MemoryBackend):
    async def close(self):
        pass


class TestDuplicateVersions(Contract):
    backend_class = DuplicateVersions


class TestAttachesToNothing(Contract):
    backend_class = AttachesToNothing


class TestStableNeverReady(Contract):
    backend_class = StableNeverReady


class TestPromoteKeepsCanary(Contract):
    backend_class = PromoteKeepsCanary


class TestAnyWeight(Contract):
    backend_class = AnyWeight


class TestHalfAppliedWeight(Contract):
    backend_class = HalfAppliedWeight


class TestUntypedErrors(Contract):
    backend_class = UntypedErrors


class TestAliveAfterClose(Contract):
    backend_class = AliveAfterClose
'''

CAUGHT_BY = {
    "TestDuplicateVersions": "test_declares_itself",
    "TestAttachesToNothing": "test_attach_to_nothing_is_unavailable",
    "TestStableNeverReady": "test_start_runs_stable_at_100",
    "TestPromoteKeepsCanary": "test_canary_lifecycle",
    "TestAnyWeight": "test_weight_bounds",
    "TestHalfAppliedWeight": "test_weight_bounds",
    "TestUntypedErrors": "test_typed_errors",
    "TestAliveAfterClose": "test_close_is_final_and_idempotent",
}


def test_the_shipped_suite_catches_each_broken_promise(tmp_path: Path) -> None:
    (tmp_path / "test_mutants.py").write_text(MUTANTS)
    report = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=strict",
         f"--rootdir={tmp_path}", f"--junitxml={report}", str(tmp_path / "test_mutants.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    cases = {
        (case.get("classname", "").rpartition(".")[2], case.get("name")): case
        for case in ElementTree.parse(report).iter("testcase")
    }
    failed = {key for key, case in cases.items() if case.find("failure") is not None or case.find("error") is not None}
    # The harness really ran the suite: a promise a mutant keeps still passes.
    assert ("TestAttachesToNothing", "test_canary_lifecycle") in cases.keys() - failed, sorted(cases)
    missed = {(cls, test) for cls, test in CAUGHT_BY.items() if (cls, test) not in failed}
    assert not missed, f"the contract suite let these broken backends pass: {sorted(missed)}"
