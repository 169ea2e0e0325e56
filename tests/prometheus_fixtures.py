"""Fixtures for the tests that need a real Prometheus.

scripts/test.sh starts one per run (scripts/servers.sh: 1 s scrape, file SD over
``$COCKPIT_TEST_PROMETHEUS_SD/*.json`` re-read every second) and exports
``COCKPIT_TEST_PROMETHEUS_URL`` and ``COCKPIT_TEST_PROMETHEUS_SD``. Run by hand without
it, these tests skip with the reason; in CI (``CI=true``) a missing one fails them.

* ``prometheus_url`` / ``prometheus_sd``: the server and its file-SD directory.
* ``exporters``: serve a ``/metrics`` exposition from a tiny local HTTP server and list
  it as a target with given labels; returns once Prometheus has scraped its series. The
  text may be a string (changeable with ``set``) or a function of the time, for counters
  that grow at a known rate (``timestamps=True`` stamps each sample with that time). Servers and target files are removed after the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
Exposition = str | Callable[[float], str]


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI needs a real Prometheus: run the suite with scripts/test.sh)")
    pytest.skip(f"{message} (start the suite with scripts/test.sh, or source scripts/servers.sh start RT)")


def instant(url: str, promql: str, timeout: float = 5.0) -> list[dict]:
    """The result of an instant query (vector results only), read without the source."""
    query = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=timeout) as response:
        return json.load(response)["data"]["result"]


def wait_until(condition: Callable[[], object], timeout: float, what: str, step: float = 0.2) -> object:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    url = os.environ.get("COCKPIT_TEST_PROMETHEUS_URL", "")
    if not url:
        _unavailable("no test Prometheus: COCKPIT_TEST_PROMETHEUS_URL is not set")
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
            response.read()
    except OSError as err:
        _unavailable(f"the test Prometheus at {url} does not answer: {err}")
    return url


@pytest.fixture(scope="session")
def prometheus_sd(prometheus_url: str) -> Path:
    sd = os.environ.get("COCKPIT_TEST_PROMETHEUS_SD", "")
    if not sd or not Path(sd).is_dir():
        _unavailable("COCKPIT_TEST_PROMETHEUS_SD does not name the test Prometheus' file-SD directory")
    return Path(sd)


class Exporter:
    """One ``/metrics`` endpoint on 127.0.0.1, listed in the test Prometheus' file SD."""

    def __init__(self, text: Exposition, timestamps: bool = False) -> None:
        self._text = text
        # With timestamps, each sample carries the time its value was computed for: under
        # load a scrape is answered later than Prometheus' own timestamp, and a counter
        # computed from the clock would then look faster or slower than it is.
        self.timestamps = timestamps
        self.started = time.time()
        self.requests = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                exporter.requests += 1
                text, now = exporter._text, time.time()
                page = text(now - exporter.started) if callable(text) else text
                if exporter.timestamps:
                    stamp = f" {int(now * 1000)}"
                    page = "".join(
                        line + (stamp if line and not line.startswith("#") else "") + "\n"
                        for line in page.splitlines()
                    )
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}/metrics"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def set(self, text: Exposition) -> None:
        self._text = text

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_sd(path: Path, groups: list[dict]) -> None:
    """Atomically, so Prometheus never reads half a file (the temp name is not *.json)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(path)


@pytest.fixture
def exporters(prometheus_url: str, prometheus_sd: Path) -> Iterator[Callable[..., Exporter]]:
    """``publish(text, **labels) -> Exporter``: serves ``text`` and waits until Prometheus
    holds a series scraped from it (besides ``up``)."""
    started: list[tuple[Exporter, Path]] = []

    def publish(text: Exposition, **labels: str) -> Exporter:
        exporter = Exporter(text)
        sd_file = prometheus_sd / f"test-{uuid.uuid4().hex[:12]}.json"
        started.append((exporter, sd_file))
        write_sd(sd_file, [{"targets": [exporter.address], "labels": labels}])
        selector = f'{{instance="{exporter.address}",__name__!~"up|scrape_.*"}}'
        wait_until(
            lambda: instant(prometheus_url, f"count({selector})"), 20, f"Prometheus to scrape {exporter.url}"
        )
        return exporter

    yield publish
    for exporter, sd_file in started:
        with contextlib.suppress(FileNotFoundError):
            sd_file.unlink()
        exporter.close()
