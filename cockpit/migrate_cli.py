"""``cockpit migrate``: an environment's [[migrations]] steps without the screen.

It goes through the same session as the screen: the guardrails (a protected environment
needs ``--reason``), the guards (the database's records and the platform's status read
right before a step runs: it attaches to the environment, read-only, to observe it) and
the journal (every start, end and refusal). Exit codes, as ``cockpit rollout --headless``:

* ``0`` done (or nothing to do: every step is applied);
* ``1`` a step failed, or the database could not be reached (its error and output printed);
* ``2`` usage or plan error, or refused (a guard, the guardrails, another runner's lock).

Without ``--next``, ``--all``, ``--down`` or ``--resolve`` it lists the steps as the
database records them, and what ``--next``/``--down`` would do now.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from cockpit.engine.migrations import MigrationsController
    from cockpit.engine.session import Session
    from cockpit.engine.views import ActionResult
    from cockpit.plan.models import Plan

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


@click.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--env", "env_name", required=True, help="Environment whose database is migrated.")
@click.option("--next", "run_next", is_flag=True, help="Apply the next pending step its guard allows.")
@click.option("--all", "run_all", is_flag=True, help="Apply pending steps one by one until none is left or one is refused.")
@click.option("--phase", type=click.Choice(["expand", "contract"]), default=None, help="Only steps of this phase.")
@click.option("--down", is_flag=True, help="Roll back the last applied step (when reversible and its guard allows).")
@click.option(
    "--resolve",
    nargs=2,
    metavar="NAME applied|pending",
    default=None,
    help="Say what became of a step interrupted outside a transaction (journaled).",
)
@click.option("--reason", default="", help="Why: lands in the journal (required on protected environments).")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None, help="Where the journal lives.")
def migrate(
    plan_path: str,
    env_name: str,
    run_next: bool,
    run_all: bool,
    phase: str | None,
    down: bool,
    resolve: tuple[str, str] | None,
    reason: str,
    state_dir: str | None,
) -> None:
    """Apply (or roll back) PLAN's [[migrations]] steps on ENV's database.

    \b
    Exit codes:
      0  done, or nothing to do
      1  a step failed, or the database could not be reached
      2  usage or plan error, or refused (a guard, a missing reason, another runner's lock)
    """
    from cockpit.cli import fail, make_session, read_plan

    chosen = [flag for flag, on in (("--next", run_next), ("--all", run_all), ("--down", down)) if on]
    if resolve is not None:
        chosen.append("--resolve")
    if len(chosen) > 1:
        fail(f"choose one of --next, --all, --down, --resolve (got {', '.join(chosen)})")
    if phase is not None and not (run_next or run_all):
        fail("--phase goes with --next or --all")
    if resolve is not None and resolve[1] not in ("applied", "pending"):
        fail(f"--resolve {resolve[0]} takes applied or pending, not {resolve[1]!r}")
    plan = read_plan(plan_path)
    env = next((e for e in plan.environments if e.name == env_name), None)
    if env is None:
        fail(f"no environment {env_name!r} in {plan_path} (known: {', '.join(e.name for e in plan.environments)})")
    if not plan.migrations:
        fail(f"{plan_path} has no [[migrations]] steps")
    if env.database is None:
        fail(f"{env_name} has no database in {plan_path} ([environments.database])")
    session = make_session(plan, state_dir, plan_dir=Path(plan_path).resolve().parent)
    what = "resolve" if resolve else "down" if down else "all" if run_all else "next" if run_next else "list"
    sys.exit(asyncio.run(run(session, plan, env_name, what, phase=phase, resolve=resolve, reason=reason)))


def say(line: str, err: bool = False) -> None:
    click.echo(line, err=err)


async def run(
    session: Session,
    plan: Plan,
    env: str,
    what: str,
    *,
    phase: str | None = None,
    resolve: tuple[str, str] | None = None,
    reason: str = "",
) -> int:
    """Attach to ``env`` (to observe what runs), then do ``what``: list, next, all, down, resolve."""
    from cockpit.secrets import redact

    try:
        for problem in await session.start(attach=True, only=[env]):
            # Expand steps need no platform; a guard that does refuses with this reason.
            say(f"note: {env}'s platform cannot be observed: {redact(str(problem.error))}", err=True)
        controller = session.controller(env)
        migrations = controller.migrations
        assert migrations is not None  # checked by the caller: the environment has a database
        await migrations.refresh()
        if migrations.error is not None:
            say(f"error: {env}'s database cannot be read: {migrations.error}", err=True)
            return EXIT_FAILED
        if what == "list":
            show(session, env, migrations)
            return EXIT_OK
        if what == "resolve":
            assert resolve is not None
            return await _resolve(session, env, migrations, resolve, reason)
        if what == "down":
            from cockpit.engine.commands import RollbackMigration

            return _report(await session.submit(env, RollbackMigration(), reason))
        return await _apply(session, env, migrations, phase, reason, every=what == "all")
    finally:
        await session.close()


async def _apply(
    session: Session, env: str, migrations: MigrationsController, phase: str | None, reason: str, every: bool
) -> int:
    from cockpit.engine import migration_guards as guards
    from cockpit.engine.commands import RunMigration

    applied = 0
    while True:
        pending = [s for s in migrations.steps if (phase is None or s.phase == phase) and not guards.is_applied(s, migrations.records)]
        if not pending:
            which = f"{phase} step" if phase else "step"
            say(f"nothing to run: every {which} is applied on {env}" if not applied else f"done: {applied} applied")
            return EXIT_OK
        result = await session.submit(env, RunMigration(phase=phase), reason)
        code = _report(result)
        if code != EXIT_OK or not every:
            return code
        applied += 1


async def _resolve(
    session: Session, env: str, migrations: MigrationsController, resolve: tuple[str, str], reason: str
) -> int:
    from cockpit.engine.commands import RunMigration
    from cockpit.migrations.api import StepState

    name, state = resolve
    controller = session.controller(env)
    # The guardrails of any migration command: a protected environment needs a reason.
    refused = session.guardrails.refusal(
        controller.env,
        RunMigration(step=name),
        reason=reason,
        user=session.user,
        backend=controller.backend.name,
        capabilities=controller.backend.capabilities,
    )
    if refused:
        controller.journal_quietly("migrate-resolve", "refused", reason=reason, detail=refused)
        say(f"refused: {refused}", err=True)
        return EXIT_REFUSED
    outcome = await migrations.resolve(name, StepState(state), reason=reason, user=session.user)
    if not outcome.ok:
        say(f"refused: {outcome.message}", err=True)
        return EXIT_REFUSED
    say(outcome.message)
    return EXIT_OK


def _report(result: ActionResult) -> int:
    from cockpit.engine.state import Cause

    if result.ok:
        say(result.message)
        return EXIT_OK
    if result.cause is Cause.MIGRATION_FAILED:
        say(f"failed: {result.message}", err=True)
        return EXIT_FAILED
    say(f"refused: {result.message}", err=True)
    return EXIT_REFUSED


def show(session: Session, env: str, migrations: MigrationsController) -> None:
    """The steps as recorded, then what --next and --down would do now."""
    view = session.view(env).migrations
    assert view is not None
    say(f"{env}: {view.database}")
    width = max(len(s.name) for s in view.steps)
    for s in view.steps:
        took = f"{s.duration:.2f}s" if s.duration is not None else ""
        line = f"  {s.name:<{width}}  {s.release:<10} {s.phase:<8} {s.state.value:<12} {took}"
        say(line.rstrip() + (f"  error: {s.error}" if s.error else ""))
    say(f"next: {view.next_step or '-'}" + (f" (refused: {view.next_refused})" if view.next_refused else ""))
    say(
        f"roll back: {view.last_applied or '-'}"
        + (f" (refused: {view.rollback_refused})" if view.rollback_refused else "")
    )
