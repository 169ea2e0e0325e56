"""A session: one plan, its environments' controllers, the journal and the logs.

The UI and the headless CLI both drive releases through this one API, so the
terminal is never the only way to ship and both behave the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cockpit import paths
from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, BackendError, DeployBackend, MetricsSource
from cockpit.engine.controller import ActionResult, EnvironmentController, EnvView, TransitionListener
from cockpit.engine.journal import Journal, current_user
from cockpit.engine.logbuffer import LogHub
from cockpit.engine.state import Cause
from cockpit.model import LogLine
from cockpit.plan.models import Environment, Plan
from cockpit.secrets import SecretError, resolve

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class StartProblem:
    env: str
    error: BackendError

    def __str__(self) -> str:
        return f"{self.env}: {self.error}"


class Session:
    def __init__(
        self,
        plan: Plan,
        state_dir: Path | None = None,
        user: str | None = None,
        journal: Journal | None = None,
        log_capacity: int = 20_000,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.plan = plan
        self.state_dir = paths.state_dir(state_dir)
        self.user = user or current_user()
        self.journal = journal or Journal(paths.journal_path(self.state_dir))
        self.logs = LogHub([e.name for e in plan.environments], log_capacity)
        self.controllers: dict[str, EnvironmentController] = {}
        self._change_listeners: list[Callable[[], None]] = []
        for env in plan.environments:
            backend, metrics = self._create_adapters(env)
            controller = EnvironmentController(
                plan, env, backend, metrics, self.journal, self.user, on_transition
            )
            controller.add_change_listener(self._changed)
            self.controllers[env.name] = controller
        self.version = 0  # grows with every change in any environment
        self.warnings: list[str] = []  # secret references that could not be resolved at start
        self._secrets_resolved = False

    # ------------------------------------------------------------------ construction

    def _context(self, env: Environment, options: dict) -> AdapterContext:
        return AdapterContext(
            service=self.plan.service.name,
            env=env.name,
            run_dir=paths.run_dir(self.state_dir, self.plan.service.name, env.name),
            options=options,
            secrets=self._secret,
        )

    def _secret(self, name: str) -> str:
        ref = self.plan.secrets.get(name, name)
        try:
            return resolve(ref)
        except SecretError as err:
            raise BackendError(str(err)) from None

    def _create_adapters(self, env: Environment) -> tuple[DeployBackend, MetricsSource | None]:
        backend = registry.create_backend(
            env.backend.adapter, self._context(env, env.backend.options), env.backend.options
        )
        if env.logs.source == "backend":
            backend.attach_log_sink(self.logs.sink_for(env.name))
        metrics = registry.create_metrics_source(
            env.metrics.source, self._context(env, env.metrics.options), env.metrics.options, backend
        )
        return backend, metrics

    # ------------------------------------------------------------------ lifecycle

    async def start(
        self, attach: bool = False, only: list[str] | None = None, keep_trying: bool = False
    ) -> list[StartProblem]:
        """Start every environment side by side; returns those that failed. They show as
        down with their error; with ``keep_trying`` they are retried with backoff (the
        screen), without it they stay down (headless runs, which stop instead)."""
        chosen = [c for name, c in self.controllers.items() if only is None or name in only]
        self._resolve_secrets(chosen)
        results = await asyncio.gather(*(c.start(attach) for c in chosen), return_exceptions=True)
        problems = []
        for controller, result in zip(chosen, results, strict=True):
            if isinstance(result, BackendError):
                controller.start_failed(result)
                problems.append(StartProblem(controller.env.name, result))
                if keep_trying:
                    controller.keep_trying(attach)
            elif isinstance(result, BaseException):
                raise result
        return problems

    def _resolve_secrets(self, chosen: list[EnvironmentController]) -> None:
        """Resolve every reference in the plan's [secrets] once, so redaction knows each
        value before any backend or error message can carry it. One that cannot be resolved
        is a warning naming the reference (never a value), in the log and the journal."""
        if self._secrets_resolved:
            return
        self._secrets_resolved = True
        for name, ref in self.plan.secrets.items():
            try:
                resolve(ref)
            except SecretError as err:
                line = f"warning: secret {name!r} cannot be resolved: {err}"
                self.warnings.append(line)
                log.warning("%s", line)
                for controller in chosen:
                    env = controller.env.name
                    self.logs.sink_for(env)([LogLine(time.time(), env, "cockpit", None, line)])
                    controller._journal_quietly("secrets", "info", detail=line)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.controllers.values()), return_exceptions=True)
        self.journal.close()

    # ------------------------------------------------------------------ views

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.append(listener)

    def _changed(self) -> None:
        self.version += 1
        for listener in self._change_listeners:
            listener()

    def views(self) -> list[EnvView]:
        return [c.view() for c in self.controllers.values()]

    def view(self, env: str) -> EnvView:
        return self.controller(env).view()

    def controller(self, env: str) -> EnvironmentController:
        try:
            return self.controllers[env]
        except KeyError:
            raise KeyError(
                f"no environment {env!r} in the plan (known: {', '.join(self.controllers)})"
            ) from None

    def release_in_progress(self) -> str | None:
        """A one-line summary of the rollouts under way, for the header."""
        parts = [f"{v.name}: {v.rollout.target_version}" for v in self.views() if v.rollout.in_rollout]
        return ", ".join(parts) or None

    # ------------------------------------------------------------------ intents (UI and CLI alike)

    def frozen(self, env: str, now: dt.datetime | None = None) -> str | None:
        """The freeze window that forbids starting a rollout on ``env`` now, if any."""
        now = now or dt.datetime.now(dt.UTC)
        minute = now.hour * 60 + now.minute
        for window in self.plan.guardrails.freeze:
            if window.environments and env not in window.environments:
                continue
            start = int(window.start[:2]) * 60 + int(window.start[3:])
            end = int(window.end[:2]) * 60 + int(window.end[3:])
            inside = start <= minute < end if start <= end else (minute >= start or minute < end)
            if inside:
                return f"{window.start}-{window.end} UTC"
        return None

    def _needs_reason(self, env: str, reason: str) -> str | None:
        if self.plan.guardrails.require_reason and not reason.strip():
            return "this plan requires a reason for every action"
        return None

    def preview(self, env: str, action: str, **args: object) -> str | None:
        """Why ``action`` on ``env`` would be refused right now, or ``None`` (pure)."""
        if action == "rollout" and (window := self.frozen(env)):
            return f"{env} is frozen ({window}): no rollout may start"
        return self.controller(env).preview(action, **args)

    async def start_rollout(self, env: str, version: str, reason: str = "") -> ActionResult:
        controller = self.controller(env)
        window = self.frozen(env)
        problem = (
            f"{env} is frozen ({window}): no rollout may start" if window else self._needs_reason(env, reason)
        )
        if problem:
            controller._journal("rollout", "refused", reason=reason, detail=problem)
            return ActionResult(False, problem)
        return await controller.start_rollout(version, reason)

    async def _guarded(
        self, env: str, action: str, reason: str, run: Callable[[EnvironmentController], object]
    ) -> ActionResult:
        controller = self.controller(env)
        problem = self._needs_reason(env, reason)
        if problem:
            controller._journal(action, "refused", reason=reason, detail=problem)
            return ActionResult(False, problem)
        return await run(controller)  # type: ignore[misc]

    async def promote(self, env: str, reason: str = "") -> ActionResult:
        return await self._guarded(env, "promote", reason, lambda c: c.promote(reason))

    async def promote_full(self, env: str, reason: str = "") -> ActionResult:
        return await self._guarded(env, "promote-full", reason, lambda c: c.promote_full(reason))

    async def abort(self, env: str, reason: str = "", cause: Cause = Cause.ABORTED_BY_USER) -> ActionResult:
        """Traffic back to stable; ``cause`` says who decided (a person by default)."""
        return await self._guarded(env, "abort", reason, lambda c: c.abort(reason, cause))

    async def retry(self, env: str, reason: str = "") -> ActionResult:
        return await self._guarded(env, "retry", reason, lambda c: c.retry(reason))

    async def set_weight(self, env: str, weight: int, reason: str = "") -> ActionResult:
        return await self._guarded(env, "set-weight", reason, lambda c: c.set_weight(weight, reason))

    async def rollback(self, env: str, revision: int | None = None, reason: str = "") -> ActionResult:
        return await self._guarded(env, "rollback", reason, lambda c: c.rollback(revision, reason))
