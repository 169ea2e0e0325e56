"""Drivers move a rollout; which one runs an environment depends on its backend."""

from __future__ import annotations

from collections.abc import Iterable

from cockpit.adapters.base import BackendConfigError, Capability
from cockpit.engine.drivers.base import Decision, Driver, DriverHost, GateRefused
from cockpit.engine.drivers.machine import MachineDriver

__all__ = ["Decision", "Driver", "DriverHost", "GateRefused", "MachineDriver", "driver_class"]


def driver_class(capabilities: Iterable[Capability], backend: str = "this") -> type[Driver]:
    """The machine driver unless the backend walks the steps itself (``DRIVES_STEPS``)."""
    if Capability.DRIVES_STEPS in frozenset(capabilities):
        # The mirror driver (the platform walks the steps; the cockpit mirrors and forwards)
        # plugs in here.
        raise BackendConfigError(f"the {backend} backend walks the steps itself; no mirror driver yet")
    return MachineDriver
