#!/usr/bin/env bash
# Start or stop the real servers the tests use, in a private runtime dir.
#   servers.sh start RT [docker|prometheus|postgres]   prints `export VAR=...` lines to source
#   servers.sh stop RT              (`docker`: the Docker daemon only, for the benchmarks;
#                                    `prometheus`: the test Prometheus only;
#                                    `postgres`: the test PostgreSQL only)
# Servers: a private D-Bus session bus and gnome-keyring's Secret Service; a private
# Docker Engine when dockerd is installed (scripts/setup.sh --test installs it); one
# Prometheus (1 s scrape, file SD over $RT/prom-sd/*.json) when prometheus is installed.
# One PostgreSQL cluster (initdb + pg_ctl, loopback, scram password for role `cockpit`,
# database `cockpit`) when Debian's postgresql binaries are installed.
# RT must stay short: unix socket paths are limited to 108 characters.
set -euo pipefail
cmd=${1:?start|stop}
RT=${2:?runtime dir}
only=${3:-}

# Storage driver of the test daemon. overlay2 creates a container in ~0.1 s and shares the
# image's layers; vfs copies the whole image per container (~1.5 s and ~66 MB each for the
# demo image). overlay2 is the default; COCKPIT_DOCKER_STORAGE=vfs for a filesystem that
# cannot host overlay mounts, and start falls back to vfs on its own if overlay2 fails.
DOCKER_STORAGE=${COCKPIT_DOCKER_STORAGE:-overlay2}

docker_ping() {
    curl -sf --max-time 2 --unix-socket "$RT/docker.sock" http://d/_ping >/dev/null 2>&1
}

# Every process whose command line names this runtime dir (dockerd, its containerd and the
# shims), then the shims' descendants (the containers' processes): the leftovers of a daemon.
rt_processes() {
    ps -ww -eo pid=,ppid=,args= | awk -v rt="$RT/" '
        { pid[NR]=$1; ppid[NR]=$2; line=$0; sub(/^ *[0-9]+ +[0-9]+ +/, "", line); args[NR]=line }
        END {
            for (i = 1; i <= NR; i++) if (index(args[i], rt) > 0) keep[pid[i]] = 1
            changed = 1
            while (changed) {
                changed = 0
                for (i = 1; i <= NR; i++) if (!(pid[i] in keep) && (ppid[i] in keep)) { keep[pid[i]] = 1; changed = 1 }
            }
            for (p in keep) print p
        }'
}

# Live means not gone and not a zombie (a zombie lingers until its parent reaps it).
alive() {
    local state
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

start_dockerd() {
    local driver=$1
    mkdir -p "$RT/docker" "$RT/dexec"
    dockerd --storage-driver="$driver" --iptables=false --ip6tables=false --bridge=none \
        --data-root "$RT/docker" --exec-root "$RT/dexec" -H "unix://$RT/docker.sock" \
        --pidfile "$RT/dockerd.pid" >"$RT/dockerd.log" 2>&1 &
    echo $! >"$RT/dockerd.launch.pid"
    for _ in $(seq 1 300); do
        docker_ping && return 0
        alive "$(cat "$RT/dockerd.launch.pid")" || return 1
        sleep 0.1
    done
    return 1
}

stop_dockerd() {
    [[ -f "$RT/dockerd.launch.pid" ]] || return 0
    # Containers first, killed at once: a daemon stopping on its own waits out every
    # container's stop timeout.
    if docker_ping; then
        local ids
        ids=$(curl -sf --max-time 5 --unix-socket "$RT/docker.sock" 'http://d/containers/json?all=1' \
            | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 || true)
        for id in $ids; do
            curl -sf --max-time 10 --unix-socket "$RT/docker.sock" -X DELETE \
                "http://d/containers/$id?force=1&v=1" >/dev/null 2>&1 || true
        done
    fi
    local pid
    pid=$(cat "$RT/dockerd.launch.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    # Whatever outlived the daemon (its containerd, shims, container processes).
    local left
    left=$(rt_processes)
    if [[ -n "$left" ]]; then
        # shellcheck disable=SC2086
        kill -9 $left 2>/dev/null || true
    fi
    # dockerd leaves its nsfs mount behind; unmounted, the runtime dir can be removed.
    local mounts
    mounts=$(grep -o " $RT/[^ ]*" /proc/mounts | sort -r || true)
    for m in $mounts; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "$RT/dockerd.launch.pid"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One Prometheus per run: scrapes every second whatever a test lists in $RT/prom-sd/*.json
# (re-read within a second of a change), keeps an hour, and /-/reload works (lifecycle API).
start_prometheus() {
    mkdir -p "$RT/prom-sd" "$RT/prom-data"
    cat >"$RT/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cockpit-test
    file_sd_configs:
      - files: ['$RT/prom-sd/*.json']
        refresh_interval: 1s
EOF
    local port
    # The port is free when asked and taken a moment later: another process may win it in
    # between, so a Prometheus that dies at once is started again on another port.
    for _ in 1 2 3; do
        port=$(free_port)
        prometheus --config.file="$RT/prometheus.yml" --storage.tsdb.path="$RT/prom-data" \
            --storage.tsdb.retention.time=1h --web.listen-address="127.0.0.1:$port" \
            --web.enable-lifecycle >"$RT/prometheus.log" 2>&1 &
        echo $! >"$RT/prometheus.pid"
        for _ in $(seq 1 300); do
            if curl -sf --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
                PROMETHEUS_URL="http://127.0.0.1:$port"
                return 0
            fi
            alive "$(cat "$RT/prometheus.pid")" || break
            sleep 0.1
        done
        stop_prometheus
    done
    return 1
}

stop_prometheus() {
    [[ -f "$RT/prometheus.pid" ]] || return 0
    local pid
    pid=$(cat "$RT/prometheus.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$RT/prometheus.pid"
}


# One private PostgreSQL cluster per run. PostgreSQL refuses to run as root, so as root it
# runs as the `postgres` OS user in a directory of its own (RT is root's, mode 700). The
# superuser connects over the unix socket (trust: only this run's user can reach it); TCP on
# loopback takes a scram password, as a real server would, for the role the tests use.
pg_bin() {
    local d
    d=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -1 || true)
    [[ -n "$d" && -x "$d/initdb" ]] && echo "$d"
}

pg_as() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bin pgdir port password
    bin=$(pg_bin) || return 1
    pgdir=$(mktemp -d /tmp/cockpit-pg.XXXXXX)
    echo "$pgdir" >"$RT/postgres.dir"
    [[ $(id -u) == 0 ]] && chown postgres: "$pgdir"
    pg_as "$bin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --no-locale >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log" >&2; return 1; }
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    for _ in 1 2 3; do
        port=$(free_port)
        # fsync off: a throwaway cluster; crash safety of the runner is the server's
        # transaction rollback, which does not depend on fsync.
        if pg_as "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 \
            -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            pg_as "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres -d postgres \
                -c "CREATE ROLE cockpit LOGIN CREATEDB PASSWORD '$password'" \
                -c "CREATE DATABASE cockpit OWNER cockpit" >/dev/null || return 1
            POSTGRES_URL="postgresql://cockpit@127.0.0.1:$port/cockpit"
            POSTGRES_PASSWORD=$password
            return 0
        fi
    done
    tail -20 "$pgdir/postgres.log" >&2 || true
    return 1
}

stop_postgres() {
    [[ -f "$RT/postgres.dir" ]] || return 0
    local pgdir bin
    pgdir=$(cat "$RT/postgres.dir")
    bin=$(pg_bin) || true
    if [[ -n "$bin" && -f "$pgdir/data/postmaster.pid" ]]; then
        pg_as "$bin/pg_ctl" -D "$pgdir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pgdir"
    rm -f "$RT/postgres.dir"
}

case "$cmd" in
start)
  if [[ "$only" == prometheus || "$only" == postgres ]]; then
    :
  elif [[ "$only" != docker ]]; then
    mkdir -p "$RT/home" "$RT/data" "$RT/xdg"
    chmod 700 "$RT/xdg"
    export HOME="$RT/home" XDG_DATA_HOME="$RT/data" XDG_RUNTIME_DIR="$RT/xdg"
    bus="unix:path=$RT/dbus.sock"
    dbus-daemon --session --fork --address="$bus" --print-pid=1 >"$RT/dbus.pid"
    export DBUS_SESSION_BUS_ADDRESS="$bus"
    # The keyring's password only protects this throwaway test keyring.
    (printf 'cockpit-test' | gnome-keyring-daemon --foreground --unlock --components=secrets \
        >"$RT/keyring.log" 2>&1 & echo $! >"$RT/keyring.pid")
    for _ in $(seq 1 100); do
        if dbus-send --session --dest=org.freedesktop.DBus --type=method_call --print-reply \
            /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
            | grep -q 'boolean true'; then
            ready=1
            break
        fi
        sleep 0.1
    done
    if [[ -z "${ready:-}" ]]; then
        echo "servers: the Secret Service did not come up; log:" >&2
        cat "$RT/keyring.log" >&2
        exit 1
    fi
    echo "export DBUS_SESSION_BUS_ADDRESS='$bus'"
    echo "export COCKPIT_TEST_KEYRING=1"
    echo "export COCKPIT_TEST_HOME='$RT/home' COCKPIT_TEST_XDG_DATA='$RT/data' COCKPIT_TEST_XDG_RUNTIME='$RT/xdg'"
    echo "servers: keyring ready on $bus" >&2
  fi

  if [[ -z "$only" || "$only" == postgres ]]; then
    if ! pg_bin >/dev/null; then
        echo "servers: postgresql is not installed (scripts/setup.sh --test installs it); postgres tests skip" >&2
    elif start_postgres; then
        echo "export COCKPIT_TEST_POSTGRES_URL='$POSTGRES_URL'"
        echo "export COCKPIT_TEST_POSTGRES_PASSWORD='$POSTGRES_PASSWORD'"
        echo "export COCKPIT_TEST_POSTGRES=1"
        echo "servers: postgresql ready on $POSTGRES_URL" >&2
    else
        echo "servers: postgresql did not come up (the postgres tests will fail in CI, skip outside)" >&2
        stop_postgres
    fi
  fi

  if [[ -z "$only" || "$only" == prometheus ]]; then
    if ! command -v prometheus >/dev/null; then
        echo "servers: prometheus is not installed (scripts/setup.sh --test installs it); prometheus tests skip" >&2
    elif start_prometheus; then
        echo "export COCKPIT_TEST_PROMETHEUS_URL='$PROMETHEUS_URL'"
        echo "export COCKPIT_TEST_PROMETHEUS_SD='$RT/prom-sd'"
        echo "servers: prometheus ready on $PROMETHEUS_URL" >&2
    else
        echo "servers: prometheus did not come up (the prometheus tests will fail in CI, skip outside); log:" >&2
        tail -20 "$RT/prometheus.log" >&2
    fi
  fi

  if [[ -z "$only" || "$only" == docker ]]; then
    if command -v dockerd >/dev/null; then
        if ! start_dockerd "$DOCKER_STORAGE"; then
            stop_dockerd
            if [[ "$DOCKER_STORAGE" != vfs ]]; then
                echo "servers: dockerd with $DOCKER_STORAGE did not come up; trying vfs. Log:" >&2
                tail -5 "$RT/dockerd.log" >&2
                DOCKER_STORAGE=vfs
                rm -rf "$RT/docker"
                start_dockerd vfs || { stop_dockerd; DOCKER_STORAGE=; }
            else
                DOCKER_STORAGE=
            fi
        fi
        if [[ -n "$DOCKER_STORAGE" ]]; then
            echo "export DOCKER_HOST='unix://$RT/docker.sock'"
            echo "export COCKPIT_TEST_DOCKER=1"
            echo "servers: dockerd ($DOCKER_STORAGE) ready on unix://$RT/docker.sock" >&2
        else
            echo "servers: dockerd did not come up (the docker tests will fail in CI, skip outside); log:" >&2
            tail -20 "$RT/dockerd.log" >&2
        fi
    else
        echo "servers: dockerd is not installed (scripts/setup.sh --test installs it); docker tests skip" >&2
    fi
  fi
    ;;
stop)
    stop_postgres
    stop_prometheus
    stop_dockerd
    for f in "$RT/keyring.pid" "$RT/dbus.pid"; do
        [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: servers.sh start|stop RT" >&2
    exit 2
    ;;
esac
