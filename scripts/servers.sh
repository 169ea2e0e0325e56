#!/usr/bin/env bash
# Start or stop the real servers the tests use, in a private runtime dir.
#   servers.sh start RT   prints `export VAR=...` lines to source
#   servers.sh stop RT
# Servers: a private D-Bus session bus and gnome-keyring's Secret Service.
set -euo pipefail
cmd=${1:?start|stop}
RT=${2:?runtime dir}

case "$cmd" in
start)
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
    ;;
stop)
    for f in "$RT/keyring.pid" "$RT/dbus.pid"; do
        [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true
    done
    ;;
*)
    echo "usage: servers.sh start|stop RT" >&2
    exit 2
    ;;
esac
