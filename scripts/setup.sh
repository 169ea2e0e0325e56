#!/usr/bin/env bash
# Installs what cockpit needs on a fresh Debian machine: the system packages
# (with apt-get, when root) and a virtualenv in .venv with cockpit installed.
#   scripts/setup.sh          runtime only (the demo)
#   scripts/setup.sh --test   plus the test tools and the real servers the tests use
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null; then
    echo "setup: $PY not found; install Python 3.11 or newer" >&2
    exit 1
fi
"$PY" - <<'PYCHECK' || { echo "setup: cockpit needs Python >= 3.11 ($PY is older)" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYCHECK

apt_packages=()
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_packages+=(python3-venv)
fi
if [[ $want_test == 1 ]]; then
    # tmux: end-to-end runs of the real app; dbus + gnome-keyring: a real Secret
    # Service for the keyring tests; librsvg2-bin: SVG screenshots to PNG.
    # busybox-static: the shell in the demo's offline container image; curl: servers.sh
    # asks the test Docker daemon whether it is up.
    for pkg in tmux dbus dbus-x11 gnome-keyring librsvg2-bin busybox-static curl; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$pkg")
    done
    # A real Docker Engine for the docker backend's tests (scripts/servers.sh starts a
    # private one). Any dockerd will do, so only a missing one brings in Debian's.
    command -v dockerd >/dev/null || apt_packages+=(docker.io)
    # A real Prometheus for the prometheus source's tests (scripts/servers.sh starts one per
    # run); Debian's is 2.42, which has the format_query API `cockpit check` uses.
    command -v prometheus >/dev/null || apt_packages+=(prometheus)
    # A real PostgreSQL for the migration runners' tests (scripts/servers.sh starts a private
    # cluster per run with initdb + pg_ctl); Debian's is 15. Only its binaries are used.
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_packages+=(postgresql)
    # The demo image is built from the system's own Python 3.11 (cockpit/demo/image.py).
    [[ -x /usr/bin/python3.11 ]] || apt_packages+=(python3.11)
fi
if ((${#apt_packages[@]})); then
    if [[ $(id -u) == 0 ]]; then
        echo "setup: apt-get install ${apt_packages[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # No stdin in CI; wait for a dpkg lock another apt run holds instead of failing.
        apt-get -o DPkg::Lock::Timeout=300 update -qq </dev/null
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${apt_packages[@]}" \
            </dev/null >/dev/null
    else
        echo "setup: please install: sudo apt-get install ${apt_packages[*]}" >&2
        exit 1
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [[ $want_test == 1 ]]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    # An out-of-tree backend, installed as a third party's would be (not editable: cockpit
    # must find it through its entry point alone); tests/test_thirdparty_contract.py runs it.
    .venv/bin/python -m pip install -q --force-reinstall --no-deps ./tests/thirdparty_backend
else
    .venv/bin/python -m pip install -q -e .
fi
echo "setup: ready (.venv/bin/cockpit)"
