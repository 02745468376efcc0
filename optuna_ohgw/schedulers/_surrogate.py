"""DyHPO's surrogate: a deep-kernel Gaussian process over (configuration, budget, curve so far).

Plain torch, not gpytorch: the GP is exact with at most a few thousand points (one per observed
epoch), so it is a Cholesky factorisation and a few lines of maths; gpytorch would add
``linear_operator`` and its own dependencies for no gain at this size.

Following Wistuba, Kadra and Grabocka (NeurIPS 2022), the feature network maps the
configuration (in ``[0, 1]`` internal coordinates) and the normalised budget through a linear
layer, and the learning curve observed *before* that budget through a 1D convolution and
max-pooling; both are joined and mapped to a few features, on which an exact GP with a scaled
RBF kernel and a constant mean models the value at that budget. The network and the GP's
hyperparameters are trained jointly on the negative log marginal likelihood.
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch
from torch import nn

_LOG_2PI = math.log(2 * math.pi)


class FeatureNet(nn.Module):
    """(configuration + budget, curve prefix) -> features of the deep kernel."""

    def __init__(self, n_params: int, curve_length: int, n_features: int = 8) -> None:
        super().__init__()
        self.curve_length = curve_length
        self.config = nn.Linear(n_params + 1, 16)
        self.conv = nn.Conv1d(1, 8, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.joint = nn.Sequential(nn.Linear(16 + 8, 16), nn.ReLU(), nn.Linear(16, n_features))

    def forward(self, x: torch.Tensor, budget: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
        h_config = torch.relu(self.config(torch.cat([x, budget[:, None]], dim=1)))
        h_curve = self.pool(torch.relu(self.conv(curve[:, None, :]))).flatten(1)
        return self.joint(torch.cat([h_config, h_curve], dim=1))


@dataclasses.dataclass
class FitReport:
    """How a fit went: from scratch or warm, the loss (NLL per point), steps, seconds."""

    scratch: bool
    loss: float
    steps: int
    seconds: float


class SurrogateFitError(RuntimeError):
    """The GP could not be fitted even from scratch (non-finite loss, failed Cholesky)."""


class DeepKernelGP:
    """Exact GP on learned features; ``fit`` warm-starts from the previous fit.

    A warm refit that fails (non-finite loss, Cholesky error) or stalls (its loss per point ends
    more than ``stall_margin`` above that of the last fit from scratch) is redone from a fresh
    initialisation, as the paper prescribes. The hyperparameters and the network are fitted on
    at most ``max_fit_points`` observations (a seeded random subset: the Cholesky backward is
    cubic, and this keeps a decision far below an epoch), while the posterior conditions on
    every observation.
    """

    def __init__(
        self,
        n_params: int,
        curve_length: int,
        *,
        seed: int = 0,
        n_features: int = 8,
        scratch_steps: int = 200,
        warm_steps: int = 10,
        lr: float = 0.02,
        max_fit_points: int = 128,
        stall_margin: float = 0.5,
    ) -> None:
        self.n_params = n_params
        self.curve_length = max(1, curve_length)
        self.n_features = n_features
        self.scratch_steps = scratch_steps
        self.warm_steps = warm_steps
        self.lr = lr
        self.max_fit_points = max_fit_points
        self.stall_margin = stall_margin
        self._scratch_loss = math.inf
        self._generator = torch.Generator().manual_seed(seed)
        self._net: FeatureNet | None = None
        # log lengthscale, log outputscale, log noise, constant mean
        self._hyper: torch.Tensor | None = None
        self._train: tuple[torch.Tensor, ...] | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None  # (cholesky, alpha)
        self._y_mean, self._y_std = 0.0, 1.0
        self.last_fit: FitReport | None = None

    # ----- data ------------------------------------------------------------------------------

    def _curve_tensor(self, curves: list[list[float]]) -> torch.Tensor:
        out = torch.zeros(len(curves), self.curve_length, dtype=torch.float64)
        for i, curve in enumerate(curves):
            values = curve[-self.curve_length :]
            if values:
                out[i, : len(values)] = torch.tensor(values, dtype=torch.float64)
        return out

    def _inputs(
        self, x: list[list[float]], budget: list[float], curves: list[list[float]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.tensor(x, dtype=torch.float64).reshape(len(x), self.n_params),
            torch.tensor(budget, dtype=torch.float64),
            self._curve_tensor(curves),
        )

    # ----- GP maths --------------------------------------------------------------------------

    def _kernel(self, a: torch.Tensor, b: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        lengthscale, outputscale = hyper[0].exp(), hyper[1].exp()
        sq = torch.cdist(a / lengthscale, b / lengthscale).pow(2)
        return outputscale * torch.exp(-0.5 * sq)

    def _factor(
        self, features: torch.Tensor, y: torch.Tensor, hyper: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cholesky factor, alpha = K^-1 (y - m), and the NLL per point."""
        n = features.shape[0]
        noise = hyper[2].exp() + 1e-6
        k = self._kernel(features, features, hyper) + noise * torch.eye(n, dtype=y.dtype)
        chol = torch.linalg.cholesky(k)
        resid = (y - hyper[3])[:, None]
        alpha = torch.cholesky_solve(resid, chol)
        nll = 0.5 * (resid * alpha).sum() + chol.diagonal().log().sum() + 0.5 * n * _LOG_2PI
        return chol, alpha, nll / n

    def _init(self) -> None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._net = FeatureNet(self.n_params, self.curve_length, self.n_features).double()
        # lengthscale 1, outputscale 1, noise 0.01 (targets are standardised), mean 0
        self._hyper = torch.tensor([0.0, 0.0, math.log(1e-2), 0.0], dtype=torch.float64)

    def _optimise(self, inputs: tuple[torch.Tensor, ...], y: torch.Tensor, steps: int) -> float:
        """Adam on the NLL; returns the final loss, non-finite on failure."""
        assert self._net is not None and self._hyper is not None
        hyper = self._hyper.clone().requires_grad_(True)
        params = [*self._net.parameters(), hyper]
        optimiser = torch.optim.Adam(params, lr=self.lr)
        for _ in range(steps):
            optimiser.zero_grad()
            try:
                _, _, loss = self._factor(self._net(*inputs), y, hyper)
            except torch.linalg.LinAlgError:
                return math.nan
            if not torch.isfinite(loss):
                return math.nan
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                hyper[2].clamp_(min=math.log(1e-4))  # keep the noise off zero
        self._hyper = hyper.detach()
        with torch.no_grad():
            try:
                _, _, loss = self._factor(self._net(*inputs), y, self._hyper)
            except torch.linalg.LinAlgError:
                return math.nan
        return float(loss)

    def fit(
        self, x: list[list[float]], budget: list[float], curves: list[list[float]], y: list[float]
    ) -> FitReport:
        """Fit on points ``(x_i, budget_i, curve_i) -> y_i`` (curve: values before budget)."""
        if len(y) < 2:
            raise SurrogateFitError(f"need at least 2 observations to fit, got {len(y)}")
        start = time.perf_counter()
        inputs = self._inputs(x, budget, curves)
        target = torch.tensor(y, dtype=torch.float64)
        self._y_mean = float(target.mean())
        self._y_std = float(target.std()) if len(y) > 1 and float(target.std()) > 1e-8 else 1.0
        ys = (target - self._y_mean) / self._y_std
        fit_inputs, fit_y = inputs, ys
        if len(y) > self.max_fit_points:
            keep = torch.randperm(len(y), generator=self._generator)[: self.max_fit_points]
            fit_inputs, fit_y = tuple(t[keep] for t in inputs), ys[keep]
        report = None
        if self._net is not None:
            last = self._optimise(fit_inputs, fit_y, self.warm_steps)
            # Failed (non-finite, Cholesky error) or stalled (stuck well above the loss of the
            # last fit from scratch): start again from a fresh initialisation.
            if math.isfinite(last) and last <= self._scratch_loss + self.stall_margin:
                report = FitReport(False, last, self.warm_steps, 0.0)
        if report is None:
            self._init()
            last = self._optimise(fit_inputs, fit_y, self.scratch_steps)
            if not math.isfinite(last):
                self._net = None
                raise SurrogateFitError("the GP fit from scratch failed (non-finite loss)")
            self._scratch_loss = last
            report = FitReport(True, last, self.scratch_steps, 0.0)
        assert self._net is not None and self._hyper is not None
        with torch.no_grad():  # condition on every point, whatever the fit used
            features = self._net(*inputs)
            try:
                chol, alpha, _ = self._factor(features, ys, self._hyper)
            except torch.linalg.LinAlgError as err:
                self._net = None
                raise SurrogateFitError(f"the GP posterior failed: {err}") from err
        self._train = (features,)
        self._cache = (chol, alpha)
        report.seconds = time.perf_counter() - start
        self.last_fit = report
        return report

    def predict(
        self, x: list[list[float]], budget: list[float], curves: list[list[float]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation (of the noise-free value) at the points."""
        if self._net is None or self._train is None or self._cache is None:
            raise SurrogateFitError("predict before a successful fit")
        assert self._hyper is not None
        with torch.no_grad():
            features = self._net(*self._inputs(x, budget, curves))
            (train,), (chol, alpha) = self._train, self._cache
            cross = self._kernel(features, train, self._hyper)
            mean = self._hyper[3] + cross @ alpha[:, 0]
            v = torch.cholesky_solve(cross.T, chol)
            var = self._hyper[1].exp() - (cross * v.T).sum(dim=1)
            std = var.clamp(min=1e-12).sqrt()
        return mean * self._y_std + self._y_mean, std * self._y_std


def expected_improvement(
    mean: torch.Tensor, std: torch.Tensor, incumbent: torch.Tensor, maximize: bool = True
) -> torch.Tensor:
    """Closed-form EI of a Gaussian ``N(mean, std^2)`` over ``incumbent``, elementwise."""
    gain = mean - incumbent if maximize else incumbent - mean
    std = std.clamp(min=1e-12)
    z = gain / std
    normal = torch.distributions.Normal(torch.zeros_like(z), torch.ones_like(z))
    return gain * normal.cdf(z) + std * normal.log_prob(z).exp()
