#!/usr/bin/env bash
# Proves the package a user installs is whole: `pip install .` (not editable) into a fresh
# venv, then, from a directory outside the source tree, the CLI, the shipped demo plan,
# the adapters' entry points, the screen's stylesheet and themes, and a headless demo
# rollout (real service processes, the router run as `python -m`, the shim by path).
# A file missing from the wheel, or a dependency missing from pyproject.toml, fails here
# even though it works in the developer's editable install.
#   scripts/check_install.sh        (about a minute; run by scripts/test.sh before pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
PY=${PYTHON:-python3}

WORK=$(mktemp -d /tmp/cockpit-install.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
say() { echo "check-install: $*"; }
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

# A clean copy of the tree: a stale build/ or egg-info left by an earlier build cannot
# hide a file the package data forgets, and the worktree stays untouched.
mkdir "$WORK/src" "$WORK/run" "$WORK/state" "$WORK/config"
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    --exclude=./tests -cf - . | tar -C "$WORK/src" -xf -

say "fresh venv, pip install . (not editable)"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "$WORK/src" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; fail "pip install"; }
rm -rf "$WORK/src"  # nothing below may lean on the sources

# Outside any source tree, with nothing inherited that could point back into one.
cd "$WORK/run"
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export COCKPIT_STATE_DIR="$WORK/state" COCKPIT_CONFIG_DIR="$WORK/config" PYTHONNOUSERSITE=1
COCKPIT="$WORK/venv/bin/cockpit"

where=$("$VPY" -c 'import cockpit; print(cockpit.__file__)')
[[ $where == "$WORK/venv/"* ]] || fail "cockpit is imported from $where, not the installed copy"

version=$("$COCKPIT" --version)
[[ $version == "cockpit, version "* ]] || fail "cockpit --version: $version"

plan=$("$VPY" -c 'from importlib.resources import files; print(files("cockpit") / "demo" / "plan.toml")')
[[ $plan == "$WORK/venv/"* ]] || fail "the demo plan is not in the installed package: $plan"
"$COCKPIT" check "$plan" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; fail "cockpit check $plan"; }

adapters=$("$COCKPIT" adapters)
grep -q "local" <<<"$adapters" && grep -q "scrape" <<<"$adapters" || fail "cockpit adapters: $adapters"

# The screen's assets: the three shipped themes load from the wheel, and the stylesheet
# parses with each one's variables (as the app does when it starts).
"$VPY" - <<'PY' || fail "the screen's stylesheet or themes are not in the installed package"
from importlib.resources import files

from textual.css.stylesheet import Stylesheet

from cockpit.ui.app import CockpitApp
from cockpit.ui.themes import builtin_dirs, load_themes

(shipped,) = builtin_dirs()
assert "site-packages" in str(shipped), shipped
themes, problems = load_themes([shipped])
assert {"dark", "light", "high-contrast"} <= set(themes) and not problems, (sorted(themes), problems)
for theme in themes.values():
    sheet = Stylesheet(variables={**theme.to_color_system().generate(), **theme.variables})
    sheet.read(CockpitApp.CSS_PATH)
    sheet.parse()
assert (files("cockpit") / "py.typed").is_file()
PY

say "headless demo rollout (dev, 1.1.0, free ports)"
if ! timeout 180 "$COCKPIT" demo --headless --env dev --version 1.1.0 --port-base 0 \
    --state-dir "$WORK/state" >"$WORK/demo.log" 2>&1; then
    tail -n 40 "$WORK/demo.log" >&2
    fail "cockpit demo --headless (exit status above)"
fi
verdict=$("$COCKPIT" history --demo --verify --state-dir "$WORK/state") || true
[[ $verdict == "journal intact: "* ]] || fail "the demo's journal: $verdict"
say "ok: the installed package runs the demo"
