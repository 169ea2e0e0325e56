"""The plan's options of the ``http`` backend: which request each action is, and where
the answer's fields are (JSON paths).

No I/O and no httpx here: the plan loader imports this to check a plan. Every template
is checked when the plan is read, so a typo in a placeholder fails ``cockpit check``
rather than a release: paths and bodies may use ``{service}``, ``{env}``, ``{version}``,
``{weight}``, ``{revision}`` (and ``{steps}`` in a platform rollout's body, ``{by}`` in a
pause command's: who paused); headers may
also embed ``{secret:NAME}``, a name from the plan's ``[secrets]`` table resolved when
the request is sent. A secret never goes in a path or a body (they appear in errors).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

from jsonpath_ng import parse as parse_path
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PLACEHOLDERS = frozenset({"service", "env", "version", "weight", "revision", "steps", "by"})
SECRET = re.compile(r"\{secret:([A-Za-z0-9_.-]+)\}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# What the cockpit's own driver needs (it walks the steps and calls these).
COCKPIT_ACTIONS = ("status", "versions", "deploy_canary", "set_weight", "promote", "abort", "rollback")
# The commands the mirror driver forwards when the platform walks the steps.
PLATFORM_COMMANDS = ("set-image", "promote", "promote-full", "pause", "resume", "abort", "retry", "set-weight", "undo")
REQUIRED_COMMANDS = ("set-image", "promote", "abort")
PhaseWord = Literal["Healthy", "Progressing", "Paused", "Degraded", "Aborted"]
PHASES: tuple[PhaseWord, ...] = ("Healthy", "Progressing", "Paused", "Degraded", "Aborted")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders of ``template`` (secret references left out)."""
    names: set[str] = set()
    for _, field, _, _ in string.Formatter().parse(SECRET.sub("", template)):
        if field is not None:
            names.add(field)
    return names


def _check_template(template: str, where: str, secrets_allowed: bool) -> None:
    if SECRET.search(template) and not secrets_allowed:
        raise ValueError(f"{where}: a {{secret:...}} may only be used in a header (paths and bodies show up in errors)")
    try:
        unknown = placeholders(template) - PLACEHOLDERS
    except ValueError as err:
        raise ValueError(f"{where}: {template!r} is not a valid template ({err})") from None
    if unknown:
        raise ValueError(
            f"{where}: unknown placeholder {{{sorted(unknown)[0]}}} in {template!r}"
            f" (known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}, and {{secret:NAME}} in headers)"
        )


def _walk_body(value: Any, where: str) -> None:
    if isinstance(value, str):
        _check_template(value, where, secrets_allowed=False)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_body(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_body(item, f"{where}[{i}]")


def check_json_path(path: str) -> str:
    try:
        parse_path(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as err:  # the parser raises plain Exceptions too
        raise ValueError(f"{path!r} is not a JSON path ({err})") from None
    return path


class Request(_Options):
    """One action as an HTTP request."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str
    """Joined to ``base_url``; a template (``/api/apps/{service}/envs/{env}/status``)."""
    body: dict[str, Any] | list[Any] | None = None
    """JSON body template. A string that is exactly one placeholder (``"{weight}"``) is
    replaced by the value with its type (a number stays a number)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers of this request only, added to the backend's ``headers``."""
    idempotent: bool | None = None
    """May this call be sent again after a failure? GET always is; a mutating call only
    when the plan says so (a PUT of the same weight, say)."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds for this request (default: the backend's ``timeout``)."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        _check_template(value, "path", secrets_allowed=False)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _checked_headers(value)

    @model_validator(mode="after")
    def _body(self) -> Request:
        _walk_body(self.body, "body")
        if self.method == "GET" and self.body is not None:
            raise ValueError("a GET request takes no body")
        return self

    @property
    def retry_safe(self) -> bool:
        return self.method == "GET" if self.idempotent is None else self.idempotent


def _checked_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header templates may embed ``{secret:NAME}`` (resolved when sent); nothing else unknown."""
    for name, template in headers.items():
        _check_template(template, f"header {name}", secrets_allowed=True)
    return headers


def _path_field(value: str | None) -> str | None:
    return None if value is None else check_json_path(value)


class StatusMap(_Options):
    """Where the status answer keeps each field (JSON paths)."""

    stable_version: str
    stable_desired: str
    stable_ready: str
    canary_version: str
    canary_desired: str
    canary_ready: str
    weight: str
    detail: str | None = None
    """A line the platform writes about the environment, shown as it is."""

    @field_validator("*")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path_field(value)


class RevisionsMap(_Options):
    """The revisions the platform keeps: a JSON path to the list, and paths inside each item."""

    items: str
    number: str = "$.revision"
    version: str = "$.version"

    @field_validator("*")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path_field(value)


def _same_words() -> dict[str, PhaseWord]:
    return {str(p): p for p in PHASES}


class RolloutMap(_Options):
    """Where the status answer says what the platform's rollout is doing (platform driver)."""

    phase: str
    """The rollout's phase; a missing rollout means none runs (Healthy)."""
    step: str
    """0-based index of the step the platform is on."""
    version: str
    """The version the rollout moves to."""
    message: str | None = None
    steps: str | None = None
    """The steps as the platform describes them (a list of text), shown instead of the
    plan's when given: after an attach the cockpit shows what the platform really runs."""
    pause: str | None = None
    """Why the rollout is paused, in the platform's word; one of ``user_pauses`` means by hand."""
    user_pauses: list[str] = Field(default_factory=lambda: ["user"])
    paused_by: str | None = None
    """Who paused it by hand."""
    paused_until: str | None = None
    """When a timed pause ends (unix seconds)."""
    phases: dict[str, PhaseWord] = Field(default_factory=_same_words)
    """The platform's phase words and what they mean; a word not listed is an error."""

    @field_validator("phase", "step", "version", "message", "steps", "pause", "paused_by", "paused_until")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path_field(value)


class LogsOptions(_Options):
    """Where the platform's log lines come from, and where each line keeps its fields."""

    mode: Literal["poll", "ndjson", "sse"]
    path: str
    """Polled (``poll``) or followed (``ndjson``: one JSON object a line; ``sse``: a ``data:``
    JSON object per event)."""
    lines: str = "$.lines[*]"
    """poll: the lines of one answer."""
    next: str = "$.next"
    """poll: the cursor to ask for next time."""
    cursor_param: str = "after"
    """poll: the query parameter carrying the cursor; ndjson: carrying the ``seq`` after the
    last line read, when the stream is opened again (sse resumes with Last-Event-ID)."""
    seq: str | None = "$.seq"
    """ndjson: a line's sequence number, so a reconnect loses no line."""
    interval: float = Field(default=1.0, gt=0)
    """poll: seconds between polls."""
    message: str = "$.message"
    ts: str | None = "$.ts"
    track: str | None = "$.track"
    version: str | None = "$.version"
    replica: str | None = "$.replica"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        _check_template(value, "logs.path", secrets_allowed=False)
        return value

    @field_validator("lines", "next", "seq", "message", "ts", "track", "version", "replica")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _path_field(value)


class HttpOptions(_Options):
    base_url: str
    """The platform's API, ``https://deploy.example.com`` (``http://`` only for a local one)."""
    driver: Literal["cockpit", "platform"] = "cockpit"
    """Who walks the canary steps: the cockpit (it calls the actions) or the platform (the
    cockpit starts the rollout, mirrors its status and forwards commands)."""
    verify: bool = True
    """TLS certificate verification. It stays on: give ``ca_bundle`` for a private CA."""
    ca_bundle: str | None = None
    """A PEM file of the CA(s) that signed the platform's certificate."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds per request unless the action sets its own."""
    retries: int = Field(default=3, ge=0, le=10)
    """Extra attempts of a call that is safe to repeat (GET or ``idempotent = true``)."""
    backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; doubled each time."""
    idempotency_header: str | None = "Idempotency-Key"
    """Header carrying a fresh key per mutating action (the same on its retries); "" for none."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request; ``{secret:NAME}`` is resolved when sent, e.g.
    ``Authorization = "Bearer {secret:deploy-token}"``."""
    url: str | None = None
    """Where users reach the service (shown on the screen)."""
    ready_timeout: float = Field(default=60.0, gt=0)
    """Seconds a new canary (or stable) may take until all its replicas are ready."""
    poll_interval: float = Field(default=0.25, gt=0)
    """Seconds between status reads while waiting for readiness."""
    actions: dict[str, Request]
    """The cockpit driver's actions by name: status, versions, deploy_canary, set_weight,
    promote, abort, rollback."""
    commands: dict[str, Request] = Field(default_factory=dict)
    """The platform driver's commands by name: set-image, promote, promote-full, pause,
    resume, abort, retry, set-weight, undo."""
    status: StatusMap
    versions: str = "$[*]"
    """JSON path to the version names in the ``versions`` answer."""
    revisions: RevisionsMap | None = None
    rollout: RolloutMap | None = None
    logs: LogsOptions | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _checked_headers(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"base_url must start with https:// (or http:// for a local platform), found {value!r}")
        return value.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).expanduser().is_file():
            raise ValueError(f"ca_bundle {value!r} is not a file (a PEM file of the CA that signed the platform's certificate)")
        return None if value is None else str(Path(value).expanduser())

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: str) -> str:
        return check_json_path(value)

    @model_validator(mode="after")
    def _consistent(self) -> HttpOptions:
        if not self.verify:
            raise ValueError(
                "verify = false is refused: TLS verification stays on. For a platform with a"
                " private CA, set ca_bundle to the CA's PEM file instead"
            )
        unknown = sorted(set(self.actions) - set(COCKPIT_ACTIONS))
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r} (known: {', '.join(COCKPIT_ACTIONS)})")
        unknown = sorted(set(self.commands) - set(PLATFORM_COMMANDS))
        if unknown:
            raise ValueError(f"unknown command {unknown[0]!r} (known: {', '.join(PLATFORM_COMMANDS)})")
        needed = ("status", "versions") + (COCKPIT_ACTIONS[2:] if self.driver == "cockpit" else ())
        missing = [a for a in needed if a not in self.actions]
        if missing:
            raise ValueError(f"driver = {self.driver!r} needs a request for action {missing[0]!r} (missing: {', '.join(missing)})")
        if self.driver == "platform":
            missing = [c for c in REQUIRED_COMMANDS if c not in self.commands]
            if missing:
                raise ValueError(f"driver = 'platform' needs a request for command {missing[0]!r} (missing: {', '.join(missing)})")
            if self.rollout is None:
                raise ValueError("driver = 'platform' needs a [rollout] table: where the status answer keeps phase, step and version")
            if self.revisions is None:
                raise ValueError("driver = 'platform' needs a [revisions] table: where the status answer lists the revisions")
        if self.idempotency_header == "":
            object.__setattr__(self, "idempotency_header", None)
        return self
