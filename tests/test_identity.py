"""Who acts, decided in one place: the OS user and the person's configured name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cockpit import identity
from cockpit.engine.session import Session
from cockpit.identity import Identity, current_identity, current_user
from cockpit.plan import parse_plan
from cockpit.ui.config import load_config

PACKAGE = Path(__file__).resolve().parent.parent / "cockpit"
DEMO = PACKAGE / "demo" / "plan.toml"


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config dir and no $COCKPIT_USER, as root on a bastion."""
    where = tmp_path / "config"
    where.mkdir()
    monkeypatch.setenv("COCKPIT_CONFIG_DIR", str(where))
    monkeypatch.delenv("COCKPIT_USER", raising=False)
    monkeypatch.setattr(identity.getpass, "getuser", lambda: "root")
    return where


def test_the_label_names_the_person_and_the_account() -> None:
    assert Identity("root", "Ann").label == "Ann (root)" == str(Identity("root", "Ann"))
    assert Identity("root").label == "root"
    assert Identity("ann", "ann").label == "ann"  # no "ann (ann)"


def test_without_a_name_it_is_the_os_user(config_dir: Path) -> None:
    assert current_identity() == Identity("root", None)
    assert current_user() == "root"


def test_the_config_file_names_the_person(config_dir: Path) -> None:
    (config_dir / "config.toml").write_text('theme = "light"\n[user]\nname = "Ann"\n')
    assert current_identity() == Identity("root", "Ann")
    assert current_user() == "Ann (root)"
    # The screen reads the same file and accepts the section (it used to refuse unknown keys).
    config, problems = load_config()
    assert problems == [] and config.user.name == "Ann" and config.theme == "light"


def test_cockpit_user_wins_over_the_config_file(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (config_dir / "config.toml").write_text('[user]\nname = "Ann"\n')
    monkeypatch.setenv("COCKPIT_USER", "  Bob ")
    assert current_user() == "Bob (root)"
    monkeypatch.setenv("COCKPIT_USER", "")
    assert current_user() == "Ann (root)"


@pytest.mark.parametrize(
    "text",
    ['[user]\nname = "Ann\\nroot"\n', "[user]\nname = 3\n", '[user]\nnick = "Ann"\n', "[user\n"],
    ids=["two-lines", "not-text", "unknown-key", "not-toml"],
)
def test_a_broken_name_falls_back_to_the_os_user_and_the_screen_says_why(config_dir: Path, text: str) -> None:
    (config_dir / "config.toml").write_text(text)
    assert current_user() == "root"
    _, problems = load_config()
    assert problems and str(config_dir / "config.toml") in problems[0]


def test_a_user_without_a_passwd_entry_is_named_by_uid(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_entry() -> str:
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr(identity.getpass, "getuser", no_entry)
    monkeypatch.setattr(identity.os, "getuid", lambda: 4242)
    assert current_user() == "uid4242"


def test_the_session_journals_as_the_current_identity(config_dir: Path, tmp_path: Path) -> None:
    (config_dir / "config.toml").write_text('[user]\nname = "Ann"\n')
    session = Session(parse_plan(DEMO.read_text(), DEMO), state_dir=tmp_path / "state")
    try:
        assert session.user == "Ann (root)"
    finally:
        session.journal.close()


def test_nothing_else_asks_the_os_who_acts() -> None:
    """getpass and $COCKPIT_USER are read in cockpit/identity.py only: a second reader
    would let the journal and the screen disagree about who acted."""
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "identity.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(), str(path))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        strings = {
            n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        if "getpass" in names or "COCKPIT_USER" in strings:
            readers.append(str(path.relative_to(PACKAGE)))
    assert readers == []
