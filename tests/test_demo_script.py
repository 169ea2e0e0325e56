"""scripts/demo.sh installs only when needed: the real script, run in a copy of the repo
whose setup.sh and cockpit are stand-ins that record each call."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FAKE_SETUP = """#!/usr/bin/env bash
set -euo pipefail
echo setup >> calls.txt
[[ -f fail-setup ]] && exit 1
mkdir -p .venv/bin
printf '#!/usr/bin/env bash\\necho "cockpit $*" >> calls.txt\\n' > .venv/bin/cockpit
chmod +x .venv/bin/cockpit
"""


def copy_of_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "demo.sh", root / "scripts" / "demo.sh")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "scripts" / "setup.sh").write_text(FAKE_SETUP)
    return root


def demo(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "demo.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )


def calls(root: Path) -> list[str]:
    return (root / "calls.txt").read_text().splitlines()


def test_demo_sh_installs_once_then_starts_at_once(tmp_path: Path) -> None:
    root = copy_of_repo(tmp_path)
    assert demo(root, "--reset").returncode == 0
    assert calls(root) == ["setup", "cockpit demo --reset"]
    assert demo(root).returncode == 0
    assert calls(root)[2:] == ["cockpit demo"]  # nothing changed: no install


def test_demo_sh_installs_again_when_pyproject_changes_or_when_asked(tmp_path: Path) -> None:
    root = copy_of_repo(tmp_path)
    demo(root)
    with (root / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    demo(root)
    assert calls(root) == ["setup", "cockpit demo", "setup", "cockpit demo"]
    demo(root, COCKPIT_REINSTALL="1")
    assert calls(root)[4:] == ["setup", "cockpit demo"]
    (root / ".venv" / "bin" / "cockpit").unlink()  # a broken venv: install again
    demo(root)
    assert calls(root)[6:] == ["setup", "cockpit demo"]


def test_a_failed_install_is_retried_next_time(tmp_path: Path) -> None:
    root = copy_of_repo(tmp_path)
    (root / "fail-setup").touch()
    (root / ".venv" / "bin").mkdir(parents=True)
    result = demo(root)
    assert result.returncode != 0
    assert not (root / ".venv" / ".cockpit-install-stamp").exists()
    (root / "fail-setup").unlink()
    assert demo(root).returncode == 0
    assert calls(root) == ["setup", "setup", "cockpit demo"]
