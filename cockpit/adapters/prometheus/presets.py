"""PromQL templates of the built-in metrics, one set per metric naming people have.

The shape follows Flagger's per-mesh observers (fluxcd/flagger pkg/metrics/observers:
istio.go, linkerd.go, nginx.go, contour.go): the success rate is the non-5xx share of
``rate()`` over the window, the latency a ``histogram_quantile`` over the ``_bucket``
rates ``by (le)``. Differences, on purpose:

* rates are fractions 0..1 and latencies milliseconds (Flagger: percent, and duration
  metrics in the histogram's own unit); the engine turns fractions into percent;
* the 5xx side is wrapped in ``or vector(0)`` so a track without any 5xx series reads 0 %,
  not "no data" (Flagger's ratio has the same blind spot for a missing success series);
* every query selects one track, so stable and canary are measured apart (Kayenta-style
  comparison needs both).

Placeholders (filled by :mod:`cockpit.adapters.prometheus.render`): ``{service}``,
``{env}``, ``{track}``, ``{version}``, ``{interval}``, ``{namespace}``, ``{workload}``
(the track's workload, ingress or cluster name) and any the plan adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cockpit.model import Track

PresetName = Literal["generic", "nginx", "istio", "linkerd", "envoy", "gateway"]
TEMPLATE_KEYS = ("request-rate", "error-rate", "success-rate", "latency-p95", "latency-p99")
"""The built-in metrics a preset defines (the plan's ``metric`` names)."""


@dataclass(frozen=True)
class Preset:
    name: str
    templates: dict[str, str]
    workloads: dict[Track, str]
    """Default ``{workload}`` per track (may use ``{service}``), as Flagger names things."""


def _templates(requests: str, selector: str, error_match: str, buckets: str, to_ms: str) -> dict[str, str]:
    """The five templates of a counter ``requests`` with a status label matched by
    ``error_match`` (e.g. ``code=~"5.."``) and a histogram ``buckets`` (``_bucket`` series)
    whose unit ``to_ms`` converts ("* 1000" for seconds, "" for milliseconds)."""
    rate = f"sum(rate({requests}{{{selector}}}[{{interval}}]))"
    errors = f"(sum(rate({requests}{{{selector},{error_match}}}[{{interval}}])) or vector(0))"

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by (le) (rate({buckets}{{{selector}}}[{{interval}}]))){to_ms}"

    return {
        "request-rate": rate,
        "error-rate": f"{errors} / {rate}",
        "success-rate": f"1 - {errors} / {rate}",
        "latency-p95": quantile("0.95"),
        "latency-p99": quantile("0.99"),
    }


_FLAGGER_NAMES = {Track.STABLE: "{service}-primary", Track.CANARY: "{service}"}
"""Flagger's naming: the target deployment runs the canary, ``<name>-primary`` stable."""

_ENVOY_NAMES = {Track.STABLE: "{service}-primary", Track.CANARY: "{service}-canary"}
"""Flagger's services (and so Envoy clusters): ``<name>-primary`` and ``<name>-canary``."""

PRESETS: dict[str, Preset] = {
    # An app instrumented by a Prometheus client library, its targets labelled by the
    # cockpit's file SD (service, env, track, version): no names to configure.
    "generic": Preset(
        "generic",
        _templates(
            "http_requests_total",
            'service="{service}",env="{env}",track="{track}"',
            'code=~"5.."',
            "http_request_duration_seconds_bucket",
            " * 1000",
        ),
        {Track.STABLE: "{service}", Track.CANARY: "{service}"},
    ),
    # ingress-nginx; Flagger's nginx router keeps the apex ingress for the primary and adds
    # "<ingress>-canary" (nginx.go selects namespace + ingress, status!~"5.*").
    "nginx": Preset(
        "nginx",
        _templates(
            "nginx_ingress_controller_requests",
            'namespace="{namespace}",ingress="{workload}"',
            'status=~"5.."',
            "nginx_ingress_controller_request_duration_seconds_bucket",
            " * 1000",
        ),
        {Track.STABLE: "{service}", Track.CANARY: "{service}-canary"},
    ),
    # Istio's standard metrics as istio.go reads them: the destination reporter, by
    # destination workload and its namespace; durations already in milliseconds.
    "istio": Preset(
        "istio",
        _templates(
            "istio_requests_total",
            'reporter="destination",destination_workload_namespace="{namespace}",destination_workload="{workload}"',
            'response_code=~"5.."',
            "istio_request_duration_milliseconds_bucket",
            "",
        ),
        _FLAGGER_NAMES,
    ),
    # Linkerd's proxy metrics as linkerd.go reads them: inbound, by deployment; a failure is
    # what the proxy classifies as one (5xx, or a gRPC error).
    "linkerd": Preset(
        "linkerd",
        _templates(
            "response_total",
            'namespace="{namespace}",deployment="{workload}",direction="inbound"',
            'classification="failure"',
            "response_latency_ms_bucket",
            "",
        ),
        _FLAGGER_NAMES,
    ),
    # Plain Envoy: one upstream cluster per track, named exactly by the workload.
    "envoy": Preset(
        "envoy",
        _templates(
            "envoy_cluster_upstream_rq",
            'envoy_cluster_name="{workload}"',
            'envoy_response_code=~"5.."',
            "envoy_cluster_upstream_rq_time_bucket",
            "",
        ),
        _ENVOY_NAMES,
    ),
    # Envoy behind a Gateway API / Contour gateway: clusters are "<namespace>_<service>_<port>"
    # (contour.go's envoy_cluster_name=~"{{ namespace }}_{{ target }}-canary_[0-9a-zA-Z-]+").
    "gateway": Preset(
        "gateway",
        _templates(
            "envoy_cluster_upstream_rq",
            'envoy_cluster_name=~"{namespace}_{workload}_[0-9a-zA-Z-]+"',
            'envoy_response_code=~"5.."',
            "envoy_cluster_upstream_rq_time_bucket",
            "",
        ),
        _ENVOY_NAMES,
    ),
}
