"""MigrationsView values for the screen's tests, and a way to put one into a running
session's environment view (the engine fills ``EnvView.migrations`` itself; these tests
check the screen against known values, whatever the engine's state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from cockpit.engine.controller import EnvironmentController
from cockpit.engine.session import Session
from cockpit.engine.views import EnvView
from cockpit.migrations.api import LintFinding, MigrationsView, StepState, StepView

DB = "sqlite:///var/lib/shop/production.db"
REFUSAL = "production's stable runs 1.0.0 (2 replicas): contract 'drop-customer' of 1.1.0 would break it"


def refusal(env: str) -> str:
    return REFUSAL.replace("production", env)

NOT_NULL = LintFinding(
    "orders-index",
    "up",
    "require-concurrent-index-creation",
    1,
    1,
    "During normal index creation, table updates are blocked, but reads are still allowed.",
    level="warning",
    help="Use CONCURRENTLY to avoid blocking writes.",
)


def step(
    name: str,
    state: StepState,
    phase: str = "expand",
    release: str = "1.1.0",
    duration: float | None = None,
    **kw: object,
) -> StepView:
    return StepView(
        name=name,
        release=release,
        phase=phase,
        kind=str(kw.pop("kind", "sql")),
        reversible=bool(kw.pop("reversible", phase == "expand")),
        state=state,
        duration=duration,
        **kw,  # type: ignore[arg-type]
    )


def expanded(refused: str | None = REFUSAL) -> MigrationsView:
    """1.1.0's expand applied, its contract next, refused while 1.0.0 runs."""
    return MigrationsView(
        database=DB,
        steps=(
            step("orders-full-name", StepState.APPLIED, duration=0.042, output="ALTER TABLE\nUPDATE 1200\nCREATE TRIGGER"),
            step("orders-index", StepState.APPLIED, duration=1.25, lint=(NOT_NULL,)),
            step("drop-customer", StepState.PENDING, phase="contract", reversible=False),
        ),
        next_step="drop-customer",
        next_refused=refused,
        last_applied="orders-index",
    )


def pending() -> MigrationsView:
    """Nothing applied yet: run next would apply the first expand step."""
    return MigrationsView(
        database=DB,
        steps=(
            step("orders-full-name", StepState.PENDING),
            step("orders-index", StepState.PENDING, lint=(NOT_NULL,)),
            step("drop-customer", StepState.PENDING, phase="contract", reversible=False),
        ),
        next_step="orders-full-name",
        rollback_refused="nothing is applied",
    )


def failed() -> MigrationsView:
    return MigrationsView(
        database=DB,
        steps=(
            step("orders-full-name", StepState.FAILED, duration=2.0, error="canceling statement due to lock timeout", output="ALTER TABLE orders ADD COLUMN customer_name text"),
            step("orders-index", StepState.PENDING),
            step("drop-customer", StepState.PENDING, phase="contract", reversible=False),
        ),
        next_step="orders-full-name",
        rollback_refused="nothing is applied",
    )


def running(name: str = "orders-index") -> MigrationsView:
    base = expanded(refused=None)
    steps = tuple(replace(s, state=StepState.RUNNING, duration=None) if s.name == name else s for s in base.steps)
    return replace(base, steps=steps, running=name, next_step=None, last_applied="orders-full-name")


@dataclass
class Injected:
    """The migrations shown for one environment; change ``value`` and the screen follows."""

    value: MigrationsView | None
    bumps: int = 0


def inject(session: Session, env: str, value: MigrationsView | None) -> Injected:
    """``session.view(env)`` from now on carries ``holder.value`` as its migrations (and a
    seq that moves when it changes, as the engine's does)."""
    holder = Injected(value)
    controller: EnvironmentController = session.controller(env)
    real: Callable[[], EnvView] = controller.view
    seen: list[MigrationsView | None] = [value]

    def view() -> EnvView:
        if holder.value is not seen[-1]:
            seen.append(holder.value)
            holder.bumps += 1
        v = real()
        return replace(v, migrations=holder.value, seq=v.seq * 1000 + holder.bumps)

    controller.view = view  # type: ignore[method-assign]
    return holder


ADD_NOT_NULL = LintFinding(
    "orders-full-name",
    "up",
    "adding-required-field",
    2,
    1,
    "Adding a NOT NULL field without a DEFAULT will fail for a populated table.",
    level="error",
    help="Make the field nullable or add a non-VOLATILE DEFAULT.",
)


def failed_with_lint() -> MigrationsView:
    """A lock timeout on the first expand step, which squawk warned about too."""
    base = failed()
    first = replace(
        base.steps[0],
        output="SET lock_timeout = '2s'\nALTER TABLE orders ADD COLUMN customer_name text NOT NULL\nERROR: canceling statement due to lock timeout",
        lint=(ADD_NOT_NULL,),
    )
    second = replace(base.steps[1], lint=(NOT_NULL,))
    return replace(base, steps=(first, second, *base.steps[2:]), findings=(ADD_NOT_NULL, NOT_NULL))
