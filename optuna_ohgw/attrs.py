"""Names of the user attrs optuna-ohgw writes on trials (read by the dashboard and the evidence).

All values are plain JSON numbers or strings so RDB storages accept them and the dashboard can
sort by them.
"""

from __future__ import annotations

from collections.abc import Iterable

PREFIX = "ohgw"
STATUS = f"{PREFIX}.status"
"""``ok``, ``off: ...`` (the self-check turned the warm start off in this process),
``skipped: ...``, ``error: ...`` or ``nonfinite: ...``."""
FAILED_STATUSES = ("error", "nonfinite")
"""Status kinds of a probe that failed: the trial ran on its raw (un-nudged) values."""
PROBE_SECONDS = f"{PREFIX}.probe_seconds"
PROBE_LOSS = f"{PREFIX}.probe_loss"
N_PROBES = f"{PREFIX}.n_probes"
"""Hypergradient probes run (0 for a rule that needs none, such as ``toward-middle``)."""
LOOKAHEADS = f"{PREFIX}.lookaheads"
"""Extra probe calls made for their loss alone (``line-search``); their seconds are in
``probe_seconds``."""
SELF_CHECK_SECONDS = f"{PREFIX}.self_check_seconds"
"""Seconds the probe's self-check took, on the one trial per process that ran it (also counted
in ``probe_seconds``)."""
SELF_CHECK = f"{PREFIX}.self_check"
"""The self-check's verdict on the one trial per process that ran it: ``ok``,
``inconclusive: ...`` (the warm start stays on; the message says why, with the figures) or
``mismatch: ...`` (the warm start is off in that process)."""
STEP_RULE = f"{PREFIX}.step_rule"
SEED = f"{PREFIX}.seed"
"""The seed the probe built the trial's model with (:func:`optuna_ohgw.trial_seed`)."""
EPOCHS = f"{PREFIX}.epochs"
"""Resource used: epochs trained by this trial."""
EPOCH_SECONDS = f"{PREFIX}.epoch_seconds"
"""Per-epoch compute seconds, packed by :func:`pack_floats` (a short string that wraps in the
dashboard, where a JSON list stretches the page); :func:`unpack_floats` reads both forms."""
TRAIN_SECONDS = f"{PREFIX}.train_seconds"
SETUP_SECONDS = f"{PREFIX}.setup_seconds"
ERROR = f"{PREFIX}.error"
"""Why a trial (segment) failed: ``ExceptionType: message``, set by the worker that ran it."""


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


def status_kind(status: object) -> str:
    """The kind of an :data:`STATUS` value: ``ok``, ``off``, ``skipped``, ``error``, ..."""
    return str(status).split(":", 1)[0].strip() or "unknown"


def pack_floats(values: Iterable[float]) -> str:
    """``[0.41234, 0.398]`` -> ``"0.41234 0.398"`` (8 significant digits)."""
    return " ".join(f"{float(v):.8g}" for v in values)


def unpack_floats(raw: object) -> list[float] | None:
    """The numbers of a :func:`pack_floats` string or of a list (older studies); ``None`` for
    anything else."""
    if isinstance(raw, str):
        try:
            return [float(v) for v in raw.split()]
        except ValueError:
            return None
    if isinstance(raw, list | tuple):
        return list(raw)
    return None


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
