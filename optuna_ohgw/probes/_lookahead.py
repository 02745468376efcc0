"""The PyTorch look-ahead probe: K differentiable optimizer steps, then a held-out loss.

From one forward/backward of the *training* loss, lr, weight decay, momentum and the betas have
no gradient at all. The probe therefore unrolls K real steps of the user's optimizer
(``torch.optim.SGD``, ``Adam`` or ``AdamW``, written out exactly as torch computes them: see
``_unrolled_sgd.py`` and ``_unrolled_adam.py``) on training batches with label smoothing,
augmentation and the user's loss hyperparameters, evaluates a held-out loss without them, and
differentiates that loss with respect to each hyperparameter by reverse-mode autograd. The
result is the exact gradient of this deterministic look-ahead loss (checked against finite
differences through the real ``torch.optim`` optimizers in the tests), not an approximation.

Cost in forward (F) and backward (B) passes: at K=1 without a tuned augmentation or loss
hyperparameter, F+2B on the training batch (two first-order backward passes give the
label-smoothing term exactly) plus F+B on the held-out batch, about 2.6 plain SGD steps on a
CPU. Each later step, and step 0 when the augmentation or a loss hyperparameter is tuned, adds a
double backward (a Hessian-vector product through the network), which dominates: K=2 with all
roles is about 8-9 plain steps (``benchmarks/probe_cost.py``). Adam's update is elementwise and
adds little: AdamW on ResNet-20 measures 1.9-3.1 AdamW steps at K=1 and 5.9-8.1 at K=2 with lr,
weight decay and both betas (``benchmarks/probe_cost_adamw.py``, a loaded 2-core CPU).
Reverse-over-forward (a jvp, then backward) would not be cheaper on a CPU and, in PyTorch 2.14,
gives wrong second derivatives through BatchNorm in training mode, so it is not used.
:meth:`LookaheadProbe.loss` (the look-ahead loss alone, which the ``line-search`` step compares)
skips every double backward and the final backward: at K=2 with all five roles it costs 2.4-2.9
plain steps against 8.4-9.9 for the full call (MNIST-1D and digits networks, one thread).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from optuna_ohgw.augmentations import BaseAugmentation
from optuna_ohgw.probes._base import BaseProbe, ProbeResult
from optuna_ohgw.probes._data import BatchSource, make_draw, move
from optuna_ohgw.probes._guards import admit
from optuna_ohgw.probes._optimizers import resolve_optimizer
from optuna_ohgw.probes._roles import ROLES

_COMMON_ROLES = ("label_smoothing", "augment")

Apply = Callable[..., Any]
"""``apply(*args, **kwargs)``: the model called with the look-ahead's current weights."""
LossFn = Callable[[Apply, Any, Mapping[str, torch.Tensor]], torch.Tensor]
ValLossFn = Callable[[Apply, Any], torch.Tensor]


def _nll_and_uniform(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The two terms of label-smoothed cross entropy: (1-eps)*nll + eps*uniform."""
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, target.unsqueeze(-1)).mean()
    uniform = -logp.mean(dim=-1).mean()
    return nll, uniform


class LookaheadProbe(BaseProbe):
    """Hypergradient of a held-out loss after K differentiable steps of the user's optimizer.

    Args:
        model: The network (its current weights are the look-ahead's start and are never
            modified) or a factory ``seed -> nn.Module`` that builds a freshly initialised one;
            :class:`~optuna_ohgw.OHGWSampler` passes :func:`~optuna_ohgw.trial_seed` of the trial,
            so a setup that builds its model from that seed trains exactly the probed weights.
            A ``torch.compile``'d model is probed through its ``_orig_mod``; what the look-ahead
            cannot follow is refused at the first call (see ``probes/_guards.py``).
        train_data: Where training batches come from: tensors (a tuple or a dict of equally
            long tensors, sampled by row), a ``torch.utils.data.Dataset`` (collated with
            ``default_collate``), a ``DataLoader`` (its ``dataset`` and ``collate_fn``; never its
            sampler, shuffle or workers) or a callable ``generator -> batch``. Rows are drawn with
            ``torch.randperm`` from the probe's seeded generator, so the same seed gives the same
            batches; a callable must draw from the generator it receives for the same to hold.
        val_data: The same for the held-out batch. Use data the training steps do not see:
            reusing the training batch makes the lr gradient ``-|g|^2`` ("always raise lr").
        roles: Maps the user's parameter names to roles in :data:`ROLES`.
        optimizer: The ``torch.optim`` class the trial trains with: ``torch.optim.SGD``,
            ``torch.optim.Adam`` or ``torch.optim.AdamW``; any other is a ``ValueError``.
        optimizer_kwargs: The optimizer's fixed constructor arguments (``betas``, ``eps``,
            ``nesterov``, ``dampening``, ``amsgrad``, ``maximize``, and ``lr``,
            ``weight_decay``, ``momentum`` when not tuned); torch's defaults fill the rest.
        fixed: Values for roles that are not tuned and not in ``optimizer_kwargs`` (for example
            ``{"label_smoothing": 0.1}``).
        k: Number of look-ahead steps. Defaults to ``len(lr_factors)`` if given, else to the
            fewest steps after which every tuned role has a gradient: 2 when SGD's momentum
            (without Nesterov) or Adam's betas are tuned, since they do not enter the first
            step (see the update rules), 1 otherwise.
        lr_factors: One factor per look-ahead step multiplying the learning rate, for a trial
            whose first steps follow a warm-up schedule (e.g. ``[0.1, 0.2]``).
        batch_size: Rows per drawn batch (tensors, Dataset, DataLoader). By default each
            DataLoader's own batch size; other held-out sources take the training batch size;
            128 otherwise.
        n_pairs: Average the hypergradient over this many independent (train, held-out) draws.
        loss_fn: ``loss_fn(apply, batch, hypers) -> loss`` for training batches of any
            structure: ``apply(*args, **kwargs)`` runs the model with the look-ahead's weights
            (``model(**batch)``-style dicts, several inputs and tuple outputs all work) and
            ``hypers`` maps each parameter with role ``"loss"`` to a 0-d tensor that the loss
            must use differentiably. Defaults to cross entropy on ``(inputs, targets)`` batches,
            with ``label_smoothing``.
        val_loss_fn: ``val_loss_fn(apply, batch) -> loss`` for the held-out batch. Defaults to
            plain cross entropy, or to ``loss_fn`` with its hyperparameters held constant.
        augmentation: Applied to the inputs (a batch's first element) of training batches with
            the ``augment`` role as its magnitude.
        val_mode: ``"train"`` (default) or ``"eval"``: the model's mode for the held-out loss.
            Training steps always run in train mode. The default uses batch statistics, as the
            K steps did: at a trial's start BatchNorm's running statistics are still at their
            initial values, so an eval-mode loss describes statistics the network never trained
            with. Use ``"eval"`` to turn dropout off or when starting from trained weights; with
            BatchNorm and K >= 2 the eval-mode gradient then leaves out how the running
            statistics depend on the hyperparameters (torch updates them outside autograd).
        dtype: Probe precision; by default the model's own (a float64 model is probed in
            float64). Floating-point batch tensors are cast to it.
        autocast: Run forward passes under ``torch.autocast`` with this dtype (``torch.bfloat16``
            or ``torch.float16``), as mixed-precision training does.
        device: Where to run; defaults to the device of the model's parameters. Batches on
            another device are moved.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[int], nn.Module],
        train_data: BatchSource,
        val_data: BatchSource,
        roles: Mapping[str, str],
        *,
        optimizer: type[torch.optim.Optimizer],
        optimizer_kwargs: Mapping[str, Any] | None = None,
        fixed: Mapping[str, float] | None = None,
        k: int | None = None,
        lr_factors: Sequence[float] | None = None,
        batch_size: int | None = None,
        n_pairs: int = 1,
        loss_fn: LossFn | None = None,
        val_loss_fn: ValLossFn | None = None,
        augmentation: BaseAugmentation | None = None,
        val_mode: str = "train",
        dtype: torch.dtype | None = None,
        autocast: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        kwargs = dict(optimizer_kwargs or {})
        resolved = resolve_optimizer(optimizer, kwargs)
        applicable = (*resolved.rule.roles, *_COMMON_ROLES)
        fixed = dict(fixed or {})
        for name, role in roles.items():
            if role not in ROLES:
                raise ValueError(f"Unknown role {role!r} for {name!r}; choose from {ROLES}.")
            if role != "loss" and role not in applicable:
                raise ValueError(
                    f"Role {role!r} ({name!r}) does not apply to {optimizer.__name__}; its roles "
                    f"are {(*applicable, 'loss')}."
                )
        tuned = [role for role in roles.values() if role != "loss"]
        if len(set(tuned)) != len(tuned):
            raise ValueError(f"Each role but 'loss' may be mapped once; got {dict(roles)}.")
        given = set(kwargs) - {"betas"} | ({"beta1", "beta2"} if "betas" in kwargs else set())
        for role in fixed:
            if role not in applicable:
                raise ValueError(
                    f"Unknown fixed role {role!r} for {optimizer.__name__}; choose from "
                    f"{applicable}."
                )
            if role in tuned:
                raise ValueError(f"Role {role!r} is both tuned and fixed.")
            if role in given:
                raise ValueError(f"Role {role!r} is both fixed and in optimizer_kwargs.")
        both = sorted(given & set(tuned))
        if both:
            raise ValueError(
                f"{both} tuned but also set in optimizer_kwargs; leave tuned roles out of it."
            )
        values = {"label_smoothing": 0.0, "augment": 0.0, **resolved.values, **fixed}
        if "lr" not in tuned and "lr" not in values:
            raise ValueError(
                "The look-ahead needs a learning rate: map a parameter to 'lr' or pass it in "
                "optimizer_kwargs={'lr': ...}."
            )
        if "augment" in tuned and augmentation is None:
            raise ValueError("Role 'augment' needs an augmentation (e.g. RandomTranslate()).")
        if loss_fn is not None and ("label_smoothing" in tuned or values["label_smoothing"]):
            raise ValueError(
                "label_smoothing belongs to the default cross entropy; with loss_fn= map the "
                "parameter to role 'loss' and smooth the labels in loss_fn."
            )
        if loss_fn is None and "loss" in roles.values():
            raise ValueError("Role 'loss' needs loss_fn= (it receives the value as a tensor).")
        if val_mode not in ("train", "eval"):
            raise ValueError(f"val_mode must be 'train' or 'eval', got {val_mode!r}.")
        if autocast is not None and autocast not in (torch.bfloat16, torch.float16):
            raise ValueError(f"autocast must be torch.bfloat16 or torch.float16, got {autocast}.")
        if lr_factors is not None:
            lr_factors = [float(f) for f in lr_factors]
            k = len(lr_factors) if k is None else k
            if len(lr_factors) != k:
                raise ValueError(f"lr_factors needs one factor per step: {k}, got {lr_factors}.")
        if k is None:
            k = resolved.rule.steps_needed(frozenset(tuned), resolved.options)
        if k < 1 or n_pairs < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError("k, n_pairs and batch_size must be positive.")
        self._draw_train, self.batch_size = make_draw(train_data, batch_size, 128, "train_data")
        self._draw_val, self.val_batch_size = make_draw(
            val_data, batch_size, self.batch_size or 128, "val_data"
        )
        self._model = model
        self._roles = dict(roles)
        self._rule = resolved.rule
        self._options = dict(resolved.options)
        self._fixed = values
        self.optimizer = optimizer
        self.k = k
        self.lr_factors = tuple(lr_factors) if lr_factors is not None else (1.0,) * k
        self.n_pairs = n_pairs
        self.loss_fn = loss_fn
        self.val_loss_fn = val_loss_fn
        self.augmentation = augmentation
        self.val_mode = val_mode
        self.dtype = dtype
        self.autocast = autocast
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

    def loss(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeResult:
        """The look-ahead loss alone, bit for bit :meth:`__call__`'s ``value``: the same K steps
        (first-order backward passes only) and held-out forward, without the double backward
        and the final backward that the hypergradient needs."""
        start = time.perf_counter()
        missing = [name for name in self._roles if name not in params]
        if missing:
            raise KeyError(f"LookaheadProbe needs values for {missing}.")
        with torch.inference_mode(False), torch.enable_grad():
            value, _ = self._probe(params, int(seed), differentiate=False)
        return ProbeResult(value=value, grads={}, seconds=time.perf_counter() - start)

    def build_model(self, seed: int) -> nn.Module:
        """The network the look-ahead starts from for ``seed``."""
        if isinstance(self._model, nn.Module):
            return self._model
        # Factories often call torch.manual_seed: keep the caller's CPU stream intact.
        with torch.random.fork_rng(devices=[]):
            return self._model(seed)

    def _probe(
        self, params: Mapping[str, float], seed: int, differentiate: bool = True
    ) -> tuple[float, dict[str, float]]:
        model = self.build_model(seed)
        first = next(model.parameters(), None)
        device = self.device or (first.device if first is not None else torch.device("cpu"))
        dtype = self.dtype or _model_dtype(model)
        hypers, loss_hypers = self._hypers(params, dtype, device, differentiate)
        tuned = [
            (name, loss_hypers[name] if role == "loss" else hypers[role])
            for name, role in self._roles.items()
            if differentiate
        ]
        gen = torch.Generator().manual_seed(seed)
        total_loss = 0.0
        total_grads = [torch.zeros((), dtype=dtype, device=device) for _ in tuned]
        with _train_mode(model), _fixed_rng(seed, device):
            for _ in range(self.n_pairs):
                train_batches = [
                    self._draw_batch(self._draw_train, gen, device, dtype, "train_data")
                    for _ in range(self.k)
                ]
                val_batch = self._draw_batch(self._draw_val, gen, device, dtype, "val_data")
                aug_seeds = [int(torch.randint(2**62, (1,), generator=gen)) for _ in train_batches]
                loss = self._lookahead(
                    model,
                    hypers,
                    loss_hypers,
                    train_batches,
                    val_batch,
                    aug_seeds,
                    dtype,
                    differentiate,
                )
                total_loss += float(loss.detach())
                if not tuned:
                    continue
                grads = torch.autograd.grad(loss, [h for _, h in tuned], allow_unused=True)
                for i, g in enumerate(grads):
                    if g is not None:
                        total_grads[i] = total_grads[i] + g.detach()
        grads = {name: float(g) / self.n_pairs for (name, _), g in zip(tuned, total_grads)}
        return total_loss / self.n_pairs, grads

    def _hypers(
        self,
        params: Mapping[str, float],
        dtype: torch.dtype,
        device: torch.device,
        differentiate: bool = True,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        values = dict(self._fixed)
        tuned_roles = set()
        loss_hypers = {}
        for name, role in self._roles.items():
            if role == "loss":
                loss_hypers[name] = torch.tensor(
                    float(params[name]), dtype=dtype, device=device, requires_grad=differentiate
                )
            else:
                values[role] = float(params[name])
                tuned_roles.add(role)
        hypers = {
            role: torch.tensor(
                value,
                dtype=dtype,
                device=device,
                requires_grad=differentiate and role in tuned_roles,
            )
            for role, value in values.items()
        }
        return hypers, loss_hypers

    def _draw_batch(
        self,
        source: Callable[[torch.Generator], Any],
        gen: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
        what: str,
    ) -> Any:
        """One batch from ``source``, on ``device`` with floating tensors in ``dtype``."""
        batch = source(gen)
        if self.loss_fn is None and not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise ValueError(
                f"{what}: the default cross entropy needs (inputs, targets) batches, got a "
                f"{type(batch).__name__}; pass loss_fn= for other batch structures."
            )
        return move(batch, device, dtype, what)

    def _lookahead(
        self,
        model: nn.Module,
        hypers: Mapping[str, torch.Tensor],
        loss_hypers: Mapping[str, torch.Tensor],
        train_batches: Sequence[Any],
        val_batch: Any,
        aug_seeds: Sequence[int],
        dtype: torch.dtype,
        differentiate: bool = True,
    ) -> torch.Tensor:
        """The held-out loss after the K steps; with ``differentiate`` its graph reaches the
        hyperparameters, else every step is first-order and detached (the same values)."""
        device = hypers["lr"].device
        model = admit(
            self, model, train_batches[0], loss_hypers, self.loss_fn, dtype=dtype, device=device
        )
        names = [n for n, _ in model.named_parameters()]
        # Frozen parameters (requires_grad=False) get no gradient, so torch.optim never moves
        # them: the look-ahead keeps them fixed too.
        weights = [
            p.detach().to(device=device, dtype=dtype).requires_grad_(p.requires_grad)
            for p in model.parameters()
        ]
        trainable = [i for i, w in enumerate(weights) if w.requires_grad]
        # Clones: functional_call updates BatchNorm running statistics in place.
        buffers = {
            n: b.detach().to(device, dtype if b.is_floating_point() else b.dtype).clone()
            for n, b in model.named_buffers()
        }

        def state() -> dict[str, torch.Tensor]:
            return {**dict(zip(names, weights)), **buffers}

        tuned = frozenset(r for r in self._roles.values())
        rule = self._rule(hypers, self._options, tuned)
        eps, mag, lr = hypers["label_smoothing"], hypers["augment"], hypers["lr"]
        # Step 0's gradient is a constant unless the augmentation or the loss is tuned.
        first_order_start = not tuned & {"augment", "loss"}
        for step, (batch, aug_seed) in enumerate(zip(train_batches, aug_seeds)):
            if self.augmentation is not None:
                batch = self._augment(batch, mag, aug_seed)
            apply = _applier(model, state())
            live = [weights[i] for i in trainable]
            at_start = step == 0 and first_order_start
            with self._autocast(device), _twice_differentiable(not at_start):
                if self.loss_fn is not None:
                    loss = self.loss_fn(apply, batch, loss_hypers)
                    two_terms = None
                else:
                    two_terms = _nll_and_uniform(apply(batch[0]), batch[1])
            if two_terms is not None and at_start and "label_smoothing" in tuned:
                # w0 and the batch do not depend on any hyperparameter: the gradient is linear in
                # eps, so two first-order backward passes replace a double backward (exactly).
                g_nll = _grad(two_terms[0], live, create_graph=False, retain_graph=True)
                g_uni = _grad(two_terms[1], live, create_graph=False)
                grads: list[torch.Tensor | None] = [
                    None if a is None or b is None else a + eps * (b - a)
                    for a, b in zip(g_nll, g_uni)
                ]
            else:
                if two_terms is not None:
                    loss = (1.0 - eps) * two_terms[0] + eps * two_terms[1]
                grads = _grad(loss, live, create_graph=differentiate and not at_start)
            factor = self.lr_factors[step]
            new = rule.step(live, grads, lr if factor == 1.0 else lr * factor)
            for i, w in zip(trainable, new):
                weights[i] = w if differentiate else w.detach().requires_grad_(True)
        with self._autocast(device), _val_mode(model, self.val_mode):
            apply = _applier(model, state())
            if self.val_loss_fn is not None:
                loss = self.val_loss_fn(apply, val_batch)
            elif self.loss_fn is not None:
                loss = self.loss_fn(
                    apply, val_batch, {n: h.detach() for n, h in loss_hypers.items()}
                )
            else:
                loss = F.cross_entropy(apply(val_batch[0]), val_batch[1])
        return loss.to(dtype)

    def _augment(self, batch: Any, magnitude: torch.Tensor, seed: int) -> Any:
        assert self.augmentation is not None
        if not isinstance(batch, (tuple, list)) or not isinstance(batch[0], torch.Tensor):
            raise ValueError(
                "augmentation= augments the inputs of (inputs, ...) batches; with other batch "
                "structures apply it in loss_fn."
            )
        x = self.augmentation(batch[0], magnitude, torch.Generator().manual_seed(seed))
        return type(batch)([x, *batch[1:]]) if isinstance(batch, list) else (x, *batch[1:])

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.autocast)


def _twice_differentiable(needed: bool) -> contextlib.AbstractContextManager[Any]:
    """Attention through the math kernel where the graph is differentiated twice.

    PyTorch's fused attention kernels (CPU flash, CUDA flash and memory-efficient) have no double
    backward; ``nn.MultiheadAttention`` and ``F.scaled_dot_product_attention`` pick them by
    default. The math kernel computes the same function and is differentiable twice.
    """
    if not needed:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def _applier(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Apply:
    def apply(*args: Any, **kwargs: Any) -> Any:
        return functional_call(model, dict(state), args, kwargs)

    return apply


def _grad(
    loss: torch.Tensor,
    weights: Sequence[torch.Tensor],
    *,
    create_graph: bool,
    retain_graph: bool | None = None,
) -> list[torch.Tensor | None]:
    """d loss / d weights; ``None`` where a weight did not take part (torch.optim skips it)."""
    return list(
        torch.autograd.grad(
            loss, weights, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
        )
    )


@contextlib.contextmanager
def _train_mode(model: nn.Module) -> Iterator[None]:
    """Take the steps in train mode (batch statistics) as training does; restore the mode."""
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _val_mode(model: nn.Module, mode: str) -> Iterator[None]:
    if mode == "train":
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


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
