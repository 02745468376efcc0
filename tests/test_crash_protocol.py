"""The segment protocol's crash cases in one process: a worker "dies" (an exception no handler
catches, leaving its trial as a SIGKILL would) at the points of issue 18's breakages, the run's
recovery settles its trial, and a replacement worker finishes the study."""

from __future__ import annotations

import os
import pathlib
import socket
import time

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import lineage, ownership
from optuna_ohgw.checkpoint import CheckpointStore
from optuna_ohgw.runner import WORKER_ATTR, recover_orphans
from optuna_ohgw.schedulers import (
    PauseResumeHooks,
    claim,
    finish_study,
    run_promotion_worker,
)
from optuna_ohgw.storage import open_storage
from optuna_ohgw.tasks import DigitsTask
from tests.test_pause_resume import SPACE, _AlwaysPromote, _one_thread  # noqa: F401 - fixture


class _Died(BaseException):
    """Stands for a SIGKILL: nothing in the worker catches it, its trial stays as it was."""


class _DieAt(PauseResumeHooks):
    """Dies once: right after a pause is recorded (``"pause"``) or after a resumed segment
    reported the configuration's last epoch (``"finish"``)."""

    def __init__(self, point: str, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.point = point
        self.died = False

    def after_epoch(self, trial, state, epochs_done, value):  # type: ignore[no-untyped-def]
        paused = super().after_epoch(trial, state, epochs_done, value)
        resumed = trial.user_attrs.get(lineage.START_EPOCH, 0) > 0
        last = epochs_done >= self.scheduler.max_resource
        if not self.died and (
            (self.point == "pause" and paused) or (self.point == "finish" and last and resumed)
        ):
            self.died = True
            raise _Died
        return paused


def _setup(tmp_path: pathlib.Path, hooks_point: str | None):  # type: ignore[no-untyped-def]
    storage = open_storage(f"journal:{tmp_path / 'crash.journal'}")
    study = optuna.create_study(direction="maximize", storage=storage, study_name="crash")
    store = CheckpointStore(tmp_path, "crash")
    scheduler = _AlwaysPromote(1, 3, 3)
    objective = DigitsTask().make_objective(0, SPACE, 3)
    if hooks_point is None:
        objective.hooks = PauseResumeHooks(scheduler, store)
    else:
        objective.hooks = _DieAt(hooks_point, scheduler, store)

    def owned(trial: optuna.Trial) -> float:  # as the runner's worker records its owner
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        trial.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, me)
        return objective(trial)

    owned.hooks = objective.hooks  # type: ignore[attr-defined]
    return study, store, scheduler, owned


def _one_config(trials) -> bool:  # type: ignore[no-untyped-def]
    return len(lineage.configurations(trials)) < 1


def _die_and_recover(tmp_path: pathlib.Path, point: str) -> tuple[optuna.Study, CheckpointStore]:
    study, store, scheduler, objective = _setup(tmp_path, point)
    with pytest.raises(_Died):
        run_promotion_worker(study, objective, scheduler, _one_config)
    (dead,) = study.get_trials(states=(TrialState.RUNNING,))
    assert recover_orphans(study, dead_pids={os.getpid()}) == [dead.number]
    _, _, scheduler, objective = _setup_again(study, store)
    run_promotion_worker(study, objective, scheduler, _one_config)
    finish_study(study, store)
    return study, store


def _setup_again(study: optuna.Study, store: CheckpointStore):  # type: ignore[no-untyped-def]
    scheduler = _AlwaysPromote(1, 3, 3)
    objective = DigitsTask().make_objective(0, SPACE, 3)
    objective.hooks = PauseResumeHooks(scheduler, store)
    return study, store, scheduler, objective


def _assert_trained_once(study: optuna.Study, tmp_path: pathlib.Path) -> None:
    trials = study.trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert not [t.number for t in trials if lineage.LOST in t.user_attrs]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    from_scratch = [t for t in finished if t.user_attrs.get(lineage.START_EPOCH) == 0]
    assert len(from_scratch) == 1, "the configuration was trained twice from scratch"
    assert lineage.configurations(trials) == {0}
    assert max(lineage.learning_curves(trials)[0]) == 3  # trained to the end
    assert any("test_accuracy" in t.user_attrs for t in finished)
    assert list((tmp_path / "crash").iterdir()) == []  # no checkpoint left


def test_breakage_1_a_death_after_the_last_epoch_loses_no_configuration(
    tmp_path: pathlib.Path,
) -> None:
    # Issue 18, breakage 1: the checkpoint was deleted before the tell, so the retry found it
    # missing and the study's best configuration ended in ohgw.lost.
    study, _ = _die_and_recover(tmp_path, "finish")
    _assert_trained_once(study, tmp_path)


def test_breakage_2_a_death_after_a_pause_trains_nothing_twice(tmp_path: pathlib.Path) -> None:
    # Issue 18, breakage 2: the continuation resumed the configuration AND the crash retry
    # trained it again from scratch.
    study, _ = _die_and_recover(tmp_path, "pause")
    _assert_trained_once(study, tmp_path)
    (paused,) = [t for t in study.trials if t.user_attrs.get(lineage.PAUSED)]
    assert paused.state == TrialState.COMPLETE  # rolled forward, its value is its last epoch's
    assert paused.value == paused.intermediate_values[1]


class _DiesOnNew(_AlwaysPromote):
    def new_configuration(self):  # type: ignore[no-untyped-def]
        raise _Died


def test_breakage_3_no_trial_is_ever_running_without_an_owner(tmp_path: pathlib.Path) -> None:
    # Issue 18, breakage 3: a worker died right after creating a trial, before recording its
    # owner; nothing could recover it and every worker polled forever.
    study, store, _, objective = _setup(tmp_path, None)
    with pytest.raises(_Died):
        run_promotion_worker(study, objective, _DiesOnNew(1, 3, 3), _one_config)
    recover_orphans(study, dead_pids={os.getpid()})
    # The same after a claim: a WAITING trial claimed by a worker that dies at once.
    study.enqueue_trial({"lr": 0.1, "momentum": 0.5})
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert claim(study, waiting)
    recover_orphans(study, dead_pids={os.getpid()})
    start = time.time()
    _, _, scheduler, objective = _setup_again(study, store)
    run_promotion_worker(study, objective, scheduler, _one_config, deadline=time.time() + 60)
    assert time.time() - start < 50, "the replacement waited for an ownerless trial"
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == waiting.number]
    assert retried and retried[0].params == {"lr": 0.1, "momentum": 0.5}


def test_an_expired_lease_is_recovered_by_a_worker_on_any_host(tmp_path: pathlib.Path) -> None:
    # Through the storage proxy there are no heartbeats: a trial whose worker on another
    # machine died is failed and retried once its lease expires, by whichever worker looks.
    study, store, scheduler, objective = _setup(tmp_path, None)
    storage = study._storage
    far = {"host": "another-machine", "pid": 1}
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params={"lr": 0.2, "momentum": 0.1},
        distributions=SPACE,
        user_attrs={ownership.LEASE: time.time() - 1.0},
        system_attrs={WORKER_ATTR: far},
    )
    held = dict(template.user_attrs)
    stranded = storage.create_new_trial(study._study_id, template)
    frozen = storage.get_trial(stranded)
    assert ownership.is_dead(frozen, now=time.time() + ownership.CLOCK_SKEW + 1)
    assert not ownership.is_dead(frozen, now=held[ownership.LEASE])  # not before it expires
    assert not ownership.is_dead(frozen, leases=False)  # another host: only the lease tells
    storage.set_trial_user_attr(stranded, ownership.LEASE, time.time() - 2 * ownership.CLOCK_SKEW)
    run_promotion_worker(
        study, objective, scheduler, lambda trials: False, deadline=time.time() + 60
    )
    assert storage.get_trial(stranded).state == TrialState.FAIL
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == frozen.number]
    assert retry.state == TrialState.COMPLETE and retry.params == frozen.params
    assert WORKER_ATTR in retry.system_attrs and retry.system_attrs[WORKER_ATTR] != far
