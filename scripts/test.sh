#!/usr/bin/env bash
# Install everything, start the real servers the tests use, lint, type-check, check that a non-editable
# install runs the demo (scripts/check_install.sh), run the whole suite, stop the servers.
# Extra arguments go to pytest (e.g. scripts/test.sh -k machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test

# Real servers live under a short runtime dir (unix socket paths must stay < 108 chars).
RT=$(mktemp -d /tmp/cockpit-rt.XXXXXX)
export COCKPIT_TEST_RT="$RT"
cleanup() {
    bash scripts/servers.sh stop "$RT" || true
    rm -rf "$RT"
}
trap cleanup EXIT
# shellcheck disable=SC1090
source <(bash scripts/servers.sh start "$RT")

.venv/bin/ruff check cockpit tests scripts
# Types: a type error fails CI like a lint error ([tool.mypy] in pyproject.toml says what and how).
.venv/bin/mypy
# The package as a user gets it: pip install . into a fresh venv, then the demo.
bash scripts/check_install.sh
set +e
.venv/bin/python -m pytest -ra -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
    echo "test: pytest collected no test: that is a failure" >&2
    exit 1
fi
exit $status
