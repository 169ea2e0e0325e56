"""What a platform that walks the rollout steps itself reports (Argo Rollouts, Flagger).

The types live in :mod:`cockpit.model` with the other observations every layer shares
(the engine's mirror driver reads them); this module keeps the adapters' import path.
"""

from cockpit.model import (
    AnalysisPhase,
    Operation,
    PauseReason,
    PlatformAnalysisRun,
    PlatformMeasurement,
    PlatformMetricResult,
    PlatformRevision,
    PlatformRollout,
    RolloutPhase,
)

__all__ = [
    "AnalysisPhase",
    "Operation",
    "PauseReason",
    "PlatformAnalysisRun",
    "PlatformMeasurement",
    "PlatformMetricResult",
    "PlatformRevision",
    "PlatformRollout",
    "RolloutPhase",
]
