"""Faults of the local backend's replicas, with real processes: a replica that dies or stops
answering leaves the routing table and comes back, a crash loop is reported, a port held by
another user is never routed, children get only the environment the plan gives them, and
nothing a replica forks outlives the cockpit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cockpit.adapters.base import AdapterContext, BackendConfigError, HealthCheckFailed, LogLine
from cockpit.adapters.local import LocalBackend, runtime
from cockpit.adapters.supervise import procs
from cockpit.secrets import MASK, resolve
from tests.local_fixtures import ROOT, VERSIONS, free_port, hit, live_marked, make_backend, service_fixture  # noqa: F401

# A stdlib-only replica: /healthz answers 200 unless the file named by $SICK exists, every
# other path answers its version; "crashy" dies after $LIFETIME seconds with a last word on
# stderr; the process prints what it was given so a test can read its environment.
REPLICA = textwrap.dedent(
    """
    import hashlib, http.server, json, os, sys, threading, time
    version, port = sys.argv[1], int(sys.argv[2])
    env = dict(os.environ)
    env["DATABASE_URL"] = hashlib.sha256(env.get("DATABASE_URL", "").encode()).hexdigest()
    print(json.dumps(dict(env=env)), flush=True)
    print("connecting to " + os.environ.get("DATABASE_URL", "nothing"), file=sys.stderr, flush=True)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            sick = os.environ.get("SICK")
            code = 500 if self.path == "/healthz" and sick and os.path.exists(sick) else 200
            body = json.dumps(dict(version=version)).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass

    if version == "crashy":
        def die():
            time.sleep(float(os.environ.get("LIFETIME", "0.5")))
            print("lost the database connection", file=sys.stderr, flush=True)
            os._exit(1)
        threading.Thread(target=die, daemon=True).start()
    class S(http.server.ThreadingHTTPServer):
        allow_reuse_port = bool(os.environ.get("REUSEPORT"))  # lets a test share the port
    S(("127.0.0.1", port), H).serve_forever()
    """
)
REPLICA_COMMAND = ["{python}", "-c", REPLICA, "{version}", "{port}"]


def make(run_dir: Path, service: str, **options: object) -> LocalBackend:
    """Like make_backend, where ``env`` is the replicas' environment (an option)."""
    options.setdefault("versions", VERSIONS)
    ctx = AdapterContext(service=service, env="staging", run_dir=run_dir)
    return LocalBackend(ctx, LocalBackend.Options(**options))


def service_pids(shim_pid: int) -> list[int]:
    """The processes a shim runs (its children)."""
    path = Path(f"/proc/{shim_pid}/task/{shim_pid}/children")
    return [int(p) for p in path.read_text().split()]


async def router_urls(backend: LocalBackend) -> dict[str, list[str]]:
    state = await backend._require_control().state()
    return {t: [e["url"] for e in entries] for t, entries in state["tracks"].items()}


async def wait_for(predicate, timeout: float, step: float = 0.01) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``await predicate()`` is true; fails after ``timeout``."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(step)
    return time.monotonic() - started


# --------------------------------------------------------------------------- dead replicas


@pytest.mark.asyncio
async def test_a_killed_replica_leaves_the_table_and_comes_back(tmp_path: Path, service: str) -> None:
    lines: list[LogLine] = []
    backend = make_backend(tmp_path, service, replicas=2, restart={"backoff": "200ms"})
    backend.attach_log_sink(lines.extend)
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        await backend.set_weight(50)
        victim = backend._canary[0]
        url, shim = victim.url, victim.proc.pid
        os.kill(service_pids(shim)[0], signal.SIGKILL)  # the service itself, not its shim

        async def out_of_table() -> bool:
            return url not in (await router_urls(backend))["canary"]

        removed = await wait_for(out_of_table, 3.0)
        st = await backend.status()
        assert st.canary.replicas_desired == 2 and st.canary.replicas_ready == 1 and not st.canary.healthy
        assert "replica #1 exited with code" in st.canary.problem

        async def back() -> bool:
            st = await backend.status()
            return st.canary.replicas_ready == 2

        returned = removed + await wait_for(back, 10.0, 0.02)
        st = await backend.status()
        assert st.canary.healthy and st.canary.restarts == 1 and st.canary.problem == ""
        assert victim.proc.pid != shim and victim.url in (await router_urls(backend))["canary"]
        counts = await hit(st.url + "/", 100)
        assert counts["1.0.0"] + counts["1.1.0"] == 100, counts  # no request fails
        print(f"\nkill -9 -> out of the table: {removed * 1000:.0f} ms; -> back: {returned * 1000:.0f} ms")
    finally:
        await backend.close()
    texts = [line.text for line in lines if line.source == "local"]
    assert any("routing table updated (canary 1.1.0 #1 is gone)" in t for t in texts), texts
    assert any("restarting canary 1.1.0 #1 in 200ms" in t for t in texts), texts
    assert any("canary 1.1.0 #1 restarted" in t and "back in the routing table" in t for t in texts), "\n".join(texts)


@pytest.mark.asyncio
async def test_the_last_canary_replica_gone_sends_its_share_to_stable(tmp_path: Path, service: str) -> None:
    lines: list[LogLine] = []
    backend = make_backend(tmp_path, service, restart={"policy": "never"})
    backend.attach_log_sink(lines.extend)
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        await backend.set_weight(100)
        os.kill(service_pids(backend._canary[0].proc.pid)[0], signal.SIGKILL)

        async def empty() -> bool:
            return (await router_urls(backend))["canary"] == []

        await wait_for(empty, 3.0)
        st = await backend.status()
        assert st.canary.replicas_ready == 0 and st.weight == 100  # the weight is kept
        assert await hit(st.url + "/", 30) == {"1.0.0": 30}
        await asyncio.sleep(1.0)
        assert (await backend.status()).canary.restarts == 0  # policy "never"
    finally:
        await backend.close()
    texts = [line.text for line in lines if line.source == "local"]
    assert any("the router sends the canary's share to stable" in t for t in texts), texts
    assert any("not restarted (restart policy 'never')" in t for t in texts), texts


@pytest.mark.asyncio
async def test_a_crash_loop_is_reported_with_the_last_stderr_line(tmp_path: Path, service: str) -> None:
    backend = make(
        tmp_path,
        service,
        command=REPLICA_COMMAND,
        versions=["1.0.0", "crashy"],
        env={"LIFETIME": "0.6"},
        restart={"max_restarts": 2, "backoff": "50ms", "window": "1m"},
    )
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("crashy")

        async def looping() -> bool:
            return (await backend.status()).canary.crash_loop

        await wait_for(looping, 15.0, 0.05)
        st = await backend.status()
        assert st.canary.restarts == 2 and st.canary.replicas_ready == 0 and not st.canary.healthy
        assert "crash loop: replica #1 (crashy) exited 3 times" in st.canary.problem
        assert "lost the database connection" in st.canary.problem
        assert st.stable.healthy and st.stable.problem == ""
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_a_replica_failing_probes_leaves_the_table_and_returns(tmp_path: Path, service: str) -> None:
    sick = tmp_path / "sick"
    backend = make(
        tmp_path, service, command=REPLICA_COMMAND, replicas=2, env={"SICK": str(sick)}, health_interval="100ms"
    )
    try:
        await backend.start("1.0.0")
        sick.touch()  # both replicas answer 500 now: the track empties

        async def empty() -> bool:
            return (await router_urls(backend))["stable"] == []

        await wait_for(empty, 3.0)
        st = await backend.status()
        assert st.stable.replicas_ready == 0 and "failed 2 health probes: HTTP 500" in st.stable.problem
        sick.unlink()

        async def full() -> bool:
            return len((await router_urls(backend))["stable"]) == 2

        await wait_for(full, 3.0)
        st = await backend.status()
        assert st.stable.healthy and st.stable.problem == "" and st.stable.restarts == 0
    finally:
        await backend.close()


# --------------------------------------------------------------------------- impersonation

IMPOSTOR = textwrap.dedent(
    """
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            print(self.path, flush=True)
            self.send_response(200)
            self.send_header("Content-Length", "21")
            self.end_headers()
            self.wfile.write(b'{"version": "1.1.0"}\\n')
        def log_message(self, *a):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
    print("listening", flush=True)
    server.serve_forever()
    """
)


def need_another_user() -> None:
    if os.environ.get("CI") == "true":
        return  # CI runs as root: this test must run there, never skip silently
    if os.geteuid() != 0:
        pytest.skip("needs root to run an impostor as the user nobody (runs in CI)")
    if shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists():
        pytest.skip("needs setpriv and /usr/bin/python3 (runs in CI)")


@pytest.mark.asyncio
async def test_a_port_held_by_another_user_is_never_routed(
    tmp_path: Path, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_another_user()
    port = free_port()
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    impostor = subprocess.Popen(
        [*as_nobody, "/usr/bin/python3", "-c", IMPOSTOR, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), procs.MARKER_ENV: f"{service}/impostor"},
        cwd="/",
    )
    backend = make_backend(tmp_path, service)
    try:
        assert impostor.stdout.readline().strip() == "listening"
        await backend.start("1.0.0")
        monkeypatch.setattr(procs, "free_port", lambda: port)  # the canary is told the impostor's port
        with pytest.raises(HealthCheckFailed) as err:
            await backend.deploy_canary("1.1.0")
        assert f"port {port} is held by another process (uid 65534)" in str(err.value)
        st = await backend.status()
        assert st.canary is None and st.stable.healthy
        assert await hit(st.url + "/", 40) == {"1.0.0": 40}
    finally:
        await backend.close()
        impostor.terminate()
        out, _ = impostor.communicate(timeout=5)
    assert [p for p in out.split() if p != "/healthz"] == [], "the impostor served requests"


def answer_200(sock: socket.socket, stop: threading.Event) -> None:
    """A rogue that answers every request with 200 (it would pass any health check)."""
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(4096)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")


@pytest.mark.asyncio
async def test_a_second_listener_on_a_serving_replicas_port_takes_it_out(tmp_path: Path, service: str) -> None:
    """Each probe checks who listens: a socket of another process sharing the replica's
    port (SO_REUSEPORT, here from the test process itself, uid 0) takes the replica out."""
    backend = make(tmp_path, service, command=REPLICA_COMMAND, env={"REUSEPORT": "1"}, health_interval="100ms")
    try:
        await backend.start("1.0.0")
        replica = backend._stable[0]
        with socket.socket() as rogue:
            rogue.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            rogue.bind(("127.0.0.1", replica.port))
            rogue.listen()
            rogue.settimeout(0.05)
            stop = threading.Event()
            answering = threading.Thread(target=answer_200, args=(rogue, stop), daemon=True)
            answering.start()

            async def out() -> bool:
                return (await router_urls(backend))["stable"] == []

            await wait_for(out, 3.0)
            st = await backend.status()
            assert st.stable.replicas_ready == 0
            assert f"port {replica.port} is held by another process (uid {os.geteuid()})" in st.stable.problem
            stop.set()
            answering.join()

        async def back() -> bool:
            return (await router_urls(backend))["stable"] == [replica.url]

        await wait_for(back, 3.0)
    finally:
        await backend.close()


# --------------------------------------------------------------------------- environment


@pytest.mark.asyncio
async def test_children_get_the_plan_env_and_secrets_not_the_cockpits(
    tmp_path: Path, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "postgres://app:pw-7Kq9-not-for-logs@db/app"
    monkeypatch.setenv("COCKPIT_TEST_LEAK", "1")
    monkeypatch.setenv("COCKPIT_TEST_DB", secret)
    refs = {"database-url": "env:COCKPIT_TEST_DB"}
    ctx = AdapterContext(service=service, env="dev", run_dir=tmp_path, secrets=lambda name: resolve(refs[name]))
    options = LocalBackend.Options(
        command=REPLICA_COMMAND,
        versions=VERSIONS,
        env={"FEATURE": "on"},
        secret_env={"DATABASE_URL": "database-url"},
    )
    backend = LocalBackend(ctx, options)
    lines: list[LogLine] = []
    backend.attach_log_sink(lines.extend)
    try:
        await backend.start("1.0.0")
        await asyncio.sleep(0.2)
    finally:
        await backend.close()
    dumps = [json.loads(line.text)["env"] for line in lines if line.text.startswith('{"env"')]
    assert len(dumps) == 1
    env = dumps[0]
    assert "COCKPIT_TEST_LEAK" not in env and "COCKPIT_TEST_DB" not in env
    assert env["FEATURE"] == "on" and env["DATABASE_URL"] == hashlib.sha256(secret.encode()).hexdigest() and env["PORT"]
    assert str(ROOT) not in env.get("PYTHONPATH", ""), "the cockpit's packages leak into a user's command"
    assert set(env) <= {*procs.BASE_ENV, "FEATURE", "DATABASE_URL", "PORT", "PYTHONUNBUFFERED", procs.MARKER_ENV}
    shown = [line.text for line in lines if not line.text.startswith('{"env"')]
    assert f"connecting to {MASK}" in shown
    assert not any(secret in text for text in shown)


@pytest.mark.asyncio
async def test_a_missing_secret_is_a_clear_error(tmp_path: Path, service: str) -> None:
    def no_such_secret(name: str) -> str:
        raise LookupError(f"secret {name!r} is not in the plan's [secrets] table")

    for secrets in (no_such_secret, None):
        ctx = AdapterContext(service=service, env="dev", run_dir=tmp_path, secrets=secrets)
        options = LocalBackend.Options(versions=VERSIONS, secret_env={"DATABASE_URL": "database-url"})
        backend = LocalBackend(ctx, options)
        with pytest.raises(BackendConfigError, match=r"secret_env DATABASE_URL.*'database-url'"):
            await backend.start("1.0.0")
        await backend.close()
    assert live_marked(service + "/") == []


# --------------------------------------------------------------------------- nothing left behind

FORKING_OWNER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cockpit.adapters.base import AdapterContext
    from cockpit.adapters.local import LocalBackend

    async def main():
        ctx = AdapterContext(service=sys.argv[1], env="dev", run_dir=Path(sys.argv[2]))
        # sh forks the server and waits: the server is a grandchild nobody signals directly.
        command = ["sh", "-c", "python3 -m http.server --bind 127.0.0.1 $PORT & wait"]
        options = LocalBackend.Options(versions=["1"], command=command, health_path="/", replicas=2)
        backend = LocalBackend(ctx, options)
        await backend.start("1")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def listens(port: int) -> bool:
    return bool(procs.listeners({port}))


@pytest.mark.asyncio
async def test_a_forking_command_leaves_nothing_when_the_cockpit_is_killed(tmp_path: Path, service: str) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", FORKING_OWNER, service, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert await asyncio.to_thread(owner.stdout.readline) == "ready\n"
        rt = runtime.read(tmp_path)
        ports = [r.port for r in rt.replicas]
        assert len(ports) == 2 and all(listens(p) for p in ports)
        assert len(live_marked(service + "/")) >= 7  # router + 2 x (shim, sh, python) at least
        owner.kill()
        owner.wait(5)
        deadline = time.monotonic() + 5
        while (live_marked(service + "/") or any(listens(p) for p in ports)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert live_marked(service + "/") == [], "processes outlived their cockpit"
        assert not any(listens(p) for p in ports), "a replica port still listens"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()


def test_the_shim_forwards_the_exit_code_and_kills_what_is_left(tmp_path: Path) -> None:
    """A command that exits leaves a background child behind: the shim takes it down and
    reports the command's own exit code."""
    pidfile = tmp_path / "pid"
    argv = procs.shim_argv(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; exit 7"], grace=1.0)
    result = subprocess.run(argv, timeout=10, start_new_session=True)
    assert result.returncode == 7
    left = int(pidfile.read_text())
    assert not procs.alive(left), "the background child outlived its shim"


def test_status_reports_a_dead_replica_even_when_the_monitor_is_slow(tmp_path: Path, service: str) -> None:
    """The readiness reported is observation: a replica whose process is gone is not ready
    even before any probe ran."""

    async def scenario() -> None:
        backend = make_backend(tmp_path, service, health_interval="1h", restart={"policy": "never"})
        try:
            await backend.start("1.0.0")
            shim = backend._stable[0].proc.pid
            os.kill(service_pids(shim)[0], signal.SIGKILL)

            async def not_ready() -> bool:
                return (await backend.status()).stable.replicas_ready == 0

            await wait_for(not_ready, 3.0)
        finally:
            await backend.close()

    asyncio.run(scenario())

