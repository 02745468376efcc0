"""``ohgw-optuna run`` end to end: real worker processes on real storages, crashes, resumes."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import attrs, lineage
from optuna_ohgw.runner import WORKER_ATTR, worker_specs
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import load_study_file
from tests.conftest import CLI, PG_URL, require_postgres, run_cli


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished configurations: a trial that lost the last budget slot (PRUNED untrained, with
    ``ohgw.over_budget``) is not one."""
    return [
        t
        for t in study.trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and lineage.OVER_BUDGET not in t.user_attrs
    ]


def test_two_workers_on_the_default_storage(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=6)
    result = run_cli("run", "--study", str(path), "--n-workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 complete" in result.stdout or "pruned" in result.stdout
    study = _study(f"journal:{tmp_path / 'runs' / 'digits-small.journal'}", "digits-small")
    finished = _finished(study)
    assert len(finished) == 6  # exactly n_trials configurations
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    assert {t.system_attrs[WORKER_ATTR]["worker"] for t in study.trials} == {0, 1}
    assert len({t.system_attrs[WORKER_ATTR]["pid"] for t in study.trials}) == 2
    for t in finished:
        assert t.user_attrs[attrs.STATUS] == "ok"
        for name, value in t.params.items():
            assert t.user_attrs[attrs.nudged(name)] == pytest.approx(value)
        seconds = attrs.unpack_floats(t.user_attrs[attrs.EPOCH_SECONDS])
        assert len(seconds) == t.user_attrs[attrs.EPOCHS]
    assert all("test_accuracy" in t.user_attrs for t in study.trials if t.state.name == "COMPLETE")
    assert study.user_attrs["ohgw.task"] == "digits"


def test_rerun_resumes_the_study(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=3)
    first = run_cli("run", "--study", str(path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    url = f"journal:{tmp_path / 'runs' / 'digits-small.journal'}"
    before = {t.number: (t.state, t.params) for t in _study(url, "digits-small").trials}
    second = run_cli("run", "--study", str(path), "--budget", "n_trials=6", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    study = _study(url, "digits-small")
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))
    assert len(numbers) > len(before) and len(_finished(study)) >= 6
    for t in study.trials[: len(before)]:
        assert (t.state, t.params) == before[t.number]


def test_same_seed_gives_the_same_trials(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=4)
    runs = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        result = run_cli("run", "--study", str(path), cwd=tmp_path / folder)
        assert result.returncode == 0, result.stderr
        url = f"journal:{tmp_path / folder / 'runs' / 'digits-small.journal'}"
        runs.append([(t.params, t.value) for t in _study(url, "digits-small").trials])
    assert runs[0] == runs[1]


def test_two_workers_on_postgresql(small_study, tmp_path: pathlib.Path) -> None:
    require_postgres()
    name = f"pg-{uuid.uuid4().hex[:8]}"
    path = small_study(name, n_trials=6)
    result = run_cli(
        "run", "--study", str(path), "--n-workers", "2", "--storage", PG_URL, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "ohgw:***@" in result.stdout and ":ohgw@" not in result.stdout + result.stderr
    study = _study(PG_URL, name)
    assert len(_finished(study)) >= 6
    assert len({t.system_attrs[WORKER_ATTR]["pid"] for t in study.trials}) == 2
    optuna.delete_study(study_name=name, storage=open_storage(PG_URL, heartbeat=False))


def test_a_killed_worker_loses_no_trial(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=10, max_epochs=9)
    url = f"journal:{tmp_path / 'runs' / 'digits-small.journal'}"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [str(CLI), "run", "--study", str(path), "--n-workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim, finished_before = None, {}
    deadline = time.time() + 120
    while victim is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            study = _study(url, "digits-small")
        except (KeyError, FileNotFoundError):
            continue
        running = [
            t
            for t in study.get_trials(states=(TrialState.RUNNING,))
            if WORKER_ATTR in t.system_attrs and t.intermediate_values
        ]
        if running:
            finished_before = {t.number: t.value for t in _finished(study)}
            victim = running[0].system_attrs[WORKER_ATTR]["pid"]
            os.kill(victim, signal.SIGKILL)
    assert victim is not None, "no trial was seen running"
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    study = _study(url, "digits-small")
    killed = [
        t
        for t in study.trials
        if t.state == TrialState.FAIL and t.system_attrs[WORKER_ATTR]["pid"] == victim
    ]
    assert killed, "the killed worker's trial was not failed"
    retried = {t.system_attrs.get("failed_trial") for t in study.trials}
    assert all(t.number in retried for t in killed)
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed[0].number]
    assert retries and retries[0].params == killed[0].params
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len(_finished(study)) >= 10
    after = {t.number: t.value for t in study.trials}
    assert all(after[n] == v for n, v in finished_before.items())


def test_unreachable_storage_is_one_line_without_secrets(small_study, tmp_path) -> None:
    path = small_study()
    url = "postgresql+psycopg2://me:hunter2@127.0.0.1:1/nowhere"
    result = run_cli("run", "--study", str(path), "--storage", url, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach storage")
    assert "hunter2" not in result.stdout + result.stderr


def test_missing_cifar10_folder_is_one_line(tmp_path: pathlib.Path) -> None:
    result = run_cli(
        "run", "--study", "cifar10-asha", "--data-dir", str(tmp_path / "nope"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cifar-10-batches-py" in result.stderr and "--download" in result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.journal"))


def test_bad_study_file_is_one_line(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ntask = "digits"\nmax_epochs = 3\nbogus = 1\n')
    result = run_cli("run", "--study", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    unknown = run_cli("run", "--study", "no-such-study", cwd=tmp_path)
    assert unknown.returncode == 2 and "digits-asha" in unknown.stderr


def test_studies_and_status(small_study, tmp_path: pathlib.Path) -> None:
    listing = run_cli("studies", cwd=tmp_path)
    assert listing.returncode == 0
    for name in ("digits-asha", "mnist1d-hyperband", "cifar10-asha"):
        assert name in listing.stdout
    path = small_study(n_trials=2)
    missing = run_cli("status", "--study", str(path), cwd=tmp_path)
    assert missing.returncode == 2 and "run --study" in missing.stderr
    assert run_cli("run", "--study", str(path), cwd=tmp_path).returncode == 0
    shown = run_cli("status", "--study", str(path), cwd=tmp_path)
    assert shown.returncode == 0 and "best value" in shown.stdout


def test_workers_are_pinned_to_gpus_or_cpu_shares(monkeypatch) -> None:
    config = load_study_file(pathlib.Path(__file__).parents[1] / "studies" / "digits-asha.toml")
    common = dict(data_dir=None, download=False, log_dir=pathlib.Path("runs"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    specs = worker_specs(config, "journal:x.journal", 8, n_gpus=4, **common)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in specs] == ["0", "1", "2", "3"] * 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    specs = worker_specs(config, "journal:x.journal", 3, n_gpus=2, **common)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in specs] == ["3", "5", "3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    specs = worker_specs(config, "postgresql://u:pw@h/db", 2, n_gpus=0, **common)
    assert all(s.env["CUDA_VISIBLE_DEVICES"] == "" for s in specs)
    assert all("pw" not in " ".join(s.args) for s in specs)
    assert all(s.env["OHGW_STORAGE_URL"] == "postgresql://u:pw@h/db" for s in specs)


def test_ctrl_c_stops_workers_and_a_rerun_resumes(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=8, max_epochs=9)
    url = f"journal:{tmp_path / 'runs' / 'digits-small.journal'}"
    proc = subprocess.Popen(
        [str(CLI), "run", "--study", str(path), "--n-workers", "2"],
        cwd=tmp_path,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (``pytest &``) has SIGINT
        # ignored, and a child would inherit that and rightly not stop.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            study = _study(url, "digits-small")
        except (KeyError, FileNotFoundError):
            continue
        running = study.get_trials(states=(TrialState.RUNNING,))
        # Interrupt mid-run with work left: a signal that lands as the last trial ends finds
        # nothing to interrupt (the run then rightly exits 0).
        if any(t.intermediate_values for t in running) and len(_finished(study)) <= 3:
            break
    waited = 120 - (deadline - time.time())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (waited, out[-500:], err[-500:])  # interrupted
    assert err.strip().splitlines()[-1].startswith("error: interrupted")
    study = _study(url, "digits-small")
    assert not study.get_trials(states=(TrialState.RUNNING,))
    finished = {t.number: t.value for t in _finished(study)}
    interrupted = study.get_trials(states=(TrialState.FAIL,))
    assert interrupted, "the running trials should have been interrupted"
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert {t.system_attrs["failed_trial"] for t in waiting} == {t.number for t in interrupted}
    rerun = run_cli("run", "--study", str(path), "--n-workers", "2", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    study = _study(url, "digits-small")
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert all(study.trials[n].value == v for n, v in finished.items())
    assert len(_finished(study)) >= 8
