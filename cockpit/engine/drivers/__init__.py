"""Drivers move a rollout; which one runs an environment depends on its backend."""

from __future__ import annotations

from collections.abc import Iterable

from cockpit.adapters.base import Capability
from cockpit.engine.drivers.base import Decision, Driver, DriverHost, GateRefused
from cockpit.engine.drivers.machine import MachineDriver
from cockpit.engine.drivers.mirror import MirrorDriver

__all__ = ["Decision", "Driver", "DriverHost", "GateRefused", "MachineDriver", "MirrorDriver", "driver_class"]


def driver_class(capabilities: Iterable[Capability], backend: str = "this") -> type[Driver]:
    """The machine driver unless the backend walks the steps itself (``DRIVES_STEPS``): the mirror."""
    if Capability.DRIVES_STEPS in frozenset(capabilities):
        return MirrorDriver  # the platform walks the steps; the cockpit mirrors and forwards
    return MachineDriver
