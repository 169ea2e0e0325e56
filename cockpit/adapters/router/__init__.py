"""The weighted HTTP router any backend can run in front of its workloads.

* :mod:`~cockpit.adapters.router.server` - the router process itself
  (``python -m cockpit.adapters.router``): splits requests between a stable and a canary
  track by weight, drains retired upstreams, answers a small JSON control API;
* :mod:`~cockpit.adapters.router.protocol` - the names both sides share
  (:class:`RouterTable`, :class:`DrainResult`, the token header);
* :mod:`~cockpit.adapters.router.control` - :class:`RouterControl`, the typed client of
  that control API (what a read-only attach uses);
* :mod:`~cockpit.adapters.router.handle` - :class:`RouterHandle`, the router's lifecycle:
  held listening sockets, supervision, restart with the table restored, crash loop.

Nothing here knows which backend runs the workloads behind it: a backend hands the
handle its listening sockets, a marker and a log target
(:class:`cockpit.adapters.supervise.logs.LogTarget`), and pushes upstream URLs.

The names are loaded on first use: the router process imports this package too and
should not pay for aiohttp's client side and the adapter base at start."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.adapters.router.control import RouterControl
    from cockpit.adapters.router.handle import RouterHandle
    from cockpit.adapters.router.protocol import DrainResult, RouterTable

__all__ = ["DrainResult", "RouterControl", "RouterHandle", "RouterTable"]

_WHERE = {
    "RouterControl": "control",
    "RouterHandle": "handle",
    "DrainResult": "protocol",
    "RouterTable": "protocol",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
