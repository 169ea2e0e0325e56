"""Every secret reference a plan makes, and whether each resolves (``cockpit secrets check``).

A plan names secrets in three ways: the ``[secrets]`` table (name -> reference), adapter
and metrics options that name an entry of that table (``token = "deploy-token"``,
``bearer_token_secret = "prom-token"``, ``secret_env = {DB = "db-url"}``, header
templates ``"Bearer {secret:deploy-token}"``), and references written in place
(``"keyring:shop/deploy"``, ``"env:TOKEN"``). Adapters resolve a name with
``ctx.secrets(name)``, which looks it up in ``[secrets]`` and otherwise treats it as a
reference itself; the walk below follows the same rule so ``check`` sees what a session
would resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cockpit.plan.models import Plan
from cockpit.secrets import KeyringUnavailable, SecretError, resolve

REFERENCE = re.compile(r"^(keyring:[^/\s]+/\S+|env:[A-Za-z_][A-Za-z0-9_]*)$")
TEMPLATE = re.compile(r"\{secret:([^{}\s]+)\}")
# A key whose string value names a secret: `token`, `bearer_token_secret`, `api_key`...
# Matched at the end of the key, so `token_header = "X-Token"` is not taken for one.
NAMING_KEY = re.compile(r"(^|_)(secret|token|password|passwd|api_?key|credentials?)$", re.IGNORECASE)
# A table whose string values all name secrets: `secret_env = {DB_URL = "db-url"}`.
NAMING_TABLE = re.compile(r"secret", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    where: str  # "[secrets] deploy-token" or the option's path, environments[0].backend.options.token
    name: str | None  # the [secrets] entry named; None for a reference written in place
    ref: str | None  # what gets resolved; None when the name is not in [secrets]

    def describe(self) -> str:
        if self.name is None:
            return f"{self.where} = {self.ref}"
        if self.where.startswith("[secrets]"):
            return f"{self.where} = {self.ref}"
        return f"{self.where} -> {self.name}" + (f" ({self.ref})" if self.ref else "")


def _path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _in_string(text: str, where: str, naming: bool, table: dict[str, str]) -> Iterator[Reference]:
    if REFERENCE.match(text):
        yield Reference(where, None, text)
        return
    names = TEMPLATE.findall(text)
    if not names and naming and text:
        names = [text]
    for name in names:
        ref = table.get(name)
        if ref is None and REFERENCE.match(name):
            yield Reference(where, None, name)  # {secret:env:TOKEN}: a reference in place
        else:
            yield Reference(where, name, ref)


def _walk(data: Any, where: str, naming: bool, table: dict[str, str]) -> Iterator[Reference]:
    if isinstance(data, dict):
        for key, value in data.items():
            names_value = bool(NAMING_KEY.search(str(key))) or (naming and not isinstance(value, dict))
            child_naming = names_value or (isinstance(value, dict) and bool(NAMING_TABLE.search(str(key))))
            yield from _walk(value, _path(where, key), child_naming, table)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, _path(where, i), naming, table)
    elif isinstance(data, str):
        yield from _in_string(data, where, naming, table)


def plan_references(plan: Plan) -> list[Reference]:
    """The [secrets] table's entries, then every reference in the rest of the plan (options above all)."""
    table = dict(plan.secrets)
    found = [Reference(f"[secrets] {name}", name, ref) for name, ref in table.items()]
    found.extend(_walk(plan.model_dump(mode="python", exclude={"secrets"}), "", False, table))
    return found


@dataclass(frozen=True)
class Checked:
    reference: Reference
    problem: str | None  # None: it resolves


def check_references(refs: list[Reference]) -> tuple[list[Checked], str | None]:
    """Resolve each reference once (the values are remembered for redaction, never returned).
    Returns the results and, when the keyring is not usable, its fix-it message (said once)."""
    outcome: dict[str, str | None] = {}
    unavailable: str | None = None
    results = []
    for reference in refs:
        if reference.ref is None:
            results.append(Checked(reference, f"[secrets] does not define {reference.name!r}"))
            continue
        if reference.ref not in outcome:
            try:
                resolve(reference.ref)
                outcome[reference.ref] = None
            except KeyringUnavailable as err:
                unavailable = err.advice
                outcome[reference.ref] = "cannot be read: no usable OS keyring (see below)"
            except SecretError as err:
                outcome[reference.ref] = str(err)
        results.append(Checked(reference, outcome[reference.ref]))
    return results, unavailable
