"""Secret references (``keyring:service/name``, ``env:NAME``) and redaction.

A plan holds references only. Resolved values are remembered here so that any
text the cockpit shows or writes (journal, logs, errors, screen) can be passed
through :func:`redact` and never carries a secret.
"""

from __future__ import annotations

import os
import threading

_known: set[str] = set()
_lock = threading.Lock()
MASK = "••••••"


class SecretError(Exception):
    """A reference cannot be resolved; the message names the reference, never a value."""


def _remember(value: str) -> None:
    if len(value) >= 4:  # shorter values would mask ordinary words in unrelated text
        with _lock:
            _known.add(value)


def resolve(ref: str) -> str:
    """The value behind ``ref``. Raises :class:`SecretError` with a clear message."""
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        if not rest:
            raise SecretError("secret reference 'env:' names no variable")
        value = os.environ.get(rest)
        if value is None:
            raise SecretError(f"secret {ref} is missing: the environment variable {rest} is not set")
        _remember(value)
        return value
    if scheme == "keyring":
        service, _, name = rest.partition("/")
        if not service or not name:
            raise SecretError(f"secret reference {ref!r} must look like keyring:service/name")
        import keyring  # imported lazily: it probes D-Bus at import time
        from keyring.errors import KeyringError, NoKeyringError

        try:
            value = keyring.get_password(service, name)
        except NoKeyringError:
            raise SecretError(
                f"secret {ref} cannot be read: no OS keyring is available (start a Secret Service such as"
                " gnome-keyring, or use an env: reference)"
            ) from None
        except KeyringError as err:
            raise SecretError(f"secret {ref} cannot be read from the keyring: {type(err).__name__}") from None
        if value is None:
            raise SecretError(
                f"secret {ref} is missing: store it with 'cockpit secrets set {service}/{name}'"
            )
        _remember(value)
        return value
    raise SecretError(f"secret reference {ref!r} must start with 'keyring:' or 'env:'")


def redact(text: str) -> str:
    """``text`` with every secret value this process has resolved masked."""
    if not text or not _known:
        return text
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
