"""Release order: which versions an expand or contract step belongs before or after."""

from __future__ import annotations

import re

_CHUNK = re.compile(r"\d+|\D+")

ReleaseKey = tuple[tuple[int, int, str], ...]


def release_key(version: str) -> ReleaseKey:
    """Natural order of versions: ``1.10.0`` > ``1.9.0`` > ``1.9``. Runs of digits compare as
    numbers, the rest as text (case-insensitive); a leading ``v`` is ignored, so ``v1.2`` is
    ``1.2``. Numbers sort before text at the same position, so ``1.0.0`` < ``1.0.0-rc1``
    (a plain longest-prefix rule; pre-release semantics are not guessed)."""
    text = version.strip().lower()
    if text[:1] == "v" and text[1:2].isdigit():
        text = text[1:]
    return tuple((0, int(c), "") if c.isdigit() else (1, 0, c) for c in _CHUNK.findall(text))


def at_or_before(release: str, version: str) -> bool:
    """Whether a step of ``release`` is due for a rollout to ``version``."""
    return release_key(release) <= release_key(version)
