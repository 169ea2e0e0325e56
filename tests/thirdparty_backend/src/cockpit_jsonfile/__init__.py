"""An example out-of-tree cockpit backend (see README.md)."""

from cockpit_jsonfile.backend import JsonFileBackend, JsonFileOptions

__all__ = ["JsonFileBackend", "JsonFileOptions"]
