"""Names of the user attrs optuna-ohgw writes on trials (read by the dashboard and the evidence).

All values are plain JSON numbers or strings so RDB storages accept them and the dashboard can
sort by them.
"""

from __future__ import annotations

PREFIX = "ohgw"
STATUS = f"{PREFIX}.status"
"""``ok``, ``off``, ``skipped: ...``, ``error: ...`` or ``nonfinite: ...``."""
PROBE_SECONDS = f"{PREFIX}.probe_seconds"
PROBE_LOSS = f"{PREFIX}.probe_loss"
N_PROBES = f"{PREFIX}.n_probes"
"""Hypergradient probes run (0 for a rule that needs none, such as ``toward-middle``)."""
LOOKAHEADS = f"{PREFIX}.lookaheads"
"""Extra probe calls made for their loss alone (``line-search``); their seconds are in
``probe_seconds``."""
STEP_RULE = f"{PREFIX}.step_rule"
SEED = f"{PREFIX}.seed"
"""The seed the probe built the trial's model with (:func:`optuna_ohgw.trial_seed`)."""
EPOCHS = f"{PREFIX}.epochs"
"""Resource used: epochs trained by this trial."""
EPOCH_SECONDS = f"{PREFIX}.epoch_seconds"
"""List of per-epoch compute seconds."""
TRAIN_SECONDS = f"{PREFIX}.train_seconds"
SETUP_SECONDS = f"{PREFIX}.setup_seconds"


def raw(name: str) -> str:
    """The base sampler's value of ``name`` before the warm-start step."""
    return f"{PREFIX}.raw.{name}"


def nudged(name: str) -> str:
    """The value the trial actually uses."""
    return f"{PREFIX}.nudged.{name}"


def grad(name: str) -> str:
    """dL/dpsi at the raw value, in internal coordinates (d/dlog x for log-scaled floats)."""
    return f"{PREFIX}.grad.{name}"


def step(name: str) -> str:
    """Applied change in internal coordinates, after clipping and snapping."""
    return f"{PREFIX}.step.{name}"


REPROBE = f"{PREFIX}.reprobe"
"""Prefix of the attrs of the re-probe at a promotion, set on the resumed segment."""
REPROBE_STATUS = f"{REPROBE}.status"
"""``ok``, ``error: ...`` or ``nonfinite: ...`` (then nothing moved)."""
REPROBE_SECONDS = f"{REPROBE}.seconds"
"""Seconds the re-probe took (after setup, so charged on top of the start-up)."""


def reprobe_from(name: str) -> str:
    """The value a configuration trained with up to this resume."""
    return f"{REPROBE}.from.{name}"


def reprobe_to(name: str) -> str:
    """The value it trains with from this resume on."""
    return f"{REPROBE}.to.{name}"


def reprobe_grad(name: str) -> str:
    """dL/dpsi at the resume, internal coordinates (d/dlog x for log-scaled floats)."""
    return f"{REPROBE}.grad.{name}"
