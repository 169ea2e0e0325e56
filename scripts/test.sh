#!/usr/bin/env bash
# Install everything, start the real servers the tests use, run the whole suite, stop them.
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
set +e
.venv/bin/python -m pytest -ra -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
    echo "test: pytest collected no test: that is a failure" >&2
    exit 1
fi
exit $status
