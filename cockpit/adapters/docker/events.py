"""The Docker events stream of one environment's containers, read in a thread and handed
to the event loop: a container that dies is known within milliseconds, not at the next
poll. If the stream drops (daemon restarted, socket closed) it is opened again with
backoff, asking for the events since the last one seen, and the backend is told to
resynchronise (events could have been missed while it was down)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from cockpit.adapters.docker.client import Daemon, describe_failure

RECONNECT_BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
WATCHED = ("start", "die", "health_status", "destroy", "oom", "restart")

Event = dict[str, Any]


class EventWatcher:
    def __init__(
        self,
        daemon: Daemon,
        filters: dict[str, object],
        name: str,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[Event], None],
        on_resync: Callable[[str], None],
    ) -> None:
        self._daemon = daemon
        self._filters = {"type": "container", **filters}
        self._loop = loop
        self._on_event = on_event
        self._on_resync = on_resync  # called (on the loop) after a reconnect, with why
        self._stopped = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name=f"cockpit-docker-events-{name}", daemon=True)
        self.reconnects = 0
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            # Unblocks the reading thread; closing a broken stream can raise anything.
            with contextlib.suppress(Exception):
                stream.close()

    def drop(self) -> None:
        """Close the current stream as a broken connection would (the watcher reconnects)."""
        stream = self._stream
        if stream is not None:
            stream.close()

    def _run(self) -> None:
        since = time.time()
        failures = 0
        while not self._stopped.is_set():
            client = None
            try:
                client = self._daemon.new_client(timeout=None)  # a quiet stream is no timeout
                self._stream = client.events(decode=True, filters=self._filters, since=int(since))
                self.connected.set()
                if failures or self.reconnects:
                    self._post(self._on_resync, "the Docker events stream was reconnected")
                failures = 0
                for event in self._stream:
                    if self._stopped.is_set():
                        return
                    since = max(since, float(event.get("time", since)))
                    if event.get("Action", "").split(":")[0] in WATCHED:
                        self._post(self._on_event, event)
            except Exception as exc:
                if self._stopped.is_set():
                    return
                failures += 1
                if failures == 1:
                    self._post(self._on_resync, f"the Docker events stream dropped: {describe_failure(self._daemon.url, exc)}")
            finally:
                self.connected.clear()
                self._stream = None
                if client is not None:
                    client.close()
            if self._stopped.is_set():
                return
            # The stream ended: a daemon restart, or drop(). Reconnect, counting it.
            self.reconnects += 1
            self._stopped.wait(RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF) - 1)])

    def _post(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop is closed: the backend is gone
            self._stopped.set()

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)
