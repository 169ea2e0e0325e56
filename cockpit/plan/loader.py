"""Read a plan file into a validated :class:`Plan`, or say precisely what is wrong.

Every problem is collected (not just the first): the file, the line where it can
be found, the field path, what was found and what was expected. Cross-field
rules and adapter options are checked here, after the models, so that their
errors carry a field path too.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cockpit.adapters import registry
from cockpit.adapters.base import Capability
from cockpit.plan.locate import line_of
from cockpit.plan.migration_checks import check_migrations
from cockpit.plan.models import NAME, TIME_OF_DAY, Plan, Strategy

Path_ = tuple[str | int, ...]

MAX_PLAN_BYTES = 1 << 20
"""A plan is a page or two of TOML; anything larger is a wrong file, not a plan."""

PATTERN_WORDS = {
    NAME: "a short lowercase name (a-z, 0-9 and '-', at most 40 characters)",
    TIME_OF_DAY: "a time of day as HH:MM (00:00 to 23:59)",
}

# Strict mode's messages name Python types; a plan author thinks in TOML.
TYPE_WORDS = {
    "bool_type": "expected true or false (unquoted)",
    "int_type": "expected a whole number (unquoted)",
    "float_type": "expected a number (unquoted)",
    "finite_number": "expected a finite number (not nan or inf)",
    "string_type": "expected a quoted string",
    "list_type": "expected an array [...]",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


@dataclass(frozen=True)
class PlanIssue:
    file: str
    line: int | None
    path: str  # dotted field path, e.g. "environments[2].backend.options.port"
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}" + (f":{self.column}" if self.column else "")
        return f"{where}: {self.path or '(plan)'}: {self.message}"


class PlanError(Exception):
    """The plan cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: list[PlanIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def format_path(loc: Path_) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _found(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- secrets

_REFERENCE = re.compile(r"^(keyring:[^/\s]+/\S+|env:[A-Za-z_][A-Za-z0-9_]*)$")
_SECRET_KEY = re.compile(r"pass|secret|token|credential|api.?key|private", re.IGNORECASE)


_WORD = re.compile(r"""[^\s/{}\[\]()"',;:]{12,}""")


def _secret_words(value: str) -> list[str]:
    """The parts of ``value`` that may be a credential pasted where a reference belongs
    (alone or inside a larger value such as ``--token=...``): long words mixing letters
    and digits. Versions, paths and placeholders are short or split at '/', '{', ':'."""
    return [
        word
        for word in _WORD.findall(value)
        if any(c.isalpha() for c in word) and any(c.isdigit() for c in word)
    ]


def secret_values(data: Any, under_secret: bool = False) -> set[str]:
    """Every string of the raw plan that must never be printed back: the values under
    [secrets] that are not references, values under a key named like a credential, and
    anything that looks like a pasted credential."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            hidden = under_secret or bool(_SECRET_KEY.search(str(key)))
            found |= secret_values(value, hidden)
    elif isinstance(data, list):
        for value in data:
            found |= secret_values(value, under_secret)
    elif isinstance(data, str) and not _REFERENCE.match(data):
        if under_secret and len(data) >= 4:
            found.add(data)
        found.update(_secret_words(data))
    return found


def _scrub(message: str, hidden: set[str]) -> str:
    # Longest first, so that a secret containing another is replaced whole.
    for value in sorted(hidden, key=len, reverse=True):
        message = message.replace(value, "***")
    return message


# ----------------------------------------------------------------------------- validation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``annotation`` (``X | None``, ``list[X]``...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None


def _did_you_mean(root: type[BaseModel], loc: Path_) -> str:
    """The "; did you mean 'protected'?" for an unknown key, from the fields of its table."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _model_of(field.annotation) if field else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _message(e: Any, loc: Path_, root: type[BaseModel]) -> str:
    msg = e["msg"].removeprefix("Value error, ")
    # Under [secrets] a wrong value may be the secret itself: never echo it.
    found = "" if loc[:1] == ("secrets",) else f"; found {_found(e.get('input'))}"
    kind = e["type"]
    if kind == "extra_forbidden":
        return f"unknown key {str(loc[-1])!r} (not part of the plan format){_did_you_mean(root, loc)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        pattern = str((e.get("ctx") or {}).get("pattern"))
        return f"expected {PATTERN_WORDS.get(pattern, 'a value of the documented form')}{found}"
    if kind in TYPE_WORDS:
        return TYPE_WORDS[kind] + found
    if kind in ("value_error", "assertion_error"):
        return msg
    return msg + found


def _from_validation(
    err: ValidationError, file: str, text: str, root: type[BaseModel], prefix: Path_ = ()
) -> list[PlanIssue]:
    issues = []
    for e in err.errors(include_url=False):
        # Pydantic appends the union/validator name to loc in some cases; drop non-field parts.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        issues.append(
            PlanIssue(file, line_of(text, prefix + loc), format_path(prefix + loc), _message(e, loc, root))
        )
    return issues


def _options_issues(
    model: type[BaseModel], options: dict[str, Any], file: str, text: str, loc: Path_
) -> tuple[BaseModel | None, list[PlanIssue]]:
    try:
        return model.model_validate(options), []
    except ValidationError as err:
        return None, _from_validation(err, file, text, model, loc)


def _table(value: Any, key: str) -> dict[str, Any]:
    """``value[key]`` when both are tables, else an empty one (the models report the rest)."""
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def _adapter_issues(data: dict[str, Any], file: str, text: str) -> list[PlanIssue]:
    """Adapter options and the checks across environments, read from the raw TOML so they
    are reported even when another part of the plan is wrong (every error in one round)."""
    issues: list[PlanIssue] = []

    def add(loc: Path_, message: str) -> None:
        issues.append(PlanIssue(file, line_of(text, loc), format_path(loc), message))

    environments = data.get("environments")
    ports: dict[int, str] = {}
    for i, env in enumerate(environments if isinstance(environments, list) else []):
        backend = _table(env, "backend")
        adapter = backend.get("adapter")
        options = backend.get("options", {})
        if isinstance(adapter, str) and isinstance(options, dict):
            at: Path_ = ("environments", i, "backend")
            try:
                backend_cls = registry.backend_class(adapter)
            except registry.UnknownAdapter as err:
                add(at + ("adapter",), str(err))
            except ImportError as err:
                add(at + ("adapter",), f"adapter failed to load: {err}")
            else:
                checked, found = _options_issues(backend_cls.Options, options, file, text, at + ("options",))
                issues += found
                if checked is not None:
                    _cross_check(env, i, checked, backend_cls, ports, add, set(_table(data, "secrets")))
        metrics = _table(env, "metrics")
        source, options = metrics.get("source", "scrape"), metrics.get("options", {})
        if isinstance(source, str) and isinstance(options, dict):
            at = ("environments", i, "metrics")
            try:
                source_cls = registry.metrics_source_class(source)
            except registry.UnknownAdapter as err:
                add(at + ("source",), str(err))
            except ImportError as err:
                add(at + ("source",), f"metrics source failed to load: {err}")
            else:
                issues += _options_issues(source_cls.Options, options, file, text, at + ("options",))[1]
    return issues


def _cross_check(
    env: dict[str, Any],
    i: int,
    options: BaseModel,
    backend_cls: type,
    ports: dict[int, str],
    add: Callable[[Path_, str], None],
    secret_names: set[str],
) -> None:
    """What one environment's options must agree with: its own initial version, the
    ports of the other environments on this machine, and the plan's [secrets] names."""
    name = env.get("name") if isinstance(env.get("name"), str) else f"#{i + 1}"
    versions = getattr(options, "versions", None)
    initial = env.get("initial_version")
    if isinstance(versions, list) and isinstance(initial, str) and initial not in versions:
        # The stable track would start on a version the backend cannot run.
        add(
            ("environments", i, "initial_version"),
            f"version {initial!r} is not one of the backend's versions ({', '.join(map(str, versions))})",
        )
    for var, secret in (getattr(options, "secret_env", None) or {}).items():
        if secret not in secret_names:
            # Found at start otherwise: a replica that cannot start in the middle of a release.
            add(
                ("environments", i, "backend", "options", "secret_env", var),
                f"names secret {secret!r}, which [secrets] does not define"
                f" (defined: {', '.join(sorted(secret_names)) or 'none'})",
            )
    port = getattr(options, "port", 0)
    local = Capability.OWNS_WORKLOADS in getattr(backend_cls, "capabilities", frozenset())
    if local and isinstance(port, int) and port:
        # Two routers on one port: the second environment would fail at start, or worse,
        # a user would reach the wrong environment.
        if port in ports:
            add(
                ("environments", i, "backend", "options", "port"),
                f"port {port} is already used by environment {ports[port]!r}; each needs its own (or 0)",
            )
        else:
            ports[port] = str(name)


def _secret_issues(data: dict[str, Any], file: str, text: str) -> list[PlanIssue]:
    """[secrets] holds references only. Never echo the value: it may be a secret pasted in."""
    issues = []
    for name, ref in _table(data, "secrets").items():
        if isinstance(ref, str) and not (ref.startswith(("keyring:", "env:")) and not ref.endswith(":")):
            loc = ("secrets", name)
            issues.append(
                PlanIssue(
                    file,
                    line_of(text, loc),
                    format_path(loc),
                    "expected a reference 'keyring:service/name' or 'env:NAME'; a plan never holds secret values",
                )
            )
    return issues


def _semantic_issues(plan: Plan, file: str, text: str) -> list[PlanIssue]:
    issues: list[PlanIssue] = []

    def add(loc: Path_, message: str) -> None:
        issues.append(PlanIssue(file, line_of(text, loc), format_path(loc), message))

    names = [e.name for e in plan.environments]
    for i, env in enumerate(plan.environments):
        if names.index(env.name) != i:
            add(("environments", i, "name"), f"environment {env.name!r} is defined twice")

    checks = {c.name: c for c in plan.analysis.checks}
    for i, check in enumerate(plan.analysis.checks):
        if list(checks).index(check.name) != i:
            add(("analysis", "checks", i, "name"), f"check {check.name!r} is defined twice")

    used_checks: set[str] = set()
    strategies: list[tuple[Path_, Strategy]] = [(("strategy",), plan.strategy)]
    strategies += [(("environments", i, "strategy"), e.strategy) for i, e in enumerate(plan.environments) if e.strategy]
    for at, strategy in strategies:
        _strategy_checks(strategy, at, checks, used_checks, add)
    _smoke_issues(plan, strategies, add)

    for w, window in enumerate(plan.guardrails.freeze):
        for e, env_name in enumerate(window.environments):
            if env_name not in names:
                add(("guardrails", "freeze", w, "environments", e), f"unknown environment {env_name!r}")

    builtin_only: list[str] = []
    for env in plan.environments:
        try:
            source_cls = registry.metrics_source_class(env.metrics.source)
        except (registry.UnknownAdapter, ImportError):
            continue  # reported with the adapter options
        if not getattr(source_cls, "supports_query", False):
            builtin_only.append(f"{env.name!r} ({env.metrics.source})")
    for c, check in enumerate(plan.analysis.checks):
        if check.query is not None and check.name in used_checks and builtin_only:
            add(
                ("analysis", "checks", c, "query"),
                f"environment {', '.join(builtin_only)} reads metrics that run built-in metrics only;"
                " use 'metric', or a metrics source that runs queries",
            )
    # [[migrations]] and each environment's database (a plan given as text has no folder).
    check_migrations(plan, Path(file).parent if Path(file).is_file() else None, add)
    return issues


def _strategy_checks(
    strategy: Strategy,
    at: Path_,
    checks: dict[str, Any],
    used: set[str],
    add: Callable[[Path_, str], None],
) -> None:
    """The checks ``strategy`` (the plan's, or an environment's own) names must exist in
    [analysis]; ``used`` collects the names for the query-support rule."""
    defined = ", ".join(sorted(checks)) or "none"
    named: list[tuple[Path_, str]] = []
    if strategy.canary:
        for s, step in enumerate(strategy.canary.steps):
            for c, name in enumerate(step.analysis.checks if step.analysis else []):
                named.append((at + ("canary", "steps", s, "analysis", "checks", c), name))
    elif strategy.blue_green:
        for c, name in enumerate(strategy.blue_green.pre_promotion_analysis):
            named.append((at + ("blue_green", "pre_promotion_analysis", c), name))
    for loc, name in named:
        used.add(name)
        if name not in checks:
            add(loc, f"names check {name!r}, which [analysis] does not define (defined: {defined})")


def _smoke_issues(plan: Plan, strategies: list[tuple[Path_, Strategy]], add: Callable[[Path_, str], None]) -> None:
    """[[smoke]] names are unique, and every smoke step (and a blue-green's
    ``pre_promotion_smoke``) names checks [[smoke]] defines."""
    names = [c.name for c in plan.smoke]
    for i, name in enumerate(names):
        if names.index(name) != i:
            add(("smoke", i, "name"), f"smoke check {name!r} is defined twice")
    defined = ", ".join(sorted(set(names))) or "none"
    for at, strategy in strategies:
        named: list[tuple[Path_, str]] = []
        if strategy.canary:
            for s, step in enumerate(strategy.canary.steps):
                for c, name in enumerate(step.smoke.checks if step.smoke else []):
                    named.append((at + ("canary", "steps", s, "smoke", "checks", c), name))
        elif strategy.blue_green:
            for c, name in enumerate(strategy.blue_green.pre_promotion_smoke):
                named.append((at + ("blue_green", "pre_promotion_smoke", c), name))
        for loc, name in named:
            if name not in names:
                add(loc, f"names smoke check {name!r}, which [[smoke]] does not define (defined: {defined})")
    for i, env in enumerate(plan.environments):
        if not any(step.smoke for step in plan.strategy_for(env.name).steps()):
            continue
        try:
            backend_cls = registry.backend_class(env.backend.adapter)
        except (registry.UnknownAdapter, ImportError):
            continue  # reported with the adapter options
        if Capability.DRIVES_STEPS in getattr(backend_cls, "capabilities", frozenset()):
            # The platform walks the steps and knows no smoke step: it would be skipped or fail there.
            add(
                ("environments", i, "backend", "adapter"),
                f"the {env.backend.adapter} backend's platform walks the steps itself and cannot run smoke"
                " checks; smoke steps need a backend the cockpit walks the steps of (local, docker)",
            )


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_issue(err: tomllib.TOMLDecodeError, file: str, text: str) -> PlanIssue:
    """``file:LINE:COL: not valid TOML: ...`` (tomllib puts the position in its message)."""
    reason = str(err)
    at = _TOML_AT.search(reason)
    if at:
        return PlanIssue(
            file, int(at.group(1)), "", f"not valid TOML: {reason[: at.start()]}", int(at.group(2))
        )
    if reason.endswith("(at end of document)"):
        reason = reason.removesuffix("(at end of document)").rstrip()
        line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
        return PlanIssue(file, line, "", f"not valid TOML: {reason} at the end of the file", column)
    return PlanIssue(file, None, "", f"not valid TOML: {reason}")


def parse_plan(text: str, file: str = "<plan>") -> Plan:
    """Validate plan text; raises :class:`PlanError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PlanError([_toml_issue(err, file, text)]) from None
    hidden = secret_values(data)
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(data)
        issues: list[PlanIssue] = []
    except ValidationError as err:
        issues = _from_validation(err, file, text, Plan)
    issues += _adapter_issues(data, file, text) + _secret_issues(data, file, text)
    if plan is not None:
        issues += _semantic_issues(plan, file, text)
    if issues:
        issues.sort(key=lambda i: (i.line or 0, i.path))
        raise PlanError(
            [PlanIssue(i.file, i.line, i.path, _scrub(i.message, hidden), i.column) for i in issues]
        )
    assert plan is not None
    return plan


def _file_error(path: Path, message: str) -> PlanError:
    return PlanError([PlanIssue(str(path), None, "", message)])


def _kind(mode: int) -> str:
    for test, word in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def read_plan_text(path: Path) -> str:
    """The text of a plan file, refusing anything that is not a regular file of at most
    :data:`MAX_PLAN_BYTES`: ``/dev/zero`` never ends and a FIFO blocks ``open`` until a
    writer comes, so stat first, open without blocking, and check again on the open file
    (it may have been swapped between the two)."""
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise _file_error(path, "no such file") from None
    except OSError as err:
        raise _file_error(path, f"cannot be read: {err.strerror or err}") from None
    if stat.S_ISDIR(before.st_mode):
        raise _file_error(path, "is a directory, expected a .toml plan file")
    if not stat.S_ISREG(before.st_mode):
        raise _file_error(path, f"is {_kind(before.st_mode)}, expected a regular .toml plan file")
    if before.st_size > MAX_PLAN_BYTES:
        raise _file_error(path, f"is {before.st_size} bytes; a plan may be at most 1 MiB")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise _file_error(path, f"cannot be read: {err.strerror or err}") from None
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode):
            raise _file_error(path, f"is {_kind(after.st_mode)}, expected a regular .toml plan file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_PLAN_BYTES and (chunk := os.read(fd, 64 * 1024)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise _file_error(path, f"cannot be read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if size > MAX_PLAN_BYTES:
        raise _file_error(path, "grew past 1 MiB while being read; a plan may be at most 1 MiB")
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise PlanError(
            [PlanIssue(str(path), line, "", f"not UTF-8 text (byte 0x{raw[err.start]:02x})", column)]
        ) from None


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file."""
    path = Path(path)
    return parse_plan(read_plan_text(path), str(path))
