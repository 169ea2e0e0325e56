"""The base of every plan model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # strict: "off" is not False and "20" is not 20 - a plan that switches a guard off by a
    # typo must fail, not coerce. Strict mode still takes a TOML integer where a float is due.
    # allow_inf_nan: nan compares False with everything, so a nan threshold passes any check.
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, strict=True, allow_inf_nan=False
    )
