"""What the cockpit writes on the containers it starts, and how it reads them back.

Labels are fixed when a container is created, so they carry what never changes: the
service, the environment, the version, the image, the replica's index, its port and
the deployment (``release``) it belongs to. The *track* changes (a promoted canary
becomes stable without a restart), so it lives in the container's name, which Docker
lets us change on a running container: ``<service>.<env>.<track>.<release>.<index>``.
``docker ps`` then shows every container's current track too. The ``cockpit.track``
label keeps the track the container was created for.

Every query filters on the service and environment labels: the cockpit never looks at,
stops or removes a container it did not label (adopted containers aside, which the plan
names explicitly and which are never removed)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PREFIX = "io.cockpit"
SERVICE = f"{PREFIX}.service"
ENV = f"{PREFIX}.env"
TRACK = f"{PREFIX}.track"  # the track it was created for
VERSION = f"{PREFIX}.version"
IMAGE_ID = f"{PREFIX}.image-id"
RELEASE = f"{PREFIX}.release"
INDEX = f"{PREFIX}.replica"
PORT = f"{PREFIX}.port"
TASK = f"{PREFIX}.task"  # a one-off release task container

TRACKS = ("stable", "canary", "previous")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
_NAME = re.compile(r"^/?(?P<stem>.+)\.(?P<track>stable|canary|previous)\.(?P<release>[0-9a-f]+)\.(?P<index>\d+)$")


def selector(service: str, env: str) -> list[str]:
    """Label filters of every container of this service and environment."""
    return [f"{SERVICE}={service}", f"{ENV}={env}"]


def selector_dict(service: str, env: str) -> dict[str, str]:
    return {SERVICE: service, ENV: env}


def stem(service: str, env: str) -> str:
    return _UNSAFE.sub("-", f"{service}.{env}").strip("-.") or "cockpit"


def container_name(service: str, env: str, track: str, release: str, index: int) -> str:
    return f"{stem(service, env)}.{track}.{release}.{index}"


def renamed(name: str, track: str) -> str:
    """``name`` with its track replaced (the rest stays, so it remains unique)."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a container name the cockpit gave")
    return f"{match['stem']}.{track}.{match['release']}.{match['index']}"


def make(
    *, service: str, env: str, track: str, version: str, image_id: str, release: str, index: int, port: int
) -> dict[str, str]:
    return {
        SERVICE: service,
        ENV: env,
        TRACK: track,
        VERSION: version,
        IMAGE_ID: image_id,
        RELEASE: release,
        INDEX: str(index),
        PORT: str(port),
    }


@dataclass(frozen=True, slots=True)
class Found:
    """A labelled container as read from the daemon."""

    id: str
    name: str
    track: str  # current track, from the name
    version: str
    image_id: str
    release: str
    index: int
    port: int
    status: str  # Docker's State.Status: created, running, restarting, exited, dead, ...
    health: str | None  # State.Health.Status when the container has a HEALTHCHECK
    restart_count: int
    exit_code: int
    oom_killed: bool

    @property
    def running(self) -> bool:
        return self.status == "running"


def read(attrs: dict[str, Any]) -> Found | None:
    """A container's inspect data as a :class:`Found`; ``None`` for a container whose name
    or labels are not the cockpit's (a task container, or one renamed by hand)."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    match = _NAME.match(attrs.get("Name", ""))
    if match is None or TASK in labels:
        return None
    state = attrs.get("State") or {}
    health = state.get("Health") or None
    try:
        index, port = int(labels[INDEX]), int(labels[PORT])
        return Found(
            id=attrs["Id"],
            name=attrs["Name"].lstrip("/"),
            track=match["track"],
            version=labels[VERSION],
            image_id=labels.get(IMAGE_ID, attrs.get("Image", "")),
            release=labels[RELEASE],
            index=index,
            port=port,
            status=str(state.get("Status", "unknown")),
            health=health.get("Status") if isinstance(health, dict) else None,
            restart_count=int(attrs.get("RestartCount", 0)),
            exit_code=int(state.get("ExitCode", 0)),
            oom_killed=bool(state.get("OOMKilled", False)),
        )
    except (KeyError, ValueError):
        return None
