"""The PyTorch look-ahead probe: K differentiable SGD steps, then a held-out loss.

From one forward/backward of the *training* loss, lr, weight decay and momentum have no gradient
at all. The probe therefore unrolls K real SGD steps (PyTorch's update rule: weight decay added
to the gradient, momentum buffer started at the first gradient, no dampening) on training batches
with label smoothing and augmentation, evaluates the loss on a held-out batch with neither, and
differentiates that loss with respect to each hyperparameter by reverse-mode autograd. The result
is the exact gradient of this deterministic look-ahead loss (checked against finite differences
in the tests), not a first-order approximation.

Cost in forward (F) and backward (B) passes: at K=1 without a tuned augmentation, F+2B on the
training batch (two first-order backward passes give the label-smoothing term exactly) plus F+B
on the held-out batch, about 2.6 plain SGD steps on a CPU. Each later step, and step 0 when the
augmentation is tuned, adds a double backward (a Hessian-vector product through the network),
which dominates: K=2 with all five roles is about 8-9 SGD steps (``benchmarks/probe_cost.py``).
Reverse-over-forward (a jvp, then backward) would not be cheaper on a CPU and, in PyTorch 2.14,
gives wrong second derivatives through BatchNorm in training mode, so it is not used.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from optuna_ohgw.augmentations import BaseAugmentation
from optuna_ohgw.probes._base import BaseProbe, ProbeResult
from optuna_ohgw.probes._roles import ROLES

_DEFAULTS = {"weight_decay": 0.0, "momentum": 0.0, "label_smoothing": 0.0, "augment": 0.0}

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Batch | Callable[[torch.Generator], Batch]


def _nll_and_uniform(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The two terms of label-smoothed cross entropy: (1-eps)*nll + eps*uniform."""
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, target.unsqueeze(-1)).mean()
    uniform = -logp.mean(dim=-1).mean()
    return nll, uniform


class LookaheadProbe(BaseProbe):
    """Hypergradient of a held-out loss after K differentiable SGD steps.

    Args:
        model: The network (its current weights are the look-ahead's start and are never
            modified) or a factory ``seed -> nn.Module`` that builds a freshly initialised one.
        train_data: ``(inputs, targets)`` tensors to draw training batches from, or a callable
            ``generator -> (inputs, targets)`` returning one batch.
        val_data: The same for the held-out batch. Use data the training steps do not see:
            reusing the training batch makes the lr gradient ``-|g|^2`` ("always raise lr").
        roles: Maps the user's parameter names to roles in :data:`ROLES`.
        fixed: Values for roles that are not tuned (for example ``{"momentum": 0.9}``); other
            untuned roles default to 0 except ``lr``, which must be tuned or fixed.
        k: Number of look-ahead steps. Defaults to 2 when a momentum role is tuned (momentum has
            exactly zero gradient after one step) and to 1 otherwise.
        batch_size: Batch size of every training and held-out batch drawn from tensors.
        n_pairs: Average the hypergradient over this many independent (train, held-out) draws.
        augmentation: Applied to training batches with the ``augment`` role as its magnitude.
        dtype: Probe precision; fp32 by default, float64 for finite-difference checks.
        device: Where to run; defaults to the device of the model's parameters.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[int], nn.Module],
        train_data: BatchSource,
        val_data: BatchSource,
        roles: Mapping[str, str],
        *,
        fixed: Mapping[str, float] | None = None,
        k: int | None = None,
        batch_size: int = 128,
        n_pairs: int = 1,
        augmentation: BaseAugmentation | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        fixed = dict(fixed or {})
        for name, role in roles.items():
            if role not in ROLES:
                raise ValueError(f"Unknown role {role!r} for {name!r}; choose from {ROLES}.")
        tuned = list(roles.values())
        if len(set(tuned)) != len(tuned):
            raise ValueError(f"Each role may be mapped once; got {dict(roles)}.")
        for role in fixed:
            if role not in ROLES:
                raise ValueError(f"Unknown fixed role {role!r}; choose from {ROLES}.")
            if role in tuned:
                raise ValueError(f"Role {role!r} is both tuned and fixed.")
        if "lr" not in tuned and "lr" not in fixed:
            raise ValueError("The look-ahead needs a learning rate: map a parameter to 'lr' or "
                             "pass fixed={'lr': ...}.")
        if "augment" in tuned and augmentation is None:
            raise ValueError("Role 'augment' needs an augmentation (e.g. RandomTranslate()).")
        if k is None:
            k = 2 if "momentum" in tuned else 1
        if k < 1 or n_pairs < 1 or batch_size < 1:
            raise ValueError("k, n_pairs and batch_size must be positive.")
        self._model = model
        self._train = train_data
        self._val = val_data
        self._roles = dict(roles)
        self._fixed = {**_DEFAULTS, **fixed}
        self.k = k
        self.batch_size = batch_size
        self.n_pairs = n_pairs
        self.augmentation = augmentation
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None

    @property
    def param_names(self) -> Sequence[str]:
        return tuple(self._roles)

    @property
    def roles(self) -> Mapping[str, str]:
        return dict(self._roles)

    def __call__(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        start = time.perf_counter()
        missing = [name for name in self._roles if name not in params]
        if missing:
            raise KeyError(f"LookaheadProbe needs values for {missing}.")
        # Differentiate even when called under no_grad or inference_mode (e.g. from a sampler).
        with torch.inference_mode(False), torch.enable_grad():
            value, grads = self._probe(params, int(seed))
        return ProbeResult(value=value, grads=grads, seconds=time.perf_counter() - start)

    def _probe(self, params: Mapping[str, float], seed: int) -> tuple[float, dict[str, float]]:
        if isinstance(self._model, nn.Module):
            model = self._model
        else:
            # Factories often call torch.manual_seed: keep the caller's CPU stream intact.
            with torch.random.fork_rng(devices=[]):
                model = self._model(seed)
        device = self.device or next(model.parameters()).device
        values = dict(self._fixed)
        values.update({role: float(params[name]) for name, role in self._roles.items()})
        hypers = {
            role: torch.tensor(
                value, dtype=self.dtype, device=device, requires_grad=role in self._roles.values()
            )
            for role, value in values.items()
        }
        tuned = [(name, hypers[role]) for name, role in self._roles.items()]
        gen = torch.Generator().manual_seed(seed)
        total_loss = 0.0
        total_grads = [torch.zeros((), dtype=self.dtype, device=device) for _ in tuned]
        with _train_mode(model), _fixed_rng(seed, device):
            for _ in range(self.n_pairs):
                train_batches = [self._draw(self._train, gen, device) for _ in range(self.k)]
                val_batch = self._draw(self._val, gen, device)
                aug_seeds = [int(torch.randint(2**62, (1,), generator=gen)) for _ in train_batches]
                loss = self._lookahead(model, hypers, train_batches, val_batch, aug_seeds)
                total_loss += float(loss.detach())
                if not tuned:
                    continue
                grads = torch.autograd.grad(loss, [h for _, h in tuned], allow_unused=True)
                for i, g in enumerate(grads):
                    if g is not None:
                        total_grads[i] = total_grads[i] + g.detach()
        grads = {name: float(g) / self.n_pairs for (name, _), g in zip(tuned, total_grads)}
        return total_loss / self.n_pairs, grads

    def _draw(self, source: BatchSource, gen: torch.Generator, device: torch.device) -> Batch:
        if callable(source):
            x, y = source(gen)
        else:
            inputs, targets = source
            idx = torch.randperm(len(inputs), generator=gen)[: self.batch_size]
            x, y = inputs[idx.to(inputs.device)], targets[idx.to(targets.device)]
        return x.to(device=device, dtype=self.dtype), y.to(device=device)

    def _lookahead(
        self,
        model: nn.Module,
        hypers: Mapping[str, torch.Tensor],
        train_batches: Sequence[Batch],
        val_batch: Batch,
        aug_seeds: Sequence[int],
    ) -> torch.Tensor:
        device = hypers["lr"].device
        names = [n for n, _ in model.named_parameters()]
        # Frozen parameters (requires_grad=False) get no gradient, so torch.optim.SGD never moves
        # them: the look-ahead keeps them fixed too.
        weights = [
            p.detach().to(device=device, dtype=self.dtype).requires_grad_(p.requires_grad)
            for p in model.parameters()
        ]
        trainable = [i for i, w in enumerate(weights) if w.requires_grad]
        # Clones: functional_call updates BatchNorm running statistics in place.
        buffers = {
            n: b.detach().to(device, self.dtype if b.is_floating_point() else b.dtype).clone()
            for n, b in model.named_buffers()
        }
        lr, wd, mu = hypers["lr"], hypers["weight_decay"], hypers["momentum"]
        eps, mag = hypers["label_smoothing"], hypers["augment"]
        differentiated = {role for role in self._roles.values()}
        momentum_buf: list[torch.Tensor] | None = None
        for step, ((x, y), aug_seed) in enumerate(zip(train_batches, aug_seeds)):
            if self.augmentation is not None:
                x = self.augmentation(x, mag, torch.Generator().manual_seed(aug_seed))
            logits = functional_call(model, {**dict(zip(names, weights)), **buffers}, (x,))
            nll, uniform = _nll_and_uniform(logits, y)
            live = [weights[i] for i in trainable]
            at_start = step == 0 and "augment" not in differentiated
            if at_start and "label_smoothing" in differentiated:
                # w0 and the batch do not depend on any hyperparameter: the gradient is linear in
                # eps, so two first-order backward passes replace a double backward (exactly).
                g_nll = _grad(nll, live, create_graph=False, retain_graph=True)
                g_uni = _grad(uniform, live, create_graph=False)
                grads = [a + eps * (b - a) for a, b in zip(g_nll, g_uni)]
            else:
                loss = (1.0 - eps) * nll + eps * uniform
                grads = _grad(loss, live, create_graph=not at_start)
            grads = [g + wd * w for g, w in zip(grads, live)]
            if momentum_buf is None:
                momentum_buf = grads
            else:
                momentum_buf = [mu * b + g for b, g in zip(momentum_buf, grads)]
            for i, w, b in zip(trainable, live, momentum_buf):
                weights[i] = w - lr * b
        x_val, y_val = val_batch
        logits = functional_call(model, {**dict(zip(names, weights)), **buffers}, (x_val,))
        return F.cross_entropy(logits, y_val)


def _grad(
    loss: torch.Tensor,
    weights: Sequence[torch.Tensor],
    *,
    create_graph: bool,
    retain_graph: bool | None = None,
) -> list[torch.Tensor]:
    grads = torch.autograd.grad(
        loss, weights, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]


@contextlib.contextmanager
def _train_mode(model: nn.Module) -> Iterator[None]:
    """Evaluate in train mode (batch statistics) as at a trial's start; restore the mode after."""
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _fixed_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Fix the global RNG (dropout masks) inside the probe without disturbing the caller's.

    Only the generators that ``fork_rng`` restores are seeded: ``torch.manual_seed`` would also
    reseed (or queue a lazy reseed of) every CUDA device, which ``fork_rng`` does not undo, and
    costs about a millisecond per call.
    """
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
