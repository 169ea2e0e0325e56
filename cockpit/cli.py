"""The ``cockpit`` command: demo, open, check, status, rollout, history, secrets, migrate, adapters.

Every error ends as one clear line on stderr and an exit code, never a traceback:
2 for usage and plan errors, 3 when analysis aborted a rollout, 4 when a headless run
stopped at an indefinite pause, 1 for the rest.

The screen's commands (demo, open, rollout) hand the app a loader, not a session: the
first frame is painted before the plan is parsed (cockpit/ui/loading.py), so this module
imports neither the plan models nor the engine at import time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cockpit import __version__, migrate_cli, paths, secrets_cli

if TYPE_CHECKING:
    from cockpit.demo.prometheus import DemoPrometheus
    from cockpit.engine.session import Session
    from cockpit.plan.loader import PlanError
    from cockpit.plan.models import Plan
    from cockpit.ui.loading import Preview, SessionLoader

EXIT_USAGE = 2
log = logging.getLogger(__name__)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class OneLineErrors(click.Group):
    """Click's usage errors as one ``error: ...`` line and exit 2, like every other error,
    and a last net so that no input ever ends in a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # Click's own parameters, spelled out: its stubs overload main() on standalone_mode,
        # and a bare *args could not be matched to either overload.
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as err:
            ctx = getattr(err, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if isinstance(err, click.UsageError) and ctx else ""
            fail(err.format_message().replace("\n", " ") + hint, EXIT_USAGE if err.exit_code == 2 else 1)
        except click.Abort:
            fail("interrupted", 130)
        except paths.StateDirError as err:
            fail(str(err))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # the last net: a bug must still end in one line
            if os.environ.get("COCKPIT_DEBUG"):
                raise
            from cockpit.secrets import redact

            fail(f"unexpected {type(err).__name__}: {redact(str(err))} (COCKPIT_DEBUG=1 shows where)", 1)
        sys.exit(code if isinstance(code, int) else 0)


class Seconds(click.ParamType):
    """A finite number of seconds greater than 0: ``nan`` would mean "never time out"."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            seconds = value
        else:
            try:
                seconds = float(str(value).strip())
            except ValueError:
                self.fail(f"expected a number of seconds, found {value!r}", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"expected a finite number of seconds greater than 0, found {value!r}", param, ctx)
        return seconds


class PauseDuration(click.ParamType):
    """A duration as the plan writes one (``90s``, ``2m``...; the plan's own parser), > 0."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from cockpit.units import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if seconds <= 0:
            self.fail(f"expected a duration greater than 0, found {value!r}", param, ctx)
        return seconds


def headless_only(headless: bool, auto_promote: bool, pause_timeout: float | None) -> None:
    """--auto-promote and --pause-timeout steer a run with nobody at the screen: with the
    screen, the engineer promotes. Refused rather than silently ignored."""
    if headless:
        if auto_promote and pause_timeout is not None:
            fail("--auto-promote and --pause-timeout contradict each other: choose one")
        return
    for given, name in ((auto_promote, "--auto-promote"), (pause_timeout is not None, "--pause-timeout")):
        if given:
            fail(f"{name} is for --headless runs only (on the screen, promote with the promote key)")


def require_terminal() -> None:
    """The full screen needs a terminal on stdin and stdout; without one (CI, a pipe, a
    redirect) it would hang or scribble escape codes, so say so and exit 2 instead."""
    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)) if not stream.isatty()]
    if missing:
        fail(
            f"the cockpit screen needs a terminal, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not one; in CI or a script use --headless"
            " (cockpit rollout PLAN --env E --version V --headless, or cockpit demo --headless)"
        )


def state_base(state_dir: str | None) -> Path:
    """The usable state dir, or one line saying why not (exit 2: the argument is wrong)."""
    try:
        return paths.state_dir(state_dir)
    except paths.StateDirError as err:
        fail(str(err))


def report_plan_error(path: str, err: PlanError) -> NoReturn:
    count = len(err.issues)
    click.echo(f"{path}: {count} problem{'s' if count != 1 else ''} found", err=True)
    for issue in err.issues:
        click.echo(f"  {issue}", err=True)
    sys.exit(EXIT_USAGE)


def read_plan(path: str) -> Plan:
    from cockpit.plan.loader import PlanError, load_plan

    try:
        return load_plan(path)
    except PlanError as err:
        report_plan_error(path, err)


# Where the demo's versions run -> its plan (package data of cockpit.demo). Here, not in
# cockpit.demo.session, so reading the plan for the first frame imports no engine.
# "prometheus": the local demo measured by a private Prometheus (cockpit demo --prometheus).
DEMO_PLANS = {"local": "plan.toml", "docker": "plan_docker.toml", "prometheus": "plan_prometheus.toml"}
DEMO_PLAN = "cockpit/demo/plan.toml"


def demo_plan_name(backend: str = "local") -> str:
    return f"cockpit/demo/{DEMO_PLANS[backend]}"


def demo_plan_text(backend: str = "local") -> str:
    return resources.files("cockpit.demo").joinpath(DEMO_PLANS[backend]).read_text(encoding="utf-8")


def demo_plan(port_base: int | None, backend: str = "local", prometheus: DemoPrometheus | None = None) -> Plan:
    """The embedded demo plan of ``backend``; ``port_base`` moves its routers (0: free ports);
    ``prometheus``: the server its prometheus metrics sources read and publish targets to."""
    from cockpit.plan.loader import parse_plan
    from cockpit.plan.models import Plan

    plan = parse_plan(demo_plan_text(backend), demo_plan_name(backend))
    if prometheus is not None:
        from cockpit.demo.prometheus import point_at

        plan = point_at(plan, prometheus)
    if port_base is None:
        return plan
    data = plan.model_dump()
    for offset, env in enumerate(data["environments"]):
        env["backend"]["options"]["port"] = 0 if port_base == 0 else port_base + offset
    return Plan.model_validate(data)


def peek(text: str) -> dict[str, Any]:
    """The plan's TOML, read without validation (milliseconds), for the first frame only;
    ``{}`` if it does not parse: the loader will say why."""
    import tomllib

    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def preview_of(text: str, fallback_name: str) -> Preview:
    """What the first frame shows: the service and environment names, if readable."""
    from cockpit.identity import current_user
    from cockpit.ui.loading import Preview

    data = peek(text)
    service = data.get("service")
    service = service if isinstance(service, dict) else {}
    envs = data.get("environments")
    envs = envs if isinstance(envs, list) else []
    names = tuple(str(e["name"]) for e in envs if isinstance(e, dict) and isinstance(e.get("name"), str))
    return Preview(
        service=str(service.get("name") or fallback_name),
        description=str(service.get("description") or ""),
        envs=names[:12],
        user=current_user(),
    )


def read_for_preview(path: str) -> str:
    """The plan's text for the preview; "" when it cannot be read (the loader will say why)."""
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20).decode("utf-8", errors="replace")
    except OSError:
        return ""


def state_dir_option(f: Any) -> Any:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where the journal and runtime files live (default: $COCKPIT_STATE_DIR or the user state dir).",
    )(f)


def new_session(plan: Plan, state_dir: str | None, *, demo_traffic: bool = False, **kwargs: Any) -> Session:
    """``demo_traffic``: the demo's simulated users start on each environment once it is up.
    Raises what opening the state raises; :func:`make_session` turns it into one line."""
    from cockpit.demo.session import DemoSession
    from cockpit.engine.session import Session

    cls = DemoSession if demo_traffic else Session
    return cls(plan, state_dir=Path(state_dir) if state_dir else None, **kwargs)


def report_session_error(err: Exception) -> NoReturn:
    """One line for an error opening the cockpit state; anything else is re-raised."""
    from cockpit.engine.journal import JournalWriteError

    if isinstance(err, paths.StateDirError):
        fail(str(err))
    if isinstance(err, OSError | ValueError | JournalWriteError):
        fail(f"cannot open the cockpit state: {err}", 1)
    raise err


def make_session(plan: Plan, state_dir: str | None, *, demo_traffic: bool = False, **kwargs: Any) -> Any:
    try:
        return new_session(plan, state_dir, demo_traffic=demo_traffic, **kwargs)
    except Exception as err:
        report_session_error(err)


def open_ui(loader: SessionLoader, plan_path: str, rollout: tuple[str, str, str] | None = None) -> None:
    """The full screen; the plan is read and the session opened after its first frame.
    Their errors are reported as without a screen: the plan's problems (exit 2), or one line."""
    try:
        from cockpit.ui.app import run_app
    except ImportError as err:  # pragma: no cover - the UI ships with the package
        fail(f"the cockpit screen is not available: {err}", 1)
    try:
        code = run_app(loader, initial_rollout=rollout)
    except Exception as err:
        from cockpit.plan.loader import PlanError  # imported here: not before the first frame

        if isinstance(err, PlanError):
            report_plan_error(plan_path, err)
        report_session_error(err)
    if code:
        sys.exit(code)


def screen_loader(
    preview: Preview,
    read: Any,
    state_dir: str | None,
    *,
    demo_traffic: bool = False,
    plan_path: str | None = None,
) -> SessionLoader:
    """``plan_path``: the plan file, whose folder [[migrations]] ``file`` actions are read from."""
    from cockpit.ui.loading import SessionLoader

    plan_dir = plan_folder(plan_path)
    return SessionLoader(
        preview=preview,
        read_plan=read,
        open_session=lambda plan: new_session(plan, state_dir, demo_traffic=demo_traffic, plan_dir=plan_dir),
    )


def plan_folder(plan_path: str | None) -> Path | None:
    """Where a plan file's relative [[migrations]] ``file`` actions live."""
    return Path(plan_path).resolve().parent if plan_path else None


def start_log(ctx: click.Context, log_file: str | None, level: str) -> None:
    """--log FILE: logging records to FILE (0600, secrets masked); see cockpit/debuglog.py."""
    if log_file is None:
        return
    from cockpit import debuglog

    try:
        debuglog.configure(log_file, level)
    except debuglog.LogFileError as err:
        fail(str(err))
    log.info(
        "cockpit %s: %s (pid %d)",
        __version__,
        " ".join([ctx.info_name or "cockpit", *secrets_cli.loggable_argv(sys.argv[1:])]),
        os.getpid(),
    )


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cockpit")
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append the cockpit's log records to FILE (created 0600; secret values masked).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="The least severe records written to --log FILE.",
)
@click.pass_context
def cli(ctx: click.Context, log_file: str | None, log_level: str) -> None:
    """A full-screen terminal release cockpit for on-call engineers.

    `cockpit --version` prints the cockpit's version; `cockpit demo --version` (no value)
    lists the demo's releases.
    """
    start_log(ctx, log_file, log_level)


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option("--headless", is_flag=True, help="Run one rollout without the screen and exit.")
@click.option("--env", "env_name", default="production", show_default=True, help="Environment (headless).")
@click.option(
    "--version",
    "version",
    default=None,
    is_flag=False,
    flag_value="",
    help="Version to roll out (1.1.0 or 1.2.0). Without a value: list the demo's releases.",
)
@click.option("--auto-promote", is_flag=True, help="Promote past indefinite pauses (headless only).")
@click.option(
    "--pause-timeout",
    type=PauseDuration(),
    default=None,
    help="Wait DURATION (90s, 2m...) at each indefinite pause, then promote (headless only).",
)
@click.option("--reason", default="", help="Why: lands in the journal.")
@click.option(
    "--port-base",
    type=click.IntRange(0, 65533),
    default=None,
    help="Routers listen on PORT, PORT+1, PORT+2 (0: free ports). Default 18080..18082.",
)
@click.option(
    "--reset", is_flag=True, help="Start the demo from 1.0.0 again (the old journal is kept aside)."
)
@click.option(
    "--backend",
    type=click.Choice(["local", "docker"]),
    default="local",
    show_default=True,
    help="Where the versions run: local processes, or containers of a Docker daemon ($DOCKER_HOST).",
)
@click.option(
    "--prometheus",
    is_flag=True,
    help="Measure the demo with a private Prometheus (Debian's prometheus binary) instead of scraping it directly.",
)
@state_dir_option
def demo(
    backend: str,
    prometheus: bool,
    headless: bool,
    env_name: str,
    version: str | None,
    auto_promote: bool,
    pause_timeout: float | None,
    reason: str,
    port_base: int | None,
    reset: bool,
    state_dir: str | None,
) -> None:
    """Open the cockpit on the embedded demo: a real service in dev, staging and production.

    1.0.0 runs everywhere; 1.1.0 is a good release; 1.2.0 has a latent regression
    that analysis catches in production.
    """
    if version == "" and not headless:  # --version alone: what can be rolled out
        show_demo_releases()
        return
    # Bad input is refused before --reset touches the journal: a usage error loses nothing.
    if headless and not version:
        fail("--headless needs --version (for example --version 1.1.0)")
    headless_only(headless, auto_promote, pause_timeout)
    if prometheus and backend != "local":
        fail("--prometheus runs the local demo; it cannot be combined with --backend docker")
    if not headless:
        require_terminal()
    kind = "prometheus" if prometheus else backend
    # Each kind keeps its own journal: a docker demo's history is not the local one's.
    base = state_base(state_dir) / ("demo" if kind == "local" else f"demo-{kind}")
    if reset:
        keep_journal_aside(paths.journal_path(base))
    prepare_demo(backend)
    server = start_demo_prometheus(base) if prometheus else None
    try:
        if headless and version:  # a headless run without a version was refused above
            sys.exit(
                run_headless(
                    demo_plan(port_base, kind, server),
                    str(base),
                    env_name,
                    version,
                    auto_promote,
                    reason or "headless demo rollout",
                    demo_traffic=True,
                    pause_timeout=pause_timeout,
                )
            )
        loader = screen_loader(
            preview_of(demo_plan_text(kind), "shop"),
            lambda: demo_plan(port_base, kind, server),
            str(base),
            demo_traffic=True,
        )
        open_ui(loader, demo_plan_name(kind), (env_name, version, reason) if version else None)
    finally:
        if server is not None:  # after the session closed: its last queries had an answer
            server.stop()
            server.release()


def start_demo_prometheus(base: Path) -> DemoPrometheus:
    """The demo's private Prometheus, started and ready (in this, the main thread: it dies
    with the thread that forked it), or one line saying why it cannot run."""
    from cockpit.demo.prometheus import DemoPrometheus, PrometheusError, demo_home, require_client

    server = DemoPrometheus(demo_home(base))
    try:
        require_client()
        server.start()
    except PrometheusError as err:
        fail(str(err), 1)
    return server


def show_demo_releases() -> None:
    """``cockpit demo --version``: the cockpit's version and the releases the demo can roll out."""
    data = peek(demo_plan_text())
    envs = data.get("environments") or [{}]
    versions = envs[0].get("backend", {}).get("options", {}).get("versions", [])
    first = envs[0].get("initial_version", "")
    click.echo(f"cockpit, version {__version__}")
    click.echo(f"demo releases: {', '.join(versions)} ({first} runs everywhere at start)")
    click.echo("roll one out: cockpit demo --version 1.1.0 (add --headless --env E for CI)")


def prepare_demo(backend: str) -> None:
    from cockpit.demo.session import DemoBackendError, prepare_demo_backend

    try:
        prepare_demo_backend(backend)
    except DemoBackendError as err:
        fail(str(err), 1)


def keep_journal_aside(journal: Path) -> None:
    """A readable copy of the old journal (backup API, -wal included), then a fresh one."""
    from cockpit.engine.journal import JournalWriteError, keep_aside

    try:
        kept = keep_aside(journal)
    except JournalWriteError as err:
        fail(str(err), 1)
    if kept is not None:
        click.echo(f"the old journal is kept at {kept}", err=True)


# --------------------------------------------------------------------------- plans


@cli.command("open")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@state_dir_option
def open_cmd(plan_path: str, state_dir: str | None) -> None:
    """Open the cockpit on PLAN."""
    require_terminal()
    loader = screen_loader(
        preview_of(read_for_preview(plan_path), Path(plan_path).stem),
        lambda: load(plan_path),
        state_dir,
        plan_path=plan_path,
    )
    open_ui(loader, plan_path)


def load(plan_path: str) -> Plan:
    from cockpit.plan.loader import load_plan

    return load_plan(plan_path)


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
def check(plan_path: str) -> None:
    """Validate PLAN: exit 0 with a summary, or 2 listing every problem."""
    plan = read_plan(plan_path)
    click.echo(summary(plan, plan_path))
    from cockpit.gate_report import check_promql

    lines, ok = check_promql(plan)
    from cockpit.migrations.lint import report as migration_report
    from cockpit.migrations.urls import is_postgres

    postgres = any(e.database is not None and is_postgres(e.database.url) for e in plan.environments)
    lines += migration_report(plan.migrations, Path(plan_path).parent, postgres)
    for line in lines:
        click.echo(line)
    if not ok:
        sys.exit(EXIT_USAGE)


def summary(plan: Plan, path: str) -> str:
    lines = [
        f"{path}: ok",
        f"service   {plan.service.name}"
        + (f" - {plan.service.description}" if plan.service.description else ""),
    ]
    lines.append("environments")
    for env in plan.environments:
        guard = " (protected)" if env.protected else ""
        lines.append(
            f"  {env.name:<12} {env.backend.adapter:<8} metrics={env.metrics.source:<8}"
            f" starts at {env.initial_version}{guard}"
        )
    kind = next(k for k in ("canary", "blue_green", "rolling") if getattr(plan.strategy, k))
    lines.append(f"strategy  {kind.replace('_', '-')}")
    for n, step in enumerate(plan.strategy.steps(), start=1):
        lines.append(f"  {n:>2}. {step.describe()}")
    if plan.analysis.checks:
        lines.append("analysis")
        for c in plan.analysis.checks:
            what = c.metric or f"query {c.query!r}"
            fail_cond = f", fails {c.failure}" if c.failure else ""
            lines.append(
                f"  {c.name:<16} {what} {c.success}{fail_cond} every {c.interval:g}s x{c.count}"
                f" (failure limit {c.failure_limit})"
            )
    if plan.smoke:
        lines.append("smoke")
        lines += [f"  {c.name:<16} {c.describe()}" for c in plan.smoke]
    g = plan.guardrails
    lines.append(
        f"guardrails history {g.history_limit} revisions; reasons "
        f"{'always' if g.require_reason else 'on protected environments'}; "
        f"{len(g.freeze)} freeze window{'s' if len(g.freeze) != 1 else ''}"
    )
    if plan.secrets:
        lines.append("secrets   " + ", ".join(f"{k} -> {v}" for k, v in plan.secrets.items()))
    return "\n".join(lines)


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--env", "env_name", required=True, help="Environment whose gates to measure.")
def gate(plan_path: str, env_name: str) -> None:
    """Measure each gate (analysis check) of PLAN on one environment now: canary, stable, limit, verdict."""
    from cockpit.gate_report import run_gate_command

    run_gate_command(read_plan(plan_path), env_name)


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--demo", "of_demo", is_flag=True, help="The running embedded demo instead of a PLAN.")
@state_dir_option
def status(plan_path: str | None, as_json: bool, of_demo: bool, state_dir: str | None) -> None:
    """Show each environment of PLAN as it runs now (read-only)."""
    if of_demo == (plan_path is not None):
        fail("name a PLAN, or --demo for the embedded demo")
    if of_demo:
        plan, state_dir = demo_plan(None), str(state_base(state_dir) / "demo")
    else:
        plan = read_plan(str(plan_path))
    rows = asyncio.run(collect_status(plan, state_dir))
    if as_json:
        click.echo(json.dumps({"service": plan.service.name, "environments": rows}, indent=2))
        return
    for row in rows:
        canary = f"{row['canary_version']} @ {row['canary_weight']}%" if row["canary_version"] else "-"
        click.echo(
            f"{row['name']:<12} {row['phase']:<11} stable {row['stable_version']:<8} canary {canary:<14}"
            f" {row['url'] or '(not running)'}" + (f"  [{row['error']}]" if row["error"] else "")
        )


async def collect_status(plan: Plan, state_dir: str | None) -> list[dict[str, Any]]:
    from cockpit.engine.store import open_store

    # The plan chooses the store (as a session does), read-only: status never writes.
    session = make_session(plan, state_dir, journal=open_store(plan, state_base(state_dir), read_only=True))
    try:
        await session.start(attach=True)
        rows = []
        for view in session.views():
            s = view.rollout
            backend = view.backend
            rows.append(
                {
                    "name": view.name,
                    "url": view.url,
                    "phase": s.phase.value if view.up else "Unknown",
                    "reason": s.reason,
                    "stable_version": backend.stable.version
                    if backend and backend.stable
                    else s.stable_version,
                    "canary_version": backend.canary.version
                    if backend and backend.canary
                    else s.canary_version,
                    "canary_weight": backend.weight if backend else s.weight,
                    "step": s.step_label,
                    "error": view.backend_error,
                }
            )
        return rows
    finally:
        await session.close()


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--env", "env_name", required=True, help="Environment whose service is checked.")
@click.option("--check", "names", multiple=True, metavar="NAME", help="Only this [[smoke]] check (repeatable).")
@state_dir_option
def smoke(plan_path: str, env_name: str, names: tuple[str, ...], state_dir: str | None) -> None:
    """Send PLAN's [[smoke]] checks to ENV as it runs now (read-only): exit 0 when every
    one passes, 1 when one fails or ENV cannot be reached."""
    from cockpit.engine.smoke import select_checks

    plan = read_plan(plan_path)
    if env_name not in [e.name for e in plan.environments]:
        fail(f"unknown environment {env_name!r} (plan has: {', '.join(e.name for e in plan.environments)})")
    try:
        checks = select_checks(plan, names)
    except ValueError as err:
        fail(str(err))
    sys.exit(asyncio.run(smoke_environment(plan, env_name, checks, state_dir)))


async def smoke_environment(plan: Plan, env_name: str, checks: Sequence[Any], state_dir: str | None) -> int:
    from cockpit.engine.smoke import check_environment, result_line
    from cockpit.engine.store import open_store
    from cockpit.secrets import redact

    session = make_session(plan, state_dir, journal=open_store(plan, state_base(state_dir), read_only=True))
    try:
        for problem in await session.start(attach=True, only=[env_name]):
            click.echo(f"error: {env_name} cannot be reached: {redact(str(problem.error))}", err=True)
            return 1
        results = await check_environment(session.view(env_name), checks)
    finally:
        await session.close()
    for result in results:
        click.echo(result_line(result))
    return 0 if all(r.passed for r in results) else 1


@cli.command()
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--env", "env_name", required=True, help="Environment to release to.")
@click.option("--version", "version", required=True, help="Version to roll out.")
@click.option("--headless", is_flag=True, help="No screen: print transitions, exit with the outcome.")
@click.option("--auto-promote", is_flag=True, help="Promote past indefinite pauses (headless only).")
@click.option(
    "--pause-timeout",
    type=PauseDuration(),
    default=None,
    help="Wait DURATION (90s, 2m...) at each indefinite pause, then promote (headless only).",
)
@click.option("--reason", default="", help="Why: lands in the journal (required on protected environments).")
@click.option(
    "--timeout", type=Seconds(), default=1800.0, show_default=True, help="Seconds before giving up."
)
@state_dir_option
def rollout(
    plan_path: str,
    env_name: str,
    version: str,
    headless: bool,
    auto_promote: bool,
    pause_timeout: float | None,
    reason: str,
    timeout: float,
    state_dir: str | None,
) -> None:
    """Roll VERSION out to ENV with PLAN's strategy.

    \b
    Headless exit codes (from the outcome's cause and a fresh status, never from text):
      0    promoted, and the backend shows VERSION as stable at 100 %
      3    aborted by analysis (or inconclusive, no human) and traffic observed on stable
      4    stopped at an indefinite pause (nobody to promote it: use --auto-promote or
           --pause-timeout), aborted, and traffic observed on stable
      2    usage or plan error, or the start was refused
      1    anything else: failed abort, Degraded, health-gate or crash-loop abort,
           a failing expand step (nothing deployed), journal failure, timeout, or an
           outcome the backend could not confirm
      130  interrupted (SIGINT/SIGTERM), journaled with the state
    """
    headless_only(headless, auto_promote, pause_timeout)
    if not headless:
        require_terminal()
    plan = read_plan(plan_path)
    if env_name not in [e.name for e in plan.environments]:
        fail(
            f"no environment {env_name!r} in {plan_path} (known: {', '.join(e.name for e in plan.environments)})"
        )
    if headless:
        sys.exit(
            run_headless(
                plan,
                state_dir,
                env_name,
                version,
                auto_promote,
                reason or "headless rollout",
                timeout,
                pause_timeout=pause_timeout,
                plan_dir=plan_folder(plan_path),
            )
        )
    loader = screen_loader(
        preview_of(read_for_preview(plan_path), plan.service.name), lambda: plan, state_dir, plan_path=plan_path
    )
    open_ui(loader, plan_path, (env_name, version, reason))


def run_headless(
    plan: Plan,
    state_dir: str | None,
    env: str,
    version: str,
    auto_promote: bool,
    reason: str,
    timeout: float = 1800.0,
    demo_traffic: bool = False,
    pause_timeout: float | None = None,
    plan_dir: Path | None = None,
) -> int:
    from cockpit.headless import run_rollout, transition_printer

    if env not in [e.name for e in plan.environments]:
        fail(f"no environment {env!r} in the plan (known: {', '.join(e.name for e in plan.environments)})")
    session = make_session(
        plan,
        state_dir,
        demo_traffic=demo_traffic,
        on_transition=transition_printer(sys.stdout, time.monotonic()),
        plan_dir=plan_dir,
    )
    log.info("headless rollout of %s to %s", version, env)
    code = asyncio.run(
        run_rollout(
            session,
            env,
            version,
            auto_promote=auto_promote,
            pause_timeout=pause_timeout,
            reason=reason,
            timeout=timeout,
        )
    )
    log.info("headless rollout of %s to %s ended with exit code %d", version, env, code)
    return code


# --------------------------------------------------------------------------- history


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--service", default=None, help="Only this service.")
@click.option("--env", "env_name", default=None, help="Only this environment.")
@click.option("--grep", "text", default=None, help="Only records containing this text.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option(
    "--show",
    "show_id",
    type=click.IntRange(1),
    default=None,
    help="One record in full, with its command's records and the canary log kept with its rollout.",
)
@click.option("--demo", "demo_journal", is_flag=True, help="Read the embedded demo's journal.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the journal's hash chain: exit 0 if intact, 1 at the first broken link.",
)
@state_dir_option
def history(
    as_json: bool,
    service: str | None,
    env_name: str | None,
    text: str | None,
    limit: int,
    show_id: int | None,
    demo_journal: bool,
    verify: bool,
    state_dir: str | None,
) -> None:
    """Show the journal, newest first (each command before its consequences): who did
    what, when, why, and how it went."""
    from cockpit.engine.journal import Journal
    from cockpit.engine.store.history import reading_order

    base = state_base(state_dir)
    path = paths.journal_path(base / "demo" if demo_journal else base)
    if verify:
        verify_journal(path)
        return
    if not path.exists():
        if as_json:
            return
        click.echo(f"no journal yet at {path}")
        return
    journal = Journal(path, read_only=True)
    try:
        if show_id is not None:
            show_record(journal, show_id)
            return
        records = journal.records(service=service, env=env_name, limit=limit, text=text)
    finally:
        journal.close()
    for row in reading_order(records):
        r = row.record
        if as_json:
            click.echo(json.dumps(r.to_json()))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ts))
        took = f" {r.duration_ms:.0f}ms" if r.duration_ms is not None else ""
        why = f" reason: {r.reason}" if r.reason else ""
        action = ("↳ " if row.consequence else "") + r.action
        click.echo(
            f"{when} {r.user:<14} {r.service}/{r.env:<11} {action:<13} {r.outcome:<8}{took} {r.detail}{why}"
        )


def show_record(journal: Any, record_id: int) -> None:
    """``cockpit history --show ID``: the record's fields, its command's records and the
    canary lines kept with its rollout (what the history screen shows on Enter)."""
    from cockpit.engine.store.history import CONTROL, belongs, describe_rollout_log, details, reading_order

    found = journal.records(after_id=record_id - 1, before_id=record_id + 1, limit=1)
    if not found:
        fail(f"no record #{record_id} in the journal", 1)
    record = found[0]
    for label, value in details(record):
        click.echo(f"{label:<12} {value}")
    # The records of its command lie close by: a window around it, in the reading order.
    around = journal.records(
        service=record.service,
        env=record.env,
        after_id=max(0, record_id - 50),
        before_id=record_id + 50,
        limit=100,
    )
    rows = reading_order(around)
    for i, row in enumerate(rows):
        if row.record.id != record_id:
            continue
        start, end = i, i + 1
        while start > 0 and rows[start].consequence:
            start -= 1
        while end < len(rows) and rows[end].consequence:
            end += 1
        if end - start > 1:
            click.echo("\nthe command and what it did:")
            for other in rows[start:end]:
                o = other.record
                mark = ">" if o.id == record_id else " "
                arrow = "  ↳ " if other.consequence else ""
                click.echo(f"{mark} #{o.id} {arrow}{o.action} {o.outcome} by {o.user}: {o.detail}")
    kept = journal.rollout_log_for(record.service, record.env, record_id)
    if kept is None or not belongs(record, kept):
        click.echo("\nno rollout log belongs to this record")
        return
    lines = journal.rollout_log_lines(kept.id)
    click.echo(f"\ncanary log: {describe_rollout_log(kept, len(lines))}")
    for line in lines:
        when = time.strftime("%H:%M:%S", time.localtime(line.ts))
        click.echo(CONTROL.sub("", f"{when} {line.source}: {line.text}"))


def verify_journal(path: Path) -> None:
    """Walk the hash chain read-only: "journal intact: N records" (exit 0) or the first
    broken link (exit 1). The head hash is printed so it can be kept elsewhere: a rewrite
    that recomputes every later hash changes it."""
    import sqlite3

    from cockpit.engine.journal import Journal

    if not path.exists():
        fail(f"no journal at {path} to verify", 1)
    try:
        journal = Journal(path, read_only=True)
        try:
            broken, count, head = journal.verify(), journal.count(), journal.head()
        finally:
            journal.close()
    except sqlite3.Error as err:
        fail(f"cannot read the journal {path}: {err}", 1)
    if broken is not None:
        click.echo(f"journal broken at record {broken.record_id}: {broken.problem}")
        sys.exit(1)
    click.echo(f"journal intact: {count} records")
    click.echo(f"head {head}")


# --------------------------------------------------------------------------- secrets and adapters


# The secrets commands live in cockpit/secrets_cli.py.
cli.add_command(secrets_cli.secrets)
# The migrations command lives in cockpit/migrate_cli.py.
cli.add_command(migrate_cli.migrate)


@cli.command()
def adapters() -> None:
    """List the registered backend adapters and metrics sources."""
    from cockpit.adapters import registry

    click.echo("backends:        " + ", ".join(registry.backend_names()))
    click.echo("metrics sources: " + ", ".join(registry.metrics_source_names()))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
