"""The PyTorch look-ahead probe: K differentiable optimizer steps, then a held-out loss.

From one forward/backward of the *training* loss, lr, weight decay, momentum and the betas have
no gradient at all. The probe therefore unrolls K real steps of the user's optimizer
(``torch.optim.SGD``, ``Adam`` or ``AdamW``, written out exactly as torch computes them: see
``_unrolled_sgd.py`` and ``_unrolled_adam.py``) on training batches with label smoothing,
augmentation and the user's loss hyperparameters, evaluates a held-out loss without them, and
differentiates that loss with respect to each hyperparameter by reverse-mode autograd. The
result is the exact gradient of this deterministic look-ahead loss (checked against finite
differences through the real ``torch.optim`` optimizers in the tests), not an approximation.

What it unrolls is read from the user's own code where the user gives it: a ``make_optimizer``
factory's parameter groups and their values as functions of the hyperparameters, and a
``make_scheduler`` factory's values at each step (``_groups.py``); gradient clipping as torch
computes it (``_clipping.py``). :meth:`LookaheadProbe.check` compares the probe with K steps of
that real training (``_check.py``).

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
import copy
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from optuna_ohgw.augmentations import BaseAugmentation
from optuna_ohgw.probes._base import BaseProbe, ProbeCheck, ProbeResult
from optuna_ohgw.probes._check import compare, float64_copy
from optuna_ohgw.probes._clipping import Clipping, norm_order
from optuna_ohgw.probes._data import BatchSource, make_draw, move
from optuna_ohgw.probes._groups import (
    MakeOptimizer,
    MakeScheduler,
    Plan,
    read_plan,
    single_group_plan,
)
from optuna_ohgw.probes._guards import admit, unwrap_compiled
from optuna_ohgw.probes._optimizers import resolve_optimizer
from optuna_ohgw.probes._roles import ROLES

_COMMON_ROLES = ("label_smoothing", "augment")
_OPTIMIZER_ROLES = ("lr", "weight_decay", "momentum", "beta1", "beta2")

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
        roles: Maps the user's parameter names to roles in :data:`ROLES`. Each role but
            ``loss`` once, except that with a ``make_optimizer`` factory several parameters may
            share an optimizer role (``head_lr`` and ``backbone_lr``, both ``lr``, one per
            parameter group): each group's value is read as an affine function of all of them.
        optimizer: The trial's optimizer: either the factory the trial builds it with,
            ``make_optimizer(model, hypers) -> torch.optim.Optimizer`` (``hypers`` maps the
            probe's parameter names to floats), or, as shorthand for one group over every
            parameter, the class with ``optimizer_kwargs``. The optimizer must be
            ``torch.optim.SGD``, ``torch.optim.Adam`` or ``torch.optim.AdamW`` (any other is a
            ``ValueError``). From a factory the probe reads what the optimizer trains: each
            parameter group with its own options, and each group's lr, weight decay, momentum
            and betas as a function of ``hypers`` (see ``_groups.py``; a value that is not an
            affine function of them, e.g. ``hypers["lr"] ** 2``, is a ``ValueError``; pass
            Python floats: a float32 tensor, ``torch.tensor(lr)``, is affine only to float32
            rounding, and is named as such). Parameters in no group stay fixed, as in training.
        optimizer_kwargs: With a class: its fixed constructor arguments (``betas``, ``eps``,
            ``nesterov``, ``dampening``, ``amsgrad``, ``maximize``, and ``lr``,
            ``weight_decay``, ``momentum`` when not tuned); torch's defaults fill the rest.
        fixed: Values for roles that are not tuned and not in ``optimizer_kwargs`` (for example
            ``{"label_smoothing": 0.1}``); with a factory, ``label_smoothing`` and ``augment``.
        k: Number of look-ahead steps. Defaults to ``len(lr_factors)`` if given, else to the
            fewest steps after which every tuned role has a gradient: 2 when SGD's momentum
            (without Nesterov; with a factory, any momentum) or Adam's betas are tuned, since
            they do not enter the first step (see the update rules), 1 otherwise.
        scheduler: ``make_scheduler(optimizer) -> LRScheduler``, the trial's scheduler factory:
            the look-ahead steps it after each optimizer step, as the training loop does, and
            uses the lr, momentum and betas it sets. A tuned parameter whose value the scheduler
            overrides at every look-ahead step (``OneCycleLR``'s ``cycle_momentum`` sets beta1)
            has no effect: its hypergradient is exactly 0, and the probe warns once.
        scheduler_interval: When the training loop steps the scheduler, as Lightning's
            ``interval``: ``"step"`` (default, after each optimizer step) or ``"epoch"`` (once
            per epoch: the K look-ahead steps lie in the first epoch and use the values the
            scheduler sets when it is built, e.g. ``StepLR``'s initial lr).
        lr_factors: The manual form of a warm-up: one factor per look-ahead step multiplying
            the learning rate (e.g. ``[0.1, 0.2]``). Not together with ``scheduler``.
        optimizer_state: Continue an optimizer that has already stepped (a resumed trial):
            ``torch.optim``'s per-parameter state (Adam's ``step``, ``exp_avg``,
            ``exp_avg_sq``, ``max_exp_avg_sq``; SGD's ``momentum_buffer``) by position in
            ``model.parameters()``. The look-ahead continues from it (its tensors are constants)
            instead of from zero moments, and :meth:`check` loads it into the real optimizer.
            ``None`` (default): a fresh optimizer, as at a trial's start.
        clip_grad_norm: ``max_norm`` of ``torch.nn.utils.clip_grad_norm_``, applied before
            each step to the gradients of the parameters ``clip_over`` names, with
            ``norm_type``.
        norm_type: The norm of ``clip_grad_norm`` (``2.0``; ``float("inf")`` for the max).
        clip_grad_value: ``clip_value`` of ``torch.nn.utils.clip_grad_value_``, likewise.
        clip_over: Which gradients your loop clips: ``"trained"`` (default), those of the
            parameters the optimizer trains (``[p for g in opt.param_groups for p in
            g["params"]]``, as Lightning); ``"all"``, ``model.parameters()`` (as Hugging Face's
            Trainer), whose norm also counts the gradients of parameters that require grad but
            that no group trains, zeroed at every step (``model.zero_grad()``). The two are the
            same when the optimizer trains every parameter that requires grad.
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
        optimizer: type[torch.optim.Optimizer] | MakeOptimizer,
        optimizer_kwargs: Mapping[str, Any] | None = None,
        fixed: Mapping[str, float] | None = None,
        k: int | None = None,
        scheduler: MakeScheduler | None = None,
        lr_factors: Sequence[float] | None = None,
        clip_grad_norm: float | None = None,
        norm_type: float = 2.0,
        clip_grad_value: float | None = None,
        clip_over: str = "trained",
        scheduler_interval: str = "step",
        optimizer_state: Mapping[int, Mapping[str, Any]] | None = None,
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
        factory = not isinstance(optimizer, type)
        if factory and not callable(optimizer):
            raise ValueError(
                "optimizer must be a torch.optim class or a factory make_optimizer(model, "
                f"hypers) -> optimizer, got {optimizer!r}."
            )
        if factory and optimizer_kwargs:
            raise ValueError(
                "optimizer_kwargs belong to the class form; a make_optimizer factory sets its "
                "own arguments."
            )
        kwargs = dict(optimizer_kwargs or {})
        resolved = None if factory else resolve_optimizer(optimizer, kwargs)  # type: ignore[arg-type]
        name = getattr(optimizer, "__name__", "make_optimizer")
        applicable = (
            (*_OPTIMIZER_ROLES, *_COMMON_ROLES)
            if resolved is None
            else (*resolved.rule.roles, *_COMMON_ROLES)
        )
        fixed = dict(fixed or {})
        for param, role in roles.items():
            if role not in ROLES:
                raise ValueError(f"Unknown role {role!r} for {param!r}; choose from {ROLES}.")
            if role != "loss" and role not in applicable:
                raise ValueError(
                    f"Role {role!r} ({param!r}) does not apply to {name}; its roles "
                    f"are {(*applicable, 'loss')}."
                )
        tuned = [role for role in roles.values() if role != "loss"]
        # A factory's groups may each take their own parameter of one role (an lr per group):
        # the plan reads each group's value as an affine function of every parameter.
        shared = [r for r in set(tuned) if tuned.count(r) > 1]
        if shared and not (factory and set(shared) <= set(_OPTIMIZER_ROLES)):
            raise ValueError(
                f"Each role but 'loss' may be mapped once; got {dict(roles)}"
                + (
                    " (several parameters of one optimizer role need a make_optimizer factory "
                    "that puts each in its own parameter group)."
                    if set(shared) <= set(_OPTIMIZER_ROLES)
                    else "."
                )
            )
        given = set(kwargs) - {"betas"} | ({"beta1", "beta2"} if "betas" in kwargs else set())
        settable = _COMMON_ROLES if factory else applicable
        for role in fixed:
            if role not in settable:
                raise ValueError(
                    f"Unknown fixed role {role!r} for {name}; choose from {settable}"
                    + (" (make_optimizer sets the optimizer's own values)." if factory else ".")
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
        values = {
            "label_smoothing": 0.0,
            "augment": 0.0,
            **(resolved.values if resolved is not None else {}),
            **fixed,
        }
        if resolved is not None and "lr" not in tuned and "lr" not in values:
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
        if clip_over not in ("trained", "all"):
            raise ValueError(f"clip_over must be 'trained' or 'all', got {clip_over!r}.")
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}."
            )
        if val_mode not in ("train", "eval"):
            raise ValueError(f"val_mode must be 'train' or 'eval', got {val_mode!r}.")
        if autocast is not None and autocast not in (torch.bfloat16, torch.float16):
            raise ValueError(f"autocast must be torch.bfloat16 or torch.float16, got {autocast}.")
        if scheduler is not None and lr_factors is not None:
            raise ValueError(
                "Pass scheduler= (the trial's scheduler factory) or lr_factors= (its manual "
                "form), not both."
            )
        if scheduler is not None and not callable(scheduler):
            raise ValueError(
                f"scheduler must be a factory make_scheduler(optimizer) -> LRScheduler, got "
                f"{scheduler!r}."
            )
        self.clipping = Clipping(
            max_norm=None if clip_grad_norm is None else float(clip_grad_norm),
            norm_type=norm_order(norm_type),
            max_value=None if clip_grad_value is None else float(clip_grad_value),
        )
        if lr_factors is not None:
            lr_factors = [float(f) for f in lr_factors]
            k = len(lr_factors) if k is None else k
            if len(lr_factors) != k:
                raise ValueError(f"lr_factors needs one factor per step: {k}, got {lr_factors}.")
        if k is None and resolved is not None:
            k = resolved.rule.steps_needed(frozenset(tuned), resolved.options)
        elif k is None:
            k = 2 if set(tuned) & {"momentum", "beta1", "beta2"} else 1
        if k < 1 or n_pairs < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError("k, n_pairs and batch_size must be positive.")
        self._draw_train, self.batch_size = make_draw(train_data, batch_size, 128, "train_data")
        self._draw_val, self.val_batch_size = make_draw(
            val_data, batch_size, self.batch_size or 128, "val_data"
        )
        self._model = model
        self._roles = dict(roles)
        self._resolved = resolved
        self._optimizer_kwargs = kwargs
        self._fixed = values
        self._warned: set[str] = set()
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.optimizer_state = dict(optimizer_state) if optimizer_state else None
        self.clip_over = clip_over
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

    def check(self, params: Mapping[str, float], *, seed: int = 0) -> ProbeCheck:
        """Compare the probe at ``params`` with K steps of the real training it stands for: the
        optimizer ``optimizer=`` builds, with the scheduler and clipping, on the probe's own
        batches and dropout masks. ``ok`` when the held-out losses agree at the dtype's precision
        and the probe's derivative along one seeded random direction agrees with a central
        finite difference of the real loop (see ``_check.py``); else ``message`` says what
        disagreed, with both numbers. Costs one probe call plus 3 x K plain steps, in float64
        copies where possible."""
        start = time.perf_counter()
        missing = [name for name in self._roles if name not in params]
        if missing:
            raise KeyError(f"LookaheadProbe.check needs values for {missing}.")
        point = {n: float(params[n]) for n in self._roles}
        seed = int(seed)
        # A compiled model is checked, as it is probed, through its original module.
        model = unwrap_compiled(self.build_model(seed))
        with torch.inference_mode(False), torch.enable_grad():
            precise = float64_copy(model)
            if precise is not None:
                try:
                    return self._compare(precise, point, seed, torch.float64, start)
                except (RuntimeError, TypeError):
                    pass  # a float32-only layer or loss: check in the model's own dtype
            return self._compare(model, point, seed, self.dtype or _model_dtype(model), start)

    def _compare(
        self,
        model: nn.Module,
        point: Mapping[str, float],
        seed: int,
        dtype: torch.dtype,
        start: float,
    ) -> ProbeCheck:
        native = dtype != torch.float64  # autocast has no effect on float64

        def probe_at() -> tuple[float, dict[str, float]]:
            return self._probe(point, seed, model=model, dtype=dtype, autocast=native)

        def real_at(values: Mapping[str, float]) -> float:
            return self._real_loss(model, values, seed, dtype, native, held=point)

        return compare(probe_at, real_at, point, k=self.k, dtype=dtype, seed=seed, start=start)

    def build_model(self, seed: int) -> nn.Module:
        """The network the look-ahead starts from for ``seed``."""
        if isinstance(self._model, nn.Module):
            return self._model
        # Factories often call torch.manual_seed: keep the caller's CPU stream intact.
        with torch.random.fork_rng(devices=[]):
            return self._model(seed)

    def build_optimizer(
        self, model: nn.Module, params: Mapping[str, float]
    ) -> torch.optim.Optimizer:
        """The real optimizer the trial trains ``model`` with at ``params``: the factory's, or the
        class with ``optimizer_kwargs`` and the role values."""
        if self._resolved is None:
            return self.optimizer(model, dict(params))  # type: ignore[call-arg]
        values = self._role_values(params)
        ctor = {n: values[n] for n in ("lr", "weight_decay", "momentum") if n in values}
        if "beta1" in values:
            ctor["betas"] = (values["beta1"], values["beta2"])
        ctor.update(self._optimizer_kwargs)  # a tuned role is never among them
        return self.optimizer(model.parameters(), **ctor)  # type: ignore[call-arg]

    def _role_values(self, params: Mapping[str, float]) -> dict[str, float]:
        values = dict(self._fixed)
        values.update(
            {role: float(params[n]) for n, role in self._roles.items() if role != "loss"}
        )
        return values

    def _plan(self, model: nn.Module, params: Mapping[str, float]) -> Plan:
        """What the look-ahead unrolls for ``model`` at ``params`` (see ``_groups.py``)."""
        at = {n: float(params[n]) for n in self._roles}
        resolved = self._resolved
        if resolved is not None and self.scheduler is None:
            return single_group_plan(
                resolved.rule,
                resolved.options,
                self._role_values(params),
                {role: n for n, role in self._roles.items() if role != "loss"},
                len(list(model.parameters())),
                self.lr_factors,
            )
        plan = read_plan(
            model,
            self.build_optimizer,
            self.scheduler,
            at,
            self.k,
            self.lr_factors,
            step_scheduler=self.scheduler_interval == "step",
        )
        if resolved is None:
            rules = {group.rule for group in plan.groups}
            for n, role in self._roles.items():
                if role not in _OPTIMIZER_ROLES:
                    continue
                if any(role not in rule.roles for rule in rules):
                    raise ValueError(
                        f"Role {role!r} ({n!r}) does not apply to the optimizer make_optimizer "
                        "builds."
                    )
                if n not in plan.reads:
                    raise ValueError(
                        f"make_optimizer does not use hypers[{n!r}] (role {role!r}): no group's "
                        "value changes with it; pass it to the optimizer or drop the role."
                    )
        for n, field in plan.overridden.items():
            if n not in self._warned:
                self._warned.add(n)
                warnings.warn(
                    f"{plan.scheduler} overrides {field} at every look-ahead step, so "
                    f"{n!r} (role {self._roles[n]!r}) has no effect on the first steps: its "
                    "hypergradient is 0 (e.g. OneCycleLR(cycle_momentum=False) keeps beta1).",
                    stacklevel=4,
                )
        return plan

    def _probe(
        self,
        params: Mapping[str, float],
        seed: int,
        differentiate: bool = True,
        *,
        model: nn.Module | None = None,
        dtype: torch.dtype | None = None,
        autocast: bool = True,
    ) -> tuple[float, dict[str, float]]:
        model = self.build_model(seed) if model is None else model
        first = next(model.parameters(), None)
        device = self.device or (first.device if first is not None else torch.device("cpu"))
        dtype = dtype or self.dtype or _model_dtype(model)
        plan = self._plan(model, params)
        leaves = {
            n: torch.tensor(
                float(params[n]), dtype=dtype, device=device, requires_grad=differentiate
            )
            for n in self._roles
        }
        at = {n: float(params[n]) for n in self._roles}
        gen = torch.Generator().manual_seed(seed)
        total_loss = 0.0
        names = list(self._roles) if differentiate else []
        total_grads = [torch.zeros((), dtype=dtype, device=device) for _ in names]
        with _train_mode(model), _fixed_rng(seed, device):
            for _ in range(self.n_pairs):
                train_batches, val_batch, aug_seeds = self._draw_pair(gen, device, dtype)
                loss = self._lookahead(
                    model,
                    plan,
                    leaves,
                    at,
                    train_batches,
                    val_batch,
                    aug_seeds,
                    dtype,
                    differentiate,
                    autocast,
                )
                total_loss += float(loss.detach())
                if not names:
                    continue
                grads = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
                for i, g in enumerate(grads):
                    if g is not None:
                        total_grads[i] = total_grads[i] + g.detach()
        grads = {n: float(g) / self.n_pairs for n, g in zip(names, total_grads)}
        return total_loss / self.n_pairs, grads

    def _draw_pair(
        self, gen: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> tuple[list[Any], Any, list[int]]:
        """K training batches, the held-out batch and the augmentation seeds, in draw order."""
        train_batches = [
            self._draw_batch(self._draw_train, gen, device, dtype, "train_data")
            for _ in range(self.k)
        ]
        val_batch = self._draw_batch(self._draw_val, gen, device, dtype, "val_data")
        aug_seeds = [int(torch.randint(2**62, (1,), generator=gen)) for _ in train_batches]
        return train_batches, val_batch, aug_seeds

    def _common(
        self, leaves: Mapping[str, torch.Tensor], role: str, like: torch.Tensor
    ) -> torch.Tensor:
        """The label smoothing or augmentation magnitude: tuned (a leaf) or fixed."""
        for n, r in self._roles.items():
            if r == role:
                return leaves[n]
        return torch.tensor(self._fixed[role], dtype=like.dtype, device=like.device)

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
        plan: Plan,
        leaves: Mapping[str, torch.Tensor],
        at: Mapping[str, float],
        train_batches: Sequence[Any],
        val_batch: Any,
        aug_seeds: Sequence[int],
        dtype: torch.dtype,
        differentiate: bool = True,
        autocast: bool = True,
    ) -> torch.Tensor:
        """The held-out loss after the K steps; with ``differentiate`` its graph reaches
        ``leaves`` (the hyperparameters by name, 0-d tensors equal to ``at``), else every step
        is first-order and detached (the same values)."""
        first = next(model.parameters(), None)
        device = self.device or (first.device if first is not None else torch.device("cpu"))
        like = torch.zeros((), dtype=dtype, device=device)
        loss_hypers = {n: leaves[n] for n, role in self._roles.items() if role == "loss"}
        model = admit(
            self, model, train_batches[0], loss_hypers, self.loss_fn, dtype=dtype, device=device
        )
        names = [n for n, _ in model.named_parameters()]
        # Frozen parameters (requires_grad=False) get no gradient, so torch.optim never moves
        # them; nor does it move parameters in no group: the look-ahead keeps both fixed.
        weights = [
            p.detach().to(device=device, dtype=dtype).requires_grad_(p.requires_grad)
            for p in model.parameters()
        ]
        groups = [
            (group, [i for i in group.indices if weights[i].requires_grad])
            for group in plan.groups
        ]
        rules = [group.rule(group.options) for group in plan.groups]
        if self.optimizer_state:
            for (_, indices), rule in zip(groups, rules):
                rule.start_from([self._state_at(i, weights[i]) for i in indices])
        # Clones: functional_call updates BatchNorm running statistics in place.
        buffers = {
            n: b.detach().to(device, dtype if b.is_floating_point() else b.dtype).clone()
            for n, b in model.named_buffers()
        }

        def state() -> dict[str, torch.Tensor]:
            return {**dict(zip(names, weights)), **buffers}

        # clip_over="all": the norm also takes the gradients of parameters that require grad
        # but that no group trains (they stay fixed; their gradients only scale the others').
        trained = {i for _, indices in groups for i in indices}
        untrained = [
            w
            for i, w in enumerate(weights)
            if self.clipping.active and self.clip_over == "all"
            if w.requires_grad and i not in trained
        ]
        tuned = frozenset(self._roles.values())
        eps = self._common(leaves, "label_smoothing", like)
        mag = self._common(leaves, "augment", like)
        for step, (batch, aug_seed) in enumerate(zip(train_batches, aug_seeds)):
            if self.augmentation is not None:
                batch = self._augment(batch, mag, aug_seed)
            apply = _applier(model, state())
            live = [weights[i] for _, indices in groups for i in indices]
            clipped = live + untrained
            at_start = self._first_order(step)
            with self._autocast(device, autocast), _twice_differentiable(not at_start):
                if self.loss_fn is not None:
                    loss = self.loss_fn(apply, batch, loss_hypers)
                    two_terms = None
                else:
                    two_terms = _nll_and_uniform(apply(batch[0]), batch[1])
            if two_terms is not None and at_start and "label_smoothing" in tuned:
                # w0 and the batch do not depend on any hyperparameter: the gradient is linear in
                # eps, so two first-order backward passes replace a double backward (exactly).
                g_nll = _grad(two_terms[0], clipped, create_graph=False, retain_graph=True)
                g_uni = _grad(two_terms[1], clipped, create_graph=False)
                grads: list[torch.Tensor | None] = [
                    None if a is None or b is None else a + eps * (b - a)
                    for a, b in zip(g_nll, g_uni)
                ]
            else:
                if two_terms is not None:
                    loss = (1.0 - eps) * two_terms[0] + eps * two_terms[1]
                grads = _grad(loss, clipped, create_graph=differentiate and not at_start)
            if self.clipping.active:
                grads = self.clipping(grads)[: len(live)]
            start = 0
            for (group, indices), rule in zip(groups, rules):
                values = {
                    role: value.tensor(leaves, at, like)
                    for role, value in group.steps[step].items()
                }
                new = rule.step(
                    [weights[i] for i in indices], grads[start : start + len(indices)], values
                )
                start += len(indices)
                for i, w in zip(indices, new):
                    weights[i] = w if differentiate else w.detach().requires_grad_(True)
        with self._autocast(device, autocast), _val_mode(model, self.val_mode):
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

    def _real_loss(
        self,
        model: nn.Module,
        params: Mapping[str, float],
        seed: int,
        dtype: torch.dtype,
        autocast: bool = True,
        held: Mapping[str, float] | None = None,
    ) -> float:
        """The held-out loss after K steps of the real optimizer, scheduler and clipping on a
        copy of ``model``, on the probe's batches with its augmentation seeds and dropout masks
        (averaged over its ``n_pairs``, as the probe). The held-out loss takes the ``loss``
        hyperparameters at ``held`` (default ``params``): the probe holds them constant there."""
        first = next(model.parameters(), None)
        device = self.device or (first.device if first is not None else torch.device("cpu"))
        values = self._role_values(params)
        losses = [n for n, role in self._roles.items() if role == "loss"]
        hypers = {n: torch.tensor(float(params[n]), dtype=dtype, device=device) for n in losses}
        held_hypers = {
            n: torch.tensor(float((held or params)[n]), dtype=dtype, device=device) for n in losses
        }
        magnitude = torch.tensor(values["augment"], dtype=dtype, device=device)
        # Built before the dropout stream is fixed, as the probe reads its optimizer before it.
        runs = []
        for _ in range(self.n_pairs):
            net = copy.deepcopy(model).to(device).train()
            optimizer = self.build_optimizer(net, params)
            scheduler = self.scheduler(optimizer) if self.scheduler is not None else None
            if self.optimizer_state:
                weights = list(net.parameters())
                for i in self.optimizer_state:
                    optimizer.state[weights[i]] = self._state_at(i, weights[i])
            runs.append((net, optimizer, scheduler))
        gen = torch.Generator().manual_seed(seed)
        total = 0.0
        with _fixed_rng(seed, device):
            for net, optimizer, scheduler in runs:
                train_batches, val_batch, aug_seeds = self._draw_pair(gen, device, dtype)
                base_lrs = [group["lr"] for group in optimizer.param_groups]
                if self.clip_over == "all":
                    clipped = [p for p in net.parameters() if p.requires_grad]
                else:
                    clipped = [p for group in optimizer.param_groups for p in group["params"]]
                for step, (batch, aug_seed) in enumerate(zip(train_batches, aug_seeds)):
                    if self.augmentation is not None:
                        batch = self._augment(batch, magnitude, aug_seed)
                    if scheduler is None:
                        for group, lr in zip(optimizer.param_groups, base_lrs):
                            group["lr"] = lr * self.lr_factors[step]
                    net.zero_grad(set_to_none=True)  # as optimizer.zero_grad(), and the rest
                    with self._autocast(device, autocast):
                        with _twice_differentiable(not self._first_order(step)):
                            loss = self._train_loss(net, batch, hypers, values["label_smoothing"])
                    loss.backward()
                    self.clipping.apply_(clipped)
                    optimizer.step()
                    if scheduler is not None and self.scheduler_interval == "step":
                        scheduler.step()
                with torch.no_grad(), self._autocast(device, autocast):
                    with _val_mode(net, self.val_mode):
                        total += float(self._val_loss(net, val_batch, held_hypers))
        return total / self.n_pairs

    def _state_at(self, index: int, like: torch.Tensor) -> dict[str, Any]:
        """The given optimizer state of parameter ``index``, floating tensors (``step``
        aside, as torch keeps it) as copies in ``like``'s dtype and device; ``{}`` if none."""
        state = (self.optimizer_state or {}).get(index) or {}
        return {
            key: value.detach()
            .to(like.device, like.dtype if key != "step" else value.dtype)
            .clone()
            if isinstance(value, torch.Tensor)
            else value
            for key, value in state.items()
        }

    def _train_loss(
        self,
        net: nn.Module,
        batch: Any,
        hypers: Mapping[str, torch.Tensor],
        label_smoothing: float,
    ) -> torch.Tensor:
        if self.loss_fn is not None:
            return self.loss_fn(net, batch, hypers)
        return F.cross_entropy(net(batch[0]), batch[1], label_smoothing=label_smoothing)

    def _val_loss(
        self, net: nn.Module, batch: Any, hypers: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        if self.val_loss_fn is not None:
            return self.val_loss_fn(net, batch)
        if self.loss_fn is not None:
            return self.loss_fn(net, batch, hypers)
        return F.cross_entropy(net(batch[0]), batch[1])

    def _first_order(self, step: int) -> bool:
        """Whether ``step``'s gradient is a constant: step 0, unless the augmentation or a loss
        hyperparameter (which change the first gradient) is tuned."""
        return step == 0 and not set(self._roles.values()) & {"augment", "loss"}

    def _augment(self, batch: Any, magnitude: torch.Tensor, seed: int) -> Any:
        assert self.augmentation is not None
        if not isinstance(batch, (tuple, list)) or not isinstance(batch[0], torch.Tensor):
            raise ValueError(
                "augmentation= augments the inputs of (inputs, ...) batches; with other batch "
                "structures apply it in loss_fn."
            )
        x = self.augmentation(batch[0], magnitude, torch.Generator().manual_seed(seed))
        return type(batch)([x, *batch[1:]]) if isinstance(batch, list) else (x, *batch[1:])

    def _autocast(
        self, device: torch.device, enabled: bool = True
    ) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None or not enabled:
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
