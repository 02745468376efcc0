"""Building a study's objects from its :class:`~optuna_ohgw.studyfile.StudyConfig`: the study,
the pruner, the (OHGW-wrapped) sampler and the promotion-type scheduler."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage

from optuna_ohgw.runner._seeded_sampler import TrialSeededSampler
from optuna_ohgw.studyfile import SAMPLERS, StudyConfig

if TYPE_CHECKING:
    from optuna_ohgw.runner._trainer import RecipeTrainer
    from optuna_ohgw.schedulers import BasePromotionScheduler


def is_promotion(config: StudyConfig) -> bool:
    """True if the study's scheduler pauses and resumes trials instead of pruning them."""
    return config.scheduler.spec.promotion


def build_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    sched = config.scheduler
    return sched.spec.make_pruner(sched.min_resource, sched.reduction_factor, config.max_epochs)


def build_scheduler(config: StudyConfig, worker_index: int = 0) -> BasePromotionScheduler:
    """The promotion-type scheduler of a study file (``asha-promotion``, ``pasha``, ``dyhpo``)."""
    sched = config.scheduler
    return sched.spec.make_scheduler(
        sched.min_resource,
        sched.reduction_factor,
        config.max_epochs,
        space=config.space,
        seed=config.seed * 1000 + worker_index,
        options=sched.options(),
    )


def build_base_sampler(config: StudyConfig) -> optuna.samplers.BaseSampler:
    """The study's Optuna sampler, seeded per trial with the study seed and the trial number
    (:class:`TrialSeededSampler`), so no two workers, machines or restarts repeat a draw and a
    fixed seed reproduces them. QMC is one scrambled sequence for the whole study (its sample
    index lives in the storage): it is seeded with the study seed alone."""
    kind, options = SAMPLERS[config.sampler], dict(config.sampler_options)

    def make(seed: int) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return kind(seed=seed, **options)

    if config.sampler == "qmc":
        return make(config.seed)
    return TrialSeededSampler(make=make, seed=config.seed)


def build_sampler(
    config: StudyConfig, trainer: RecipeTrainer, worker_index: int
) -> optuna.samplers.BaseSampler:
    """The worker's sampler chain: the base sampler (behind DyHPO's proposals where the
    scheduler proposes configurations), wrapped by :class:`~optuna_ohgw.OHGWSampler`.
    ``worker_index`` does not change the draws (see :func:`build_base_sampler`)."""
    from optuna_ohgw.sampler import OHGWSampler
    from optuna_ohgw.steps import make_step_rule

    base = build_base_sampler(config)
    if config.scheduler.spec.proposes:
        from optuna_ohgw.schedulers import ProposalSampler

        base = ProposalSampler(base)  # the scheduler's new configurations, then OHGW's nudge
    probe = None
    if config.ohgw.enabled:
        probe = trainer.make_probe(
            k=config.ohgw.k or None,
            n_pairs=config.ohgw.n_pairs,
            batch_size=config.ohgw.batch_size,
        )
    rule = make_step_rule(config.ohgw.step, base=config.ohgw.base, **config.ohgw.step_options())
    return OHGWSampler(
        base,
        probe,
        step=rule,
        n_steps=config.ohgw.n_steps,
        search_space=trainer.probed_space,
        seed=config.seed,
        self_check=config.ohgw.self_check,
    )


def build_resume_probe(config: StudyConfig, trainer: RecipeTrainer) -> Any:
    """The re-probe at every promotion (:class:`~optuna_ohgw.schedulers.ResumeProbe`) when the
    study file asks for it (``[ohgw] reprobe = true``), else ``None``."""
    if not (config.ohgw.enabled and config.ohgw.reprobe):
        return None
    from optuna_ohgw.schedulers import ResumeProbe
    from optuna_ohgw.steps import make_step_rule

    def make_probe(state: Any) -> Any:  # continues the resumed configuration exactly
        return trainer.make_probe(
            k=config.ohgw.k or None,
            n_pairs=config.ohgw.n_pairs,
            batch_size=config.ohgw.batch_size,
            resumed=state,
        )

    rule = make_step_rule(config.ohgw.step, base=config.ohgw.base, **config.ohgw.step_options())
    return ResumeProbe(make_probe, trainer.probed_space, step=rule, seed=config.seed)


def study_attrs(config: StudyConfig) -> dict[str, Any]:
    """What the study was run with, stored on it for the dashboard and the evidence code."""
    return {
        "ohgw.task": config.task or config.label,
        "ohgw.scheduler": config.scheduler.name,
        "ohgw.sampler": config.sampler,
        "ohgw.enabled": config.ohgw.enabled,
        "ohgw.step_rule": config.ohgw.step if config.ohgw.enabled else "off",
        "ohgw.seed": config.seed,
        "ohgw.max_epochs": config.max_epochs,
        "ohgw.target": config.target,
        "ohgw.study_file": str(config.path),
        **({"ohgw.recipe": config.recipe} if config.recipe else {}),
    }


TOKEN_WAIT = 5.0
"""Seconds a process that joins a study just created elsewhere waits for the study's token."""


def create_study(config: StudyConfig, storage: BaseStorage) -> optuna.Study:
    """Create the study (or load it, to resume) and record its settings.

    The process that creates the study gives it its random token at once
    (:func:`~optuna_ohgw.artifact_store.record_token`); one that loads a study created a moment
    ago elsewhere waits a little for it, so every worker binds its store to the same token.
    """
    from optuna_ohgw.artifact_store import record_token, study_token

    kwargs: dict[str, Any] = {
        "study_name": config.study_name,
        "storage": storage,
        "pruner": build_pruner(config),
    }
    try:
        study = optuna.create_study(direction=config.direction, **kwargs)
        record_token(study)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**kwargs)
        young = not study.get_trials(deepcopy=False)
        deadline = time.monotonic() + (TOKEN_WAIT if young else 0.0)
        while study_token(study) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if study_token(study) is None:  # a study from before tokens (or its creator died)
            record_token(study)
    for key, value in study_attrs(config).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study
