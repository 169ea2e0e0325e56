"""A session: one plan, its environments' controllers, the journal and the logs.

The UI and the headless CLI both drive releases through this one API, so the
terminal is never the only way to ship and both behave the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cockpit import paths
from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, BackendError, DeployBackend, MetricsSource
from cockpit.engine.clock import SYSTEM_CLOCK, Clock
from cockpit.engine.commands import Command
from cockpit.engine.controller import EnvironmentController, TransitionListener
from cockpit.engine.guardrails import DriverLock, Guardrails
from cockpit.engine.logbuffer import LogHub
from cockpit.engine.rollout_logs import RolloutLogKeeper
from cockpit.engine.store import Store, open_store
from cockpit.engine.views import ActionResult, EnvView
from cockpit.identity import current_user
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
        journal: Store | None = None,
        log_capacity: int = 20_000,
        on_transition: TransitionListener | None = None,
        clock: Clock = SYSTEM_CLOCK,
        driver_lock: DriverLock | None = None,
    ) -> None:
        self.plan = plan
        self.clock = clock
        self.guardrails = Guardrails(plan.guardrails, driver_lock, clock)
        self.state_dir = paths.state_dir(state_dir)
        self.user = user or current_user()
        self.journal = journal or open_store(plan, self.state_dir)
        self.logs = LogHub([e.name for e in plan.environments], log_capacity)
        # Each rollout's canary lines, kept with it in the store (the rings forget them).
        self.rollout_logs = RolloutLogKeeper(self.journal, plan.service.name, clock)
        self.controllers: dict[str, EnvironmentController] = {}
        self._change_listeners: list[Callable[[], None]] = []
        for env in plan.environments:
            backend, metrics = self._create_adapters(env)
            controller = EnvironmentController(
                plan, env, backend, metrics, self.journal, self.user, on_transition, clock
            )
            controller.add_change_listener(self._changed)
            self.rollout_logs.watch(controller)
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
            backend.attach_log_sink(self.rollout_logs.tap(env.name, self.logs.sink_for(env.name)))
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
                    self.logs.sink_for(env)([LogLine(self.clock.now(), env, "cockpit", None, line)])
                    controller.journal_quietly("secrets", "info", detail=line)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.controllers.values()), return_exceptions=True)
        await self.rollout_logs.close()
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

    # ------------------------------------------------------------------ commands (UI and CLI alike)

    def _refusal(self, controller: EnvironmentController, command: Command, reason: str | None) -> str | None:
        backend = controller.backend
        return self.guardrails.refusal(
            controller.env,
            command,
            reason=reason,
            user=self.user,
            backend=backend.name,
            capabilities=backend.capabilities,
        )

    def needs_reason(self, env: str) -> bool:
        """Commands on ``env`` need a reason (protected, or the plan requires one)."""
        return self.guardrails.needs_reason(self.controller(env).env)

    def preview(self, env: str, command: Command) -> str | None:
        """Why ``command`` on ``env`` would be refused right now, or ``None`` (pure; the
        reason rules wait for the confirmation that asks for one)."""
        controller = self.controller(env)
        return self._refusal(controller, command, None) or controller.preview(command)

    async def submit(self, env: str, command: Command, reason: str = "") -> ActionResult:
        """Run ``command`` on ``env``: the guardrails first, then the environment's driver."""
        controller = self.controller(env)
        problem = self._refusal(controller, command, reason)
        if problem:
            return controller.refuse(command.action, reason, problem)
        return await controller.submit(command, reason)
