"""Analysis conditions: a comparison with a fixed number or with the stable track.

Written in a plan as text::

    ">= 99"                      absolute: the canary value against 99
    "<= 250ms"                   absolute, with the metric's unit (ms and s convert)
    "<= stable * 1.2 + 10ms"     relative: 1.2 times stable's value in the same window, plus 10 ms
    "<= stable + 1%"             relative: stable's error rate plus one percentage point
    ">= stable - 0.5"            relative, a little below stable

A relative condition is what catches a regression under changing load (Kayenta's idea):
stable and canary are measured over the same window, so a busy hour raises both and only
a canary worse than stable fails. Parsing gives a typed :class:`Condition` (operator,
relative or not, factor, offset, unit); errors say which word or unit is wrong.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Op = Literal[">=", "<=", ">", "<", "==", "!="]
Unit = Literal["", "%", "ms", "s", "req/s"]

EXAMPLES = "such as '>= 99', '<= 250ms' or '<= stable * 1.2 + 10ms'"

_OPERATOR = re.compile(r"^\s*(>=|<=|==|!=|>|<)")
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z_/]*)|(?P<sym>[*+\-%]))")
_UNIT_WORDS = {"ms", "s", "req/s"}
_TO_SECONDS = {"s": 1.0, "ms": 0.001}


class Condition(BaseModel):
    """A comparison of a measured value with a threshold: ``">= 99"``, or relative to
    the stable track: ``"<= stable * 1.2 + 10ms"`` (the limit is ``stable * factor +
    threshold``, computed from stable's value in the same window at each measurement)."""

    # As the plan's other models (models.Strict): unknown keys, coercions and nan refused.
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, strict=True, allow_inf_nan=False
    )

    op: Op
    threshold: float
    """The limit of an absolute condition; the offset added to ``stable * factor`` of a
    relative one. In the check's unit once validated (``10ms`` on a check in s is 0.01)."""
    relative: bool = False
    """Compared with the stable track's value measured over the same window."""
    factor: float = Field(default=1.0, gt=0)
    """What stable's value is multiplied by (relative conditions only)."""
    unit: Unit = ""
    """The unit the threshold was written in ("" for a bare number, in the metric's unit)."""

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse(value)
        return value

    @model_validator(mode="after")
    def _factor_needs_stable(self) -> Condition:
        if self.factor != 1.0 and not self.relative:
            raise ValueError("a factor multiplies stable's value: set relative = true or drop the factor")
        return self

    def limit(self, stable: float | None = None) -> float:
        """The number a value is compared with; for a relative condition computed from
        ``stable``. Raises ``ValueError`` when a relative condition has no stable value:
        the caller must say so (no data), never guess."""
        if not self.relative:
            return self.threshold
        if stable is None:
            raise ValueError(f"'{self}' needs stable's value, and stable has none")
        return stable * self.factor + self.threshold

    def holds(self, value: float, stable: float | None = None) -> bool:
        return compare(self.op, value, self.limit(stable))

    def in_unit(self, unit: str, what: str) -> Condition:
        """This condition with its threshold converted to ``unit``, the unit ``what`` (the
        metric) is measured in (ms <-> s), or ``ValueError`` saying why it cannot be."""
        if not self.unit or self.unit == unit:
            return self
        if self.unit in _TO_SECONDS and unit in _TO_SECONDS:
            scale = _TO_SECONDS[self.unit] / _TO_SECONDS[unit]
            return self.model_copy(update={"threshold": self.threshold * scale, "unit": unit})
        measured = f"is measured in {unit}" if unit else "has no declared unit (set the check's 'unit')"
        raise ValueError(f"'{self}' has a limit in {self.unit}, but {what} {measured}")

    def __str__(self) -> str:
        if not self.relative:
            return f"{self.op} {self.threshold:g}{self.unit}"
        text = "stable" if self.factor == 1.0 else f"stable * {self.factor:g}"
        if self.threshold:
            sign = "+" if self.threshold > 0 else "-"
            text += f" {sign} {abs(self.threshold):g}{self.unit}"
        return f"{self.op} {text}"


def compare(op: str, value: float, limit: float) -> bool:
    return {
        ">=": value >= limit,
        "<=": value <= limit,
        ">": value > limit,
        "<": value < limit,
        "==": value == limit,
        "!=": value != limit,
    }[op]


def _tokens(text: str, source: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: num, word, sym. Anything else is named in the error."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            bad = text[pos:].strip()
            raise ValueError(f"cannot read {bad!r} in condition {source!r}; expected a condition {EXAMPLES}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Reader:
    """Walks the tokens of one condition's right-hand side."""

    def __init__(self, tokens: list[tuple[str, str]], source: str) -> None:
        self.tokens, self.pos, self.source = tokens, 0, source

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, text: str | None = None) -> str | None:
        token = self.peek()
        if token is not None and token[0] == kind and (text is None or token[1] == text):
            self.pos += 1
            return token[1]
        return None

    def number(self, what: str) -> float:
        if (num := self.take("num")) is None:
            raise self.error(what)
        return float(num)

    def unit(self) -> str:
        if self.take("sym", "%"):
            return "%"
        token = self.peek()
        if token is not None and token[0] == "word" and token[1] in _UNIT_WORDS:
            self.pos += 1
            return token[1]
        return ""

    def error(self, what: str) -> ValueError:
        token = self.peek()
        if token is None:
            found = "found the end"
        elif token[0] == "word" and token[1] != "stable" and token[1] not in _UNIT_WORDS:
            found = f"unknown word {token[1]!r}"
        else:
            found = f"found {token[1]!r}"
        return ValueError(f"condition {self.source!r}: {found}; {what} ({EXAMPLES})")


def parse(source: str) -> dict[str, Any]:
    """The fields of a :class:`Condition` from its text, or ``ValueError`` naming the
    wrong part (an unknown word, a unit where none belongs, a missing number)."""
    op = _OPERATOR.match(source)
    if op is None:
        raise ValueError(f"expected a condition {EXAMPLES}, found {source!r}")
    read = _Reader(_tokens(source[op.end() :], source), source)
    fields: dict[str, Any] = {"op": op.group(1)}
    factor: float | None = None
    first = read.peek()
    if first is not None and first[0] == "num":  # an absolute number, or "1.2 * stable"
        number = read.number("expected a number")
        if read.take("sym", "*"):
            if not read.take("word", "stable"):
                raise read.error("expected 'stable' after '*'")
            factor = number
        else:
            fields |= {"threshold": number, "unit": read.unit()}
    elif read.take("sym", "-"):
        number = read.number("expected a number after '-'")
        fields |= {"threshold": -number, "unit": read.unit()}
    elif read.take("word", "stable"):
        factor = 1.0
        if read.take("sym", "*"):
            factor = read.number("expected a factor after 'stable *'")
            if read.unit():
                raise ValueError(f"condition {source!r}: the factor {factor:g} multiplies stable and takes no unit")
    else:
        raise read.error("expected a number or 'stable' after the operator")
    if factor is not None:
        if factor <= 0:
            raise ValueError(f"condition {source!r}: the factor of stable must be greater than 0, found {factor:g}")
        fields |= {"relative": True, "factor": factor, "threshold": 0.0}
        sign = "+" if read.take("sym", "+") else "-" if read.take("sym", "-") else None
        if sign is not None:
            offset = read.number(f"expected a number after '{sign}'")
            fields |= {"threshold": offset if sign == "+" else -offset, "unit": read.unit()}
    if read.peek() is not None:
        raise read.error("nothing more was expected after the limit")
    return fields
