"""The ``prometheus`` metrics source's options in a plan, and what they refuse.

Credentials are never values in a plan: options name an entry of the plan's ``[secrets]``
(which holds a ``keyring:``/``env:`` reference), resolved when a query is sent. TLS is
always verified; a private CA is trusted with ``ca_bundle``, never by switching it off.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cockpit.adapters.prometheus.presets import TEMPLATE_KEYS, PresetName
from cockpit.adapters.prometheus.render import placeholders_in
from cockpit.model import Track
from cockpit.units import Duration

BUILTIN_PLACEHOLDERS = frozenset({"service", "env", "track", "version", "interval", "namespace", "workload"})
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

# Keys people reach for that would put a credential in the plan or switch TLS off. Named
# so the refusal can say what to write instead (extra="forbid" alone says "extra input").
_INLINE_CREDENTIALS = frozenset(
    {"bearer_token", "token", "password", "basic_auth_password", "basic_auth", "authorization", "headers"}
)
_TLS_OFF = frozenset(
    {"verify", "verify_tls", "tls_verify", "insecure", "insecure_skip_verify", "disable_ssl", "tls_insecure"}
)


def _looks_like_a_value(name: str) -> bool:
    """A secret's name is short and wordy; a token is long, or mixes letters and digits."""
    mixed = any(c.isalpha() for c in name) and any(c.isdigit() for c in name)
    return len(name) > 40 or (mixed and len(name) >= 16) or name.lower().startswith(("bearer", "basic "))


class PrometheusOptions(BaseModel):
    """Reads the built-in metrics and custom checks from a Prometheus server (PromQL)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    url: str
    """Base URL of the Prometheus server (http or https), e.g. ``http://127.0.0.1:9090``."""

    preset: PresetName = "generic"
    """Metric names of the built-in metrics: generic (http_requests_total +
    http_request_duration_seconds), nginx, istio, linkerd, envoy or gateway."""

    templates: dict[str, str] = Field(default_factory=dict)
    """Replace a preset's PromQL per built-in metric, e.g. ``{ "latency-p99" = "..." }``."""

    namespace: str = "default"
    """``{namespace}`` in templates (Kubernetes namespace of the workloads)."""

    workloads: dict[Track, str] = Field(default_factory=dict)
    """``{workload}`` per track (``stable``, ``canary``): deployment, ingress or cluster
    name; the preset's Flagger-style default otherwise."""

    placeholders: dict[str, str] = Field(default_factory=dict)
    """More ``{name}`` values for templates and custom queries, the same for both tracks."""

    min_range: Duration = Field(default=0.0, ge=0)
    """Shortest ``{interval}`` sent: a shorter window is widened to this. ``rate()`` needs
    two samples in its range, so set it to about 2.5 x the scrape interval when windows
    (the live metrics refresh x 2, a check's interval) can be shorter; 0: as asked."""

    timeout: Duration = Field(default=2.0, gt=0)
    """How long one query may take before Prometheus counts as unavailable."""

    ca_bundle: Path | None = None
    """A PEM file of CA certificates to trust for an https URL (TLS is always verified)."""

    bearer_token_secret: str | None = None
    """Name of the plan's [secrets] entry holding a bearer token."""

    basic_auth_user: str | None = None
    """User name for basic auth (with ``basic_auth_password_secret``)."""

    basic_auth_password_secret: str | None = None
    """Name of the plan's [secrets] entry holding the basic auth password."""

    file_sd: Path | None = None
    """Write the backend's scrape targets here (Prometheus file-based service discovery)
    with service/env/track/version labels, on every collect."""

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsafe_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            inline = sorted(k for k in data if str(k).lower() in _INLINE_CREDENTIALS)
            if inline:
                raise ValueError(
                    f"{', '.join(inline)}: credentials are never written in a plan; store the value"
                    " (cockpit secrets set SERVICE/NAME), add a reference to [secrets] and name it with"
                    " bearer_token_secret, or basic_auth_user + basic_auth_password_secret"
                )
            tls = sorted(k for k in data if str(k).lower() in _TLS_OFF)
            if tls:
                raise ValueError(
                    f"{', '.join(tls)}: TLS verification cannot be turned off; to trust a private CA,"
                    " give its certificates with ca_bundle = 'path/to/ca.pem'"
                )
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL of the Prometheus server")
        if parts.username or parts.password:
            raise ValueError(
                "the URL holds credentials; use basic_auth_user + basic_auth_password_secret instead"
            )
        if parts.query or parts.fragment:
            raise ValueError("expected the server's base URL, without a query or fragment")
        return url.rstrip("/")

    @field_validator("bearer_token_secret", "basic_auth_password_secret")
    @classmethod
    def _secret_name(cls, name: str | None) -> str | None:
        # Never echo the value: it may be the credential itself, pasted in.
        if name is None:
            return None
        if name.startswith(("keyring:", "env:")):
            raise ValueError(
                "expected the name of an entry of [secrets], not a reference: put the reference in"
                " [secrets] (e.g. prom-token = 'keyring:...') and name it here"
            )
        if not _SECRET_NAME.match(name) or _looks_like_a_value(name):
            raise ValueError(
                "expected the name of an entry of [secrets] (such as 'prom-token'); this looks like"
                " a credential itself, which never goes in a plan"
            )
        return name

    @field_validator("templates")
    @classmethod
    def _known_metrics(cls, templates: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(templates) - set(TEMPLATE_KEYS))
        if unknown:
            raise ValueError(f"no built-in metric {', '.join(unknown)} (known: {', '.join(TEMPLATE_KEYS)})")
        return templates

    @field_validator("placeholders")
    @classmethod
    def _placeholder_names(cls, values: dict[str, str]) -> dict[str, str]:
        for name in values:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"placeholder name {name!r} must be lowercase letters, digits and _")
            if name in BUILTIN_PLACEHOLDERS:
                raise ValueError(f"{{{name}}} is filled by the source; set it with its own option instead")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> PrometheusOptions:
        if self.bearer_token_secret and (self.basic_auth_user or self.basic_auth_password_secret):
            raise ValueError("choose one of bearer_token_secret and basic auth, not both")
        if (self.basic_auth_user is None) != (self.basic_auth_password_secret is None):
            raise ValueError("basic auth needs both basic_auth_user and basic_auth_password_secret")
        known = BUILTIN_PLACEHOLDERS | set(self.placeholders)
        for metric, template in self.templates.items():
            unknown = sorted(placeholders_in(template) - known)
            if unknown:
                raise ValueError(
                    f"template {metric!r} uses unknown placeholder {', '.join('{' + n + '}' for n in unknown)}"
                    f" (known: {', '.join('{' + n + '}' for n in sorted(known))})"
                )
        return self
