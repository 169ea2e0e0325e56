"""Child processes that die with the cockpit, and the /proc facts used to check them.

Every child runs under :mod:`shim <cockpit.adapters.supervise.shim>` in its own session and
process group. The shim gets ``PR_SET_PDEATHSIG=SIGTERM`` (so a ``kill -9`` of the
cockpit reaches it) and then takes down everything the child forked, even a command that
forks without exec. The kernel sends that signal when the *thread* that forked the shim
exits, which is why children must be spawned from the event loop thread, which lives as
long as the cockpit. A marker in each child's environment lets a later cockpit recognise
leftovers of an earlier run (after a crash) before it kills anything.

Children get an explicit environment (:func:`child_env`), never a copy of the cockpit's.
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
from collections.abc import Callable, Collection, Mapping, Sequence
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
        # SIGTERM, not SIGKILL: the shim must live long enough to stop its tree. The
        # setting survives exec; the shim sets it again once it has blocked the signal.
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


# What a child may take from the cockpit's environment: enough to run a program, nothing
# that configures the cockpit itself (credentials, tokens, PYTHONPATH, virtualenv...).
BASE_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TZ")


def cockpit_path() -> str:
    """The directory holding the ``cockpit`` package."""
    return str(Path(cockpit.__file__).resolve().parent.parent)


def runs_cockpit(argv: Sequence[str]) -> bool:
    """``python -m cockpit...``: one of our own programs (router, demo traffic, the demo service)."""
    return len(argv) >= 3 and argv[0] == python() and argv[1] == "-m" and argv[2].startswith("cockpit.")


def child_env(marker: str, extra: Mapping[str, str] | None = None, *, cockpit_path_too: bool = True) -> dict[str, str]:
    """A child's whole environment: a minimal base taken from the cockpit's, then
    ``extra`` (the plan's ``env``, resolved secrets, ``PORT``...), then the owner marker.

    ``cockpit_path_too`` puts the cockpit's package path on PYTHONPATH, for the cockpit's
    own children (``-m cockpit...``) when it runs from a source tree that is not
    installed; a user's command must not see the cockpit's packages."""
    env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(extra or {})
    if cockpit_path_too:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (cockpit_path(), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env[MARKER_ENV] = marker
    return env


SHIM = str(Path(__file__).resolve().with_name("shim.py"))


def shim_argv(argv: Sequence[str], grace: float) -> list[str]:
    """``argv`` run under the shim: by file path, isolated (``-I -S``), so the shim needs
    nothing from the child's environment and adds nothing to it."""
    return [python(), "-I", "-S", SHIM, str(os.getpid()), f"{grace:g}", "--", *argv]


async def spawn(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    pass_fds: Sequence[int] = (),
    grace: float = 5.0,
    shim: bool = True,
) -> asyncio.subprocess.Process:
    """Start ``argv`` under the shim, in a new session. ``grace``: how long the shim lets
    the rest of the tree exit after SIGTERM before SIGKILL. ``shim=False`` is for the
    cockpit's own children that never fork (the router): their pid must be the process
    itself, so a signal sent to it (a health probe's SIGSTOP, a kill) reaches it."""
    return await asyncio.create_subprocess_exec(
        *(shim_argv(argv, grace) if shim else argv),
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


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a child's process group (the shim was killed itself)."""
    _signal_group(pgid, signal.SIGKILL)


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


# --------------------------------------------------------------------------- port owners

_LISTEN = "0A"
_LOOPBACK_V4 = ("0100007F", "00000000")  # 127.0.0.1 and 0.0.0.0, as /proc/net/tcp writes them
_LOOPBACK_V6 = (
    "00000000000000000000000001000000",  # ::1
    "00000000000000000000000000000000",  # ::
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
)


def listeners(ports: Collection[int]) -> dict[int, dict[int, int]]:
    """``{port: {socket inode: uid}}`` of every LISTEN socket that would accept a
    connection to 127.0.0.1 on one of ``ports`` (bound there, to a wildcard address, or
    v4-mapped in tcp6). The kernel writes these tables slowly (about 10 ms for a few
    hundred sockets): read them once for all the ports at hand."""
    found: dict[int, dict[int, int]] = {}
    for table, addrs in (("/proc/net/tcp", _LOOPBACK_V4), ("/proc/net/tcp6", _LOOPBACK_V6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            addr, _, hexport = fields[1].partition(":")
            port = int(hexport, 16)
            if port in ports and addr.upper() in addrs:
                found.setdefault(port, {})[int(fields[9])] = int(fields[7])
    return found


def group_members(pgid: int) -> list[int]:
    """Live processes whose session or process group is ``pgid`` (a shim is both leader)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] not in (b"Z", b"X") and pgid in (int(fields[2]), int(fields[3])):
            members.append(int(entry.name))
    return members


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def port_intruder(port: int, pgid: int, found: Mapping[int, int] | None = None) -> int | None:
    """The uid of a process outside the group ``pgid`` that listens on 127.0.0.1:``port``,
    or None when every such listener belongs to the group. A port nobody listens on yet
    is not an intruder (the replica may still be starting). ``found``: that port's
    listeners, when the caller has read them already (see :func:`listeners`).

    An HTTP answer on the port proves nothing about who gave it: another local user who
    bound the port first answers health checks just as well."""
    if found is None:
        found = listeners({port}).get(port, {})
    if not found:
        return None
    # The shim's tree first (a few small files); the whole-/proc scan of the group only
    # when the tree does not account for every listener (a member that left the tree).
    for members in (tree(pgid), group_members(pgid)):
        ours: set[int] = set()
        for pid in members:
            ours |= socket_inodes(pid)
        strangers = [uid for inode, uid in found.items() if inode not in ours]
        if not strangers:
            return None
    return strangers[0]


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc/PID/task/TID/children."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 4096:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split())
            except (OSError, ValueError):
                continue
    return found


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
