"""Publish an environment's workloads to Prometheus through file-based service discovery.

Prometheus reads ``file_sd_configs`` files on change (and every ``refresh_interval``); this
module writes one such file per environment: one target group per track (and per metrics
path), each labelled ``service``, ``env``, ``track`` (stable|canary) and ``version``, so a
query selects a track by label without knowing which version runs there.

The file is replaced atomically (a temporary file in the same directory, then a rename):
Prometheus must never read half a file, or it drops every target of it until the next
good read. An unchanged file is not rewritten, so calling this on every metrics tick is
cheap and does not wake Prometheus up.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.model import Track

DEFAULT_PORTS = {"http": 80, "https": 443}


class TargetError(ValueError):
    """A scrape target URL that Prometheus could not scrape (no host, another scheme...)."""


def split_target(url: str) -> tuple[str, str, str]:
    """``(scheme, host:port, metrics path)`` of a scrape target URL; the port is made
    explicit (Prometheus' file SD takes ``host:port``, and a missing one means 80 to it
    even for https)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise TargetError(f"scrape target {url!r}: expected an http:// or https:// URL")
    if not parts.hostname:
        raise TargetError(f"scrape target {url!r}: no host")
    if parts.query or parts.fragment:
        # Prometheus would need `params` for a query; no backend hands out such URLs.
        raise TargetError(f"scrape target {url!r}: a query or fragment cannot be scraped through file SD")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as err:  # a port out of range or not a number
        raise TargetError(f"scrape target {url!r}: {err}") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}", parts.path or "/metrics"


def target_groups(
    service: str, env: str, targets: Mapping[Track, Sequence[str]], versions: Mapping[Track, str]
) -> list[dict[str, object]]:
    """The file SD document: per track, one group per (scheme, metrics path), in a stable
    order (tracks as :class:`Track` lists them, then scheme and path) so equal inputs give
    equal files. Tracks without targets get no group; a track whose version is unknown has
    no ``version`` label (an empty label is no label to Prometheus anyway)."""
    groups: list[dict[str, object]] = []
    for track in Track:
        grouped: dict[tuple[str, str], list[str]] = {}
        for url in targets.get(track, ()):
            scheme, address, path = split_target(url)
            hosts = grouped.setdefault((scheme, path), [])
            if address not in hosts:
                hosts.append(address)
        for (scheme, path), hosts in sorted(grouped.items()):
            labels = {"service": service, "env": env, "track": track.value}
            if versions.get(track):
                labels["version"] = versions[track]
            labels["__metrics_path__"] = path
            if scheme != "http":
                labels["__scheme__"] = scheme
            groups.append({"targets": hosts, "labels": labels})
    return groups


def write_targets(
    path: Path,
    service: str,
    env: str,
    targets: Mapping[Track, Sequence[str]],
    versions: Mapping[Track, str],
) -> None:
    """Write (or replace) the file SD file ``path`` with ``targets`` (the backend's
    ``scrape_targets()`` URLs) labelled for ``service``/``env``. Atomic; a no-op when the
    file already says the same. Raises :class:`TargetError` for a URL that cannot be a
    target, ``OSError`` when the directory cannot be written."""
    text = json.dumps(target_groups(service, env, targets, versions), indent=1) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so the rename is atomic; the suffix is not .json, so a
    # file_sd glob (`*.json`) never picks the half-written file up.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # Readable by a Prometheus running as another user (Debian's runs as `prometheus`).
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
