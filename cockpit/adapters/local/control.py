"""Client of the router's JSON control API (see :mod:`cockpit.adapters.local.router`)."""

from __future__ import annotations

from typing import Any

import aiohttp

from cockpit.adapters.base import BackendError, BackendUnavailable
from cockpit.adapters.local.protocol import TOKEN_HEADER


class RouterControl:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, env: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.token = token
        self.env = env

    async def state(self, timeout: float = 2.0) -> dict[str, Any]:
        return await self._call("GET", "/state", None, timeout)

    async def put_table(self, stable: list[str], canary: list[str], weight: int) -> dict[str, Any]:
        body = {"stable": stable, "canary": canary, "weight": weight}
        return await self._call("PUT", "/table", body, 5.0)

    async def drain(self, urls: list[str], timeout: float) -> dict[str, Any]:
        # The router waits on its own in-flight counters: no polling from here.
        return await self._call("POST", "/drain", {"urls": urls, "timeout": timeout}, timeout + 5.0)

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
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise BackendUnavailable(
                f"the router of environment {self.env} does not answer at {self.url} ({reason})"
            ) from None
        if status != 200:
            error = data.get("error") if isinstance(data, dict) else data
            raise BackendError(f"the router of environment {self.env} refused {method} {path}: {error}")
        return data
