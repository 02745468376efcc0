"""The hyperparameter roles a probe can differentiate (torch-free, for study-file parsing)."""

ROLES = (
    "lr",
    "weight_decay",
    "momentum",
    "beta1",
    "beta2",
    "label_smoothing",
    "augment",
    "loss",
)
"""The hyperparameter roles the look-ahead probe can differentiate. ``momentum`` applies to SGD,
``beta1``/``beta2`` to Adam and AdamW; ``loss`` marks a hyperparameter of the user's own
``loss_fn`` (several parameters may have it)."""
