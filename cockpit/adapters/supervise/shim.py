"""The shim every local child runs under, so nothing it forks outlives it.

Run as ``python -I -S shim.py PARENT_PID GRACE -- ARGV...`` (by file path, stdlib only: it
must not put the cockpit's package path into the child's environment). It:

* sets ``PR_SET_PDEATHSIG=SIGTERM``, so the death of the cockpit (even ``kill -9``)
  reaches it, and ``PR_SET_CHILD_SUBREAPER``, so what the child forks and abandons is
  re-parented here and not to init;
* starts ARGV (the spawner already made the shim a session and group leader);
* when the child exits, or on SIGTERM/SIGINT/SIGHUP/parent death, sends SIGTERM to every
  process of its session and below it, SIGKILL after GRACE seconds, and exits with the
  child's exit code (128 + N when the child died of signal N).

A command such as ``sh -c 'server & wait'`` forks without exec: signalling only the pid
the cockpit knows would leave the server listening. Hence the whole tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
WATCHED = STOP_SIGNALS | {signal.SIGCHLD}


def _members() -> list[int]:
    """Live processes in our session, or descended from us (a child that called setsid)."""
    me, sid = os.getpid(), os.getsid(0)
    parents: dict[int, int] = {}
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        pid, ppid, session = int(name), int(fields[1]), int(fields[4])
        parents[pid] = ppid
        if session == sid and pid != me:
            found.add(pid)
    for pid in parents:  # descendants, whatever their session
        p, hops = parents.get(pid, 0), 0
        while p > 1 and hops < 64:
            if p == me:
                found.add(pid)
                break
            p, hops = parents.get(p, 0), hops + 1
    return sorted(found)


def _signal_all(sig: int) -> int:
    members = _members()
    for pid in members:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return len(members)


def _reap(child: int) -> int | None:
    """Reap every exited process (we are their subreaper); the child's status if it exited."""
    status = None
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == child:
            status = st


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _run(argv: list[str], grace: float) -> int:
    child = os.fork()
    if child == 0:
        # A shim killed with SIGKILL cannot clean up: its direct child then dies with it.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for sig in WATCHED:
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"cannot run {argv[0]!r}: {exc.strerror}\n".encode())
            os._exit(127)
    status: int | None = None
    while status is None:
        info = signal.sigwaitinfo(WATCHED)
        if info.si_signo in STOP_SIGNALS:
            break
        status = _reap(child)
    # The child exited or we were told to stop: the rest of the tree goes too.
    _signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        got = _reap(child)
        status = got if got is not None else status
        if not _members() or time.monotonic() >= deadline:
            break
        signal.sigtimedwait({signal.SIGCHLD}, 0.05)
    _signal_all(signal.SIGKILL)
    while status is None:  # the child itself may only now be gone
        signal.sigtimedwait({signal.SIGCHLD}, 0.05)
        status = _reap(child)
    _reap(child)
    return _exit_code(status)


def main(args: list[str]) -> int:
    if len(args) < 4 or args[2] != "--":
        os.write(2, b"usage: shim.py PARENT_PID GRACE -- ARGV...\n")
        return 2
    parent, grace, argv = int(args[0]), float(args[1]), args[3:]
    # Block first: a stop signal arriving from now on is handled, not fatal.
    signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # never SIG_IGN: that would auto-reap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the cockpit died before prctl: no signal would come
        return 1
    return _run(argv, grace)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
