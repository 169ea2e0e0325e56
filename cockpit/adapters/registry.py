"""Find adapters by name through entry points, so third parties can add backends.

Listing reads only package metadata (nothing is imported); an adapter's module is
imported when a plan actually uses it. The built-in adapters are also listed here
so a source checkout that was never ``pip install``-ed still works.

A third-party backend is a package that declares, in its ``pyproject.toml``::

    [project.entry-points."cockpit.backends"]
    mybackend = "my_package.module:MyBackend"

where ``MyBackend`` subclasses :class:`~cockpit.adapters.base.DeployBackend` (with an
``Options`` pydantic model) and passes ``cockpit.adapters.testing.BackendContract``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from cockpit.adapters.base import AdapterContext, DeployBackend, MetricsSource

BACKENDS_GROUP = "cockpit.backends"
METRICS_GROUP = "cockpit.metrics_sources"

_BUILTIN: dict[str, dict[str, str]] = {
    BACKENDS_GROUP: {
        "local": "cockpit.adapters.local:LocalBackend",
        "docker": "cockpit.adapters.docker:DockerBackend",
        "http": "cockpit.adapters.http:HttpBackend",
    },
    METRICS_GROUP: {
        "scrape": "cockpit.adapters.scrape:ScrapeMetricsSource",
        "prometheus": "cockpit.adapters.prometheus.source:PrometheusMetricsSource",
    },
}

# The built-in adapters whose SDK comes with an extra: a missing import says which to install.
_EXTRAS = {"cockpit.adapters.docker": "docker", "cockpit.adapters.prometheus": "prometheus"}


def _install_hint(module_name: str) -> str:
    extra = next((e for prefix, e in _EXTRAS.items() if module_name.startswith(prefix)), None)
    return f" (install it with: pip install 'cockpit[{extra}]')" if extra else ""


class UnknownAdapter(LookupError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r} (known: {', '.join(known) or 'none'})")
        self.name = name
        self.known = known


class AdapterLoadError(ImportError):
    """A registered adapter cannot be used: its module does not import, the name it points
    at does not exist, or it is not a subclass of the role with an ``Options`` model.

    An ImportError, so callers that already report "adapter failed to load" (the plan
    loader) report this too; the message names the entry point so the user knows which
    installed package is at fault."""


@dataclass(frozen=True)
class AdapterRef:
    name: str
    target: str  # "module:attribute"
    group: str = BACKENDS_GROUP

    def describe(self) -> str:
        return f"entry point {self.name!r} in group {self.group!r} ({self.target})"

    def load(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            hint = _install_hint(module_name) if isinstance(err, ModuleNotFoundError) else ""
            raise AdapterLoadError(f"{self.describe()}: cannot import {module_name}: {err}{hint}") from err
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise AdapterLoadError(f"{self.describe()}: {module_name} has no {attribute!r}") from None


def _refs(group: str) -> dict[str, AdapterRef]:
    refs = {name: AdapterRef(name, target, group) for name, target in _BUILTIN[group].items()}
    for ep in entry_points(group=group):
        refs[ep.name] = AdapterRef(ep.name, ep.value, group)
    return refs


def backend_names() -> list[str]:
    return sorted(_refs(BACKENDS_GROUP))


def metrics_source_names() -> list[str]:
    return sorted(_refs(METRICS_GROUP))


def _load(group: str, kind: str, name: str) -> tuple[AdapterRef, object]:
    refs = _refs(group)
    if name not in refs:
        raise UnknownAdapter(kind, name, sorted(refs))
    ref = refs[name]
    return ref, ref.load()


def _not_a(ref: AdapterRef, loaded: object, role: type) -> AdapterLoadError:
    return AdapterLoadError(f"{ref.describe()}: loads {loaded!r}, which is not a {role.__name__} subclass")


def _check_options(ref: AdapterRef, cls: type) -> None:
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise AdapterLoadError(
            f"{ref.describe()}: {cls.__name__}.Options must be a pydantic model, found {options!r}"
        )


# The role check is written out per role rather than in one generic helper: the roles are
# abstract classes, and a ``type[T]`` parameter only takes concrete ones (mypy's
# type-abstract); the ``issubclass`` in each function is also what narrows the return type.


def backend_class(name: str) -> type[DeployBackend]:
    """The DeployBackend subclass registered as ``name`` (its ``Options`` is a pydantic model).
    Raises :class:`UnknownAdapter` or :class:`AdapterLoadError`."""
    ref, loaded = _load(BACKENDS_GROUP, "backend adapter", name)
    if not (isinstance(loaded, type) and issubclass(loaded, DeployBackend)):
        raise _not_a(ref, loaded, DeployBackend)
    _check_options(ref, loaded)
    return loaded


def metrics_source_class(name: str) -> type[MetricsSource]:
    """The MetricsSource subclass registered as ``name`` (its ``Options`` is a pydantic model).
    Raises :class:`UnknownAdapter` or :class:`AdapterLoadError`."""
    ref, loaded = _load(METRICS_GROUP, "metrics source", name)
    if not (isinstance(loaded, type) and issubclass(loaded, MetricsSource)):
        raise _not_a(ref, loaded, MetricsSource)
    _check_options(ref, loaded)
    return loaded


def create_backend(name: str, ctx: AdapterContext, raw_options: Mapping[str, Any]) -> DeployBackend:
    """Validate ``raw_options`` (a plan's ``[env.backend.options]``) with the backend's
    ``Options`` model and construct it. Raises pydantic's ValidationError on bad options
    (the plan loader reports them with line numbers before a session gets here)."""
    cls = backend_class(name)
    return cls(ctx, cls.Options.model_validate(raw_options))


def create_metrics_source(
    name: str, ctx: AdapterContext, raw_options: Mapping[str, Any], backend: DeployBackend
) -> MetricsSource:
    """Like :func:`create_backend`, for the metrics source reading ``backend``'s environment."""
    cls = metrics_source_class(name)
    return cls(ctx, cls.Options.model_validate(raw_options), backend)


def register(group: str, name: str, target: str) -> None:
    """Register an adapter at run time (tests, embedding); entry points are the normal way."""
    _BUILTIN.setdefault(group, {})[name] = target
