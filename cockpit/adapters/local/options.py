"""Options of the local backend, as written in a plan's ``[env.backend]`` table."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cockpit.adapters.option_checks import check_absolute_path, check_placeholders, check_versions
from cockpit.units import Duration, PositiveDuration

PLACEHOLDERS = frozenset({"python", "version", "port", "env", "service", "state_dir"})
DEMO_COMMAND = [
    "{python}", "-m", "cockpit.demo.service",
    "--version", "{version}", "--port", "{port}", "--env", "{env}",
]  # fmt: skip


class RestartPolicy(BaseModel):
    """What happens to a replica whose process exits while it serves."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    policy: Literal["on-failure", "never"] = "on-failure"
    """``on-failure``: start it again (after ``backoff``, doubling up to ``max_backoff``);
    ``never``: leave it out of the routing table."""

    max_restarts: int = Field(default=5, ge=0, le=1000)
    """More restarts than this within ``window`` make the track a crash loop: no more
    restarts, and the track reports it (a promote or a weight change is then refused)."""

    window: Duration = 60.0
    """The sliding window ``max_restarts`` counts in."""

    backoff: Duration = 1.0
    """Wait before the first restart; doubled after each restart within ``window``."""

    max_backoff: Duration = 30.0
    """Ceiling of the doubling backoff."""


class LocalOptions(BaseModel):
    """Runs each version as real processes on 127.0.0.1 behind a weighted router."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, frozen=True, strict=True, allow_inf_nan=False
    )

    command: list[str] = Field(default_factory=lambda: list(DEMO_COMMAND), min_length=1)
    """Command that starts one replica. Placeholders: ``{python}`` (this interpreter),
    ``{version}``, ``{port}`` (a free port chosen per replica), ``{env}``, ``{service}``,
    ``{state_dir}`` (the cockpit's state dir, e.g. for a per-environment SQLite file). Defaults to the embedded demo service."""

    versions: list[str] = Field(min_length=1)
    """The versions that exist, oldest first; deploying any other version is an error."""

    replicas: int = Field(default=1, ge=1, le=8)
    """Processes per version (the router balances between them)."""

    port: int = Field(default=0, ge=0, le=65535)
    """Router port on 127.0.0.1, where users reach the service; 0 picks a free one."""

    health_path: str = "/healthz"
    """Path that must answer 200 before a replica is given traffic."""

    health_timeout: PositiveDuration = 15.0
    """How long a new replica may take to become healthy before the deploy fails."""

    drain_timeout: Duration = 10.0
    """How long a retired replica may take to finish its requests in flight before it is
    stopped anyway."""

    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the service processes. They get these, the ``secret_env``
    values, ``PORT`` and a minimal base (``PATH``, ``LANG``, ``LC_ALL``, ``HOME``, ``TZ``),
    not the cockpit's own environment."""

    secret_env: dict[str, str] = Field(default_factory=dict)
    """Environment variables whose values are secrets: ``{VAR = "name"}`` where ``name`` is
    a key of the plan's ``[secrets]`` table. Resolved when a replica starts; the value is
    masked in everything the cockpit shows."""

    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    """Restart policy for replicas that exit while they serve."""

    health_interval: Duration = Field(default=0.5, gt=0)
    """How often a serving replica's ``health_path`` is probed."""

    health_failures: int = Field(default=2, ge=1, le=100)
    """Consecutive failed probes that take a replica out of the routing table."""

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str]) -> list[str]:
        return check_placeholders(command, PLACEHOLDERS)

    @field_validator("versions")
    @classmethod
    def _unique_versions(cls, versions: list[str]) -> list[str]:
        return check_versions(versions)

    @field_validator("health_path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        return check_absolute_path(path)

    def render(
        self, *, version: str, port: int, env: str, service: str, python: str, state_dir: str = ""
    ) -> list[str]:
        values = {
            "python": python, "version": version, "port": port, "env": env, "service": service,
            "state_dir": state_dir,
        }  # fmt: skip
        return [arg.format(**values) for arg in self.command]
