#!/usr/bin/env bash
# Install cockpit and open it on the embedded demo (no Docker, Kubernetes or Prometheus needed).
# The install runs only when needed: a stamp in .venv records the hash of what it installed
# from (pyproject.toml and scripts/setup.sh); while .venv/bin/cockpit exists and the hash is
# the same, the demo starts at once. COCKPIT_REINSTALL=1 installs again anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.cockpit-install-stamp
wanted=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ "${COCKPIT_REINSTALL:-}" == 1 || ! -x .venv/bin/cockpit || ! -f $stamp || "$(cat "$stamp")" != "$wanted" ]]; then
    bash scripts/setup.sh
    echo "$wanted" > "$stamp"  # only once setup succeeded (set -e)
fi
exec .venv/bin/cockpit demo "$@"
