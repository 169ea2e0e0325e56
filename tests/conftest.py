"""Shared fixtures. Real servers are started by scripts/test.sh; a test that needs
one skips when run by hand without it, and fails in CI where it must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real Docker Engine's fixtures, for every test module (tests/docker_fixtures.py).
from tests.docker_fixtures import (  # noqa: F401
    demo_images,
    docker_client,
    docker_host,
    docker_labels,
    docker_service,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(flag: str, what: str) -> None:
    if os.environ.get(flag) == "1":
        return
    message = f"{what} is not running (start the suite with scripts/test.sh)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir, so no test touches the user's journal."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("COCKPIT_STATE_DIR", str(path))
    return path


@pytest.fixture
def real_keyring() -> None:
    require_server("COCKPIT_TEST_KEYRING", "the Secret Service (gnome-keyring)")
