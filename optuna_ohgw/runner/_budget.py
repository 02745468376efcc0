"""A study's budget: what is used, whether it is spent, whether a new configuration may start."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs, lineage
from optuna_ohgw.runner._build import build_scheduler, is_promotion
from optuna_ohgw.studyfile import StudyConfig

MAX_CONSECUTIVE_FAILURES = 5
"""A worker whose last this-many trials failed gives up (and the run fails)."""


def epochs_used(trials: Sequence[FrozenTrial]) -> int:
    return sum(int(t.user_attrs.get(attrs.EPOCHS, 0)) for t in trials)


def epoch_budget_spent(config: StudyConfig, trials: Sequence[FrozenTrial]) -> bool:
    """True when the study has a ``total_epochs`` budget and its trials used it up."""
    total = config.budget.total_epochs
    return bool(total and epochs_used(trials) >= total)


def new_configs_allowed(config: StudyConfig, trials: Sequence[FrozenTrial]) -> bool:
    """Promotion mode: ``n_trials`` counts configurations, not segments."""
    if epoch_budget_spent(config, trials):
        return False
    n_trials = config.budget.n_trials
    return not n_trials or len(lineage.configurations(trials)) < n_trials


def admits(config: StudyConfig, trials: Sequence[FrozenTrial], number: int) -> bool:
    """Whether the new configuration's trial ``number`` holds a budget slot.

    Trial numbers are handed out in one order that every worker sees (the journal's log order;
    an RDB numbers trials under a lock on the study), so the slot is decided without a race:
    the trial gets one if fewer than ``n_trials`` configurations that hold a slot come before
    it. Two workers that both saw a free last slot create two trials; the later one loses.
    """
    n_trials = config.budget.n_trials
    if not n_trials:
        return True
    before = [c for c in lineage.configurations(trials) if c < number]
    return len(before) < n_trials


OVER_BUDGET_REASON = "other workers took the last budget slots first; nothing was trained"


def take_slot(config: StudyConfig, study: optuna.Study, trial: optuna.Trial) -> None:
    """For a trial ``study.optimize`` just created: check that it holds a budget slot (see
    :func:`admits`; a retry keeps its configuration's slot), else mark it
    ``ohgw.over_budget``, stop the study and raise ``TrialPruned`` (it trains nothing)."""
    tid = compat.trial_id(study, trial)
    if "failed_trial" in trial.storage.get_trial_system_attrs(tid):
        return
    if admits(config, study.get_trials(deepcopy=False), trial.number):
        return
    trial.storage.set_trial_user_attr(tid, lineage.OVER_BUDGET, OVER_BUDGET_REASON)
    study.stop()
    raise optuna.TrialPruned(OVER_BUDGET_REASON)


def budget_spent(
    config: StudyConfig, trials: Sequence[FrozenTrial], study: optuna.Study | None = None
) -> bool:
    """True when the study's trial or epoch budget is used up (failed trials do not count).

    Promotion mode: also while no new configuration may start, nothing runs or waits for a
    retry, and (given ``study``) the scheduler would resume none of the paused configurations
    (:meth:`~optuna_ohgw.schedulers.BasePromotionScheduler.can_advance`: DyHPO any below its
    maximum, ASHA and PASHA a promotable one). Without ``study`` paused ones are not counted.
    """
    if epoch_budget_spent(config, trials):
        return True
    if is_promotion(config):
        if new_configs_allowed(config, trials):
            return False
        pending = any(
            t.state == TrialState.RUNNING
            or (t.state == TrialState.WAITING and not lineage.is_continuation(t))
            for t in trials
        )
        if pending:
            return False
        return study is None or not build_scheduler(config).can_advance(study, trials)
    done = sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and lineage.OVER_BUDGET not in t.user_attrs
        for t in trials
    )
    return bool(config.budget.n_trials and done >= config.budget.n_trials)


class BudgetCallback:
    """Stops ``study.optimize`` in a worker when the budget is spent or trials keep failing
    (then :attr:`gave_up` is set)."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.consecutive_failures = 0
        self.gave_up = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if lineage.OVER_BUDGET in trial.user_attrs:
            study.stop()
            return
        self.consecutive_failures = (
            self.consecutive_failures + 1 if trial.state == TrialState.FAIL else 0
        )
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            self.gave_up = True
            study.stop()
        elif budget_spent(self.config, study.get_trials(deepcopy=False)):
            study.stop()
