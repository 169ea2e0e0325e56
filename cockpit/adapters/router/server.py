"""The weighted HTTP router in front of one environment's workloads.

Run by :class:`~cockpit.adapters.router.handle.RouterHandle` as its own process
(``python -m cockpit.adapters.router``) so proxying never competes with the cockpit's UI
event loop. It listens on a socket the backend bound (passed as an inherited fd, so a busy port is detected by the backend with a
precise error and there is no bind race), splits each request between the stable and
canary tracks by the current weight (a request may name its track in the
``x-cockpit-track`` header: how a blue-green preview gets test traffic), and exposes a small JSON control API on a second
loopback socket:

* ``GET /state``  - table, weight, per-upstream in-flight and counters
* ``PUT /table``  - atomically replace ``{"stable": [urls], "canary": [urls], "weight": n}``
* ``POST /drain`` - ``{"urls": [...], "timeout": s}``: wait until none of these has a
  request in flight (used before a retired replica is stopped)

Requests are buffered (the demo's bodies are small) and sent over pooled keep-alive
connections. A request whose connection to an upstream fails before it was sent is
retried on another upstream of the same track, then on the other track, so a replica that
goes away loses no request. Logs are JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from cockpit.adapters.router.protocol import TOKEN_ENV, TOKEN_HEADER, TRACK_HEADER

STABLE, CANARY = "stable", "canary"
DOWN_FOR = 1.0  # seconds an upstream that refused a connection is tried last
ERROR_LOG_EVERY = 1.0  # at most one error line per upstream per second under load

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host",
    )
)  # fmt: skip
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


def log(level: str, msg: str, **fields: object) -> None:
    record = {"ts": round(time.time(), 3), "level": level, "msg": msg, **fields}
    try:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # Nobody reads our logs any more (the cockpit's pipe is gone): routing matters
        # more than logging, so keep serving and drop the lines from now on.
        _silence_stdout()


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # also stops the flush at exit from failing again
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


@dataclass(eq=False)
class Upstream:
    url: str
    prefix: str  # scheme://host:port, the request's raw path and query are appended
    session: aiohttp.ClientSession
    in_flight: int = 0
    responses: int = 0
    responses_5xx: int = 0
    connect_failures: int = 0
    down_until: float = 0.0
    last_error_log: float = 0.0
    retired: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "in_flight": self.in_flight,
            "responses": self.responses,
            "responses_5xx": self.responses_5xx,
            "connect_failures": self.connect_failures,
            "down": self.down_until > time.monotonic(),
        }


class Router:
    def __init__(self, token: str | None, read_timeout: float) -> None:
        self.token = token
        self.read_timeout = read_timeout
        self.upstreams: dict[str, Upstream] = {}
        self.tracks: dict[str, list[Upstream]] = {STABLE: [], CANARY: []}
        self.weight = 0
        self.table_version = 0
        self.rr = {STABLE: 0, CANARY: 0}
        self.requests = {STABLE: 0, CANARY: 0}
        self.retries = 0
        self.failed = 0  # answered by the router itself with 502/503/504
        self.started = time.time()
        self._closing: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ routing table

    def _upstream(self, url: str) -> Upstream:
        up = self.upstreams.get(url)
        if up is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None)
            session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                # Forward what the client sent; never invent headers it did not send.
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, connect=2.0, sock_read=self.read_timeout),
            )
            up = Upstream(url=url, prefix=url.rstrip("/"), session=session)
            up.idle.set()
            self.upstreams[url] = up
        up.retired = False
        return up

    def apply_table(self, stable: list[str], canary: list[str], weight: int) -> None:
        # Everything below runs without an await, so no request sees half a table.
        new = {STABLE: [self._upstream(u) for u in stable], CANARY: [self._upstream(u) for u in canary]}
        keep = {id(u) for ups in new.values() for u in ups}
        self.tracks = new
        self.weight = weight
        self.table_version += 1
        self.rr = {STABLE: 0, CANARY: 0}
        for up in list(self.upstreams.values()):
            if id(up) not in keep:
                up.retired = True
                if up.in_flight == 0:
                    self._close(up)
        log(
            "info",
            "routing table changed",
            table_version=self.table_version,
            stable=stable,
            canary=canary,
            weight=weight,
        )

    def _close(self, up: Upstream) -> None:
        if self.upstreams.get(up.url) is up:
            del self.upstreams[up.url]
        task = asyncio.get_running_loop().create_task(up.session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def pick_track(self, asked: str | None = None) -> str:
        """The track for one request. A request may name its track in the
        ``x-cockpit-track`` header: a blue-green preview gets traffic that way at weight 0
        (test users, the analysis before the switch); without the header, or naming a
        track with no upstream, the weight decides."""
        if asked in (STABLE, CANARY) and self.tracks[asked]:
            return asked
        if not self.tracks[CANARY] or self.weight <= 0:
            return STABLE
        if not self.tracks[STABLE] or self.weight >= 100:
            return CANARY
        # An independent draw per request: every client sees the weight over its own
        # requests. A shared counter phase-locks with clients whose requests interleave
        # regularly (one saw 10 % canary at weight 35 in one run and 60 % in another).
        return CANARY if random.random() * 100 < self.weight else STABLE

    def next_upstream(self, track: str, tried: set[Upstream]) -> tuple[Upstream, str] | None:
        """Round-robin within the chosen track, then the other track; upstreams that
        recently refused a connection come last. Read from the *current* table so a
        retry never lands on an upstream retired meanwhile."""
        now = time.monotonic()
        order = (track, CANARY if track == STABLE else STABLE)
        for allow_down in (False, True):
            for t in order:
                ups = self.tracks[t]
                n = len(ups)
                start = self.rr[t]
                for i in range(n):
                    up = ups[(start + i) % n]
                    if up in tried or (not allow_down and up.down_until > now):
                        continue
                    self.rr[t] = (start + i + 1) % n
                    return up, t
        return None

    # ------------------------------------------------------------------ proxying

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        if request.remote:
            headers["X-Forwarded-For"] = request.remote
        method = request.method
        track = self.pick_track(request.headers.get(TRACK_HEADER, "").strip().lower() or None)
        tried: set[Upstream] = set()
        while (choice := self.next_upstream(track, tried)) is not None:
            up, served_by = choice
            tried.add(up)
            if len(tried) > 1:
                self.retries += 1
            up.in_flight += 1
            up.idle.clear()
            try:
                async with up.session.request(
                    method,
                    URL(up.prefix + request.raw_path, encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                ) as resp:
                    payload = await resp.read()
                    status, reason = resp.status, resp.reason
                    out = [(k, v) for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP]
            except aiohttp.ClientConnectorError as exc:
                # Refused before anything was sent: always safe to try elsewhere.
                self._upstream_failed(up, exc, connect=True)
                continue
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                self._upstream_failed(up, exc, connect=False)
                if method in IDEMPOTENT:
                    continue
                return self._fail(502, f"upstream {up.url} closed the connection")
            except TimeoutError:
                self._upstream_failed(up, TimeoutError("read timeout"), connect=False)
                return self._fail(504, f"upstream {up.url} timed out")
            except aiohttp.ClientError as exc:
                self._upstream_failed(up, exc, connect=False)
                return self._fail(502, f"upstream {up.url} failed: {type(exc).__name__}")
            finally:
                up.in_flight -= 1
                if up.in_flight == 0:
                    up.idle.set()
                    if up.retired:
                        self._close(up)
            up.responses += 1
            if status >= 500:
                up.responses_5xx += 1
            self.requests[served_by] += 1
            response = web.Response(status=status, reason=reason, body=payload)
            for k, v in out:
                response.headers.add(k, v)
            response.headers[TRACK_HEADER] = served_by
            return response
        if tried:
            return self._fail(502, "no upstream accepted the connection")
        return self._fail(503, "no upstream in the routing table")

    def _upstream_failed(self, up: Upstream, exc: BaseException, *, connect: bool) -> None:
        now = time.monotonic()
        if connect:
            up.connect_failures += 1
            up.down_until = now + DOWN_FOR
        if now - up.last_error_log >= ERROR_LOG_EVERY:
            up.last_error_log = now
            log("warning", "upstream error", upstream=up.url, error=f"{type(exc).__name__}: {exc}")

    def _fail(self, status: int, message: str) -> web.Response:
        self.failed += 1
        return web.json_response({"error": message}, status=status, headers={TRACK_HEADER: "router"})

    # ------------------------------------------------------------------ control API

    def state(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "table_version": self.table_version,
            "weight": self.weight,
            "tracks": {t: [u.state() for u in ups] for t, ups in self.tracks.items()},
            "retired": [u.state() for u in self.upstreams.values() if u.retired],
            "requests": dict(self.requests),
            "retries": self.retries,
            "failed": self.failed,
        }

    def control_app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            if self.token and request.headers.get(TOKEN_HEADER) != self.token:
                return web.json_response({"error": "bad token"}, status=403)
            return await handler(request)

        app = web.Application(middlewares=[auth])
        app.router.add_get("/state", self._get_state)
        app.router.add_put("/table", self._put_table)
        app.router.add_post("/drain", self._post_drain)
        return app

    async def _get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _put_table(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            stable = [str(u) for u in data.get("stable", [])]
            canary = [str(u) for u in data.get("canary", [])]
            weight = int(data.get("weight", 0))
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": f"bad table: {exc}"}, status=400)
        if not 0 <= weight <= 100:
            return web.json_response({"error": f"weight must be 0..100, found {weight}"}, status=400)
        for url in stable + canary:
            if not url.startswith(("http://", "https://")):
                return web.json_response({"error": f"bad upstream url {url!r}"}, status=400)
        self.apply_table(stable, canary, weight)
        return web.json_response(self.state())

    async def _post_drain(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            timeout = float(data.get("timeout", 10))
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": f"bad drain request: {exc}"}, status=400)
        ups = [self.upstreams[u] for u in data.get("urls", []) if u in self.upstreams]
        waits = [asyncio.ensure_future(u.idle.wait()) for u in ups if u.in_flight]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for w in pending:
                w.cancel()
        in_flight = {u.url: u.in_flight for u in ups if u.in_flight}
        return web.json_response({"drained": not in_flight, "in_flight": in_flight})

    async def close(self) -> None:
        for up in list(self.upstreams.values()):
            await up.session.close()
        if self._closing:
            await asyncio.wait(self._closing, timeout=2)


def _socket(fd: int | None, address: str | None) -> socket.socket:
    if fd is not None:
        sock = socket.socket(fileno=fd)
    else:
        host, _, port = (address or "127.0.0.1:0").rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "127.0.0.1", int(port)))
    sock.setblocking(False)
    return sock


async def serve(args: argparse.Namespace) -> None:
    router = Router(os.environ.get(TOKEN_ENV) or None, args.read_timeout)
    listen = _socket(args.listen_fd, args.listen)
    control = _socket(args.control_fd, args.control)
    proxy_runner = web.ServerRunner(
        web.Server(router.handle, access_log=None), handle_signals=False, shutdown_timeout=5
    )
    control_runner = web.AppRunner(router.control_app(), access_log=None, handle_signals=False)
    await proxy_runner.setup()
    await control_runner.setup()
    if args.table:
        # Before accepting: a restarted router must not answer the connections that
        # waited in the backlog with "no upstream in the routing table".
        table = json.loads(args.table)
        router.apply_table(table.get("stable", []), table.get("canary", []), table.get("weight", 0))
    await web.SockSite(proxy_runner, listen, backlog=1024).start()
    await web.SockSite(control_runner, control).start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log(
        "info",
        "router started",
        listen="{}:{}".format(*listen.getsockname()[:2]),
        control="{}:{}".format(*control.getsockname()[:2]),
        pid=os.getpid(),
    )
    await stop.wait()
    log("info", "router stopping")
    await proxy_runner.cleanup()
    await control_runner.cleanup()
    await router.close()
    log("info", "router stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cockpit.adapters.router", description=__doc__)
    parser.add_argument("--listen-fd", type=int, help="inherited listening socket for traffic")
    parser.add_argument("--control-fd", type=int, help="inherited listening socket for control")
    parser.add_argument("--listen", help="HOST:PORT for traffic when no fd is given")
    parser.add_argument("--control", help="HOST:PORT for control when no fd is given")
    parser.add_argument("--table", help="initial routing table as JSON")
    parser.add_argument("--read-timeout", type=float, default=60.0, help="upstream read timeout (s)")
    args = parser.parse_args(argv)
    # A closed log pipe must be an EPIPE that log() handles, never a signal that kills us.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
