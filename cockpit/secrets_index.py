"""The names (never the values) of the secrets ``cockpit secrets set`` stored.

A keyring cannot list its entries portably, so ``cockpit secrets list`` reads this index:
a JSON list of ``SERVICE/NAME`` in the cockpit's config dir (``COCKPIT_CONFIG_DIR``, else
``~/.config/cockpit``), written 0600 by ``set`` and ``delete``. Names only: a value is
never written here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from cockpit import paths

FILE_NAME = "secret-names.json"


class SecretIndexError(Exception):
    """The index cannot be read or written; the message says which file and why."""


def index_path() -> Path:
    return paths.config_dir() / FILE_NAME


def read_names(path: Path | None = None) -> list[str]:
    path = path or index_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SecretIndexError(f"the index of secret names {path} cannot be read ({err})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SecretIndexError(f"the index of secret names {path} is not a list of names")
    return sorted(set(names))


def _write(names: list[str], path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written whole to a private temporary file, then renamed: never half an index.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-names.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"names": sorted(set(names))}, out, indent=1)
                out.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise SecretIndexError(f"the index of secret names {path} cannot be written ({err.strerror or err})") from None


def add_name(ref: str, path: Path | None = None) -> None:
    """Add ``ref``. A broken index is left as it is (SecretIndexError): rewriting it would lose its names."""
    path = path or index_path()
    names = read_names(path)
    if ref not in names:
        _write([*names, ref], path)


def remove_name(ref: str, path: Path | None = None) -> None:
    path = path or index_path()
    names = read_names(path)
    if ref in names:
        _write([n for n in names if n != ref], path)
