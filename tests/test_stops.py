"""Issue 26: stops and restarts never train a segment twice, never drop one silently and
never cut a study's budget short. Real storages and real worker processes throughout."""

from __future__ import annotations

import collections
import os
import pathlib
import signal
import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import attrs, lineage
from tests.conftest import CLI, SMALL_STUDY


def _write(tmp_path: pathlib.Path, name: str, scheduler: str, n_trials: int, extra: str = ""):
    """conftest's small digits study with 9 epochs, and ``extra`` lines in its budget."""
    path = tmp_path / f"{name}.toml"
    text = SMALL_STUDY.format(name=name, max_epochs=9, n_trials=n_trials, scheduler=scheduler)
    path.write_text(text.replace("[budget]\n", f"[budget]\n{extra}"))
    return path


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    from optuna_ohgw.storage import open_storage

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
    except (KeyError, Exception):  # noqa: BLE001 - not created yet
        return []
    return study.get_trials(deepcopy=False)


def _run(path: pathlib.Path, url: str, cwd: pathlib.Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CLI), "run", "--study", str(path), "--storage", url, *extra],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if ready():
            return True
        time.sleep(0.2)
    return False


def trained_twice(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[int, int]]:
    """(configuration, epoch) pairs that finished segments reported more than once."""
    seen: collections.Counter[tuple[int, int]] = collections.Counter()
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            for epoch in t.intermediate_values:
                seen[(lineage.config_of(t), epoch)] += 1
    return sorted(k for k, n in seen.items() if n > 1)


def live_per_config(trials: list[optuna.trial.FrozenTrial]) -> dict[int, int]:
    live = collections.Counter(
        lineage.config_of(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)
    )
    return dict(live)


def sigterm_reruns(tmp_path: pathlib.Path, stops: int, n_workers: int = 2) -> dict:
    """SIGTERM ``run`` (promotion ASHA's sibling PASHA, 2 workers, journal) ``stops`` times, the
    later ones while a crash or hand-back retry trains; then rerun to the end."""
    name = "pasha-stops"
    path = _write(tmp_path, name, "pasha", n_trials=6)
    url = f"journal:{tmp_path / 'stops.journal'}"
    most_live = 0
    for i in range(stops):
        proc = _run(path, url, tmp_path, "--n-workers", str(n_workers))

        def ready(i: int = i) -> bool:
            running = [t for t in _trials(url, name) if t.state == TrialState.RUNNING]
            if i == 0:
                return bool(running)
            return any("failed_trial" in t.system_attrs for t in running)

        _wait_for(proc, ready)
        time.sleep(0.5)  # into the segment
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        most_live = max([most_live, *live_per_config(_trials(url, name)).values()])
    proc = _run(path, url, tmp_path, "--n-workers", str(n_workers))
    _, err = proc.communicate(timeout=300)
    trials = _trials(url, name)
    return {
        "rc": proc.returncode,
        "stderr": err,
        "trials": trials,
        "twice": trained_twice(trials),
        "most_live": most_live,
    }


def test_sigterm_reruns_never_train_a_segment_twice(tmp_path: pathlib.Path) -> None:
    # Issue 26, finding 1: a stop during a retried segment left two WAITING retries of it.
    out = sigterm_reruns(tmp_path, stops=4)
    assert out["rc"] == 0, out["stderr"][-2000:]
    assert out["most_live"] <= 1, "a configuration had two live trials after a stop"
    assert out["twice"] == []
    trials = out["trials"]
    assert len(lineage.configurations(trials)) == 6
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not [t for t in trials if lineage.LOST in t.user_attrs]


def test_a_stopped_dyhpo_study_resumes_to_its_epoch_budget(tmp_path: pathlib.Path) -> None:
    # Issue 26, finding 2: a rerun after all configurations existed "finished" at 3 of 18.
    name = "dyhpo-stop"
    path = _write(tmp_path, name, "dyhpo", n_trials=3, extra="total_epochs = 18\n")
    url = f"journal:{tmp_path / 'dyhpo.journal'}"
    proc = _run(path, url, tmp_path)
    assert _wait_for(proc, lambda: len(lineage.configurations(_trials(url, name))) >= 3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    proc = _run(path, url, tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    trials = _trials(url, name)
    assert sum(int(t.user_attrs.get(attrs.EPOCHS, 0)) for t in trials) >= 18
    assert trained_twice(trials) == []


# ----- the same code paths in one process, on a real journal ---------------------------------

DEAD_PID = 2**22 + 17  # a worker that is gone (same host)


def _journal_study(tmp_path: pathlib.Path) -> optuna.Study:
    from optuna_ohgw.storage import open_storage

    storage = open_storage(f"journal:{tmp_path / 'unit.journal'}", heartbeat=False)
    return optuna.create_study(storage=storage, study_name="unit", direction="maximize")


def _running(study: optuna.Study, pid: int, *, params: bool = True) -> int:
    """A segment RUNNING on worker ``pid`` (with parameters drawn, or killed before)."""
    from optuna.distributions import FloatDistribution

    from optuna_ohgw import ownership

    trial = study.ask({"lr": FloatDistribution(1e-3, 1.0)} if params else None)
    host = ownership.me()["host"]
    study._storage.set_trial_system_attr(
        trial._trial_id, ownership.OWNER, {"host": host, "pid": pid}
    )
    return trial.number


def _waiting_retry(study: optuna.Study) -> optuna.trial.FrozenTrial:
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    return waiting


def _claim_as(study: optuna.Study, trial: optuna.trial.FrozenTrial, pid: int) -> None:
    from optuna_ohgw import ownership
    from optuna_ohgw.schedulers import claim

    assert claim(study, trial)
    host = ownership.me()["host"]
    study._storage.set_trial_system_attr(
        trial._trial_id, ownership.OWNER, {"host": host, "pid": pid}
    )


def test_a_retry_of_a_retry_records_itself_and_nobody_adds_a_second(
    tmp_path: pathlib.Path,
) -> None:
    from optuna_ohgw.runner import recover_orphans
    from optuna_ohgw.runner._handback import hand_back
    from optuna_ohgw.runner._recovery import retry_interrupted

    study = _journal_study(tmp_path)
    first = _running(study, DEAD_PID)
    assert recover_orphans(study, dead_pids={DEAD_PID}) == [first]
    for pid in (DEAD_PID + 1, DEAD_PID + 2, DEAD_PID + 3):
        retried = _waiting_retry(study)
        _claim_as(study, retried, pid)
        # Optuna's optimize marks an interrupted trial FAIL itself, then each of the worker's
        # hand-back, its watchdog and the parent's retry_interrupted may try to retry it.
        study._storage.set_trial_state_values(retried._trial_id, TrialState.FAIL)
        hand_back(study, pid)
        hand_back(study, pid)
        retry_interrupted(study, {pid})
        again = _waiting_retry(study)  # exactly one
        assert again.system_attrs["failed_trial"] == retried.number
    assert again.system_attrs["retry_history"] == [first, first + 1, first + 2, first + 3]
    assert live_per_config(study.get_trials()) == {first: 1}


def test_two_retries_added_at_once_leave_one(tmp_path: pathlib.Path) -> None:
    from optuna_ohgw.schedulers._recovery import DUPLICATE, keep_first_retry, retry

    study = _journal_study(tmp_path)
    number = _running(study, DEAD_PID)
    study._storage.set_trial_state_values(study.trials[number]._trial_id, TrialState.FAIL)
    failed = study.trials[number]
    assert retry(study, failed)
    assert retry(study, failed)  # a second call adds nothing
    assert live_per_config(study.get_trials()) == {number: 1}
    # Two processes that both read the study before either retry existed both add one; each
    # then runs the check that retry() runs after its add: the later one is closed.
    first = _waiting_retry(study)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs=dict(first.user_attrs),
            system_attrs=dict(first.system_attrs),
        )
    )
    later = study.trials[-1]
    assert keep_first_retry(study, later._trial_id, number, number) is False
    assert keep_first_retry(study, first._trial_id, number, number) is True
    closed = study.trials[later.number]
    assert closed.state == TrialState.FAIL
    assert closed.user_attrs[DUPLICATE] == f"trial {first.number} retries it"
    assert live_per_config(study.get_trials()) == {number: 1}


def test_a_fourth_death_after_the_draw_is_lost_loudly_and_shown(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    from optuna_ohgw.runner import recover_orphans, summarize

    study = _journal_study(tmp_path)
    first = _running(study, DEAD_PID)
    recover_orphans(study, dead_pids={DEAD_PID})
    for pid in (DEAD_PID + 1, DEAD_PID + 2, DEAD_PID + 3):  # the fourth death is lost
        retried = _waiting_retry(study)
        _claim_as(study, retried, pid)
        with caplog.at_level("WARNING", logger="optuna_ohgw"):
            what = recover_orphans(study, dead_pids={pid})
        assert what == [retried.number]
    trials = study.get_trials()
    assert not [t for t in trials if t.state == TrialState.WAITING]
    lost = trials[-1]
    assert "4 times" in lost.user_attrs[lineage.LOST]
    assert lost.user_attrs["ohgw.recovered"].startswith("lost:")
    assert f"Trial {lost.number} (configuration {first}) is lost" in caplog.text
    assert "lost" in summarize(study).format()


@pytest.mark.parametrize("how", ["before the draw", "sigterm"])
def test_deaths_before_the_draw_and_sigterms_always_retry(
    tmp_path: pathlib.Path, how: str
) -> None:
    from optuna_ohgw.runner import recover_orphans

    study = _journal_study(tmp_path)
    _running(study, DEAD_PID, params=how == "sigterm")
    for pid in range(DEAD_PID, DEAD_PID + 6):
        if pid > DEAD_PID:
            _claim_as(study, _waiting_retry(study), pid)
        recover_orphans(study, dead_pids={pid}, interrupted=how == "sigterm")
    retried = _waiting_retry(study)
    assert len(retried.system_attrs["retry_history"]) == 6
    assert retried.system_attrs["ohgw:crashes"] == []
    assert not [t for t in study.get_trials() if lineage.LOST in t.user_attrs]
    what = study.trials[-2].user_attrs["ohgw.recovered"]
    assert what == (
        "retried: its worker was stopped (SIGTERM)"
        if how == "sigterm"
        else "retried: its worker died"
    )


@pytest.mark.parametrize("scheduler", ["asha-promotion", "pasha", "dyhpo"])
def test_done_counts_the_paused_configurations_the_scheduler_would_resume(
    tmp_path: pathlib.Path, scheduler: str
) -> None:
    # Issue 26, finding 2, for each promotion scheduler: all configurations exist and each is
    # paused at the first rung; the best one would be promoted (DyHPO: any would advance).
    from optuna.distributions import FloatDistribution

    from optuna_ohgw.runner import budget_spent
    from optuna_ohgw.studyfile import load_study_file

    config = load_study_file(_write(tmp_path, "done", scheduler, n_trials=3))
    study = _journal_study(tmp_path)
    dist = {"lr": FloatDistribution(1e-3, 1.0)}
    for c, value in enumerate([0.5, 0.7, 0.6]):
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.01 * (c + 1)},
                distributions=dist,
                value=value,
                intermediate_values={1: value},
                user_attrs={lineage.CONFIG: c, lineage.PAUSED: True, attrs.EPOCHS: 1},
            )
        )
    for c in range(3):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params={"lr": 0.01 * (c + 1)},
                distributions=dist,
                system_attrs={lineage.RESUME: {"config": c, "epoch": 1, "artifact": f"a{c}"}},
            )
        )
    trials = study.get_trials()
    assert budget_spent(config, trials) is True  # without the study: the old answer
    assert budget_spent(config, trials, study) is False


@pytest.mark.parametrize("where", ["under a file", "s3 without a bucket"])
def test_a_bad_store_is_one_line_before_the_study_exists(
    tmp_path: pathlib.Path, where: str
) -> None:
    # Issue 26, finding 7: the error came after the study header and a progress bar, and left
    # an empty study in the storage.
    from optuna_ohgw.storage import open_storage
    from tests.conftest import run_cli

    path = _write(tmp_path, "bad-store", "pasha", n_trials=2)
    (tmp_path / "a-file").write_text("")
    store = str(tmp_path / "a-file" / "ckpt") if where == "under a file" else "s3://"
    url = f"journal:{tmp_path / 'bad.journal'}"
    result = run_cli("run", "--study", str(path), "--storage", url, "--artifacts", store,
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr  # one line, no progress bar
    assert result.stdout == ""  # no study header
    assert optuna.get_all_study_names(open_storage(url)) == []  # no empty study left


if __name__ == "__main__":  # before/after figures: python -m tests.test_stops DIR STOPS
    import sys

    result = sigterm_reruns(pathlib.Path(sys.argv[1]), int(sys.argv[2]))
    print("rc", result["rc"], "twice", result["twice"], "most live", result["most_live"])
    _ = pytest
