"""The probe protocol: hyperparameter values in, hypergradient out."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What one probe call measured.

    Attributes:
        value: The held-out loss at the probed hyperparameters.
        grads: dL/dx for each probed parameter, in the parameter's own (external) units; the
            sampler applies the chain rule for log-scaled parameters itself.
        seconds: Wall-clock seconds the probe took, so its cost can be charged to the trial.
    """

    value: float
    grads: Mapping[str, float]
    seconds: float


@dataclasses.dataclass(frozen=True)
class ProbeCheck:
    """What one self-check measured: the probe against the real training it stands for.

    Attributes:
        ok: Whether both comparisons agree within their tolerances (``verdict == "ok"``).
        probe_loss: The probe's held-out loss at the checked values.
        real_loss: The held-out loss after the same K steps of the real optimizer.
        directional: The probe's derivative along ``direction`` (its gradient dotted with it).
        finite_difference: The central finite difference of the real loop's held-out loss
            along ``direction``.
        direction: The unit direction, per parameter name, in the parameters' own units: the
            seeded random one, or the direction whose derivatives disagreed.
        seconds: Wall-clock seconds the check took.
        message: One line naming what disagreed and what to look at, or why the comparison
            could not decide; empty when ``ok``.
        verdict: ``"ok"``; ``"mismatch"`` (consistent evidence that the probe does not follow
            the real training: the warm start turns off); or ``"inconclusive"`` (the real
            loop's finite differences do not converge at any step tried, as where a ReLU
            network's look-ahead loss jumps: the warm start stays on). Defaults to ``"ok"`` or
            ``"mismatch"`` after ``ok``.
    """

    ok: bool
    probe_loss: float
    real_loss: float
    directional: float
    finite_difference: float
    direction: Mapping[str, float]
    seconds: float
    message: str = ""
    verdict: str = ""

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", "ok" if self.ok else "mismatch")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}.")
        if self.ok != (self.verdict == "ok"):
            raise ValueError(f"ok={self.ok} contradicts verdict={self.verdict!r}.")


VERDICTS = ("ok", "mismatch", "inconclusive")
"""What a self-check can say (:attr:`ProbeCheck.verdict`)."""


class BaseProbe(abc.ABC):
    """A hypergradient probe.

    A probe maps a full assignment of the continuous hyperparameters it knows to the gradient of
    a held-out loss with respect to each of them. It must be a deterministic function of
    ``params`` for a fixed ``seed`` (same batches, same augmentation draws, same dropout masks),
    so that a finite difference of :meth:`__call__` checks it.
    """

    @property
    @abc.abstractmethod
    def param_names(self) -> Sequence[str]:
        """The parameter names the probe needs a value for and differentiates."""

    @property
    def context_names(self) -> Sequence[str]:
        """Parameters the probe needs as constants but never differentiates (an int width, a
        categorical, a float it holds fixed): :class:`~optuna_ohgw.OHGWSampler` passes their
        trial values along with :attr:`param_names`, so suggest them first. None by default."""
        return ()

    @abc.abstractmethod
    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        """Return the held-out loss and its gradient at ``params``."""

    def loss(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        """Return the held-out loss alone at ``params`` (``grads`` empty): what a line search
        compares. It must equal :meth:`__call__`'s ``value``. The default is a full call; a
        probe that can skip the hypergradient overrides it to be cheaper."""
        result = self(params, seed=seed)
        return ProbeResult(value=result.value, grads={}, seconds=result.seconds)

    def check(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeCheck | None:
        """Compare the probe with the real training it stands for at ``params``; ``None`` when
        the probe has nothing to compare with (the default). :class:`~optuna_ohgw.OHGWSampler`
        runs it once per process before the first nudge (``self_check=True``)."""
        return None
