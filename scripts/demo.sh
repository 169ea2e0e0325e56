#!/usr/bin/env bash
# Install cockpit and open it on the embedded demo (no Docker, Kubernetes or Prometheus needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cockpit demo "$@"
