"""Options of the docker backend, as written in a plan's ``[env.backend.options]`` table.

No docker SDK here: a plan is validated (and a screen drawn) without the SDK being
imported, and the names stay importable where the ``docker`` extra is not installed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cockpit.adapters.option_checks import check_absolute_path, check_placeholders, check_versions
from cockpit.units import Duration, PositiveDuration

PLACEHOLDERS = frozenset({"version", "port", "env", "service"})


class RestartPolicy(BaseModel):
    """Docker's own restart policy for the containers the cockpit starts."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    policy: Literal["on-failure", "never"] = "on-failure"
    """``on-failure``: the Docker engine starts a container that exited with an error
    again (with its own doubling backoff); ``never``: a dead container stays out."""

    max_restarts: int = Field(default=5, ge=0, le=1000)
    """After this many restarts the engine gives up: the track reports a crash loop
    (a promote or a weight change is then refused by the cockpit's health gate)."""


class Adopt(BaseModel):
    """A container someone else runs, taken over as the stable track without a restart.
    The cockpit never removes it (it did not create it); a promote stops it, a rollback
    while it still exists starts it again."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    container: str | None = None
    """Its name (or id)."""

    compose_service: str | None = None
    """Or its Compose service: the one running container labelled
    ``com.docker.compose.service`` with this name."""

    compose_project: str | None = None
    """With ``compose_service``: only containers of this Compose project."""

    port: int | None = Field(default=None, ge=1, le=65535)
    """Where it answers on 127.0.0.1. Default: its first published host port (a container
    on the host network publishes none, so it needs this)."""

    version: str | None = None
    """The version it runs. Default: the tag of its image."""

    @model_validator(mode="after")
    def _one_way(self) -> Adopt:
        if (self.container is None) == (self.compose_service is None):
            raise ValueError("adopt needs exactly one of 'container' or 'compose_service'")
        if self.compose_project is not None and self.compose_service is None:
            raise ValueError("'compose_project' only goes with 'compose_service'")
        return self


class DockerOptions(BaseModel):
    """Runs each version as containers of a local image on the host network, behind the
    cockpit's weighted router (one port per container)."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, frozen=True, strict=True, allow_inf_nan=False
    )

    image: str = Field(min_length=1)
    """The image repository, e.g. ``"cockpit-demo"``: version ``V`` runs ``image:V``.
    Images must be present locally: the cockpit never pulls."""

    versions: list[str] = Field(min_length=1)
    """The versions (tags of ``image``) that may be deployed, oldest first. A rollback may
    also name a retained image by id (see ``retain``)."""

    docker_host: str | None = None
    """The daemon, e.g. ``"unix:///run/docker.sock"``. Default: ``DOCKER_HOST``, else the
    SDK's default socket."""

    command: list[str] = Field(default_factory=list)
    """Command of each container, overriding the image's. Placeholders: ``{version}``,
    ``{port}`` (the container's port), ``{env}``, ``{service}``. Empty: the image's own."""

    port_env: str = "PORT"
    """Environment variable that tells each container the port to listen on."""

    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the containers (besides ``port_env`` and ``secret_env``)."""

    secret_env: dict[str, str] = Field(default_factory=dict)
    """``{VAR = "name"}``: variables whose values are the plan's secrets; resolved when a
    container starts and masked in everything the cockpit shows."""

    replicas: int = Field(default=1, ge=1, le=16)
    """Containers per track (the router balances between them)."""

    port: int = Field(default=0, ge=0, le=65535)
    """Router port on 127.0.0.1, where users reach the service; 0 picks a free one."""

    base_port: int = Field(default=0, ge=0, le=65535)
    """First port of the containers (each takes the next free one from here), checked
    free before a container starts. 0: any free port."""

    traffic: Literal["weights", "replica-ratio"] = "weights"
    """``weights``: the router splits by exact percentages. ``replica-ratio``: the canary's
    share is its number of containers among all (a proxy that balances by container count
    can do no better); a weight is rounded to the nearest ratio the containers allow and
    the status shows the weight that ratio really gives (1 of 3 = 33 %)."""

    max_canary_replicas: int = Field(default=4, ge=1, le=32)
    """With ``replica-ratio``: most canary containers a weight may ask for."""

    health_path: str = "/healthz"
    """HTTP path probed when the image has no HEALTHCHECK."""

    health_timeout: PositiveDuration = 30.0
    """How long a new container may take to become healthy before the deploy fails."""

    health_interval: Duration = Field(default=0.5, gt=0)
    """How often serving containers are probed (HTTP) or their health status read."""

    health_failures: int = Field(default=2, ge=1, le=100)
    """Consecutive failed probes that take a container out of the routing table."""

    drain_timeout: Duration = 10.0
    """How long a retired container may take to finish its requests before it is stopped."""

    stop_timeout: Duration = 10.0
    """Seconds between SIGTERM and SIGKILL when a container is stopped."""

    keep_previous: Duration = 0.0
    """After a promote or a rollback, keep the previous stable containers running (out
    of the routing table) this long, so rolling back to them is instant. 0: stop at once."""

    retain: int = Field(default=5, ge=1, le=100)
    """Images of the last N deployments kept for rollback by id (the cockpit tags them
    ``<image>:cockpit-<env>-<id>`` so a moved tag cannot drop them)."""

    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    """Restart policy of the containers."""

    init: bool = True
    """Run the image's process under Docker's init (signals and zombies handled)."""

    adopt: Adopt | None = None
    """An already running container to take over as stable (see :class:`Adopt`)."""

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str]) -> list[str]:
        return check_placeholders(command, PLACEHOLDERS)

    @field_validator("versions")
    @classmethod
    def _unique_versions(cls, versions: list[str]) -> list[str]:
        return check_versions(versions)

    @field_validator("image")
    @classmethod
    def _repository_only(cls, image: str) -> str:
        if "@" in image or ":" in image.rpartition("/")[2]:
            raise ValueError(f"expected an image repository without tag or digest, found {image!r}")
        return image

    @field_validator("health_path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        return check_absolute_path(path)

    def render(self, *, version: str, port: int, env: str, service: str) -> list[str]:
        values = {"version": version, "port": port, "env": env, "service": service}
        return [arg.format(**values) for arg in self.command]
