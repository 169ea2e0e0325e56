#!/usr/bin/env bash
# Run the benchmarks; each prints its figures (they are measurements, not pass/fail tests).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || bash scripts/setup.sh --test
echo "== router: throughput and added latency"
.venv/bin/python scripts/bench_router.py "$@"
echo "== screen: log flood, key latency, memory, first paint"
.venv/bin/python scripts/bench_ui.py
echo "== logs end to end: service pipes -> supervision -> LogHub -> panes -> screen"
.venv/bin/python scripts/bench_logs.py
echo "== prometheus source: CPU of polling 3 environments x 6 queries every 2 s (goal <= 5 % of one core)"
if command -v prometheus >/dev/null || [[ -n "${COCKPIT_TEST_PROMETHEUS_URL:-}" ]]; then
    (
        # A private Prometheus unless one is given, stopped when this section ends.
        if [[ -z "${COCKPIT_TEST_PROMETHEUS_URL:-}" ]]; then
            PRT=$(mktemp -d /tmp/cockpit-prom.XXXXXX)
            trap 'bash scripts/servers.sh stop "$PRT"; rm -rf "$PRT"' EXIT
            # shellcheck disable=SC1090
            source <(bash scripts/servers.sh start "$PRT" prometheus)
        fi
        .venv/bin/python scripts/bench_prometheus.py
    )
else
    echo "skipped: prometheus is not installed (scripts/setup.sh --test installs it)"
fi
echo "== docker backend: start-to-healthy, canary step, abort, promote, rollback"
if command -v dockerd >/dev/null; then
    # A private daemon unless one is given (DOCKER_HOST), stopped with nothing left behind.
    if [[ -z "${DOCKER_HOST:-}" ]]; then
        RT=$(mktemp -d /tmp/cockpit-bench.XXXXXX)
        trap 'bash scripts/servers.sh stop "$RT"; rm -rf "$RT"' EXIT
        # shellcheck disable=SC1090
        source <(bash scripts/servers.sh start "$RT" docker)
    fi
    .venv/bin/python scripts/bench_docker.py
else
    echo "skipped: dockerd is not installed (scripts/setup.sh --test installs it)"
fi
echo "== prometheus gates: new targets queryable, regression start to abort (demo's own Prometheus)"
.venv/bin/python scripts/bench_prometheus_abort.py
echo "== migrations: a step's duration, lock_timeout precision (SQLite; PostgreSQL when installed), squawk's time"
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && [[ -z "${COCKPIT_TEST_POSTGRES_URL:-}" ]]; then
    (
        MRT=$(mktemp -d /tmp/cockpit-pg-bench.XXXXXX)
        trap 'bash scripts/servers.sh stop "$MRT"; rm -rf "$MRT"' EXIT
        # shellcheck disable=SC1090
        source <(bash scripts/servers.sh start "$MRT" postgres)
        .venv/bin/python scripts/bench_migrations.py
    )
else
    .venv/bin/python scripts/bench_migrations.py
fi
