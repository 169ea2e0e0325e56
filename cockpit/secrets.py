"""Secret references (``keyring:service/name``, ``env:NAME``), the OS keyring, and redaction.

A plan holds references only. Resolved values are remembered here so that any
text the cockpit shows or writes (journal, logs, errors, screen) can be passed
through :func:`redact` and never carries a secret.

Every use of the keyring goes through :func:`keyring_get`, :func:`keyring_set` and
:func:`keyring_delete`: when no keyring backend is usable they raise
:class:`KeyringUnavailable`, whose message names the backend keyring chose, why, and
how to fix it - the same words wherever the keyring is touched.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any

_known: set[str] = set()
_lock = threading.Lock()
MASK = "••••••"


class SecretError(Exception):
    """A reference cannot be resolved; the message names the reference, never a value."""


class KeyringUnavailable(SecretError):
    """No usable keyring backend; the message says which one keyring chose and how to fix it.
    ``advice`` is that explanation alone, for callers that say it once for many references."""

    def __init__(self, message: str, advice: str | None = None) -> None:
        super().__init__(message)
        self.advice = advice or message


def _remember(value: str) -> None:
    if len(value) >= 4:  # shorter values would mask ordinary words in unrelated text
        with _lock:
            _known.add(value)


def remember(value: str) -> None:
    """Mask ``value`` from now on, as if it had been resolved (a value typed into ``secrets set``)."""
    _remember(value)


# ----------------------------------------------------------------------------- the keyring

# Backends that store nothing: keyring falls back to them when no real one is usable.
_UNUSABLE = {"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"}


def _backend_name(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}".removeprefix("keyring.backends.")


def _why_no_secret_service() -> str:
    """Why the Secret Service backend is not usable (it says so when asked for its priority)."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return f"PYTHON_KEYRING_BACKEND={os.environ['PYTHON_KEYRING_BACKEND']} chooses it"
    if not sys.platform.startswith("linux"):
        return "no backend of this platform answered"
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
    try:
        from keyring.backends import SecretService

        SecretService.Keyring.priority  # noqa: B018 - raises with the reason when unusable
    except Exception as err:  # any failure of the probe is the reason we report
        reason = str(err).removeprefix("Unable to initialize SecretService: ")
        address = os.environ["DBUS_SESSION_BUS_ADDRESS"]
        return f"the Secret Service cannot be reached on the session bus {address} ({reason})"
    return "the Secret Service did not answer"


def fix_it(backend: str, why: str) -> str:
    """The message for a missing keyring: which backend keyring chose, why, what to do."""
    return (
        f"no usable OS keyring: keyring chose {backend} because {why}. "
        "To fix it on Debian/Ubuntu: apt-get install gnome-keyring dbus-x11, run the cockpit inside a"
        " D-Bus session (dbus-run-session -- $SHELL, or a desktop login) and unlock the keyring"
        " (gnome-keyring-daemon --unlock --components=secrets reads the password on stdin);"
        " or put the secret in an environment variable and reference it as env:NAME."
    )


def _keyring() -> Any:
    """The keyring module, once its backend is known usable; else :class:`KeyringUnavailable`."""
    import keyring  # imported lazily: it probes D-Bus when first used

    backend = keyring.get_keyring()
    cls = type(backend)
    if f"{cls.__module__}.{cls.__qualname__}" in _UNUSABLE or (
        cls.__module__ == "keyring.backends.chainer" and not getattr(backend, "backends", None)
    ):
        raise KeyringUnavailable(fix_it(_backend_name(backend), _why_no_secret_service()))
    return keyring


def require_keyring() -> None:
    """Raise :class:`KeyringUnavailable` now, before a user types a value for nothing."""
    _keyring()


def _keyring_failed(err: Exception, doing: str) -> SecretError:
    """A keyring error as a SecretError. The error's own text is not shown: a backend may
    echo what it was given. Its type and the backend say enough to act on."""
    import keyring
    from keyring.errors import InitError, KeyringLocked, NoKeyringError

    backend = _backend_name(keyring.get_keyring())
    if isinstance(err, NoKeyringError):
        return KeyringUnavailable(fix_it(backend, _why_no_secret_service()))
    if isinstance(err, InitError):
        # A bus without a running, unlocked keyring: D-Bus may start gnome-keyring, which then
        # cannot open its default keyring without a desktop prompt. The text is the backend's
        # own account of opening the keyring; no value is involved yet.
        return KeyringUnavailable(fix_it(backend, f"it could not open a keyring ({err})"))
    if isinstance(err, KeyringLocked):
        return SecretError(
            f"cannot {doing}: the keyring ({backend}) is locked; unlock it (log in to the desktop,"
            " or gnome-keyring-daemon --unlock --components=secrets) and try again"
        )
    return SecretError(f"cannot {doing}: the keyring ({backend}) failed with {type(err).__name__}")


def keyring_get(service: str, name: str) -> str | None:
    """The stored value of ``service/name`` (remembered for :func:`redact`), None if absent."""
    keyring = _keyring()
    try:
        value = keyring.get_password(service, name)
    except Exception as err:  # every backend failure becomes one clear SecretError
        raise _keyring_failed(err, f"read {service}/{name}") from None
    if value is not None:
        _remember(value)
    return value


def keyring_set(service: str, name: str, value: str) -> None:
    _remember(value)  # before anything can fail: no error below may carry it
    keyring = _keyring()
    try:
        keyring.set_password(service, name, value)
    except Exception as err:
        raise _keyring_failed(err, f"store {service}/{name}") from None


def keyring_delete(service: str, name: str) -> bool:
    """Delete ``service/name``; False when it was not there."""
    keyring = _keyring()
    from keyring.errors import PasswordDeleteError

    try:
        keyring.delete_password(service, name)
    except PasswordDeleteError:
        return False
    except Exception as err:
        raise _keyring_failed(err, f"delete {service}/{name}") from None
    return True


# ----------------------------------------------------------------------------- references

_SERVICE_NAME = re.compile(r"^([^/\s]+)/(\S+)$")


def split_service_name(text: str) -> tuple[str, str]:
    """``SERVICE/NAME`` as (service, name); ValueError saying what is expected."""
    match = _SERVICE_NAME.match(text)
    if not match:
        raise ValueError(f"{text!r} is not SERVICE/NAME (for example shop/db-password)")
    return match.group(1), match.group(2)


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
        try:
            service, name = split_service_name(rest)
        except ValueError:
            raise SecretError(f"secret reference {ref!r} must look like keyring:service/name") from None
        try:
            value = keyring_get(service, name)
        except KeyringUnavailable as err:
            raise KeyringUnavailable(f"secret {ref} cannot be read: {err.advice}", err.advice) from None
        if value is None:
            raise SecretError(
                f"secret {ref} is missing: store it with 'cockpit secrets set {service}/{name}'"
            )
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
