"""A session: one plan, its environments' controllers, the journal and the logs.

The UI and the headless CLI both drive releases through this one API, so the
terminal is never the only way to ship and both behave the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cockpit import paths
from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, BackendError, Capability, DeployBackend, MetricsSource
from cockpit.engine.alerts import Alert, AlertLog
from cockpit.engine.clock import SYSTEM_CLOCK, Clock
from cockpit.engine.commands import (
    Command,
    Rollback,
    RollbackMigration,
    RunMigration,
    SetWeight,
    StartRollout,
)
from cockpit.engine.controller import EnvironmentController, TransitionListener
from cockpit.engine.guardrails import DriverLock, Guardrails
from cockpit.engine.logbuffer import LogHub
from cockpit.engine.rollout_logs import RolloutLogKeeper
from cockpit.engine.state import Activity
from cockpit.engine.store import Store, open_store
from cockpit.engine.views import BLUE_GREEN, ActionResult, EnvView
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


@dataclass(frozen=True)
class InFlight:
    """A rollout (or an action) under way in one environment: what quitting would cut short."""

    env: str
    protected: bool
    phase: str
    activity: str
    target_version: str | None
    stable_version: str
    weight: int
    owned: bool  # the cockpit owns the workloads (OWNS_WORKLOADS): they stop when it does


def describe(command: Command) -> str:
    """The command as the journal's refusal records name it, parameters included
    ("rollout 1.2.0", "set-weight 30%"): the action name alone loses what was asked."""
    match command:
        case StartRollout(version=version):
            return f"{command.action} {version}"
        case SetWeight(weight=weight):
            return f"{command.action} {weight}%"
        case Rollback(revision=int(number)):
            return f"{command.action} to revision {number}"
        case RunMigration(step=str(step)) | RollbackMigration(step=str(step)):
            return f"{command.action} {step}"
        case RunMigration(phase=str(phase)):
            return f"{command.action} (next {phase} step)"
    return command.action


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
        plan_dir: Path | None = None,
    ) -> None:
        """``plan_dir``: the plan file's folder, where [[migrations]] ``file`` actions are
        read from (``None``: a plan not read from a file; such a file action says so)."""
        self.plan = plan
        self.clock = clock
        self.guardrails = Guardrails(plan.guardrails, driver_lock, clock)
        self.state_dir = paths.state_dir(state_dir)
        self.user = user or current_user()
        self.journal = journal or open_store(plan, self.state_dir)
        self.logs = LogHub([e.name for e in plan.environments], log_capacity)
        self.alert_log = AlertLog()
        # Each rollout's canary lines, kept with it in the store (the rings forget them).
        self.rollout_logs = RolloutLogKeeper(self.journal, plan.service.name, clock)
        self.controllers: dict[str, EnvironmentController] = {}
        self._change_listeners: list[Callable[[], None]] = []
        for env in plan.environments:
            backend, metrics = self._create_adapters(env)
            controller = EnvironmentController(
                plan,
                env,
                backend,
                metrics,
                self.journal,
                self.user,
                on_transition,
                clock,
                state_dir=self.state_dir,
                secret=self._secret,
                plan_dir=plan_dir,
            )
            controller.add_change_listener(self._changed)
            # Alerts come from the state every driver sets, seen at every change.
            controller.add_change_listener(partial(self._observe, env.name))
            self.rollout_logs.watch(controller)
            self.controllers[env.name] = controller
        self.version = 0  # grows with every change in any environment
        for name, controller in self.controllers.items():
            self.alert_log.baseline(name, controller.state)
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
            state_dir=self.state_dir,
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

    def in_flight(self) -> list[InFlight]:
        """The environments with a rollout in progress or a backend action under way: what
        quitting now would cut short (the quit confirmation lists them, the exit summary too)."""
        found = []
        for name, controller in self.controllers.items():
            state = controller.state
            if not (state.in_rollout or state.activity is not Activity.IDLE):
                continue
            found.append(
                InFlight(
                    env=name,
                    protected=controller.env.protected,
                    phase=state.phase.value,
                    activity=state.activity.value,
                    target_version=state.target_version,
                    stable_version=state.stable_version,
                    weight=state.weight,
                    owned=Capability.OWNS_WORKLOADS in controller.backend.capabilities,
                )
            )
        return found

    def owns_workloads(self, env: str) -> bool:
        """Whether ``env``'s workloads stop when the cockpit does (local) or live on (a platform)."""
        return Capability.OWNS_WORKLOADS in self.controller(env).backend.capabilities

    def record_quit(self, in_flight: list[InFlight]) -> None:
        """Journal that a person quit with these rollouts under way (the journal then says why
        they stopped, or why the platform carried on unwatched)."""
        for item in in_flight:
            fate = "its workloads stop with the cockpit" if item.owned else "the platform keeps it as it is"
            detail = (
                f"quit during the rollout of {item.target_version} at {item.weight}% ({item.phase},"
                f" {item.activity}); {fate}"
            )
            self.controller(item.env).journal_quietly("quit", "info", detail=detail)

    # ------------------------------------------------------------------ alerts

    def _observe(self, env: str) -> None:
        """Every change of ``env``: an abort not asked for by a person, or a Degraded state,
        becomes an alert (the journal already holds the transition itself)."""
        self.alert_log.observe(env, self.controllers[env].state, self.clock.now())

    def alerts(self) -> list[Alert]:
        """Alerts not yet acknowledged, newest first."""
        return self.alert_log.active()

    def acknowledge(self, alert_id: int | None = None) -> Alert | None:
        """A person saw ``alert_id`` (default: the newest); journaled with who and what."""
        alert = self.alert_log.acknowledge(alert_id)
        if alert is not None:
            self.controller(alert.env).journal_quietly(
                "acknowledge", "info", detail=f"alert {alert.id}: {alert.what}: {alert.cause}"
            )
        return alert

    def _failed_action_alert(self, env: str, command: Command, before: int) -> None:
        """A command that failed (not refused) is an alert unless the state already raised
        one since ``before`` (the failure turned the environment Degraded). The journal's
        newest record of ``env`` tells a failure from a refusal."""
        if self.alert_log.last_id != before:
            return
        newest = self.journal.records(service=self.plan.service.name, env=env, limit=1)
        if newest and newest[-1].outcome == "failed" and newest[-1].action == command.action:
            self.alert_log.add(
                env, f"{describe(command)} failed", newest[-1].detail, self.clock.now(), "failed-action"
            )

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
            switch_only=controller.strategy == BLUE_GREEN,
        )

    def _refuse(
        self, controller: EnvironmentController, command: Command, reason: str, why: str, by: str
    ) -> str:
        """Journal a refusal (who, env, the command with its parameters, the reason given,
        why and by which check); returns ``why`` with the journal's failure if it had one."""
        detail = f"{describe(command)} refused {by}: {why}"
        unwritten = controller.journal_quietly(command.action, "refused", reason=reason, detail=detail)
        return why + (f" (and the journal failed: {unwritten})" if unwritten else "")

    def needs_reason(self, env: str) -> bool:
        """Commands on ``env`` need a reason (protected, or the plan requires one)."""
        return self.guardrails.needs_reason(self.controller(env).env)

    def preview(self, env: str, command: Command) -> str | None:
        """Why ``command`` on ``env`` would be refused right now, or ``None`` (pure; the
        reason rules wait for the confirmation that asks for one). Nothing is journaled:
        the screen asks this to grey out keys, not because a person asked."""
        controller = self.controller(env)
        return self._refusal(controller, command, None) or controller.preview(command)

    def check(self, env: str, command: Command, reason: str = "") -> str | None:
        """A person asked for ``command`` on ``env``: why it is refused now (journaled as a
        refusal, like one from :meth:`submit`), or ``None`` if it may go on to be confirmed."""
        why = self.preview(env, command)
        if why:
            self._refuse(
                self.controller(env), command, reason, why, "before it was sent (the screen's check)"
            )
        return why

    async def submit(self, env: str, command: Command, reason: str = "") -> ActionResult:
        """Run ``command`` on ``env``: the guardrails first, then the environment's driver."""
        controller = self.controller(env)
        problem = self._refusal(controller, command, reason)
        if problem:
            return ActionResult(
                False, self._refuse(controller, command, reason, problem, "by the guardrails")
            )
        # The driver's rules, asked here first (pure) so the record names the command with its
        # parameters; the driver decides again under the lock, and journals a late refusal itself.
        problem = controller.preview(command)
        if problem:
            return ActionResult(False, self._refuse(controller, command, reason, problem, "in its state"))
        before = self.alert_log.last_id
        result = await controller.submit(command, reason)
        if not result.ok:
            self._failed_action_alert(env, command, before)
        return result
