"""Failures never pass for success: one line per bad input, honest exit codes, probe statuses
counted, failed trials say why, storage errors say what happened, workers end with their parent."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw import attrs
from optuna_ohgw.runner import summarize
from optuna_ohgw.storage import StorageError, open_storage
from tests.conftest import CLI, PG_URL, ROOT, require_postgres, run_cli

BROKEN_STUDY = """\
name = "broken"
task = "digits"
max_epochs = 2

[budget]
n_trials = 20

[space]
lr = { low = 1e-2, high = 0.5, log = true }

[fixed]
weight_decay = -1.0   # torch.optim.SGD refuses it
"""


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_fixed_value_torch_refuses_is_one_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN_STUDY)
    result = run_cli("run", "--study", str(path), cwd=tmp_path)
    _one_line(result, str(path), "fixed.weight_decay", "-1.0")
    assert not (tmp_path / "runs" / "broken.journal").exists()  # refused before any trial


DIVERGING_RECIPE = """\
import torch
from torch import nn

gen = torch.Generator().manual_seed(0)
x = torch.randn(96, 6, generator=gen)
y = (x[:, 0] > 0).long()
train_data = (x[:64], y[:64])
val_data = (x[64:], y[64:])
batch_size = 16


def build_model(seed, hypers):
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))


def make_optimizer(model, hypers):
    return torch.optim.SGD(model.parameters(), lr=hypers["lr"])


def train_epoch(state, epoch):
    raise FloatingPointError("the loss is nan at step 3: lower the learning rate")


def evaluate(model):
    return 0.5
"""


def test_a_worker_that_gives_up_fails_the_run(tmp_path: pathlib.Path) -> None:
    """A configuration every trial of which fails for real (the user's own epoch loop raises;
    the recipe itself loads, probes and evaluates): the run fails, keeping what finished and why
    each trial failed."""
    from optuna_ohgw.runner import RunFailedError, run_study
    from optuna_ohgw.studyfile import load_study_file

    (tmp_path / "diverging.py").write_text(DIVERGING_RECIPE)
    path = tmp_path / "broken.toml"
    path.write_text(
        'name = "broken"\nrecipe = "diverging.py"\ndirection = "maximize"\nmax_epochs = 2\n'
        "[budget]\nn_trials = 20\n[space]\nlr = { low = 1e-2, high = 0.5, log = true }\n"
    )
    config = load_study_file(path)
    url = f"journal:{tmp_path}/runs/broken.journal"
    with pytest.raises(RunFailedError) as caught:
        run_study(config, url, 1, log_dir=tmp_path / "runs")
    assert "gave up" in str(caught.value) and "the loss is nan" in str(caught.value)
    assert caught.value.summary.counts["fail"] == 5  # the summary still shows what happened
    study = optuna.load_study(study_name="broken", storage=open_storage(url))
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 5
    assert all("FloatingPointError: the loss is nan" in t.user_attrs[attrs.ERROR] for t in failed)
    # The dashboard's trial note says why (optuna-dashboard reads it from these study attrs).
    system = compat.storage_of(study).get_study_system_attrs(compat.study_id(study))
    notes = " ".join(str(v) for v in system.values())
    assert "**Failed:** `FloatingPointError: the loss is nan" in notes


def test_a_value_the_optimizer_refuses_fails_before_any_trial(tmp_path: pathlib.Path) -> None:
    """A fixed value torch.optim refuses, set in code past the study file's checks: the probe's
    reading of the optimizer meets it when the worker starts, so the run fails naming it, with
    no trial started."""
    from optuna_ohgw.runner import run_study
    from optuna_ohgw.studyfile import load_study_file

    path = tmp_path / "broken.toml"
    path.write_text(BROKEN_STUDY.replace("weight_decay = -1.0", "weight_decay = 0.0"))
    config = load_study_file(path).replace(fixed={"weight_decay": -1.0})
    url = f"journal:{tmp_path}/runs/broken.journal"
    with pytest.raises(RuntimeError, match="Invalid weight_decay value: -1.0"):
        run_study(config, url, 1, log_dir=tmp_path / "runs")
    study = optuna.load_study(study_name="broken", storage=open_storage(url))
    assert study.trials == []


def test_bad_inputs_are_one_line(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study()
    _one_line(run_cli("run", "--study", str(path), "--n-workers", "abc", cwd=tmp_path), "abc")
    bad_url = run_cli("run", "--study", str(path), "--storage", "foo://x/y", cwd=tmp_path)
    _one_line(bad_url, "driver")
    # status never creates a storage: a mistyped path is an error, and nothing appears on disk
    for url in (f"journal:{tmp_path}/typo/x.journal", f"sqlite:///{tmp_path}/typo2/x.db"):
        _one_line(
            run_cli("status", "--study", str(path), "--storage", url, cwd=tmp_path),
            "no storage file",
        )
    assert not (tmp_path / "typo").exists() and not (tmp_path / "typo2").exists()
    # a journal nobody can create: one line, before any progress bar
    result = run_cli("run", "--study", str(path), "--storage", "journal:/proc/ohgw/x.journal",
                     cwd=tmp_path)  # fmt: skip
    _one_line(result, "/proc/ohgw")
    assert "study " not in result.stdout
    # a SQLite URL into a missing folder is a typo until shown otherwise: one line, no folder
    result = run_cli("run", "--study", str(path), "--storage", f"sqlite:///{tmp_path}/typo3/x.db",
                     cwd=tmp_path)  # fmt: skip
    _one_line(result, "no folder", "mkdir -p")
    assert not (tmp_path / "typo3").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_journal_in_a_read_only_folder_is_one_line(small_study, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = small_study()
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_cli(
            "run", "--study", str(path), "--storage", f"journal:{folder}/x.journal", cwd=tmp_path
        )
    finally:
        folder.chmod(0o755)
    _one_line(result, "not writable")


def test_storage_errors_say_what_happened() -> None:
    with pytest.raises(StorageError, match="connection refused"):
        open_storage("postgresql+psycopg2://me:hunter2@127.0.0.1:1/nowhere")
    require_postgres()
    wrong = PG_URL.replace(":ohgw@", ":not-the-password@")
    with pytest.raises(StorageError, match="authentication failed") as err:
        open_storage(wrong)
    assert "not-the-password" not in str(err.value)
    # postgres:// (libpq style) is accepted as postgresql://
    plain = "postgres://" + PG_URL.split("://", 1)[1]
    assert isinstance(open_storage(plain, heartbeat=False), optuna.storages.RDBStorage)


def test_racing_schema_creation_is_retried() -> None:
    """Two processes open an empty PostgreSQL schema at the same instant: Optuna's table
    creation races, and both must come up (the loser retries)."""
    require_postgres()
    import sqlalchemy

    schema = f"race_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    start = time.time() + 3
    code = (
        "import sys, time\n"
        "from optuna_ohgw.storage import open_storage\n"
        f"time.sleep(max(0, {start} - time.time()))\n"
        "open_storage(sys.argv[1], heartbeat=False)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], env=env, stderr=subprocess.PIPE,
                             text=True)
            for _ in range(3)
        ]  # fmt: skip
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    assert all(code == 0 for code, _ in results), results


def test_summary_counts_probe_statuses_and_flags_failures() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"lr": FloatDistribution(1e-3, 1.0, log=True)}
    for i, status in enumerate(["ok", "ok", "error: RuntimeError: boom", "skipped: fixed", None]):
        user_attrs = {attrs.STATUS: status} if status else {}
        study.add_trial(
            create_trial(value=0.5 + i / 10, params={"lr": 0.1}, distributions=dist,
                         user_attrs=user_attrs)
        )  # fmt: skip
    summary = summarize(study)
    assert summary.probe_status == {"ok": 2, "error": 1, "skipped": 1}
    assert summary.probe_failures == 1
    row = dict(summary.rows())["probe status"]
    assert "2 ok" in row and "WARNING: 1 of 4 probes failed" in row


def test_status_reports_the_seconds_the_study_ran() -> None:
    """``status`` has no run clock: its wall seconds are the union of the trials' spans (two
    overlapping trials of 50 s and 40 s, then a later 20 s one: 90 s; the hour between does
    not count)."""
    import datetime

    study = optuna.create_study()
    t0 = datetime.datetime(2026, 1, 1, 12, 0, 0)
    for start, seconds in ((0, 50), (30, 40), (3600, 20)):
        begin = t0 + datetime.timedelta(seconds=start)
        trial = create_trial(value=0.0)
        trial.datetime_start = begin
        trial.datetime_complete = begin + datetime.timedelta(seconds=seconds)
        study.add_trial(trial)
    assert summarize(study).wall_seconds == 90.0
    assert dict(summarize(study).rows())["wall seconds"] == "90.0"


def _children(pid: int) -> list[int]:
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _running(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_parent_is_killed(small_study, tmp_path: pathlib.Path) -> None:
    path = small_study(n_trials=200, max_epochs=9)
    parent = subprocess.Popen(
        [str(CLI), "run", "--study", str(path), "--n-workers", "2"],
        cwd=tmp_path,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = _children(parent.pid)
    assert len(workers) == 2, "the workers did not start"
    time.sleep(2)  # let them get going (imports, the first trial)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_running(w) for w in workers):
        time.sleep(0.5)
    alive = [w for w in workers if _running(w)]
    for w in alive:  # do not leave them behind if the test fails
        os.kill(w, signal.SIGKILL)
    assert not alive, "workers kept running after their parent died"
