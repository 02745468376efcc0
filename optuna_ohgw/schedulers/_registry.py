"""The schedulers a study file can name, one entry each.

The study-file validation (names and per-scheduler keys), the runner (pruner, promotion loop,
sampler chain) and the bench grid all read this table; nothing else switches on a scheduler's
name. Building an entry's objects imports them on demand, so reading the table is cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import optuna

from optuna_ohgw.schedulers._base import PROMOTION_RULES

if TYPE_CHECKING:
    from optuna.distributions import FloatDistribution

    from optuna_ohgw.schedulers._base import BasePromotionScheduler


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedulerSpec:
    """One scheduler a study file can name.

    Args:
        name: The study file's ``[scheduler] name``.
        label: How messages name it.
        promotion: True if trials pause at rungs and are resumed (checkpoints, the promotion
            loop) instead of being pruned by an Optuna pruner.
        options: The extra ``[scheduler]`` keys it reads, each with its allowed values (the
            first is the default).
        proposes: True if the scheduler proposes new configurations itself (they reach the
            trial through :class:`~optuna_ohgw.schedulers.ProposalSampler`).
        pruner_factory: ``(r_min, eta, max_resource) -> pruner`` of a stopping-type scheduler.
        scheduler_factory: ``(r_min, eta, max_resource, *, space, seed, **options) ->
            scheduler`` of a promotion-type one.
    """

    name: str
    label: str
    promotion: bool
    options: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    proposes: bool = False
    pruner_factory: Callable[[int, int, int], optuna.pruners.BasePruner] | None = None
    scheduler_factory: Callable[..., BasePromotionScheduler] | None = None

    def make_pruner(
        self, min_resource: int, reduction_factor: int, max_resource: int
    ) -> optuna.pruners.BasePruner:
        """The Optuna pruner (explicit resources, never ``"auto"``, which each worker would
        compute on its own); promotion-type schedulers prune nothing."""
        if self.pruner_factory is None:
            return optuna.pruners.NopPruner()
        return self.pruner_factory(min_resource, reduction_factor, max_resource)

    def make_scheduler(
        self,
        min_resource: int,
        reduction_factor: int,
        max_resource: int,
        *,
        space: Mapping[str, FloatDistribution],
        seed: int,
        options: Mapping[str, Any],
    ) -> BasePromotionScheduler:
        """The promotion-type scheduler (only for entries with ``promotion=True``)."""
        if self.scheduler_factory is None:
            raise ValueError(f"{self.name} is not a promotion-type scheduler")
        return self.scheduler_factory(
            min_resource, reduction_factor, max_resource, space=space, seed=seed, **options
        )


def _asha_pruner(r_min: int, eta: int, r_max: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=r_min, reduction_factor=eta, min_early_stopping_rate=0
    )


def _hyperband_pruner(r_min: int, eta: int, r_max: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=r_min, max_resource=r_max, reduction_factor=eta
    )


def _promotion_asha(
    r_min: int, eta: int, r_max: int, *, promotion: str = "floor", **_: Any
) -> BasePromotionScheduler:
    from optuna_ohgw.schedulers._base import PromotionASHA

    return PromotionASHA(r_min, eta, r_max, promotion=promotion)


def _pasha(
    r_min: int, eta: int, r_max: int, *, promotion: str = "floor", **_: Any
) -> BasePromotionScheduler:
    from optuna_ohgw.schedulers.pasha import PASHA

    return PASHA(r_min, eta, r_max, promotion=promotion)


def _dyhpo(
    r_min: int,
    eta: int,
    r_max: int,
    *,
    space: Mapping[str, FloatDistribution],
    seed: int,
    advance: str = "epoch",
) -> BasePromotionScheduler:
    from optuna_ohgw.schedulers.dyhpo import DyHPO

    return DyHPO(r_min, eta, r_max, space, advance=advance, seed=seed)


SCHEDULER_SPECS: dict[str, SchedulerSpec] = {
    spec.name: spec
    for spec in (
        SchedulerSpec(name="asha", label="ASHA", promotion=False, pruner_factory=_asha_pruner),
        SchedulerSpec(
            name="hyperband", label="Hyperband", promotion=False, pruner_factory=_hyperband_pruner
        ),
        SchedulerSpec(
            name="asha-promotion",
            label="promotion ASHA",
            promotion=True,
            options={"promotion": PROMOTION_RULES},
            scheduler_factory=_promotion_asha,
        ),
        SchedulerSpec(
            name="pasha",
            label="PASHA",
            promotion=True,
            options={"promotion": PROMOTION_RULES},
            scheduler_factory=_pasha,
        ),
        SchedulerSpec(
            name="dyhpo",
            label="DyHPO",
            promotion=True,
            options={"advance": ("epoch", "rung")},
            proposes=True,
            scheduler_factory=_dyhpo,
        ),
    )
}
"""Scheduler name -> its entry, in the order messages list them."""


def scheduler_spec(name: str) -> SchedulerSpec:
    """The entry of ``name``; a one-line ``ValueError`` naming the choices otherwise."""
    try:
        return SCHEDULER_SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULER_SPECS)}"
        ) from None
