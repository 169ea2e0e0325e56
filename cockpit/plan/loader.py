"""Read a plan file into a validated :class:`Plan`, or say precisely what is wrong.

Every problem is collected (not just the first): the file, the line where it can
be found, the field path, what was found and what was expected. Cross-field
rules and adapter options are checked here, after the models, so that their
errors carry a field path too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cockpit.adapters import registry
from cockpit.plan.locate import line_of
from cockpit.plan.models import NAME, Plan

Path_ = tuple[str | int, ...]

PATTERN_WORDS = {
    NAME: "a short lowercase name (a-z, 0-9 and '-', at most 40 characters)",
    r"^\d{2}:\d{2}$": "a time of day as HH:MM",
}


@dataclass(frozen=True)
class PlanIssue:
    file: str
    line: int | None
    path: str  # dotted field path, e.g. "environments[2].backend.options.port"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
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


def _from_validation(err: ValidationError, file: str, text: str, prefix: Path_ = ()) -> list[PlanIssue]:
    issues = []
    for e in err.errors(include_url=False):
        # Pydantic appends the union/validator name to loc in some cases; drop non-field parts.
        loc = prefix + tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key {str(loc[-1])!r} (not part of the plan format)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "string_pattern_mismatch":
            expected = PATTERN_WORDS.get(
                str((e.get("ctx") or {}).get("pattern")), "a value of the documented form"
            )
            msg = f"expected {expected}; found {_found(e.get('input'))}"
        elif e["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg}; found {_found(e.get('input'))}"
        issues.append(PlanIssue(file, line_of(text, loc), format_path(loc), msg))
    return issues


def _options_issues(
    model: type[BaseModel], options: dict[str, Any], file: str, text: str, loc: Path_
) -> list[PlanIssue]:
    try:
        model.model_validate(options)
    except ValidationError as err:
        return _from_validation(err, file, text, loc)
    return []


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

    strategy_key = next(k for k in ("canary", "blue_green", "rolling") if getattr(plan.strategy, k))
    used_checks: set[str] = set()
    if plan.strategy.canary:
        for s, step in enumerate(plan.strategy.canary.steps):
            for c, name in enumerate(step.analysis.checks if step.analysis else []):
                used_checks.add(name)
                if name not in checks:
                    add(
                        ("strategy", "canary", "steps", s, "analysis", "checks", c),
                        f"names check {name!r}, which [analysis] does not define"
                        f" (defined: {', '.join(sorted(checks)) or 'none'})",
                    )
    elif plan.strategy.blue_green:
        for c, name in enumerate(plan.strategy.blue_green.pre_promotion_analysis):
            used_checks.add(name)
            if name not in checks:
                add(("strategy", strategy_key, "pre_promotion_analysis", c), f"unknown check {name!r}")

    for w, window in enumerate(plan.guardrails.freeze):
        for e, env_name in enumerate(window.environments):
            if env_name not in names:
                add(("guardrails", "freeze", w, "environments", e), f"unknown environment {env_name!r}")

    for ref_name, ref in plan.secrets.items():
        if not ref.startswith(("keyring:", "env:")) or ref.endswith(":"):
            # Never echo the value: it may be a secret pasted in by mistake.
            add(
                ("secrets", ref_name),
                "expected a reference 'keyring:service/name' or 'env:NAME'; a plan never holds secret values",
            )

    builtin_only: list[str] = []
    for i, env in enumerate(plan.environments):
        try:
            backend_cls = registry.backend_class(env.backend.adapter)
        except registry.UnknownAdapter as err:
            add(("environments", i, "backend", "adapter"), str(err))
        except ImportError as err:
            add(("environments", i, "backend", "adapter"), f"adapter failed to load: {err}")
        else:
            issues += _options_issues(
                backend_cls.Options,
                env.backend.options,
                file,
                text,
                ("environments", i, "backend", "options"),
            )
        try:
            source_cls = registry.metrics_source_class(env.metrics.source)
        except registry.UnknownAdapter as err:
            add(("environments", i, "metrics", "source"), str(err))
        except ImportError as err:
            add(("environments", i, "metrics", "source"), f"metrics source failed to load: {err}")
        else:
            issues += _options_issues(
                source_cls.Options, env.metrics.options, file, text, ("environments", i, "metrics", "options")
            )
            if not getattr(source_cls, "supports_query", False):
                builtin_only.append(f"{env.name!r} ({env.metrics.source})")
    for c, check in enumerate(plan.analysis.checks):
        if check.query is not None and check.name in used_checks and builtin_only:
            add(
                ("analysis", "checks", c, "query"),
                f"environment {', '.join(builtin_only)} reads metrics that run built-in metrics only;"
                " use 'metric', or a metrics source that runs queries",
            )
    return issues


def parse_plan(text: str, file: str = "<plan>") -> Plan:
    """Validate plan text; raises :class:`PlanError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        line = getattr(err, "lineno", None)
        reason = getattr(err, "msg", str(err))
        raise PlanError([PlanIssue(file, line, "", f"not valid TOML: {reason}")]) from None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as err:
        raise PlanError(_from_validation(err, file, text)) from None
    issues = _semantic_issues(plan, file, text)
    if issues:
        raise PlanError(issues)
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([PlanIssue(str(path), None, "", "no such file")]) from None
    except IsADirectoryError:
        raise PlanError(
            [PlanIssue(str(path), None, "", "is a directory, expected a .toml plan file")]
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError([PlanIssue(str(path), None, "", f"cannot be read: {err}")]) from None
    return parse_plan(text, str(path))
