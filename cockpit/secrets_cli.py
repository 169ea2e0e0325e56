"""``cockpit secrets``: store, read, delete, list and check secrets in the OS keyring.

A value enters only through a prompt without echo (a terminal) or standard input (a
pipe), never as an argument: arguments stay in the shell's history and show in every
user's process list. It leaves only through ``get``, which prints to a pipe but refuses a
terminal unless ``--reveal`` is given (a screen may be shared). Every other message names
secrets, never their values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import click

from cockpit import secrets_index
from cockpit.secrets import (
    KeyringUnavailable,
    SecretError,
    keyring_delete,
    keyring_get,
    keyring_set,
    require_keyring,
)
from cockpit.secrets import remember as remember_value

if TYPE_CHECKING:
    from cockpit.plan.models import Plan

EXIT_USAGE = 2


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _service_name(text: str) -> tuple[str, str]:
    """SERVICE/NAME (``keyring:SERVICE/NAME`` too, as a plan writes it)."""
    from cockpit.secrets import split_service_name

    try:
        return split_service_name(text.removeprefix("keyring:"))
    except ValueError as err:
        _fail(str(err), EXIT_USAGE)


def loggable_argv(argv: list[str]) -> list[str]:
    """``argv`` as ``--log`` may record it: whatever follows ``secrets set SERVICE/NAME`` may be
    a value typed as an argument by mistake (refused below), so it is not written anywhere."""
    for i in range(len(argv) - 1):
        if argv[i] == "secrets" and argv[i + 1] == "set":
            rest = argv[i + 2 :]
            ref = next((j for j, arg in enumerate(rest) if not arg.startswith("-")), None)
            kept = rest if ref is None else rest[: ref + 1]
            hidden = len(rest) - len(kept)
            return argv[: i + 2] + kept + ([f"<{hidden} argument(s) not logged>"] if hidden else [])
    return argv


@click.group()
def secrets() -> None:
    """Store, read and check secrets in the OS keyring (values are never shown unless asked)."""


def _read_value() -> str:
    if sys.stdin.isatty():
        # getpass underneath: the terminal does not echo what is typed.
        value: str = click.prompt("value (not shown)", hide_input=True, confirmation_prompt="again")
        return value
    value = sys.stdin.read()
    # One trailing newline is the pipe's (echo, a here-string), not the secret's.
    return value.removesuffix("\n").removesuffix("\r")


@secrets.command(
    "set", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("ref", metavar="SERVICE/NAME")
@click.pass_context
def secrets_set(ctx: click.Context, ref: str) -> None:
    """Store a secret: typed at a prompt without echo, or piped on standard input.

    Never given as an argument (it would stay in the shell history and show in the
    process list): `cockpit secrets set shop/deploy-token`, or
    `pass show deploy | cockpit secrets set shop/deploy-token`.
    """
    if ctx.args:
        for arg in ctx.args:
            remember_value(arg)  # it may be the secret: mask it in anything written later
        _fail(
            f"'cockpit secrets set' takes the value from a prompt or standard input, never as an argument"
            f" (an argument stays in the shell history and shows in the process list); {len(ctx.args)}"
            f" extra argument(s) refused, nothing stored. Run 'cockpit secrets set {ref}' and type it"
            " at the prompt, or pipe it in.",
            EXIT_USAGE,
        )
    service, name = _service_name(ref)
    try:
        require_keyring()
    except SecretError as err:
        _fail(str(err))
    value = _read_value()
    remember_value(value)
    if not value:
        _fail("an empty secret was not stored", EXIT_USAGE)
    try:
        existed = keyring_get(service, name) is not None
        keyring_set(service, name, value)
    except SecretError as err:
        _fail(str(err))
    _index(secrets_index.add_name, f"{service}/{name}")
    click.echo(f"{'replaced' if existed else 'stored'} keyring:{service}/{name}")
    click.echo(f'refer to it in a plan\'s [secrets] as  some-name = "keyring:{service}/{name}"')


def _index(change: Callable[[str], None], ref: str) -> None:
    """Record ``ref`` in (or drop it from) the index of names; a broken index only warns:
    the keyring itself was changed, which is what the user asked for."""
    try:
        change(ref)
    except secrets_index.SecretIndexError as err:
        click.echo(f"warning: {err}; 'cockpit secrets list' will not show this change", err=True)


@secrets.command("get")
@click.argument("ref", metavar="SERVICE/NAME")
@click.option("--reveal", is_flag=True, help="Print the value even to a terminal.")
def secrets_get(ref: str, reveal: bool) -> None:
    """Print a secret's value to a pipe (`cockpit secrets get shop/token | docker login ...`).

    On a terminal it refuses unless --reveal is given: a screen may be shared or recorded.
    """
    service, name = _service_name(ref)
    if sys.stdout.isatty() and not reveal:
        _fail(
            f"refusing to print keyring:{service}/{name} on a terminal, where anyone watching the screen"
            " can read it: pipe it into the command that needs it, or add --reveal",
            EXIT_USAGE,
        )
    try:
        value = keyring_get(service, name)
    except SecretError as err:
        _fail(str(err))
    if value is None:
        _fail(f"keyring:{service}/{name} is not in the keyring (store it with 'cockpit secrets set {service}/{name}')")
    click.echo(value)


@secrets.command("delete")
@click.argument("ref", metavar="SERVICE/NAME")
def secrets_delete(ref: str) -> None:
    """Delete a secret from the keyring; says whether it was there."""
    service, name = _service_name(ref)
    try:
        existed = keyring_delete(service, name)
    except SecretError as err:
        _fail(str(err))
    _index(secrets_index.remove_name, f"{service}/{name}")
    if existed:
        click.echo(f"deleted keyring:{service}/{name}")
    else:
        click.echo(f"keyring:{service}/{name} was not in the keyring; nothing deleted")


@secrets.command("list")
@click.option(
    "--plan",
    "plan_path",
    metavar="PLAN",
    type=click.Path(dir_okay=False),
    help="List the secret references of PLAN instead (resolving none: see 'secrets check').",
)
def secrets_list(plan_path: str | None) -> None:
    """The secrets stored with 'cockpit secrets set' (names only; a keyring cannot list its
    entries, so the cockpit keeps an index of names), or the references of a plan."""
    if plan_path is not None:
        _list_plan(plan_path)
        return
    try:
        names = secrets_index.read_names()
    except secrets_index.SecretIndexError as err:
        _fail(str(err))
    if not names:
        click.echo(f"no secrets stored with 'cockpit secrets set' yet (index: {secrets_index.index_path()})")
        return
    gone = _not_in_keyring(names)
    for ref in names:
        click.echo(f"keyring:{ref}" + ("   (no longer in the keyring)" if ref in gone else ""))


def _not_in_keyring(names: list[str]) -> set[str]:
    """The indexed names the keyring no longer holds (deleted by another tool). Without a
    usable keyring the names are still listed, with a note saying why they are unchecked."""
    gone = set()
    for ref in names:
        service, _, name = ref.partition("/")
        try:
            if keyring_get(service, name) is None:
                gone.add(ref)
        except KeyringUnavailable as err:
            click.echo(f"note: not checked against the keyring: {err.advice}", err=True)
            return set()
        except SecretError as err:
            click.echo(f"note: not checked against the keyring: {err}", err=True)
            return set()
    return gone


def _read_plan(path: str) -> Plan:
    from cockpit.cli import read_plan  # imported here: cockpit.cli imports this module

    return read_plan(path)


def _list_plan(path: str) -> None:
    from cockpit.secrets_plan import plan_references

    refs = plan_references(_read_plan(path))
    if not refs:
        click.echo(f"{path} refers to no secrets")
        return
    for reference in refs:
        click.echo(reference.describe())


@secrets.command("check")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
def secrets_check(plan_path: str) -> None:
    """Every secret reference of PLAN ([secrets] and those in adapter and metrics options)
    and whether it resolves (values are never shown). Exit 1 when any does not."""
    from cockpit.secrets_plan import check_references, plan_references

    refs = plan_references(_read_plan(plan_path))
    if not refs:
        click.echo(f"{plan_path} refers to no secrets")
        return
    results, unavailable = check_references(refs)
    for result in results:
        if result.problem is None:
            click.echo(f"ok       {result.reference.describe()}")
        else:
            click.echo(f"missing  {result.reference.describe()}: {result.problem}")
    missing = sum(result.problem is not None for result in results)
    click.echo(f"{len(results)} reference(s), {missing} missing")
    if unavailable:
        click.echo(f"error: {unavailable}", err=True)
    sys.exit(1 if missing else 0)
