"""The http backend's transport against a real (tiny) aiohttp server run by the test:
retries only where safe, one idempotency key per action, timeouts, TLS, errors that name
the request and never the token."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import ValidationError

from cockpit import secrets
from cockpit.adapters.base import BackendConfigError
from cockpit.adapters.http.options import HttpOptions, Request
from cockpit.adapters.http.transport import (
    BODY_SHOWN,
    CredentialRejected,
    HttpStatusError,
    NoAnswer,
    Transport,
)

TOKEN = "tok-9f2c51d0-very-secret"
STATUS_MAP = {
    "stable_version": "$.stable.version",
    "stable_desired": "$.stable.replicas",
    "stable_ready": "$.stable.ready",
    "canary_version": "$.canary.version",
    "canary_desired": "$.canary.replicas",
    "canary_ready": "$.canary.ready",
    "weight": "$.weight",
}


@dataclass
class Server:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # path -> 500s still to answer
    delay: dict[str, float] = field(default_factory=dict)  # path -> seconds before answering

    def hits(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]


async def _serve(tls: ssl.SSLContext | None = None) -> tuple[web.AppRunner, Server]:
    server = Server(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        body = await request.text()
        server.calls.append({"method": request.method, "path": path, "headers": dict(request.headers), "body": body})
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "invalid token"}, status=401)
        if server.delay.get(path):
            await asyncio.sleep(server.delay[path])
        if server.fail.get(path):
            server.fail[path] -= 1
            # The platform echoes the request into its error page (a long one, with the token).
            return web.Response(status=500, text=f"boom for {request.headers['Authorization']} " + "x" * 900)
        if path == "/empty":
            return web.Response(status=204)
        if path == "/html":
            return web.Response(text="<html>not json</html>")
        if path == "/conflict":
            return web.json_response({"error": "a canary of 1.2.0 exists"}, status=409)
        return web.json_response({"ok": True, "path": path, "body": body, "query": request.query_string})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return runner, server


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    runner, srv = await _serve()
    try:
        yield srv
    finally:
        await runner.cleanup()


def options(url: str, **more: Any) -> HttpOptions:
    raw: dict[str, Any] = {
        "base_url": url,
        "headers": {"Authorization": "Bearer {secret:deploy-token}"},
        "backoff": 0.01,
        "timeout": 2.0,
        "actions": {
            a: {"path": f"/{a}"}
            for a in ("status", "versions", "deploy_canary", "set_weight", "promote", "abort", "rollback")
        },
        "status": STATUS_MAP,
        **more,
    }
    return HttpOptions.model_validate(raw)


def lookup(name: str) -> str:
    assert name == "deploy-token", name
    secrets._remember(TOKEN)  # what the session's resolver does: the value is known to redact()
    return TOKEN


def transport(url: str, **more: Any) -> Transport:
    return Transport(options(url, **more), lookup)


# ---------------------------------------------------------------------- retries


@pytest.mark.asyncio
async def test_get_is_retried_after_500s(server: Server) -> None:
    server.fail["/status"] = 2
    t = transport(server.url)
    try:
        answer = await t.call("status", Request(path="/status"), {})
    finally:
        await t.close()
    assert answer.data["ok"] is True
    assert len(server.hits("/status")) == 3


@pytest.mark.asyncio
async def test_get_gives_up_after_its_retries(server: Server) -> None:
    server.fail["/status"] = 10
    t = transport(server.url, retries=2)
    with pytest.raises(HttpStatusError) as caught:
        await t.call("status", Request(path="/status"), {})
    await t.close()
    assert len(server.hits("/status")) == 3 and caught.value.status == 500


@pytest.mark.asyncio
async def test_mutating_call_is_not_retried_after_a_500(server: Server) -> None:
    server.fail["/canary"] = 1
    t = transport(server.url)
    with pytest.raises(HttpStatusError) as caught:
        await t.call("deploy_canary", Request(method="POST", path="/canary", body={"version": "{version}"}), {"version": "1.1.0"})
    await t.close()
    assert len(server.hits("/canary")) == 1
    err = caught.value
    message = str(err)
    assert (err.method, err.path, err.status) == ("POST", "/canary", 500)
    assert message.startswith("POST /canary answered 500: boom for Bearer ")
    assert TOKEN not in message and len(err.body) <= BODY_SHOWN


@pytest.mark.asyncio
async def test_call_marked_idempotent_is_retried_with_the_same_key(server: Server) -> None:
    server.fail["/weight"] = 2
    t = transport(server.url)
    weight = Request(method="PUT", path="/weight", body={"weight": "{weight}"}, idempotent=True)
    await t.call("set_weight", weight, {"weight": 20})
    await t.call("set_weight", weight, {"weight": 30})
    await t.close()
    hits = server.hits("/weight")
    keys = [h["headers"].get("Idempotency-Key") for h in hits]
    assert len(hits) == 4 and all(keys)
    assert keys[0] == keys[1] == keys[2] != keys[3]  # one key per action, the same on its retries
    assert hits[0]["body"] == '{"weight":20}' and hits[3]["body"] == '{"weight":30}'  # a number stays a number


@pytest.mark.asyncio
async def test_no_idempotency_key_on_a_get_or_when_switched_off(server: Server) -> None:
    t = transport(server.url)
    await t.call("status", Request(path="/status"), {})
    await t.close()
    t = transport(server.url, idempotency_header="")
    await t.call("promote", Request(method="POST", path="/promote"), {})
    await t.close()
    assert "Idempotency-Key" not in server.hits("/status")[0]["headers"]
    assert "Idempotency-Key" not in server.hits("/promote")[0]["headers"]


# ---------------------------------------------------------------------- timeouts and connections


@pytest.mark.asyncio
async def test_a_mutating_call_that_times_out_is_not_sent_again(server: Server) -> None:
    server.delay["/canary"] = 1.0
    t = transport(server.url)
    with pytest.raises(NoAnswer) as caught:
        await t.call("deploy_canary", Request(method="POST", path="/canary", timeout=0.2), {})
    await t.close()
    assert caught.value.sent
    assert "no answer from" in str(caught.value) and "within 0.2s" in str(caught.value)
    assert "not sent again" in str(caught.value)
    await asyncio.sleep(0.1)
    assert len(server.hits("/canary")) == 1


@pytest.mark.asyncio
async def test_a_get_that_times_out_is_retried(server: Server) -> None:
    server.delay["/status"] = 0.5
    t = transport(server.url, retries=1)
    with pytest.raises(NoAnswer):
        await t.call("status", Request(path="/status", timeout=0.1), {})
    await t.close()
    assert len(server.hits("/status")) == 2


@pytest.mark.asyncio
async def test_connection_refused_names_the_url() -> None:
    runner, srv = await _serve()
    url = srv.url
    await runner.cleanup()  # nothing listens there any more
    t = transport(url, retries=1)
    with pytest.raises(NoAnswer) as caught:
        await t.call("deploy_canary", Request(method="POST", path="/canary"), {})
    await t.close()
    assert f"cannot connect to {url}" in str(caught.value)
    assert not caught.value.sent  # never reached the platform: safe to say nothing happened


# ---------------------------------------------------------------------- answers


@pytest.mark.asyncio
async def test_401_names_the_secret_never_its_value(server: Server) -> None:
    t = Transport(options(server.url), lambda name: (secrets._remember("wrong-token-55"), "wrong-token-55")[1])
    with pytest.raises(CredentialRejected) as caught:
        await t.call("status", Request(path="/status"), {})
    await t.close()
    message = str(caught.value)
    assert "credential was rejected" in message and "'deploy-token'" in message
    assert "wrong-token-55" not in message and TOKEN not in message
    assert len(server.hits("/status")) == 1  # a rejected credential is not retried


@pytest.mark.asyncio
async def test_secret_is_resolved_at_send_time(server: Server) -> None:
    opts = options(server.url)
    assert TOKEN not in opts.model_dump_json()  # the options hold only the reference
    resolved: list[str] = []
    t = Transport(opts, lambda name: (resolved.append(name), lookup(name))[1])
    assert not resolved  # nothing resolved before a request is sent
    await t.call("status", Request(path="/status"), {})
    await t.close()
    assert resolved == ["deploy-token"]
    assert server.hits("/status")[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.asyncio
async def test_answers_and_templates(server: Server) -> None:
    t = transport(server.url)
    values = {"service": "shop", "env": "prod", "version": "1.1.0"}
    answer = await t.call("x", Request(path="/api/{service}/{env}/v/{version}"), values)
    assert answer.data["path"] == "/api/shop/prod/v/1.1.0"
    assert (await t.call("x", Request(method="POST", path="/empty"), {})).data is None
    with pytest.raises(HttpStatusError) as caught:
        await t.call("x", Request(method="POST", path="/conflict"), {})
    assert caught.value.status == 409 and caught.value.error == "a canary of 1.2.0 exists"
    with pytest.raises(Exception, match="not JSON"):
        await t.call("x", Request(path="/html"), {})
    await t.close()


# ---------------------------------------------------------------------- options and TLS


def test_options_refuse_what_would_be_wrong() -> None:
    with pytest.raises(ValidationError, match=r"verify = false is refused"):
        options("https://deploy.example.com", verify=False)
    with pytest.raises(ValidationError, match=r"unknown placeholder \{versoin\}"):
        Request(path="/x/{versoin}")
    with pytest.raises(ValidationError, match="may only be used in a header"):
        Request(method="POST", path="/x", body={"token": "{secret:deploy-token}"})
    with pytest.raises(ValidationError, match="is not a JSON path"):
        options("https://deploy.example.com", versions="$[[")
    with pytest.raises(ValidationError, match="needs a request for action 'deploy_canary'"):
        HttpOptions.model_validate({**options("https://d.example").model_dump(), "actions": {"status": {"path": "/s"}, "versions": {"path": "/v"}}})
    with pytest.raises(ValidationError, match="needs a request for command 'set-image'"):
        options("https://d.example", driver="platform")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.mark.asyncio
async def test_tls_is_verified_and_a_ca_bundle_is_trusted(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner, srv = await _serve(tls)
    try:
        plain = transport(srv.url, retries=0)
        with pytest.raises(NoAnswer, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await plain.call("status", Request(path="/status"), {})
        await plain.close()
        assert not srv.calls  # the request never left the client
        trusted = transport(srv.url, ca_bundle=str(cert))
        assert (await trusted.call("status", Request(path="/status"), {})).data["ok"]
        await trusted.close()
    finally:
        await runner.cleanup()
    with pytest.raises(ValidationError, match=r"ca_bundle '.*missing\.pem' is not a file"):
        options("https://127.0.0.1:1", ca_bundle=str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    broken = transport("https://127.0.0.1:1", ca_bundle=str(garbage))
    with pytest.raises(BackendConfigError, match=r"garbage\.pem: cannot be read as PEM"):
        await broken.call("status", Request(path="/status"), {})


# ---------------------------------------------------------------------- log streams resume


@pytest.mark.parametrize("mode", ["ndjson", "sse"])
@pytest.mark.asyncio
async def test_a_log_stream_resumes_after_the_last_line_it_read(mode: str) -> None:
    """The platform ends the stream after two lines: the follower reconnects and asks for
    the lines after the last one it read (``after=`` for NDJSON, Last-Event-ID for SSE)."""
    from cockpit.adapters.base import LogLine
    from cockpit.adapters.http.logs import LogFollower
    from cockpit.adapters.http.options import LogsOptions

    asked: list[tuple[str, str | None]] = []
    done = asyncio.Event()

    def line(seq: int) -> str:
        obj = f'{{"seq": {seq}, "ts": 1.5, "track": "canary", "version": "1.1.0", "replica": "c-0", "message": "line {seq}"}}'
        return f"id: {seq}\ndata: {obj}\n\n" if mode == "sse" else obj + "\n"

    async def stream(request: web.Request) -> web.StreamResponse:
        asked.append((request.query_string, request.headers.get("Last-Event-ID")))
        response = web.StreamResponse()
        await response.prepare(request)
        first = 1 if len(asked) == 1 else 3
        for seq in range(first, first + 2):
            await response.write(line(seq).encode())
        if len(asked) > 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 5)  # stays open until the test is done
        return response

    app = web.Application()
    app.router.add_get("/logs", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    t = transport(f"http://127.0.0.1:{port}")
    got: list[LogLine] = []
    follower = LogFollower(t, LogsOptions(mode=mode, path="/logs"), {}, "prod", got.extend)  # type: ignore[arg-type]
    follower.start()
    try:
        for _ in range(100):
            if len(got) >= 4:
                break
            await asyncio.sleep(0.05)
    finally:
        done.set()
        await follower.stop()
        await t.close()
        await runner.cleanup()
    assert [g.text for g in got] == ["line 1", "line 2", "line 3", "line 4"]
    assert got[0].source == "canary 1.1.0 c-0" and got[0].ts == 1.5 and got[0].env == "prod"
    if mode == "sse":
        assert asked[:2] == [("", None), ("", "2")]
    else:
        assert asked[:2] == [("", None), ("after=3", None)]


# ---------------------------------------------------------------------- mapping answers


def test_status_mapping_reads_tracks_and_refuses_wrong_shapes() -> None:
    from cockpit.adapters.http.mapping import MappingError, backend_status, version_list
    from cockpit.adapters.http.options import StatusMap

    m = StatusMap.model_validate(STATUS_MAP)
    answer = {"stable": {"version": "1.0.0", "replicas": 2, "ready": 2},
              "canary": {"version": "1.1.0", "replicas": 1, "ready": 0}, "weight": 0}
    status = backend_status(answer, m, "https://shop.example")
    assert status.stable is not None and status.stable.healthy and status.url == "https://shop.example"
    assert status.canary is not None and not status.canary.healthy and status.canary.problem == "0/1 replicas ready"
    assert backend_status({**answer, "canary": None}, m, None).canary is None
    with pytest.raises(MappingError, match=r"canary weight \(\$\.weight\) should be a whole number, found '20'"):
        backend_status({**answer, "weight": "20"}, m, None)
    with pytest.raises(MappingError, match=r"should be 0\.\.100, found 120"):
        backend_status({**answer, "weight": 120}, m, None)
    with pytest.raises(MappingError, match=r"canary 1\.1\.0 runs but \$\.canary\.ready finds no replica count"):
        backend_status({**answer, "canary": {"version": "1.1.0", "replicas": 1}}, m, None)
    assert version_list({"versions": ["1.0.0", "1.1.0", "1.0.0"]}, "$.versions[*]") == ["1.0.0", "1.1.0"]
    with pytest.raises(MappingError, match="should be text"):
        version_list({"versions": [1, 2]}, "$.versions[*]")
