"""Evidence: what a finished study shows, computed from its storage alone.

:mod:`optuna_ohgw.evidence.metrics` turns one study's trials (timestamps, reported validation
values, the per-epoch accounting and the ``ohgw.*`` user attrs) into its metrics: anytime curves
of the best validation value and of the incumbent's test accuracy on three clocks (``"epochs"``,
``"compute"``, ``"wall"``), time to the target (``None`` = right-censored), total epochs and
compute, the probe's share of compute, final hyperparameter distributions and applied steps.
"""

from __future__ import annotations

from optuna_ohgw.evidence.metrics import (
    CLOCKS,
    Clock,
    FirstEpoch,
    Point,
    StudyMetrics,
    anytime_curve,
    anytime_test_curve,
    applied_steps,
    best_test_accuracy,
    best_value,
    budget_used,
    compute_metrics,
    epoch_count,
    final_hyperparameters,
    first_epochs,
    probe_share,
    ranked_configurations,
    startup_seconds,
    time_to_target,
    total_compute,
    total_epochs,
    total_probe_seconds,
    trial_compute,
    without_inherited,
)

__all__ = [
    "CLOCKS",
    "Clock",
    "FirstEpoch",
    "Point",
    "StudyMetrics",
    "anytime_curve",
    "anytime_test_curve",
    "applied_steps",
    "best_test_accuracy",
    "best_value",
    "budget_used",
    "compute_metrics",
    "epoch_count",
    "final_hyperparameters",
    "first_epochs",
    "probe_share",
    "ranked_configurations",
    "startup_seconds",
    "time_to_target",
    "total_compute",
    "total_epochs",
    "total_probe_seconds",
    "trial_compute",
    "without_inherited",
]
