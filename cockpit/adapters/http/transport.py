"""Sending one action's request: templates filled, secrets resolved at send time, TLS
verified, a timeout per request, retries only where repeating is safe, and every failure
turned into a one-line BackendError that names the request and never a secret.

Retry rules (why): a GET, or a call the plan marks ``idempotent``, is sent again after a
5xx, a 429, a timeout or a dropped connection, with exponential backoff. A mutating call
is sent again only when the connection was never made (nothing reached the platform);
after a timeout or a 5xx its effect is unknown, so :class:`NoAnswer` / :class:`HttpStatusError`
go up to the backend, which reads the status and reports what it sees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from cockpit.adapters.base import BackendConfigError, BackendError, BackendUnavailable
from cockpit.adapters.http.options import SECRET, HttpOptions, Request
from cockpit.secrets import redact

log = logging.getLogger(__name__)

BODY_SHOWN = 300  # characters of an error answer kept in a message
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 5.0


class HttpStatusError(BackendError):
    """The platform answered with a status outside 2xx."""

    def __init__(self, method: str, path: str, status: int, body: str, error: str = "") -> None:
        self.method, self.path, self.status, self.body = method, path, status, body
        self.error = error  # the platform's own words ("error" field of a JSON answer), if any
        shown = f": {body}" if body else ""
        super().__init__(f"{method} {path} answered {status}{shown}")


class CredentialRejected(HttpStatusError):
    """401/403: the credential was refused. Names the secret, never its value."""

    def __init__(self, method: str, path: str, status: int, body: str, secrets: tuple[str, ...]) -> None:
        super().__init__(method, path, status, body)
        which = f"secret {', '.join(repr(s) for s in secrets)}" if secrets else "no secret (no credential sent)"
        word = "rejected" if status == 401 else "not allowed to do this"
        self.args = (f"{method} {path} answered {status}: the credential was {word} (sent {which}); "
                     f"check it with `cockpit secrets check`",)


class NoAnswer(BackendUnavailable):
    """No answer came: the platform may or may not have acted on the request."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # False: the connection was never made, so nothing happened


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any  # the JSON answer (None for an empty body)


def trimmed(text: str) -> str:
    """One line of at most BODY_SHOWN characters, with every known secret masked."""
    line = " ".join(redact(text).split())
    return line if len(line) <= BODY_SHOWN else line[: BODY_SHOWN - 1] + "…"


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` with its placeholders replaced (secrets are never among ``values``)."""
    return template.format_map({k: "" if v is None else v for k, v in values.items()})


def fill_body(body: Any, values: Mapping[str, object]) -> Any:
    """The JSON body template filled in; ``"{weight}"`` alone becomes the value itself."""
    if isinstance(body, str):
        name = body[1:-1] if body.startswith("{") and body.endswith("}") else None
        if name is not None and name in values:
            return values[name]
        return fill(body, values)
    if isinstance(body, dict):
        return {k: fill_body(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [fill_body(v, values) for v in body]
    return body


def ssl_context(options: HttpOptions) -> ssl.SSLContext:
    """Verification on, with the plan's CA bundle if it gives one."""
    try:
        return ssl.create_default_context(cafile=options.ca_bundle)
    except (OSError, ssl.SSLError) as err:
        raise BackendConfigError(f"ca_bundle {options.ca_bundle}: cannot be read as PEM certificates ({err})") from None


class Transport:
    """One platform's HTTP client. Created without I/O; the client opens on first use."""

    def __init__(
        self,
        options: HttpOptions,
        secrets: Callable[[str], str] | None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.options = options
        self._secrets = secrets
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        self.closed = False

    @property
    def client(self) -> httpx.AsyncClient:
        if self.closed:
            raise BackendUnavailable(f"the http backend for {self.options.base_url} is closed")
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.options.base_url,
                verify=ssl_context(self.options) if self.options.base_url.startswith("https") else True,
                timeout=self.options.timeout,
                follow_redirects=False,
            )
        return self._client

    async def close(self) -> None:
        self.closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ headers and secrets

    def secret_names(self, request: Request | None = None) -> tuple[str, ...]:
        templates = list(self.options.headers.values()) + (list(request.headers.values()) if request else [])
        return tuple(dict.fromkeys(name for t in templates for name in SECRET.findall(t)))

    def headers(self, request: Request | None, values: Mapping[str, object]) -> dict[str, str]:
        """Headers with ``{secret:NAME}`` resolved now (the value lives only in this dict)."""
        merged = {**self.options.headers, **(request.headers if request else {})}
        return {name: self._resolve(fill(SECRET.sub(self._marker, t), values), t) for name, t in merged.items()}

    @staticmethod
    def _marker(match: Any) -> str:
        # Keep the reference through format_map (its braces are not a placeholder).
        return "\x00" + match.group(1) + "\x00"

    def _resolve(self, text: str, template: str) -> str:
        if "\x00" not in text:
            return text
        parts = text.split("\x00")
        for i in range(1, len(parts), 2):
            name = parts[i]
            if self._secrets is None:
                raise BackendConfigError(f"a header uses secret {name!r} but no secrets can be resolved here")
            parts[i] = self._secrets(name)
        return "".join(parts)

    # ------------------------------------------------------------------ one action

    def target(self, request: Request, values: Mapping[str, object]) -> str:
        return fill(request.path, values)

    async def call(
        self, action: str, request: Request, values: Mapping[str, object], params: Mapping[str, str] | None = None
    ) -> Answer:
        """Send ``request`` for ``action``; retry where safe. Raises HttpStatusError,
        CredentialRejected, NoAnswer or BackendError (an answer that is not JSON)."""
        path = self.target(request, values)
        body = fill_body(request.body, values) if request.body is not None else None
        headers = self.headers(request, values)
        if request.method != "GET" and self.options.idempotency_header:
            # One key per logical action, the same on its retries: the platform does it once.
            headers[self.options.idempotency_header] = str(uuid.uuid4())
        timeout = request.timeout or self.options.timeout
        attempts = 1 + self.options.retries
        delay = self.options.backoff
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self.client.request(
                    request.method, path, json=body, headers=headers, timeout=timeout, params=params
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as err:
                # The connection was never made: nothing reached the platform, so even a
                # mutating call can be sent again.
                if last:
                    raise NoAnswer(
                        f"{request.method} {path}: cannot connect to {self.options.base_url} ({_reason(err)})", sent=False
                    ) from None
            except httpx.TimeoutException:
                if not request.retry_safe or last:
                    raise NoAnswer(
                        f"{request.method} {path}: no answer from {self.options.base_url} within {timeout:g}s"
                        + ("" if request.retry_safe else " (not sent again: it may still take effect)"),
                        sent=True,
                    ) from None
            except httpx.TransportError as err:
                if not request.retry_safe or last:
                    raise NoAnswer(
                        f"{request.method} {path}: the connection to {self.options.base_url} broke ({_reason(err)})",
                        sent=True,
                    ) from None
            else:
                if response.status_code in RETRIED_STATUSES and request.retry_safe and not last:
                    log.info("%s %s answered %s; retrying (%d/%d)", request.method, path, response.status_code,
                             attempt, attempts - 1)
                else:
                    return self._answer(action, request, path, response)
            await self._sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _answer(self, action: str, request: Request, path: str, response: httpx.Response) -> Answer:
        status = response.status_code
        if status in (401, 403):
            raise CredentialRejected(request.method, path, status, trimmed(response.text), self.secret_names(request))
        if not 200 <= status < 300:
            error = ""
            try:
                data = response.json()
                if isinstance(data, dict) and isinstance(data.get("error"), str):
                    error = trimmed(data["error"])
            except ValueError:
                pass
            raise HttpStatusError(request.method, path, status, trimmed(response.text), error)
        if not response.content:
            return Answer(status, None)
        try:
            return Answer(status, response.json())
        except (ValueError, json.JSONDecodeError):
            raise BackendError(
                f"{request.method} {path} ({action}) answered {status} with a body that is not JSON: {trimmed(response.text)}"
            ) from None


def _reason(err: Exception) -> str:
    return trimmed(str(err)) or type(err).__name__
