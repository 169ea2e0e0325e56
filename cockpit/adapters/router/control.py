"""Client of the router's JSON control API (see :mod:`cockpit.adapters.router.server`)."""

from __future__ import annotations

from typing import Any

import aiohttp

from cockpit.adapters.base import BackendError, BackendUnavailable
from cockpit.adapters.router.protocol import TOKEN_HEADER, DrainResult, RouterTable

STATE_TIMEOUT = 2.0
TABLE_TIMEOUT = 5.0
DRAIN_MARGIN = 5.0  # the router answers a drain after at most its timeout; this is for the round trip


class RouterControl:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, env: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.token = token
        self.env = env

    async def state(self, timeout: float = STATE_TIMEOUT) -> dict[str, Any]:
        return await self._call("GET", "/state", None, timeout)

    async def put(self, table: RouterTable) -> dict[str, Any]:
        """Replace the whole routing table at once; returns the router's state after it."""
        return await self._call("PUT", "/table", table.to_json(), TABLE_TIMEOUT)

    async def put_table(self, stable: list[str], canary: list[str], weight: int) -> dict[str, Any]:
        return await self.put(RouterTable(tuple(stable), tuple(canary), weight))

    async def drain(self, urls: list[str], timeout: float) -> DrainResult:
        # The router waits on its own in-flight counters: no polling from here.
        data = await self._call("POST", "/drain", {"urls": urls, "timeout": timeout}, timeout + DRAIN_MARGIN)
        in_flight = data.get("in_flight") or {}
        return DrainResult(drained=bool(data.get("drained", not in_flight)), in_flight=dict(in_flight))

    async def _call(self, method: str, path: str, body: Any, timeout: float) -> dict[str, Any]:
        try:
            async with self.session.request(
                method,
                self.url + path,
                json=body,
                headers={TOKEN_HEADER: self.token},
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except TimeoutError:
            raise BackendUnavailable(
                f"the router of environment {self.env} did not answer {method} {path} "
                f"within {timeout:g}s at {self.url}"
            ) from None
        except (aiohttp.ClientError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise BackendUnavailable(
                f"the router of environment {self.env} does not answer at {self.url} ({reason})"
            ) from None
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else data
            raise BackendError(f"the router of environment {self.env} refused {method} {path}: {error}")
        return data
