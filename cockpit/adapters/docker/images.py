"""Local images: find the one a version names, never pull, keep the last N deployed.

No registry is assumed reachable (and a pull would hang a rollout on the network): an
image that is not on the daemon is an error at once, saying so. Retention tags
(``<repo>:cockpit-<env>-<short id>``) keep the images of the last deployments even when
their version tag is moved or removed, so a rollback keeps running the build that served
(by version: the newest retained deployment's image id, see the backend's
``_rollback_image``; or by image id); only those tags are ever removed by the cockpit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import docker.errors

from cockpit.adapters.base import BackendError, VersionNotFound
from cockpit.adapters.docker.client import Daemon, api_message

_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


class ImageNotPresent(VersionNotFound):
    """The image is not on the daemon; the cockpit does not pull it."""


@dataclass(frozen=True, slots=True)
class Image:
    id: str  # sha256:...
    version: str  # the version it runs (the tag, or the version label of a retained image)
    healthcheck: bool  # the image declares a HEALTHCHECK

    @property
    def short_id(self) -> str:
        return short(self.id)


def short(image_id: str) -> str:
    """An image id as ``docker images`` shows it (12 hex digits)."""
    return image_id.removeprefix("sha256:")[:12]


def is_image_id(ref: str) -> bool:
    return bool(_ID.match(ref))


async def tagged(daemon: Daemon, repo: str, version: str) -> str | None:
    """The id of the image ``repo:version`` names now, ``None`` when no image has that tag."""
    try:
        return str((await daemon.call(daemon.client.images.get, f"{repo}:{version}")).id)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot read image {repo}:{version} from the Docker daemon: {api_message(exc)}") from None


async def tag_ids(daemon: Daemon, repo: str) -> dict[str, str]:
    """Tag -> image id of every tag of ``repo`` on the daemon, in one call."""
    try:
        found = await daemon.call(daemon.client.images.list, name=repo)
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot list the images of {repo}: {api_message(exc)}") from None
    prefix = f"{repo}:"
    return {t.removeprefix(prefix): str(i.id) for i in found for t in i.tags if t.startswith(prefix)}


def retention_tag(env: str, image_id: str) -> str:
    safe_env = re.sub(r"[^a-zA-Z0-9_.-]+", "-", env).strip("-.")[:40] or "env"
    return f"cockpit-{safe_env}-{image_id.removeprefix('sha256:')[:12]}"


def has_healthcheck(config: dict[str, Any] | None) -> bool:
    test = ((config or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


async def find(daemon: Daemon, repo: str, ref: str, versions: list[str], retained: dict[str, str]) -> Image:
    """The local image ``ref`` names: a version tag of ``repo`` (one of ``versions``) or an
    image id (full or 12+ hex digits) of a retained deployment (``retained``: id -> version).
    Raises :class:`VersionNotFound` / :class:`ImageNotPresent` with what was looked for."""
    if is_image_id(ref):
        full = _match_id(ref, retained)
        if full is None:
            known = ", ".join(f"{i.removeprefix('sha256:')[:12]} ({v})" for i, v in retained.items()) or "none"
            raise VersionNotFound(f"image {ref} is not one of the retained deployments (retained: {known})")
        image = await _get(daemon, full, f"retained image {full[:19]} ({retained[full]})")
        return Image(image.id, retained[full], has_healthcheck(image.attrs.get("Config")))
    if ref not in versions:
        raise VersionNotFound(f"version {ref!r} is not one of this environment's versions ({', '.join(versions)})")
    image = await _get(daemon, f"{repo}:{ref}", f"image {repo}:{ref}")
    return Image(image.id, ref, has_healthcheck(image.attrs.get("Config")))


def _match_id(ref: str, retained: dict[str, str]) -> str | None:
    wanted = ref.removeprefix("sha256:")
    hits = [i for i in retained if i.removeprefix("sha256:").startswith(wanted)]
    return hits[0] if len(hits) == 1 else None


async def _get(daemon: Daemon, name: str, what: str) -> Any:
    try:
        return await daemon.call(daemon.client.images.get, name)
    except docker.errors.ImageNotFound:
        raise ImageNotPresent(
            f"{what} is not present on the Docker daemon at {daemon.url}; the cockpit never pulls "
            "(no registry is assumed reachable): build it or `docker load` it there first"
        ) from None
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot read {what} from the Docker daemon: {api_message(exc)}") from None


async def retain(daemon: Daemon, repo: str, env: str, image: Image, keep: list[str]) -> None:
    """Tag ``image`` for retention and drop the retention tags of images not in ``keep``
    (ids, newest last). Only the cockpit's own ``cockpit-<env>-*`` tags are touched."""
    try:
        found = await daemon.call(daemon.client.images.get, image.id)
        await daemon.call(found.tag, repo, retention_tag(env, image.id))
        ours = f"{repo}:{retention_tag(env, '')}"
        for other in await daemon.call(daemon.client.images.list, name=repo):
            for tag in other.tags:
                if tag.startswith(ours) and other.id not in keep:
                    await daemon.call(daemon.client.images.remove, tag, noprune=False)
    except docker.errors.APIError as exc:
        # Retention is a convenience for later rollbacks: a failure must not fail a deploy.
        raise BackendError(f"could not update the retention tags of {repo}: {api_message(exc)}") from None
