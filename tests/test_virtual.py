"""Virtual workers: the baton's order, and real runs on the digits task against real workers.

* N=1: a virtual run equals a real one-worker run (``run_study``, a worker process) decision for
  decision: same trials, parameters, values, fates.
* N=2: with equal-time epochs a virtual run equals a real two-process run whose order is forced
  (the two processes take strict turns at every epoch report, through a file): same trials,
  workers, parameters, values and pruning decisions.
* A grid of virtual cells resumed after an interruption reruns the interrupted cell whole and
  gives the very cells an uninterrupted grid gives.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pathlib
import threading
import time
from typing import Any

import optuna
import pytest

from optuna_ohgw.artifact_store import is_marker
from optuna_ohgw.evidence.grid import (
    CODE_ATTR,
    DONE_ATTR,
    WORKERS_ATTR,
    Cell,
    cell_config,
    run_grid,
)
from optuna_ohgw.evidence.metrics import anytime_curve, budget_used
from optuna_ohgw.evidence.provenance import code_version, machine
from optuna_ohgw.runner import WORKER_ATTR, run_study, run_study_virtual, run_worker
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import (
    StudyFileError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_study_file,
)
from optuna_ohgw.virtual import VIRTUAL_ATTR, Baton, VirtualWorkerStorage, optimize_virtual
from tests.conftest import SMALL_STUDY


def _decisions(url: str, name: str, *, workers: bool = True) -> list[tuple[Any, ...]]:
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
    return [
        (
            t.number,
            t.state.name,
            tuple(sorted(t.params.items())),
            tuple(sorted(t.intermediate_values.items())),
            t.system_attrs[WORKER_ATTR]["worker"] if workers else None,
        )
        for t in study.get_trials()
    ]


# ----- the baton alone --------------------------------------------------------------------------


def test_baton_orders_events_by_clock_then_worker() -> None:
    baton = Baton(3)
    log: list[tuple[int, float]] = []
    epochs = {0: 3, 1: 1, 2: 2}  # worker 1 stops early, 2 after two events

    def body(w: int) -> None:
        baton.start(w)
        try:
            for _ in range(epochs[w]):
                time.sleep(0.001 * (3 - w))  # the OS order must not matter
                baton.step(w)
                log.append((w, baton.now(w)))
        finally:
            baton.finish(w)

    threads = [threading.Thread(target=body, args=(w,)) for w in range(3)]
    for t in reversed(threads):
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert log == [(0, 1.0), (1, 1.0), (2, 1.0), (0, 2.0), (2, 2.0), (0, 3.0)]
    assert baton.events == 6


def _first_reporters(tie_seed: int | None, workers: int = 8, epochs: int = 3) -> list[int]:
    """The worker that reports first at each virtual time, on the epochs clock (all tie)."""
    baton = Baton(workers, tie_seed=tie_seed)
    log: list[tuple[int, float]] = []

    def body(w: int) -> None:
        baton.start(w)
        try:
            for _ in range(epochs):
                baton.step(w)
                log.append((w, baton.now(w)))
        finally:
            baton.finish(w)

    threads = [threading.Thread(target=body, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(log) == workers * epochs
    assert [now for _, now in log] == sorted(now for _, now in log)  # the clock still rules
    return [next(w for w, now in log if now == e) for e in range(1, epochs + 1)]


def test_baton_breaks_ties_by_a_seeded_order_that_favours_nobody() -> None:
    """Issue 27: with ties to the lower index, worker 0 reports first at every virtual time (its
    first trial reaches every rung first). A tie seed draws the order afresh at each event:
    reproducible for one seed, and worker 0 is first about 1 time in 8."""
    assert _first_reporters(None) == [0, 0, 0]
    assert _first_reporters(5) == _first_reporters(5)  # bit-reproducible
    firsts = [w for seed in range(40) for w in _first_reporters(seed)]
    assert firsts.count(0) < len(firsts) / 3
    assert len(set(firsts)) == 8


def test_baton_idle_waits_for_the_next_event_of_a_busy_worker() -> None:
    baton = Baton(2)
    log: list[str] = []

    def busy() -> None:
        baton.start(0)
        for _ in range(2):
            baton.step(0)
            log.append(f"report@{baton.now(0):g}")
        baton.finish(0)

    def idler() -> None:
        baton.start(1)
        for _ in range(3):
            baton.idle(1)
            log.append(f"poll@{baton.now(1):g}")
        baton.finish(1)

    threads = [threading.Thread(target=busy), threading.Thread(target=idler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # Each poll comes after the busy worker's report at that time; with nobody busy left the
    # idle call returns at once.
    assert log == ["report@1", "poll@1", "report@2", "poll@2", "poll@2"]


def test_baton_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Baton(0)
    with pytest.raises(ValueError, match="clock must be"):
        Baton(2, clock="wall")  # type: ignore[arg-type]


# ----- real runs --------------------------------------------------------------------------------


def _config(path: pathlib.Path, name: str, n_trials: int, max_epochs: int = 3) -> Any:
    path.write_text(
        SMALL_STUDY.format(name=name, max_epochs=max_epochs, n_trials=n_trials, scheduler="asha")
    )
    config = load_study_file(path)
    return config.replace(ohgw=dataclasses.replace(config.ohgw, enabled=False))


def test_one_virtual_worker_equals_one_real_worker(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    config = _config(tmp_path / "s.toml", "one", n_trials=6)
    real, virtual = f"journal:{tmp_path / 'real.journal'}", f"journal:{tmp_path / 'v.journal'}"
    run_study(config, real, 1, log_dir=tmp_path / "logs", poll_seconds=0.1)
    run_study_virtual(config, virtual, 1, threads=1)
    a, b = _decisions(real, config.study_name), _decisions(virtual, config.study_name)
    assert len(a) >= 6 and {d[1] for d in a} >= {"COMPLETE", "PRUNED"}
    assert a == b


class AlternatingBaton:
    """A forced order for two real processes: worker ``w``'s ``j``-th turn (its start, then
    each epoch report) is turn ``2j + w`` of a counter in a file; a worker that ended stops
    holding the other up. This is the order virtual workers take when epochs take equal time
    (worker 0 first at every tie)."""

    clock = "epochs"

    def __init__(self, folder: pathlib.Path, worker: int) -> None:
        self.folder, self.worker, self.turns, self.events = folder, worker, 0, 0

    def now(self, worker: int) -> float:
        return float(self.turns)

    def _read(self) -> int:
        try:
            return int((self.folder / "turn").read_text() or 0)
        except FileNotFoundError:
            return 0

    def _write(self, value: int) -> None:
        tmp = self.folder / f"turn.{self.worker}"
        tmp.write_text(str(value))
        os.replace(tmp, self.folder / "turn")

    def _wait(self) -> None:
        other = self.folder / f"done{1 - self.worker}"
        while self._read() != 2 * self.turns + self.worker and not other.exists():
            time.sleep(0.002)

    def start(self, worker: int) -> None:
        self._wait()

    def step(self, worker: int) -> int:
        self._write(2 * self.turns + self.worker + 1)
        self.turns += 1
        self._wait()
        self.events += 1
        return self.events

    def idle(self, worker: int) -> None:  # pragma: no cover - stopping ASHA never idles
        raise AssertionError("not for promotion schedulers")

    def finish(self, worker: int) -> None:
        (self.folder / f"done{self.worker}").touch()
        self._write(2 * self.turns + self.worker + 1)


def _forced_worker(payload: dict[str, Any], url: str, folder: str, worker: int) -> None:
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    baton = AlternatingBaton(pathlib.Path(folder), worker)
    view = VirtualWorkerStorage(open_storage(url), baton, worker)  # type: ignore[arg-type]
    baton.start(worker)
    try:
        run_worker(config_from_dict(payload), view, worker)
    finally:
        baton.finish(worker)


def test_two_virtual_workers_equal_two_real_workers_in_forced_order(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    config = _config(tmp_path / "s.toml", "two", n_trials=6, max_epochs=3)
    real, virtual = f"journal:{tmp_path / 'real.journal'}", f"journal:{tmp_path / 'v.journal'}"
    from optuna_ohgw.runner import create_study

    create_study(config, open_storage(real))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_forced_worker, args=(config_to_dict(config), real, str(tmp_path), w))
        for w in (1, 0)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    run_study_virtual(config, virtual, 2, threads=1)
    a, b = _decisions(real, config.study_name), _decisions(virtual, config.study_name)
    assert {d[4] for d in a} == {0, 1}  # both workers ran trials
    assert any(len(d[3]) > 1 for d in a) and any(d[1] == "PRUNED" for d in a)
    assert a == b

    # The evidence reads the virtual times: two workers, so the elapsed ("wall") time is about
    # half the epochs trained, and the curve's points follow the run's event order.
    study = optuna.load_study(study_name=config.study_name, storage=open_storage(virtual))
    trials = study.get_trials()
    ends = [e for t in trials for e in t.system_attrs[VIRTUAL_ATTR]["ends"]]
    assert budget_used(trials, "wall") == max(ends)
    assert budget_used(trials, "epochs") == len(ends)
    assert max(ends) < 0.6 * len(ends)
    walls = [t for t, _ in anytime_curve(trials, "wall")]
    assert walls == sorted(walls) and walls[-1] == max(ends)


def test_optimize_virtual_runs_anyones_study() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        for step in range(1, 5):
            trial.report(step * (1 - x * x), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 4 * (1 - x * x)

    def run() -> list[tuple[Any, ...]]:
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=0),
            pruner=optuna.pruners.SuccessiveHalvingPruner(),
        )
        optimize_virtual(study, objective, 4, n_trials=12)
        return [
            (t.number, t.state.name, t.params["x"], t.system_attrs[VIRTUAL_ATTR]["worker"])
            for t in study.trials
        ]

    first = run()
    assert len(first) >= 12 and {w for *_, w in first} == {0, 1, 2, 3}
    assert run() == first  # the same run, whatever the threads' timing


@pytest.mark.parametrize("scheduler", ["asha", "dyhpo"])
def test_resumed_virtual_grid_reruns_the_interrupted_cell_whole(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, scheduler: str
) -> None:
    # dyhpo: issue 27's grid, resumed, refused its interrupted DyHPO cells: the cell's study
    # was deleted but not its checkpoints, whose marker named the deleted study.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / f"digits-{scheduler}.toml").write_text(
        SMALL_STUDY.format(
            name=f"digits-{scheduler}", max_epochs=3, n_trials=5, scheduler=scheduler
        )
    )
    cells = [Cell("digits", scheduler, v, 0, workers=2) for v in ("vanilla", "toward-middle")]
    kwargs: dict[str, Any] = dict(virtual=True, threads=1, study_dirs=[studies])
    fresh = f"journal:{tmp_path / 'fresh.journal'}"
    run_grid(cells, fresh, grid_dir=tmp_path / "g1", **kwargs)

    resumed = f"journal:{tmp_path / 'resumed.journal'}"
    run_grid(cells[:1], resumed, grid_dir=tmp_path / "g2", **kwargs)
    # The second cell was interrupted after part of its budget: a study with 2 trials, unmarked.
    partial = apply_overrides(cell_config(cells[1], None, [studies]), {"budget": {"n_trials": 2}})
    checkpoints = tmp_path / "g2" / "checkpoints"  # where the grid keeps them
    run_study_virtual(partial, resumed, 2, threads=1, artifacts=str(checkpoints))
    store = checkpoints / cells[1].study_name  # DyHPO's holds the study's marker
    assert store.exists() == (scheduler == "dyhpo")
    assert scheduler == "asha" or any(is_marker(p.name) for p in store.iterdir())
    results = run_grid(cells, resumed, grid_dir=tmp_path / "g2", **kwargs)
    assert [r.status for r in results] == ["skipped", "done"]
    for cell in cells:
        assert _decisions(resumed, cell.study_name) == _decisions(fresh, cell.study_name)
        study = optuna.load_study(study_name=cell.study_name, storage=open_storage(resumed))
        assert study.user_attrs[DONE_ATTR] is True
        assert study.user_attrs[WORKERS_ATTR] == {
            "workers": 2,
            "virtual": True,
            "clock": "epochs",
            "ties": "index",
        }
        code = study.user_attrs[CODE_ATTR]  # which code and machine ran it, and how long
        assert code["commit"] == code_version() and code["machine"] == machine()
        assert 0 < code["wall_seconds"] < 600
    assert cells[1].study_name == f"bench-digits-{scheduler}-w2-s0-toward-middle"
    from optuna_ohgw.evidence.report import load_cells

    loaded = load_cells(open_storage(resumed))  # the report reads it back
    assert [c.code["commit"] for c in loaded] == [code_version()] * 2


def test_a_grid_with_seeded_ties_is_its_own_reproducible_arm(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27: ``ties="seeded"`` cells (``bench --virtual-ties seeded``, the default) are named
    ``-wNr``, reported as ``asha@Nr`` apart from the index-ordered ``asha@N``, record their tie
    rule, rerun bit for bit, and let another worker than worker 0 report first."""
    from optuna_ohgw.evidence.report import parse_name

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "digits-asha.toml").write_text(
        SMALL_STUDY.format(name="digits-asha", max_epochs=3, n_trials=6, scheduler="asha")
    )
    kwargs: dict[str, Any] = dict(virtual=True, threads=1, study_dirs=[studies])
    seeded = Cell("digits", "asha", "vanilla", 2, workers=3, ties="seeded")
    index = Cell("digits", "asha", "vanilla", 2, workers=3)
    assert seeded.study_name == "bench-digits-asha-w3r-s2-vanilla" and seeded.tie_seed == 2
    assert index.study_name == "bench-digits-asha-w3-s2-vanilla" and index.tie_seed is None
    assert parse_name(seeded.study_name)["scheduler"] == "asha@3r"
    assert parse_name(index.study_name)["scheduler"] == "asha@3"
    one = Cell("digits", "asha", "vanilla", 1, ties="seeded")
    assert one.study_name.endswith("asha-s1-vanilla") and one.tie_seed is None
    urls = [f"journal:{tmp_path / f'{i}.journal'}" for i in range(2)]
    for i, url in enumerate(urls):
        run_grid([seeded, index], url, grid_dir=tmp_path / f"g{i}", **kwargs)
    assert _decisions(urls[0], seeded.study_name) == _decisions(urls[1], seeded.study_name)
    study = optuna.load_study(study_name=seeded.study_name, storage=open_storage(urls[0]))
    assert study.user_attrs[WORKERS_ATTR]["ties"] == "seeded"
    # Which worker drew which trial: by index, worker 0 always moves first at a tie (trial 0
    # is its); in a seeded order another worker does.
    workers = {
        cell.ties: [t[4] for t in _decisions(urls[0], cell.study_name)] for cell in (seeded, index)
    }
    assert workers["index"][0] == 0 and workers["seeded"][0] != 0
    with pytest.raises(StudyFileError, match="unknown ties"):
        Cell("digits", "asha", "vanilla", 1, workers=3, ties="fair")
