"""A private Prometheus for ``cockpit demo --prometheus``.

The demo's replicas are local processes on free ports; this Prometheus finds them through
file-based service discovery (the ``prometheus`` metrics source writes one file per
environment into :attr:`DemoPrometheus.sd_dir`, see
:mod:`cockpit.adapters.prometheus.targets`) and scrapes them every second. It runs from
Debian's ``prometheus`` binary on a free loopback port, with its config, data and log in
a private directory under the demo's run dir, and is stopped when the demo ends. It dies
with the cockpit too (``PR_SET_PDEATHSIG``), so a killed cockpit leaves no Prometheus
behind.

Start it from the thread that lives as long as the demo (the main thread): the kernel
sends the death signal when the *thread* that forked the child exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cockpit.adapters.supervise.procs import free_port
from cockpit.plan.models import Plan

BINARY = "prometheus"
INSTALL_HINT = "install Debian's prometheus package (apt-get install prometheus) or put one on PATH"
READY_TIMEOUT = 20.0
STOP_GRACE = 5.0
PR_SET_PDEATHSIG = 1

# 1 s scrapes so a new canary is queryable within seconds; the SD files are re-read every
# second as well as on change (inotify can miss a rename on some filesystems).
CONFIG = """\
# Written by cockpit demo --prometheus; rewritten at every start.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cockpit-demo
    file_sd_configs:
      - files: ["{sd_dir}/*.json"]
        refresh_interval: 1s
"""


class PrometheusError(Exception):
    """The demo's Prometheus cannot run; ``str(err)`` says why and what to do."""


def require_client() -> None:
    """The prometheus metrics source needs the ``prometheus`` extra; say so before any
    server starts rather than as a plan error about the embedded demo plan."""
    if importlib.util.find_spec("prometheus_api_client") is None:
        raise PrometheusError(
            "cockpit demo --prometheus needs the prometheus metrics source's client library:"
            " pip install 'cockpit[prometheus]'"
        )


def find_binary() -> str:
    """The ``prometheus`` executable on PATH, or :class:`PrometheusError` saying how to get one."""
    found = shutil.which(BINARY)
    if found is None:
        raise PrometheusError(f"cockpit demo --prometheus needs the prometheus binary, which is not on PATH: {INSTALL_HINT}")
    return found


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        # SIGTERM: Prometheus shuts down cleanly on it (its TSDB stays readable).
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


class DemoPrometheus:
    """One Prometheus process under ``home``: ``prometheus.yml``, ``data/``, ``sd/`` (the
    file SD directory) and ``prometheus.log``. :meth:`start` picks a free port the first
    time; :meth:`stop` then :meth:`start` again comes back on the same port with the same
    data (what a restarted server looks like to the cockpit)."""

    def __init__(self, home: Path, binary: str | None = None, port: int | None = None) -> None:
        self.home = home
        self.binary = binary
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: int | None = None  # fd of home/lock while this object owns the directory

    @property
    def sd_dir(self) -> Path:
        return self.home / "sd"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "prometheus.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusError("the demo's Prometheus has not been started")
        return f"http://127.0.0.1:{self.port}"

    def sd_file(self, env: str) -> Path:
        """Where the metrics source of environment ``env`` publishes its targets."""
        return self.sd_dir / f"{env}.json"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def prepare(self, fresh: bool = True) -> None:
        """The private directory and config; ``fresh`` drops the data and targets of an
        earlier demo (other replicas, other ports: nothing worth keeping). Refused while
        another demo's Prometheus uses the directory: its data is not ours to drop."""
        try:
            self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._own_home()
            if fresh:
                for old in (self.data_dir, self.sd_dir):
                    shutil.rmtree(old, ignore_errors=True)
            self.data_dir.mkdir(exist_ok=True)
            self.sd_dir.mkdir(exist_ok=True)
            (self.home / "prometheus.yml").write_text(CONFIG.format(sd_dir=self.sd_dir), encoding="utf-8")
        except OSError as err:
            raise PrometheusError(f"cannot prepare the demo's Prometheus in {self.home}: {err}") from None

    def _own_home(self) -> None:
        """Hold an exclusive lock on ``home/lock`` for as long as this object lives (the
        kernel drops it when the cockpit exits, however it exits)."""
        if self._lock is not None:
            return
        fd = os.open(self.home / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PrometheusError(
                f"another cockpit demo --prometheus is running with this state dir ({self.home});"
                " stop it first, or give this one its own --state-dir"
            ) from None
        self._lock = fd

    def release(self) -> None:
        """Give the directory up (after :meth:`stop`)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def launch(self) -> None:
        """Start the process (does not wait for it to be ready: see :meth:`wait_ready`)."""
        if self.running:
            return
        binary = self.binary or find_binary()
        if self.port is None:
            self.port = free_port()
        argv = [
            binary,
            f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ]
        try:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.home,
                    start_new_session=True,  # a ^C at the terminal is the cockpit's to handle
                    preexec_fn=_die_with_parent(os.getpid()),
                )
        except OSError as err:
            raise PrometheusError(f"cannot run {binary}: {err.strerror or err} ({INSTALL_HINT})") from None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until ``/-/ready`` answers 200; :class:`PrometheusError` with the log's last
        lines if the process exits or stays unready for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                code = self.process.returncode if self.process else None
                raise PrometheusError(f"the demo's Prometheus exited (code {code}) before it was ready: {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise PrometheusError(
                    f"the demo's Prometheus on {self.url} was not ready after {timeout:g} s: {self._log_tail()}"
                )
            time.sleep(0.05)

    def start(self, fresh: bool = True) -> None:
        """Prepare, launch and wait until ready."""
        self.prepare(fresh)
        self.launch()
        self.wait_ready()

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code (``None``: not running)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL at once: a Prometheus that dies, as opposed to one that is stopped."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no log"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or f"nothing in {self.log_path}"

    def __enter__(self) -> DemoPrometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.release()


def demo_home(base: Path) -> Path:
    """The Prometheus' private directory under the demo's state ``base`` (its run dir)."""
    return base / "run" / "prometheus"


def point_at(plan: Plan, prometheus: DemoPrometheus) -> Plan:
    """``plan`` with every ``prometheus`` metrics source reading ``prometheus`` and
    publishing its environment's targets into its discovery directory (the demo plan's
    ``url`` and ``file_sd`` are placeholders for these)."""
    data = plan.model_dump()
    for env in data["environments"]:
        if env["metrics"]["source"] == "prometheus":
            env["metrics"]["options"].update(url=prometheus.url, file_sd=str(prometheus.sd_file(env["name"])))
    return Plan.model_validate(data)
