"""The prometheus metrics source against the real test Prometheus: one number or a clear
error for every shape of answer, placeholders, a server that is down or slow, credentials
from secrets (seen by a recording proxy, never in an error), the options it refuses,
publishing targets by file SD, and the `cockpit gate` / `cockpit check` commands."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, AmbiguousQuery, BackendConfigError, BackendUnavailable
from cockpit.adapters.prometheus.options import PrometheusOptions
from cockpit.adapters.prometheus.source import PrometheusMetricsSource
from cockpit.model import Track
from cockpit.secrets import resolve

pytest.register_assert_rewrite("tests.prometheus_fixtures")  # also this module's plugin (below)
from tests.prometheus_fixtures import Exporter, instant, wait_until  # noqa: E402

# The real Prometheus' fixtures (prometheus_url, prometheus_sd, exporters).
pytest_plugins = ["tests.prometheus_fixtures"]

pytestmark = pytest.mark.prometheus
TOKEN = "s3cr3t-T0ken-" + uuid.uuid4().hex  # a value that must never be shown


def make_source(
    url: str, service: str = "web", env: str = "dev", backend: Any = None, **options: Any
) -> PrometheusMetricsSource:
    ctx = AdapterContext(
        service=service,
        env=env,
        run_dir=Path("/nonexistent"),
        secrets=lambda name: resolve(f"env:{name.upper().replace('-', '_')}"),
    )
    source = registry.create_metrics_source("prometheus", ctx, {"url": url, **options}, backend)
    assert isinstance(source, PrometheusMetricsSource)
    return source


def unique() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------- one number


def test_one_series_no_series_several_series_nan_and_a_scalar(
    prometheus_url: str, exporters: Callable[..., Exporter]
) -> None:
    job = unique()
    exporters('demo_value{shard="a"} 42\ndemo_value{shard="b"} 8\ndemo_nan NaN\n', testrun=job)
    source = make_source(prometheus_url)

    async def run() -> None:
        assert await source.query(f'demo_value{{testrun="{job}",shard="a"}}') == 42.0
        assert await source.query(f'sum(demo_value{{testrun="{job}"}})') == 50.0
        assert await source.query(f'demo_value{{testrun="{job}",shard="zzz"}}') is None  # no series: no data
        assert await source.query(f'demo_nan{{testrun="{job}"}}') is None  # NaN: no data
        assert await source.query("scalar(vector(0.25))") == 0.25
        several = f'demo_value{{testrun="{job}"}}'
        with pytest.raises(AmbiguousQuery) as err:
            await source.query(several)
        assert several in str(err.value) and "2 series" in str(err.value)
        assert 'shard="a"' in str(err.value) and 'shard="b"' in str(err.value)

    asyncio.run(run())


def test_bad_promql_is_a_config_error_quoting_prometheus(prometheus_url: str) -> None:
    source = make_source(prometheus_url)
    with pytest.raises(BackendConfigError) as err:
        asyncio.run(source.query("sum(rate(http_requests_total[5m])"))
    message = str(err.value)
    assert "sum(rate(http_requests_total[5m])" in message
    assert "parse error" in message and "unclosed left parenthesis" in message


def test_placeholders_are_filled_per_track_and_unknown_ones_refused(
    prometheus_url: str, exporters: Callable[..., Exporter]
) -> None:
    service = unique()
    for track, version, value in ((Track.STABLE, "1.0.0", 1), (Track.CANARY, "1.1.0", 7)):
        exporters(f"demo_value {value}\n", service=service, env="dev", track=track.value, version=version)
    source = make_source(prometheus_url, service=service)
    source.set_versions({Track.STABLE: "1.0.0", Track.CANARY: "1.1.0"})
    by_track = 'sum(demo_value{service="{service}",env="{env}",track="{track}"})'
    by_version = 'sum(max_over_time(demo_value{service="{service}",version="{version}"}[{interval}]))'

    async def run() -> None:
        assert await source.query(by_track, track=Track.CANARY) == 7
        assert await source.query(by_track, track=Track.STABLE) == 1
        assert await source.query(by_version, track=Track.CANARY, seconds=2.5) == 7
        with pytest.raises(BackendConfigError, match=r"unknown placeholder \{interval\}"):
            await source.query(by_version)  # no window given
        with pytest.raises(BackendConfigError, match=r"unknown placeholder \{servce\}"):
            await source.query('up{job="{servce}"}')

    asyncio.run(run())
    widened = make_source(prometheus_url, service=service, min_range="4s")
    assert "[4s]" in widened.render(by_version, Track.CANARY, 2.5) and "[10s]" in widened.render(
        by_version, Track.CANARY, 10
    )
    assert 'version="1.1.0"' in source.render(by_version, Track.CANARY, 2.5) and "[2500ms]" in source.render(
        by_version, Track.CANARY, 2.5
    )


def test_window_of_a_track_without_requests_is_no_data(
    prometheus_url: str, exporters: Callable[..., Exporter]
) -> None:
    service = unique()
    # Counters that never move: the canary is there but gets no requests.
    exporters('http_requests_total{code="200"} 5\n', service=service, env="dev", track="canary")
    window = asyncio.run(make_source(prometheus_url, service=service).window(3))
    assert not window.canary.has_data and window.canary.error_rate is None
    assert not window.stable.has_data


# ----------------------------------------------------------------------------- down, slow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_prometheus_is_unavailable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(BackendUnavailable) as err:
        asyncio.run(make_source(url).query("vector(1)"))
    assert f"Prometheus at {url} is unreachable" in str(err.value)
    assert "connection refused" in str(err.value)


class Recorder:
    """A tiny HTTP proxy in front of the real Prometheus that records the requests' headers
    and can delay them or answer a status of its own."""

    def __init__(self, upstream: str, tls: tuple[str, str] | None = None) -> None:
        self.headers: list[dict[str, str]] = []
        self.delay = 0.0
        self.status: int | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.headers.append(dict(self.headers))
                time.sleep(recorder.delay)
                if recorder.status is not None:
                    body, status = b'{"status":"error","error":"authentication required"}', recorder.status
                else:
                    with urllib.request.urlopen(upstream + self.path, timeout=5) as response:
                        body, status = response.read(), response.status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = self.url.replace("http://", "https://")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder(prometheus_url: str) -> Iterator[Recorder]:
    proxy = Recorder(prometheus_url)
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()


def test_slow_prometheus_times_out_without_blocking_the_event_loop(recorder: Recorder) -> None:
    recorder.delay = 3.0
    source = make_source(recorder.url, timeout="300ms")
    ticks = 0

    async def run() -> float:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as err:
            await source.query("vector(1)")
        task.cancel()
        assert str(err.value) == f"Prometheus at {recorder.url} did not answer within 0.3s"
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert elapsed < 2.0  # gave up at its timeout, not after the 3 s the server takes
    assert ticks >= 5  # the loop kept running while the query waited


@pytest.fixture
def tls_recorder(prometheus_url: str, tmp_path: Path) -> Iterator[tuple[Recorder, Path]]:
    """The recording proxy behind TLS, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    proxy = Recorder(prometheus_url, tls=(str(cert), str(key)))
    yield proxy, cert
    proxy.server.shutdown()
    proxy.server.server_close()


def test_tls_is_verified_and_a_ca_bundle_makes_a_private_ca_trusted(
    tls_recorder: tuple[Recorder, Path],
) -> None:
    proxy, cert = tls_recorder
    with pytest.raises(BackendConfigError) as err:
        asyncio.run(make_source(proxy.url).query("vector(1)"))
    assert f"TLS verification of {proxy.url} failed" in str(err.value) and "ca_bundle" in str(err.value)
    assert not proxy.headers  # nothing was sent over the untrusted connection
    assert asyncio.run(make_source(proxy.url, ca_bundle=str(cert)).query("vector(2)")) == 2.0
    with pytest.raises(BackendConfigError, match="is not a readable file"):
        asyncio.run(make_source(proxy.url, ca_bundle=str(cert.parent / "missing.pem")).query("vector(1)"))


def test_bearer_token_from_a_secret_is_sent_and_never_shown(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", TOKEN)
    source = make_source(recorder.url, bearer_token_secret="prom-token")
    assert asyncio.run(source.query("vector(3)")) == 3.0
    assert recorder.headers[-1]["Authorization"] == f"Bearer {TOKEN}"
    for status, words in (
        (401, "refused the credentials (401 Unauthorized)"),
        (403, "denied access (403 Forbidden)"),
    ):
        recorder.status = status
        with pytest.raises(BackendConfigError) as err:
            asyncio.run(source.query(f"vector(1) # {TOKEN}"))
        assert words in str(err.value) and "bearer_token_secret" in str(err.value)
        assert TOKEN not in str(err.value)
    recorder.status = 400  # an error echoing the query, which here holds the value
    with pytest.raises(BackendConfigError) as err:
        asyncio.run(source.query(f"vector(1) # {TOKEN}"))
    assert TOKEN not in str(err.value) and "••••••" in str(err.value)


def test_basic_auth_password_from_a_secret(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("PROM_PASSWORD", TOKEN)
    source = make_source(recorder.url, basic_auth_user="cockpit", basic_auth_password_secret="prom-password")
    assert asyncio.run(source.query("vector(1)")) == 1.0
    expected = base64.b64encode(f"cockpit:{TOKEN}".encode()).decode()
    assert recorder.headers[-1]["Authorization"] == f"Basic {expected}"


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"bearer_token": TOKEN}, "credentials are never written in a plan"),
        ({"password": TOKEN}, "credentials are never written in a plan"),
        ({"bearer_token_secret": TOKEN}, "looks like a credential itself"),
        ({"bearer_token_secret": "ghp4a9Xk2LmQ8rT7vZ1c"}, "looks like a credential itself"),
        ({"bearer_token_secret": "env:PROM_TOKEN"}, "not a reference"),
        ({"verify_tls": False}, "TLS verification cannot be turned off"),
        ({"insecure_skip_verify": True}, "TLS verification cannot be turned off"),
        ({"url": f"http://admin:{TOKEN}@127.0.0.1:9090"}, "the URL holds credentials"),
        ({"basic_auth_user": "x"}, "needs both basic_auth_user and basic_auth_password_secret"),
        ({"templates": {"latency-p99": "x{oops}"}}, "unknown placeholder {oops}"),
        ({"templates": {"p42": "x"}}, "no built-in metric p42"),
    ],
)
def test_unsafe_or_wrong_options_are_refused_clearly(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        PrometheusOptions.model_validate({"url": "http://127.0.0.1:9090", **options})
    message = "; ".join(e["msg"] for e in err.value.errors())
    assert words in message
    assert TOKEN not in message


def test_a_plan_with_an_inline_token_is_refused_by_check_without_echoing_it(tmp_path: Path) -> None:
    plan = gate_plan("http://127.0.0.1:9", "web", 'bearer_token = "' + TOKEN + '"')
    result = cockpit("check", str(write(tmp_path, plan)), state=tmp_path)
    assert result.returncode == 2
    assert "credentials are never written in a plan" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


# ----------------------------------------------------------------------------- file SD


class TargetsOnly:
    """What collect() needs of a backend: its scrape targets."""

    name = "fake"

    def __init__(self, targets: dict[Track, list[str]]) -> None:
        self.targets = targets

    def scrape_targets(self) -> dict[Track, list[str]]:
        return self.targets


def test_collect_publishes_the_backends_targets_so_prometheus_scrapes_them(
    prometheus_url: str, prometheus_sd: Path
) -> None:
    service = unique()
    canary = Exporter('http_requests_total{code="200"} 3\n')
    try:
        source = make_source(
            prometheus_url,
            service=service,
            backend=TargetsOnly({Track.CANARY: [canary.url]}),
            file_sd=str(prometheus_sd / f"{service}.json"),
        )
        source.set_versions({Track.CANARY: "2.0.0"})
        asyncio.run(source.collect())
        selector = f'http_requests_total{{service="{service}",env="dev",track="canary",version="2.0.0"}}'
        wait_until(lambda: instant(prometheus_url, selector), 20, "the published target's series")
    finally:
        (prometheus_sd / f"{service}.json").unlink(missing_ok=True)
        canary.close()


# ----------------------------------------------------------------------------- the CLI


def cockpit(*args: str, state: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COCKPIT_STATE_DIR": str(state), **(env or {})},
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def gate_plan(
    url: str,
    service: str,
    extra_options: str = "",
    query: str = 'sum(demo_latency_ms{service="{service}",track="{track}"})',
) -> str:
    return f"""
[service]
name = "{service}"

[secrets]
prom-token = "env:PROM_TOKEN"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]
    port = 0
  [environments.metrics]
  source = "prometheus"
    [environments.metrics.options]
    url = "{url}"
    {extra_options}

[strategy.canary]
steps = [{{ set_weight = 10 }}, {{ analysis = {{ checks = ["errors", "latency"] }} }}]

[[analysis.checks]]
name = "errors"
metric = "error-rate"
success = "<= 5"
interval = "3s"

[[analysis.checks]]
name = "latency"
query = '{query}'
success = "< 100"
interval = "3s"
"""


def test_gate_prints_canary_stable_limit_and_verdict_per_gate(
    tmp_path: Path, prometheus_url: str, exporters: Callable[..., Exporter]
) -> None:
    service = unique()
    # Canary: 10 req/s, 2 % errors, latency gauge 130 ms; stable: 10 req/s, no errors, 80 ms.
    for track, errors, latency in (("canary", 0.02, 130), ("stable", 0.0, 80)):

        def text(t: float, errors: float = errors, latency: int = latency) -> str:
            total = 100 + 10 * t
            return (
                f'http_requests_total{{code="200"}} {total * (1 - errors)}\n'
                f'http_requests_total{{code="500"}} {total * errors}\ndemo_latency_ms {latency}\n'
            )

        exporters(text, service=service, env="dev", track=track)
    time.sleep(4.5)  # every series older than the 3 s window
    result = cockpit(
        "gate", str(write(tmp_path, gate_plan(prometheus_url, service))), "--env", "dev", state=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    errors_line, latency_line = lines["errors"].split(), lines["latency"].split()
    assert errors_line[1] == "error-rate" and float(errors_line[2].rstrip("%")) == pytest.approx(
        2.0, rel=0.05
    )
    assert errors_line[3] == "0%" and errors_line[-1] == "Successful" and "<= 5" in lines["errors"]
    assert latency_line[1:4] == ["query", "130", "80"] and "< 100" in lines["latency"]
    assert latency_line[-1] == "Failed"


def test_gate_with_prometheus_down_says_so_per_gate(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cockpit("gate", str(write(tmp_path, gate_plan(url, "web"))), "--env", "dev", state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Error") == 2 and f"Prometheus at {url} is unreachable" in result.stdout


def test_check_validates_promql_on_a_reachable_server(tmp_path: Path, prometheus_url: str) -> None:
    good = cockpit("check", str(write(tmp_path, gate_plan(prometheus_url, "web"))), state=tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"promql    dev: 6 queries parse (Prometheus at {prometheus_url})" in good.stdout
    broken = gate_plan(prometheus_url, "web", query="sum(rate(x[5m])")
    bad = cockpit("check", str(write(tmp_path, broken)), state=tmp_path)
    assert bad.returncode == 2
    assert "promql    dev: check 'latency' does not parse: " in bad.stdout
    assert "unclosed left parenthesis" in bad.stdout


def test_check_says_plainly_when_it_could_not_validate(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = cockpit("check", str(write(tmp_path, gate_plan(url, "web"))), state=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"promql    dev: could not validate PromQL: Prometheus at {url} unreachable" in result.stdout


def test_the_source_is_listed_by_cockpit_adapters(tmp_path: Path) -> None:
    result = cockpit("adapters", state=tmp_path)
    assert "prometheus" in result.stdout.split("metrics sources:")[1]


def test_gate_names_the_environments_when_the_one_asked_for_is_unknown(tmp_path: Path) -> None:
    result = cockpit(
        "gate", str(write(tmp_path, gate_plan("http://127.0.0.1:9", "web"))), "--env", "prod", state=tmp_path
    )
    assert result.returncode == 2
    assert "no environment 'prod' in the plan (environments: dev)" in result.stderr
