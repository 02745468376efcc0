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

    @abc.abstractmethod
    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        """Return the held-out loss and its gradient at ``params``."""

    def loss(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        """Return the held-out loss alone at ``params`` (``grads`` empty): what a line search
        compares. It must equal :meth:`__call__`'s ``value``. The default is a full call; a
        probe that can skip the hypergradient overrides it to be cheaper."""
        result = self(params, seed=seed)
        return ProbeResult(value=result.value, grads={}, seconds=result.seconds)
