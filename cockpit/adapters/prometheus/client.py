"""Talking to a Prometheus server through prometheus-api-client, and what its failures mean.

``PrometheusConnect`` is synchronous (requests): every call here is blocking and the
source runs it with ``asyncio.to_thread``. Each failure becomes one of the adapter errors
with a message saying which server, what happened and for how long it was waited for;
every message passes through :func:`cockpit.secrets.redact` and none carries a header.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import Retry

from cockpit.adapters.base import BackendConfigError, BackendError, BackendUnavailable
from cockpit.secrets import redact

_STATUS = re.compile(r"HTTP Status Code (\d+) \((b'.*'|b\".*\")\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Credentials:
    """What goes with every request: a header or a basic-auth pair, or nothing."""

    headers: dict[str, str] | None = None
    basic: tuple[str, str] | None = None


class PrometheusServer:
    """One server: a lazily built client (no I/O until the first query), a timeout per
    call, TLS verified (with an optional CA bundle), credentials resolved on first use
    and again after the server refused them."""

    def __init__(
        self,
        url: str,
        timeout: float,
        ca_bundle: Path | None = None,
        credentials: Callable[[], Credentials] = Credentials,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.ca_bundle = ca_bundle
        self._credentials = credentials
        self._client: PrometheusConnect | None = None
        # A window's queries run in several worker threads at once: one client, and the
        # secrets read once, not once per thread.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ blocking calls

    def query(self, promql: str) -> Any:
        """The ``result`` of an instant query: a list of series, or ``[ts, value]`` for a
        scalar. Raises a :class:`BackendError`."""
        client = self._connect()
        try:
            return client.custom_query(promql, timeout=self.timeout)
        except PrometheusApiClientException as err:
            raise self._http_error(err, promql) from None
        except requests.RequestException as err:
            raise self._transport_error(err) from None
        except (ValueError, KeyError, TypeError):
            raise BackendUnavailable(f"{self.url} did not answer as the Prometheus API does") from None
        except Exception as err:  # urllib3's own errors can escape requests: still "unavailable"
            raise BackendUnavailable(
                redact(f"Prometheus at {self.url} failed: {type(err).__name__}")
            ) from None

    def get(self, path: str, params: dict[str, str]) -> requests.Response:
        """A GET on another API path (e.g. ``/api/v1/format_query``) with the same TLS,
        credentials and timeout; the caller reads the status."""
        client = self._connect()
        try:
            return client._session.get(
                f"{self.url}{path}",
                params=params,
                headers=client.headers,
                auth=client.auth,
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise self._transport_error(err) from None
        except Exception as err:
            raise BackendUnavailable(
                redact(f"Prometheus at {self.url} failed: {type(err).__name__}")
            ) from None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ internals

    def _connect(self) -> PrometheusConnect:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> PrometheusConnect:
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise BackendConfigError(f"ca_bundle {self.ca_bundle} is not a readable file")
        creds = self._credentials()
        session = requests.Session()
        # The session's verify is what the client sends with every request: True, or the
        # CA bundle to verify against. Never False.
        session.verify = str(self.ca_bundle) if self.ca_bundle is not None else True
        # No retries inside a call: a down server must fail within the timeout; the engine
        # retries with backoff and shows that it does.
        return PrometheusConnect(
            url=self.url,
            headers=creds.headers,
            auth=creds.basic,
            session=session,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0),
            timeout=self.timeout,  # requests takes seconds as a float
        )

    def _transport_error(self, err: requests.RequestException) -> BackendError:
        if isinstance(err, requests.exceptions.SSLError):
            return BackendConfigError(
                redact(
                    f"TLS verification of {self.url} failed ({_reason(err)}); give the server's CA with ca_bundle"
                )
            )
        if isinstance(err, requests.exceptions.Timeout) or "timed out" in str(err):
            return BackendUnavailable(f"Prometheus at {self.url} did not answer within {self.timeout:g}s")
        return BackendUnavailable(redact(f"Prometheus at {self.url} is unreachable: {_reason(err)}"))

    def _http_error(self, err: PrometheusApiClientException, promql: str) -> BackendError:
        status, error = _status_and_error(str(err))
        if status in (401, 403):
            # The server refused what was sent: forget it, so a fixed secret is read again.
            self.close()
            word = (
                "refused the credentials (401 Unauthorized)"
                if status == 401
                else "denied access (403 Forbidden)"
            )
            return BackendConfigError(
                f"Prometheus at {self.url} {word}; check the secret named by bearer_token_secret"
                " or basic_auth_password_secret"
            )
        if status in (400, 422):
            return BackendConfigError(redact(f"Prometheus rejected the query {promql!r}: {error}"))
        if status == 404:
            return BackendConfigError(f"{self.url} has no Prometheus query API (404); check the url option")
        return BackendUnavailable(redact(f"Prometheus at {self.url} answered {status}: {error}"))


def _reason(err: Exception) -> str:
    """The innermost cause's words (requests nests urllib3's errors several deep)."""
    text = str(err)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "certificate verify failed",
        "Connection reset",
    ):
        if marker in text:
            return marker.lower() if marker != "certificate verify failed" else marker
    return type(err).__name__


def _status_and_error(message: str) -> tuple[int, str]:
    """The HTTP status and Prometheus' ``error`` from prometheus-api-client's exception
    text ("HTTP Status Code 400 (b'{...json...}')")."""
    match = _STATUS.match(message)
    if not match:
        return 0, message
    status = int(match.group(1))
    try:
        body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
    except (ValueError, SyntaxError):
        return status, ""
    try:
        payload = json.loads(body)
    except ValueError:
        return status, body.strip()[:200]
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return status, payload["error"]
    return status, body.strip()[:200]
