"""The deploy API as an aiohttp application.

Every ``/api/...`` request passes, in order: the calls log (what arrived, what was
answered), the bearer-token check, the injected faults, and - for mutating calls with an
``Idempotency-Key`` header - the idempotency store, which answers a repeat with the first
answer instead of acting twice. The handler and an injected delay run in a task shielded
from the client: a client that gives up (its timeout) does not undo the call, as on a real
platform. ``/_test/...`` routes (no auth) steer and read all this for the tests.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.deploy_api.state import (
    DEFAULT_REPLICAS,
    DEFAULT_STABLE,
    DEFAULT_VERSIONS,
    PROGRESS_DEADLINE,
    REQUEST_LOG_INTERVAL,
    ApiError,
    Env,
    Platform,
    parse_steps,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDEMPOTENCY_HEADER = "Idempotency-Key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEEPALIVE = 5.0  # seconds between keep-alive comments on an idle event stream
E = "/api/apps/{app}/envs/{env}"


@dataclass
class Fault:
    """An injected fault: the next ``times`` calls of ``method`` whose path ends with
    ``path_suffix`` wait ``delay`` seconds, then answer ``status`` (without acting) or,
    with no status, act as usual."""

    id: int
    method: str
    path_suffix: str
    times: int
    status: int | None = None
    delay: float = 0.0
    echo_auth: bool = False  # the error names the Authorization header it got, as careless APIs do

    def error_body(self, request: web.Request) -> bytes:
        message = f"injected fault {self.id}"
        if self.echo_auth:
            message += f" (request had Authorization: {request.headers.get('Authorization', '')})"
        return json.dumps({"error": message}).encode()

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in (method, "*") and path.endswith(self.path_suffix)


@dataclass
class Answer:
    """A finished answer, kept to replay it for a repeated idempotency key."""

    status: int
    body: bytes
    content_type: str

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


@dataclass
class Remembered:
    method: str
    path: str
    body: bytes
    answer: asyncio.Future[Answer]


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class DeployApi:
    """The service: the platform's state plus the test machinery around it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.platform = Platform()
        self.faults: list[Fault] = []
        self.calls: list[dict[str, Any]] = []
        self.remembered: dict[str, Remembered] = {}
        self._fault_ids = 0
        self._ticker: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ application

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get(E + "/status", self.status)
        app.router.add_get(E + "/versions", self.versions)
        app.router.add_post(E + "/canary", self.canary)
        app.router.add_put(E + "/weight", self.weight)
        app.router.add_post(E + "/promote", self.promote)
        app.router.add_post(E + "/abort", self.abort)
        app.router.add_post(E + "/rollback", self.rollback)
        app.router.add_post(E + "/rollouts", self.start_rollout)
        app.router.add_post(E + "/rollouts/current/{command}", self.rollout_command)
        app.router.add_get(E + "/logs", self.logs)
        app.router.add_get(E + "/logs/stream", self.logs_stream)
        app.router.add_get(E + "/logs/events", self.logs_events)
        app.router.add_post("/_test/faults", self.add_fault)
        app.router.add_get("/_test/calls", self.list_calls)
        app.router.add_post("/_test/reset", self.reset)
        app.router.add_post("/_test/broken", self.set_broken)
        app.router.add_post("/_test/configure", self.configure)
        app.router.add_get("/_test/health", self.health)
        app.on_startup.append(self._start_ticker)
        app.on_cleanup.append(self._stop_ticker)
        return app

    async def _start_ticker(self, app: web.Application) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _stop_ticker(self, app: web.Application) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self.platform.reset()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(REQUEST_LOG_INTERVAL)
            self.platform.log_requests()

    # ------------------------------------------------------------------ the request pipeline

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_test/"):
            return await self._guarded(request, handler)
        call: dict[str, Any] = {
            "seq": len(self.calls) + 1,
            "ts": round(time.time(), 3),
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
            "status": None,  # None while the call is still being worked on
            "replayed": False,
            "fault": None,
        }
        self.calls.append(call)
        response = await self._answer(request, handler, call)
        call["status"] = response.status
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, call: dict[str, Any]
    ) -> web.StreamResponse:
        if not self._authorised(request):
            return web.json_response(
                {"error": "invalid token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="deploy-api"'},
            )
        if request.method in MUTATING:
            await request.read()  # kept by aiohttp: a handler delayed past a gone client still has it
        fault = next((f for f in self.faults if f.matches(request.method, request.path)), None)
        if fault is not None:
            fault.times -= 1
            call["fault"] = fault.id
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key and request.method in MUTATING:
            return await self._idempotent(request, handler, call, key, fault)
        if fault is not None and fault.status is None and request.method in MUTATING:
            # A delayed mutating call acts even when the client stopped waiting.
            return (await self._shielded(self._delayed(request, handler, fault))).response()
        return await self._delayed_stream(request, handler, fault)

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    async def _idempotent(
        self, request: web.Request, handler: Handler, call: dict[str, Any], key: str, fault: Fault | None
    ) -> web.Response:
        body = await request.read()
        seen = self.remembered.get(key)
        if seen is not None:
            if (seen.method, seen.path, seen.body) != (request.method, request.path, body):
                return error(
                    422, f"idempotency key reused for a different request (first: {seen.method} {seen.path})"
                )
            call["replayed"] = True
            return (await asyncio.shield(seen.answer)).response()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.remembered[key] = Remembered(request.method, request.path, body, future)
        task = self._spawn(self._delayed(request, handler, fault))
        task.add_done_callback(lambda done: self._settle(key, future, done))
        return (await asyncio.shield(future)).response()

    def _settle(self, key: str, future: asyncio.Future[Answer], done: asyncio.Task[Answer]) -> None:
        if done.cancelled() or done.exception() is not None:
            del self.remembered[key]  # nothing answered: a retry with this key is a first try
            future.set_result(Answer(500, b'{"error": "internal error"}', "application/json"))
            return
        answer = done.result()
        if answer.status >= 500:
            del self.remembered[key]  # a server error is not an answer to keep: retries may act
        future.set_result(answer)

    async def _delayed(self, request: web.Request, handler: Handler, fault: Fault | None) -> Answer:
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return Answer(fault.status, fault.error_body(request), "application/json")
        response = await self._guarded(request, handler)
        assert isinstance(response, web.Response), "only streaming GETs answer with a stream"
        assert response.body is not None and isinstance(response.body, bytes)
        return Answer(response.status, response.body, response.content_type)

    async def _delayed_stream(
        self, request: web.Request, handler: Handler, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            return web.Response(
                status=fault.status, body=fault.error_body(request), content_type="application/json"
            )
        return await self._guarded(request, handler)

    def _spawn(self, coro: Awaitable[Answer]) -> asyncio.Task[Answer]:
        task: asyncio.Task[Answer] = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _shielded(self, coro: Awaitable[Answer]) -> Answer:
        return await asyncio.shield(self._spawn(coro))

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Refusals and unknown routes answer JSON errors; a bug answers 500, never a crash."""
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, exc.message)
        except web.HTTPException as exc:
            return error(exc.status, exc.reason)
        except Exception as exc:
            return error(500, f"internal error: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ helpers

    def _env(self, request: web.Request) -> Env:
        return self.platform.env(request.match_info["app"], request.match_info["env"])

    async def _json(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        return body

    # ------------------------------------------------------------------ the API

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self._env(request).status())

    async def versions(self, request: web.Request) -> web.Response:
        return web.json_response({"versions": self._env(request).versions})

    async def canary(self, request: web.Request) -> web.Response:
        env = self._env(request)
        body = await self._json(request)
        env.refuse_while_rolling()
        deployment = env.deploy_canary(env.check_version(body.get("version")))
        return web.json_response({"deployment": deployment}, status=202)

    async def weight(self, request: web.Request) -> web.Response:
        env = self._env(request)
        body = await self._json(request)
        env.refuse_while_rolling()
        env.set_weight(body.get("weight"))
        return web.json_response(env.status())

    async def promote(self, request: web.Request) -> web.Response:
        env = self._env(request)
        env.refuse_while_rolling()
        env.promote()
        return web.json_response(env.status())

    async def abort(self, request: web.Request) -> web.Response:
        env = self._env(request)
        env.refuse_while_rolling()
        env.abort()
        return web.json_response(env.status())

    async def rollback(self, request: web.Request) -> web.Response:
        env = self._env(request)
        body = await self._json(request)
        env.refuse_while_rolling()
        env.rollback(env.check_version(body.get("version")))
        return web.json_response(env.status())

    async def start_rollout(self, request: web.Request) -> web.Response:
        env = self._env(request)
        body = await self._json(request)
        version = env.check_version(body.get("version"))
        rollout = env.start_rollout(version, parse_steps(body.get("steps")))
        return web.json_response({"rollout": rollout.id, "deployment": rollout.deployment}, status=202)

    async def rollout_command(self, request: web.Request) -> web.Response:
        env = self._env(request)
        body = await self._json(request)
        env.current_rollout().command(request.match_info["command"], body)
        return web.json_response(env.status())

    # ------------------------------------------------------------------ logs

    def _after(self, request: web.Request, default: int) -> int:
        raw = request.query.get("after") or request.headers.get("Last-Event-ID")
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ApiError(400, f"after must be a line number, not {raw!r}") from None

    async def logs(self, request: web.Request) -> web.Response:
        book = self._env(request).logs
        after = self._after(request, 0)
        lines = book.since(after)
        # ``next`` is what to ask with next time; after a reset of the platform the book
        # starts again at 1, so a client asking beyond its end is moved back to it.
        return web.json_response({"lines": lines, "next": lines[-1]["seq"] + 1 if lines else book.next_seq})

    async def logs_stream(self, request: web.Request) -> web.StreamResponse:
        """NDJSON: one line object per line, kept open (from ``after``, default: new lines)."""
        return await self._follow(request, "application/x-ndjson", lambda line: json.dumps(line) + "\n")

    async def logs_events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: ``id`` is the line's seq, ``data`` the line object."""
        return await self._follow(
            request, "text/event-stream", lambda line: f"id: {line['seq']}\ndata: {json.dumps(line)}\n\n"
        )

    async def _follow(
        self, request: web.Request, content_type: str, encode: Callable[[dict[str, Any]], str]
    ) -> web.StreamResponse:
        env = self._env(request)
        book = env.logs
        seq = self._after(request, book.next_seq)
        if request.headers.get("Last-Event-ID") and "after" not in request.query:
            seq += 1  # Last-Event-ID names the last line the client has
        response = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            while not book.closed:  # a reset of the platform ends its streams
                lines = book.since(seq)
                if lines:
                    await response.write("".join(encode(line) for line in lines).encode())
                    seq = lines[-1]["seq"] + 1
                env.last_used = time.monotonic()  # a follower keeps the environment producing
                await book.wait(seq, KEEPALIVE)
                if book.next_seq <= seq and content_type == "text/event-stream":
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:
            pass  # the client went away
        return response

    # ------------------------------------------------------------------ test control

    async def add_fault(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        method = body.get("method", "*")
        suffix = body.get("path_suffix", "")
        status = body.get("status")
        delay = body.get("delay", 0.0)
        times = body.get("times", 1)
        echo_auth = body.get("echo_auth", False)
        if not isinstance(method, str) or not isinstance(suffix, str):
            raise ApiError(400, "method and path_suffix must be strings")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ApiError(400, f"status must be an HTTP status, not {status!r}")
        if not isinstance(delay, int | float) or delay < 0 or not isinstance(times, int) or times < 1:
            raise ApiError(400, "delay must be >= 0 seconds and times >= 1")
        if status is None and not delay:
            raise ApiError(400, "a fault needs a status, a delay or both")
        self._fault_ids += 1
        fault = Fault(self._fault_ids, method.upper(), suffix, times, status, float(delay), bool(echo_auth))
        self.faults.append(fault)
        return web.json_response({"fault": fault.id})

    async def list_calls(self, request: web.Request) -> web.Response:
        """Every /api call received, oldest first; ``?app=NAME`` keeps one app's."""
        app = request.query.get("app")
        prefix = f"/api/apps/{app}/" if app else "/"
        return web.json_response({"calls": [c for c in self.calls if c["path"].startswith(prefix)]})

    async def reset(self, request: web.Request) -> web.Response:
        self.platform.reset()
        self.faults.clear()
        self.calls.clear()
        self.remembered.clear()
        return web.json_response({"reset": True})

    async def set_broken(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        version = body.get("version")
        if not isinstance(version, str) or not version:
            raise ApiError(400, "version must be a non-empty string")
        if body.get("broken", True):
            self.platform.broken.add(version)
        else:
            self.platform.broken.discard(version)
        return web.json_response({"broken": sorted(self.platform.broken)})

    async def configure(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        app, env = body.get("app"), body.get("env")
        versions = body.get("versions", list(DEFAULT_VERSIONS))
        stable = body.get("stable", DEFAULT_STABLE)
        replicas = body.get("replicas", DEFAULT_REPLICAS)
        deadline = body.get("progress_deadline", PROGRESS_DEADLINE)
        if not (isinstance(app, str) and app and isinstance(env, str) and env):
            raise ApiError(400, "app and env must be non-empty strings")
        if not (isinstance(versions, list) and versions and all(isinstance(v, str) for v in versions)):
            raise ApiError(400, "versions must be a non-empty list of strings")
        if stable not in versions:
            raise ApiError(400, f"stable {stable!r} is not one of the versions")
        if (
            not isinstance(replicas, int)
            or replicas < 1
            or not isinstance(deadline, int | float)
            or deadline <= 0
        ):
            raise ApiError(400, "replicas must be >= 1 and progress_deadline > 0")
        created = self.platform.configure(app, env, versions, stable, replicas, float(deadline))
        return web.json_response(created.status())

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})
