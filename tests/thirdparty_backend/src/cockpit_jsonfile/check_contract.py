"""This backend's own tests: cockpit's shipped contract suite, with our factory.

Run here with ``pytest`` (see pyproject.toml); cockpit's own test run imports
:class:`TestJsonFileBackendContract` from the installed package and runs it too."""

from __future__ import annotations

from pathlib import Path

from cockpit.adapters.base import DeployBackend
from cockpit.adapters.testing import BackendContract, contract_context
from cockpit_jsonfile.backend import JsonFileBackend, JsonFileOptions


class TestJsonFileBackendContract(BackendContract):
    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return JsonFileBackend(contract_context(run_dir, service), JsonFileOptions(versions=["2.0", "2.1", "3.0"]))
