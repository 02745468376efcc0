"""The probe of a recipe: a LookaheadProbe built from the recipe's own pieces."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from optuna_ohgw.probes._base import BaseProbe, ProbeCheck, ProbeResult
from optuna_ohgw.recipes._base import BaseRecipe
from optuna_ohgw.recipes._data import on_device
from optuna_ohgw.recipes._plan import RecipePlan, build_model
from optuna_ohgw.recipes._state import RecipeState


def _lookahead_args() -> frozenset[str]:
    from optuna_ohgw.probes import LookaheadProbe

    return frozenset(inspect.signature(LookaheadProbe).parameters)


_PROBE_ARGS = _lookahead_args()


def resume_point(state: RecipeState) -> tuple[int, dict[int, dict[str, Any]]]:
    """Where a resumed trial's look-ahead starts: how often its scheduler has been stepped
    (``last_epoch``; 0 without one), and its optimizer's per-parameter state by position in
    ``model.parameters()`` (parameters it has not stepped are left out)."""
    steps = 0
    if state.scheduler is not None:
        steps = int(getattr(state.scheduler, "last_epoch", -1))
        if steps < 0:
            raise ValueError(
                f"the re-probe cannot tell how far {type(state.scheduler).__name__} has "
                "stepped (no last_epoch >= 0): it would read the schedule from step 0."
            )
    index = {id(p): i for i, p in enumerate(state.model.parameters())}
    moments = {
        index[id(p)]: dict(s)
        for group in state.optimizer.param_groups
        for p in group["params"]
        if (s := state.optimizer.state.get(p)) and id(p) in index
    }
    return steps, moments


class HeldScheduler(torch.optim.lr_scheduler.LRScheduler):
    """A scheduler stepped once per epoch, as the look-ahead's K steps see it: its values stay
    where its construction put them (the first epoch's) however often the look-ahead steps it.
    Exact while the K steps lie within the first epoch (K <= steps per epoch)."""

    def __init__(self, inner: Any) -> None:  # the inner scheduler already set the groups
        self.inner = inner
        self.optimizer = inner.optimizer

    def step(self, epoch: int | None = None) -> None:
        return None


class RecipeProbe(BaseProbe):
    """The look-ahead of ``recipe``'s training: the recipe's model, ``make_optimizer``,
    ``make_scheduler``, clipping, loss and augmentation in a
    :class:`~optuna_ohgw.LookaheadProbe`, differentiated with respect to the probed floats of
    ``plan``. The held values (ints such as a width, categoricals, held floats) are constants:
    :class:`~optuna_ohgw.OHGWSampler` passes the trial's (:attr:`context_names`), or
    ``context`` fixes them; one look-ahead probe is kept per distinct context.

    Args:
        recipe: The recipe.
        plan: Its :class:`~optuna_ohgw.recipes.RecipePlan` for the study's space.
        k: Look-ahead steps (``None``: the probe's default for the roles).
        n_pairs: (train, held-out) draws averaged.
        batch_size: Rows per look-ahead batch (``None``: the recipe's batch size).
        device: Where the look-ahead runs.
        model: Start from this network's current weights (the re-probe of a resumed trial)
            instead of building one from the trial's seed.
        context: The held values, when the probe is not called by the sampler with them.
        resumed: The re-probe of a resumed trial (its :class:`~optuna_ohgw.recipes.RecipeState`
            after the checkpoint is loaded): the look-ahead continues that trial exactly. It
            starts from its weights at its held values (``model`` and ``context``), from its
            optimizer's state (Adam's moments and step counts, SGD's momentum buffers;
            :func:`resume_point`), and reads the K steps of a freshly built scheduler
            fast-forwarded to the trial's position (stepped as often as the trial's was), which
            is exact for any scheduler whose values are a function of its step count and base
            learning rates.
    """

    def __init__(
        self,
        recipe: BaseRecipe,
        plan: RecipePlan,
        *,
        k: int | None = None,
        n_pairs: int = 1,
        batch_size: int | None = None,
        device: torch.device | str = "cpu",
        model: nn.Module | None = None,
        context: Mapping[str, Any] | None = None,
        resumed: RecipeState | None = None,
    ) -> None:
        self.scheduler_steps = 0
        self.optimizer_state: dict[int, dict[str, Any]] | None = None
        if resumed is not None:
            model, context = resumed.model, resumed.held()
            self.scheduler_steps, self.optimizer_state = resume_point(resumed)
        self.recipe = recipe
        self.plan = plan
        self.k = k
        self.n_pairs = n_pairs
        self.batch_size = batch_size or recipe.batch_size
        self.device = torch.device(device)
        self.model = model
        self.context = dict(context) if context is not None else None
        self._probes: dict[tuple[Any, ...], Any] = {}

    @property
    def param_names(self) -> Sequence[str]:
        return tuple(self.plan.roles)

    @property
    def context_names(self) -> Sequence[str]:
        return () if self.context is not None else self.plan.held

    def lookahead(self, params: Mapping[str, Any]) -> Any:
        """The :class:`~optuna_ohgw.LookaheadProbe` for the held values in ``params``."""
        held = self.context if self.context is not None else {n: params[n] for n in self.plan.held}
        key = tuple(sorted((n, repr(v)) for n, v in held.items()))
        if key not in self._probes:
            self._probes[key] = self._build(dict(held))
        return self._probes[key]

    def _build(self, held: dict[str, Any]) -> Any:
        from optuna_ohgw.probes import LookaheadProbe

        recipe, roles = self.recipe, dict(self.plan.roles)
        device = self.device

        def make_model(seed: int) -> nn.Module:
            return build_model(recipe, seed, held).to(device)

        def make_optimizer(model: nn.Module, hypers: Mapping[str, float]) -> Any:
            return recipe.make_optimizer(model, {**held, **hypers})

        scheduler = None
        extra: dict[str, Any] = {}
        # Passed only when set: a LookaheadProbe that does not know clip_over refuses it loudly.
        if self.optimizer_state:
            extra["optimizer_state"] = self.optimizer_state
        if recipe.clip_over != "trained":
            extra["clip_over"] = recipe.clip_over
        per_epoch = recipe.scheduler_interval == "epoch"
        if recipe.has_scheduler and per_epoch and "scheduler_interval" in _PROBE_ARGS:
            extra["scheduler_interval"] = "epoch"
        if recipe.has_scheduler:
            steps = self.scheduler_steps

            def scheduler(optimizer: Any) -> Any:
                made = recipe.make_scheduler(optimizer, held)
                if steps:  # to the resumed trial's position
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # no optimizer.step()
                        for _ in range(steps):
                            made.step()
                if per_epoch and "scheduler_interval" not in extra:
                    return HeldScheduler(made)  # the K steps lie in the first epoch
                return made

        loss_fn = None
        if recipe.has_loss_fn:

            def loss_fn(apply: Any, batch: Any, hypers: Mapping[str, Any]) -> Any:
                return recipe.loss_fn(apply, batch, {**held, **hypers})

        fixed = {}
        if not recipe.has_loss_fn and "label_smoothing" not in roles.values():
            fixed["label_smoothing"] = float(recipe.label_smoothing)
        if recipe.augmentation is not None and "augment" not in roles.values():
            fixed["augment"] = float(recipe.augment)
        return LookaheadProbe(
            self.model if self.model is not None else make_model,
            on_device(recipe, "train_data", device),
            on_device(recipe, "val_data", device),
            roles,
            optimizer=make_optimizer,
            fixed=fixed,
            k=self.k,
            scheduler=scheduler,
            clip_grad_norm=recipe.clip_grad_norm,
            clip_grad_value=recipe.clip_grad_value,
            norm_type=recipe.norm_type,
            batch_size=self.batch_size,
            n_pairs=self.n_pairs,
            loss_fn=loss_fn,
            augmentation=recipe.augmentation,
            device=device,
            **extra,
        )

    def _probed(self, params: Mapping[str, Any]) -> dict[str, float]:
        return {n: float(params[n]) for n in self.plan.roles}

    def __call__(self, params: Mapping[str, Any], *, seed: int = 0) -> ProbeResult:
        return self.lookahead(params)(self._probed(params), seed=seed)

    def loss(self, params: Mapping[str, Any], *, seed: int = 0) -> ProbeResult:
        return self.lookahead(params).loss(self._probed(params), seed=seed)

    def check(self, params: Mapping[str, Any], *, seed: int = 0) -> ProbeCheck | None:
        return self.lookahead(params).check(self._probed(params), seed=seed)
