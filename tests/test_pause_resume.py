"""Pause and resume on Optuna's storage: checkpoints, lineage, the one-resumer race."""

from __future__ import annotations

import math
import multiprocessing
import pathlib
import uuid

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_ohgw import lineage
from optuna_ohgw.checkpoint import CheckpointError, CheckpointStore
from optuna_ohgw.schedulers import (
    PauseResumeHooks,
    PromotionASHA,
    claim,
    close_paused,
    run_promotion_worker,
    rung_epochs,
)
from optuna_ohgw.storage import open_storage
from optuna_ohgw.tasks import DigitsTask
from tests.conftest import backend_url

SPACE = {"lr": FloatDistribution(0.01, 0.5, log=True), "momentum": FloatDistribution(0.0, 0.9)}


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_rung_epochs() -> None:
    assert rung_epochs(1, 3, 27) == [1, 3, 9, 27]
    assert rung_epochs(1, 3, 20) == [1, 3, 9, 20]
    assert rung_epochs(2, 2, 8) == [2, 4, 8]
    with pytest.raises(ValueError):
        rung_epochs(0, 3, 9)


def test_resumed_training_equals_uninterrupted_training(tmp_path: pathlib.Path) -> None:
    task = DigitsTask()
    params = {"lr": 0.1, "momentum": 0.9}
    straight = optuna.create_study(direction="maximize")
    straight.enqueue_trial(params)
    straight.optimize(task.make_objective(0, SPACE, 4), n_trials=1)

    paused = optuna.create_study(direction="maximize")
    paused.enqueue_trial(params)
    objective = task.make_objective(0, SPACE, 4)
    scheduler = PromotionASHA(1, 2, 4)  # rungs 1, 2, 4: two pauses
    objective.hooks = PauseResumeHooks(scheduler, CheckpointStore(tmp_path, "s"))
    run_promotion_worker(paused, objective, _AlwaysPromote(1, 2, 4), lambda trials: False)

    expected = straight.trials[0].intermediate_values
    segments = [t for t in paused.trials if t.state == TrialState.COMPLETE]
    assert [
        t.user_attrs[lineage.START_EPOCH] for t in segments if lineage.START_EPOCH in t.user_attrs
    ] == [0, 1, 2]
    assert lineage.learning_curves(paused.trials)[0] == expected  # bit for bit
    last = segments[-1]
    assert last.value == straight.trials[0].value
    assert last.user_attrs["test_accuracy"] == straight.trials[0].user_attrs["test_accuracy"]
    assert [t.user_attrs.get(lineage.PARENT) for t in segments] == [None, 0, 1]
    assert all(t.user_attrs[lineage.CONFIG] == 0 for t in segments)
    assert sum(t.user_attrs["ohgw.epochs"] for t in segments) == 4  # each epoch counted once
    assert list((tmp_path / "s").iterdir()) == []  # finished: every checkpoint deleted


class _AlwaysPromote(PromotionASHA):
    """Promotes every paused configuration (for tests of the mechanics, not of ASHA)."""

    def choose(self, study, trials, allow_new=True):  # type: ignore[no-untyped-def]
        for t in trials:
            if t.state == TrialState.WAITING and lineage.is_continuation(t):
                return t
        return None


def _paused_study(tmp_path: pathlib.Path, storage=None):  # type: ignore[no-untyped-def]
    task = DigitsTask()
    study = optuna.create_study(direction="maximize", storage=storage)
    objective = task.make_objective(0, SPACE, 3)
    store = CheckpointStore(tmp_path, study.study_name)
    objective.hooks = PauseResumeHooks(PromotionASHA(1, 3, 3), store)
    run_promotion_worker(study, objective, PromotionASHA(1, 3, 3), lambda t: len(t) < 1)
    return study, store, task


def _checkpoint_file(tmp_path: pathlib.Path, study: optuna.Study, waiting) -> pathlib.Path:  # type: ignore[no-untyped-def]
    return tmp_path / study.study_name / lineage.resume_info(waiting)["artifact"]


def test_a_missing_or_corrupt_checkpoint_fails_the_segment(tmp_path: pathlib.Path) -> None:
    study, store, task = _paused_study(tmp_path)
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    objective = task.make_objective(0, SPACE, 3)
    objective.hooks = PauseResumeHooks(PromotionASHA(1, 3, 3), store, max_attempts=2)
    _checkpoint_file(tmp_path, study, waiting).write_bytes(b"not a checkpoint")
    assert claim(study, waiting)
    with pytest.raises(CheckpointError, match="corrupt"):
        objective(optuna.Trial(study, waiting._trial_id))
    # The resume is enqueued again for another worker, with the reason; this one skips it.
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    info = lineage.resume_info(retry)
    assert info["attempts"] == 1 and info["tried_by"] == [lineage.worker_id()]
    assert lineage.tried_here(retry)
    assert "corrupt" in study.trials[waiting.number].user_attrs[lineage.CHECKPOINT_ERROR]
    # The second (last) attempt gives the configuration up and says why on its trial.
    store.delete(info["artifact"])
    assert claim(study, retry)
    with pytest.raises(CheckpointError, match="missing"):
        objective(optuna.Trial(study, retry._trial_id))
    assert study.get_trials(states=(TrialState.WAITING,)) == []
    assert "missing" in study.trials[retry.number].user_attrs[lineage.LOST]
    with pytest.raises(CheckpointError, match="missing"):
        store.load(info["artifact"], 0)


def test_close_paused_prunes_leftovers_and_deletes_checkpoints(tmp_path: pathlib.Path) -> None:
    study, store, _ = _paused_study(tmp_path)
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert _checkpoint_file(tmp_path, study, waiting).exists()
    assert close_paused(study, store) == 1
    (left,) = [t for t in study.trials if lineage.is_continuation(t)]
    assert left.state == TrialState.PRUNED and left.user_attrs[lineage.NOT_PROMOTED]
    assert not _checkpoint_file(tmp_path, study, waiting).exists()


def test_promotion_asha_promotes_the_top_third() -> None:
    study = optuna.create_study(direction="maximize")
    dists = {"lr": SPACE["lr"]}
    for i, value in enumerate([0.1, 0.5, 0.9, 0.3, 0.7, 0.2]):
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.1},
                distributions=dists,
                value=value,
                intermediate_values={1: value},
                user_attrs={lineage.CONFIG: i},
            )
        )
    for i in range(6):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params={"lr": 0.1},
                distributions=dists,
                system_attrs={
                    lineage.RESUME: {"config": i, "parent": i, "epoch": 1, "segment": 1}
                },
            )
        )
    chosen = PromotionASHA(1, 3, 9).choose(study, study.get_trials())
    assert lineage.config_of(chosen) == 2  # 6 configs at rung 1: the top 2 are 2 (0.9), 4 (0.7)


def _race(url: str, name: str, trial_ids: list[int], queue, barrier) -> None:  # type: ignore[no-untyped-def]
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
    trials = {t._trial_id: t for t in study.get_trials()}
    barrier.wait(timeout=120)  # everyone has read the WAITING trials: now race
    queue.put([claim(study, trials[i]) for i in trial_ids])


@pytest.mark.parametrize("backend", ["sqlite", "journal", "postgresql"])
def test_only_one_worker_resumes_a_paused_trial(backend: str, tmp_path: pathlib.Path) -> None:
    """Six processes race to claim each of four paused continuations: one winner each."""
    url = backend_url(backend, tmp_path, "race")
    name = f"race-{uuid.uuid4().hex[:12]}"  # the PostgreSQL database outlives runs
    storage = open_storage(url, heartbeat=False)
    study = optuna.create_study(study_name=name, storage=storage)
    for i in range(4):
        resume = {"config": i, "parent": i, "epoch": 1, "segment": 1}
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params={"lr": 0.1},
                distributions={"lr": SPACE["lr"]},
                system_attrs={lineage.RESUME: resume},
            )
        )
    ids = [t._trial_id for t in study.trials]
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(6)
    procs = [ctx.Process(target=_race, args=(url, name, ids, queue, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join()
    assert [sum(r[k] for r in results) for k in range(len(ids))] == [1, 1, 1, 1], results
    assert all(t.state == TrialState.RUNNING for t in study.get_trials())
    if backend == "postgresql":
        optuna.delete_study(study_name=name, storage=storage)


def test_a_worker_stops_when_segments_keep_failing(tmp_path: pathlib.Path) -> None:
    study = optuna.create_study(direction="maximize")

    def broken(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 0.01, 0.5, log=True)
        raise RuntimeError("out of memory")

    done = run_promotion_worker(study, broken, PromotionASHA(1, 3, 9), lambda trials: True)
    assert done == 5
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 5


def test_reprobe_nudges_each_resumed_segment_from_its_checkpoint(tmp_path: pathlib.Path) -> None:
    from optuna_ohgw import attrs
    from optuna_ohgw.evidence.metrics import startup_seconds
    from optuna_ohgw.schedulers import ResumeProbe
    from optuna_ohgw.seeding import trial_seed
    from optuna_ohgw.steps import NormalizedStep

    task = DigitsTask()
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 0.1, "momentum": 0.5})
    objective = task.make_objective(0, SPACE, 4)
    seen: list[tuple[dict, list]] = []
    states = []

    def make_probe(state):  # type: ignore[no-untyped-def]
        states.append(state)
        seen.append((dict(state.hyperparameters), [p.clone() for p in state.model.parameters()]))
        return task.make_probe(0, SPACE, model=state.model)

    reprobe = ResumeProbe(make_probe, SPACE, step=NormalizedStep(0.1), seed=0)
    objective.hooks = PauseResumeHooks(
        PromotionASHA(1, 2, 4), CheckpointStore(tmp_path, "s"), on_resume=reprobe
    )
    run_promotion_worker(study, objective, _AlwaysPromote(1, 2, 4), lambda trials: False)

    segments = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(segments) == 3 and len(seen) == 2
    first, second, third = segments
    assert not any(k.startswith(attrs.REPROBE) for k in first.user_attrs)
    for seg in (second, third):
        assert seg.user_attrs[attrs.REPROBE_STATUS] == "ok"
        assert seg.user_attrs[attrs.REPROBE_SECONDS] > 0
        assert seg.params == first.params  # Optuna's params stay the starting values
        for name, dist in SPACE.items():
            a, b = seg.user_attrs[attrs.reprobe_from(name)], seg.user_attrs[attrs.reprobe_to(name)]
            grad = seg.user_attrs[attrs.reprobe_grad(name)]
            span = math.log(dist.high / dist.low) if dist.log else dist.high - dist.low
            move = (math.log(b / a) if dist.log else b - a) / span
            if grad != 0 and dist.low < b < dist.high:
                assert move == pytest.approx(-0.1 * math.copysign(1.0, grad))
        assert startup_seconds(seg) >= seg.user_attrs[attrs.REPROBE_SECONDS]
    # The probe started from the checkpoint's trained weights, not a fresh network, and the
    # second resume starts from the values the first one set (carried by the checkpoint).
    fresh = list(task.model(trial_seed(0, 0)).parameters())
    assert any(not torch.equal(p, q) for p, q in zip(seen[0][1], fresh))
    assert seen[0][0]["lr"] == 0.1 and seen[0][0]["momentum"] == 0.5
    for name in SPACE:
        assert (
            second.user_attrs[attrs.reprobe_to(name)] == third.user_attrs[attrs.reprobe_from(name)]
        )
        assert seen[1][0][name] == second.user_attrs[attrs.reprobe_to(name)]
    # The optimizer trains on with the new momentum (lr is set from the values every epoch).
    assert (
        states[1].optimizer.param_groups[0]["momentum"]
        == third.user_attrs[attrs.reprobe_to("momentum")]
    )
