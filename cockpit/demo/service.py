"""A small real HTTP service whose versions behave differently.

Run as ``python -m cockpit.demo.service --version V --port P --env E``.

* ``1.0.0`` and ``1.1.0`` (and any unknown version) are healthy: a few ms, no errors.
* ``1.2.0`` carries a latent regression on ``/api/checkout`` only - a path that only
  production traffic exercises - so staging looks fine and the canary analysis in
  production is what catches it (~30 % 500s and +150-400 ms there).

``--db URL`` names the orders database (:mod:`cockpit.demo.orders_db`; default: private
in-memory SQLite): ``/api/orders`` reads it, ``POST /api/orders`` and ``/api/checkout`` write
it, each version through the column of its schema (:mod:`cockpit.demo.schema`), so a schema
its version does not expect shows as real 500s.

Every request is logged as one JSON line on stdout; ``/metrics`` serves Prometheus text
(``http_requests_total{path,code}``, ``http_request_duration_seconds{path}``). SIGTERM
stops accepting, lets in-flight requests finish, and exits 0 - the zero-downtime
cut-overs of the local backend rely on that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from cockpit.demo.orders_db import MEMORY, OrdersDb, OrdersDbError

# Fine enough below 10 ms for healthy p95/p99 and up to 2 s for the regression.
BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0,
)  # fmt: skip

ROUTES = ("/", "/api/orders", "/api/checkout")
# Probes and scrapes are not user traffic: counting them would give an idle canary a
# request rate and dilute error rates.
UNMETERED = ("/healthz", "/metrics")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How one version answers one path."""

    base_ms: tuple[float, float] = (1.0, 4.0)  # uniform extra latency range
    error_ratio: float = 0.0
    extra_ms: tuple[float, float] = (0.0, 0.0)


HEALTHY = Behaviour()
REGRESSION = Behaviour(error_ratio=0.3, extra_ms=(150.0, 400.0))


def behaviour(version: str, path: str) -> Behaviour:
    if version == "1.2.0" and path == "/api/checkout":
        return REGRESSION
    return HEALTHY


CUSTOMERS = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov")


def random_customer() -> str:
    return random.choice(CUSTOMERS)


def log(level: str, msg: str, **fields: object) -> None:
    # One write + flush per line: the backend reads our stdout in chunks and a line
    # must never sit in a buffer while the engineer watches the log pane.
    record = {"ts": round(time.time(), 3), "level": level, "msg": msg, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class Service:
    def __init__(self, version: str, env: str, db: OrdersDb | None = None) -> None:
        # The *_created series double the scrape size and no consumer here reads them.
        disable_created_metrics()
        self.version = version
        self.env = env
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests served", ["path", "code"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["path"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.db = db or OrdersDb(MEMORY, version)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/", self.index)
        app.router.add_get("/api/orders", self.api_orders)
        app.router.add_post("/api/orders", self.create_order)
        app.router.add_get("/api/checkout", self.api_checkout)
        return app

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path in UNMETERED:
            return await handler(request)
        started = time.perf_counter()
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            response, status = exc, exc.status
        except Exception as exc:  # a demo bug must become a 500, not a dead socket
            log("error", "unhandled error", path=path, error=repr(exc), version=self.version)
            response, status = web.json_response({"error": "internal"}, status=500), 500
        elapsed = time.perf_counter() - started
        # Unknown paths share one label so a scanner cannot blow up the series count.
        label = path if path in ROUTES else "other"
        self.requests.labels(label, str(status)).inc()
        self.duration.labels(label).observe(elapsed)
        level = "error" if status >= 500 else "warning" if status >= 400 else "info"
        log(
            level,
            "request",
            method=request.method,
            path=path,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            version=self.version,
        )
        if isinstance(response, web.HTTPException):
            raise response
        return response

    async def _behave(self, path: str) -> bool:
        """Sleep like this version would; return False when the request must fail."""
        b = behaviour(self.version, path)
        delay = random.uniform(*b.base_ms) + random.uniform(*b.extra_ms)
        await asyncio.sleep(delay / 1000)
        return random.random() >= b.error_ratio

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": self.version})

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def index(self, request: web.Request) -> web.Response:
        await self._behave("/")
        return web.json_response({"service": "demo", "version": self.version, "env": self.env})

    async def api_orders(self, request: web.Request) -> web.Response:
        await self._behave("/api/orders")
        count, recent = await self.db.recent_orders()
        return web.json_response({"orders": count, "recent": recent, "version": self.version})

    async def create_order(self, request: web.Request) -> web.Response:
        """Not idempotent, so the router never retries it. ``?sleep=S`` (0-10 s) keeps it
        in flight that long: tests use it to catch a replica stopped under a request."""
        try:
            sleep = float(request.query.get("sleep", "0"))
        except ValueError:
            sleep = -1.0
        if not 0 <= sleep <= 10:
            return web.json_response({"error": "sleep must be 0 to 10 seconds"}, status=400)
        await request.read()
        await self._behave("/api/orders")
        await asyncio.sleep(sleep)
        order = await self.db.create_order(random_customer(), random.randrange(500, 20_000))
        return web.json_response({"order": order, "version": self.version}, status=201)

    async def api_checkout(self, request: web.Request) -> web.Response:
        if not await self._behave("/api/checkout"):
            return web.json_response(
                {"error": "payment provider timeout", "version": self.version}, status=500
            )
        # A checkout places an order: production's users write the database all the time.
        order = await self.db.create_order(random_customer(), random.randrange(500, 20_000))
        return web.json_response({"checkout": "ok", "order": order, "version": self.version})


async def serve(version: str, port: int, env: str, shutdown_timeout: float, db_url: str = MEMORY) -> None:
    db = OrdersDb(db_url, version)
    try:
        await db.start()
    except OrdersDbError as exc:
        log("error", "cannot open the database", error=str(exc), version=version)
        print(str(exc), file=sys.stderr, flush=True)
        await db.close()
        raise SystemExit(1) from None
    try:
        await _serve(Service(version, env, db), port, shutdown_timeout)
    finally:
        await db.close()


async def _serve(service: Service, port: int, shutdown_timeout: float) -> None:
    version, env = service.version, service.env
    runner = web.AppRunner(
        service.app(), access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        log("error", "cannot listen", port=port, error=str(exc), version=version)
        print(f"cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr, flush=True)
        await runner.cleanup()
        raise SystemExit(1) from None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log("info", "started", version=version, env=env, port=port, pid=os.getpid(), db=service.db.dialect)
    await stop.wait()
    log("info", "stopping: finishing in-flight requests", version=version)
    # cleanup() closes the listening socket first, then waits for handlers in flight.
    await runner.cleanup()
    log("info", "stopped", version=version)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cockpit.demo.service", description=__doc__)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--env", default="dev")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    parser.add_argument(
        "--db",
        default=MEMORY,
        help="orders database: sqlite:///path.db or postgresql://user@host:port/db "
        "(password in PGPASSWORD); default: private in-memory SQLite",
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.version, args.port, args.env, args.shutdown_timeout, args.db))


if __name__ == "__main__":
    main()
