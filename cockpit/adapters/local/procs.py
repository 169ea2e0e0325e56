"""Child processes that die with the cockpit, and the /proc facts used to check them.

Every child runs in its own session/process group (so one signal reaches anything it
forks) and gets ``PR_SET_PDEATHSIG=SIGKILL`` (so a ``kill -9`` of the cockpit takes its
workloads along). The kernel sends that signal when the *thread* that forked the child
exits, which is why children must be spawned from the event loop thread, which lives as
long as the cockpit. A marker in each child's environment lets a later cockpit recognise
leftovers of an earlier run (after a crash) before it kills anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import socket
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import cockpit
from cockpit.adapters.base import BackendConfigError, PortInUse

MARKER_ENV = "COCKPIT_LOCAL_OWNER"
PR_SET_PDEATHSIG = 1
CHUNK = 65536
MAX_LINE = 64 * 1024  # longer lines are cut: one runaway line must not grow memory

try:  # loaded in the parent: the child only calls it between fork and exec
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def child_env(marker: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    # The children run ``-m cockpit...`` (router, demo): make the package importable
    # even when the cockpit runs from a source tree that is not installed.
    root = str(Path(cockpit.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env[MARKER_ENV] = marker
    return env


async def spawn(
    argv: Sequence[str], *, env: dict[str, str], pass_fds: Sequence[int] = ()
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()),
        pass_fds=tuple(pass_fds),
    )


async def pump(reader: asyncio.StreamReader, on_lines: Callable[[list[str]], None]) -> None:
    """Read a pipe in 64 KiB chunks and hand over whole lines, one batch per chunk.

    Chunked reads cost one syscall for hundreds of lines, where ``readline`` costs a
    loop turn each; a partial last line waits for the next chunk."""
    partial = b""
    while chunk := await reader.read(CHUNK):
        parts = (partial + chunk).split(b"\n")
        partial = parts.pop()
        if len(partial) > MAX_LINE:
            parts.append(partial[:MAX_LINE])
            partial = b""
        if parts:
            on_lines([p.decode("utf-8", "replace").rstrip("\r") for p in parts])
    if partial:
        on_lines([partial.decode("utf-8", "replace").rstrip("\r")])


async def terminate(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    # Anything the child forked into its group must not outlive it.
    _signal_group(process.pid, signal.SIGKILL)
    return process.returncode if process.returncode is not None else -1


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# --------------------------------------------------------------------------- /proc


def proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat (``R``, ``S``, ``Z``...), None if gone.
    A zombie still answers ``kill -0``, hence /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3].decode() or None


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def has_marker(pid: int, marker: str) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER_ENV}={marker}".encode() in environ.split(b"\0")


def kill_marked(marker: str) -> int:
    """SIGKILL every live process whose environment carries ``marker``; return how many.

    Scanning all of /proc (not only the recorded pids) also finds what a replica's
    command forked, and the marker check makes a recycled pid harmless."""
    killed = 0
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        if alive(pid) and has_marker(pid, marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


# --------------------------------------------------------------------------- ports

_recent_ports: deque[int] = deque(maxlen=64)


def free_port() -> int:
    """A port nobody listens on now. A small race remains (someone could take it before
    the replica binds); remembering recent picks avoids handing one out twice."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _recent_ports:
            _recent_ports.append(port)
            return port
    return port


def bind_listener(port: int, env: str) -> socket.socket:
    """Bind and listen on 127.0.0.1:``port`` here, in the cockpit, so a taken port is a
    precise :class:`PortInUse` rather than a router that dies at start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on 127.0.0.1 is already in use (environment {env})") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            # Ports below 1024 need privileges: a plan error to report, not a crash.
            raise BackendConfigError(
                f"port {port} on 127.0.0.1 is not allowed for this user"
                f" (ports below 1024 need privileges) (environment {env})"
            ) from None
        raise BackendConfigError(
            f"cannot listen on port {port} on 127.0.0.1: {exc.strerror or exc} (environment {env})"
        ) from None
    sock.set_inheritable(True)
    return sock


def python() -> str:
    return sys.executable
