"""The hyperparameter roles a probe can differentiate (torch-free, for study-file parsing)."""

ROLES = ("lr", "weight_decay", "momentum", "label_smoothing", "augment")
"""The hyperparameter roles the look-ahead probe can differentiate."""
