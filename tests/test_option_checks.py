"""The option checks the local and Docker backends share refuse bad plans in the same
words (cockpit/adapters/option_checks.py)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from cockpit.adapters.docker.options import DockerOptions
from cockpit.adapters.local.options import LocalOptions

GOOD: dict[type[pydantic.BaseModel], dict[str, Any]] = {
    LocalOptions: {"command": ["{python}", "-m", "app", "--port", "{port}"], "versions": ["1.0.0", "1.1.0"]},
    DockerOptions: {"image": "shop", "command": ["--port", "{port}"], "versions": ["1.0.0", "1.1.0"]},
}


@pytest.mark.parametrize("model", list(GOOD), ids=lambda m: m.__name__)
def test_good_options_pass(model: type[pydantic.BaseModel]) -> None:
    model.model_validate(GOOD[model])


@pytest.mark.parametrize("model", list(GOOD), ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"command": ["--port", "{prot}"]}, "unknown placeholder {prot}"),
        ({"command": ["--port", "{port"]}, "bad placeholder in '{port'"),
        ({"versions": ["1.0.0", "1.0.0"]}, "version '1.0.0' is listed twice"),
        ({"versions": ["1.0.0", " "]}, "a version cannot be empty"),
        ({"health_path": "healthz"}, "expected a path starting with '/'"),
    ],
)
def test_bad_options_are_refused_in_the_same_words(
    model: type[pydantic.BaseModel], change: dict[str, Any], words: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=words.replace("{", r"\{").replace("}", r"\}")):
        model.model_validate({**GOOD[model], **change})
