"""The benchmark grid: variants, cell configurations, the JSON a worker gets, a real tiny grid."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from cli.bench import bench
from optuna_ohgw import attrs
from optuna_ohgw.evidence.grid import (
    DEFAULT_STUDY_DIRS,
    DONE_ATTR,
    VARIANTS,
    Cell,
    cell_config,
    cell_finished,
    grid_cells,
    run_grid,
)
from optuna_ohgw.runner import budget_spent
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import (
    PROMOTION_SCHEDULERS,
    SCHEDULERS,
    StudyFileError,
    config_from_dict,
    config_to_dict,
    load_study_file,
)
from tests.conftest import SMALL_STUDY

STUDIES = sorted(DEFAULT_STUDY_DIRS[1].glob("*.toml"))


def test_variants_change_only_the_ohgw_table() -> None:
    base = load_study_file(DEFAULT_STUDY_DIRS[1] / "digits-asha.toml").ohgw
    expected = {
        "vanilla": (False, base.step, base.base),
        "ohgw-raw": (True, "raw", base.base),
        "ohgw-normalized": (True, "normalized", base.base),
        "probe-only": (True, "none", base.base),
        "random-sign": (True, "random-sign", "normalized"),
        "flipped": (True, "flipped", "normalized"),
        "line-search": (True, "line-search", "normalized"),
        "toward-middle": (True, "toward-middle", base.base),
        "re-probe": (True, "normalized", base.base),
    }
    assert set(VARIANTS) == set(expected)
    for name, (enabled, step, rule_base) in expected.items():
        c = VARIANTS[name](base)
        assert (c.enabled, c.step, c.base) == (enabled, step, rule_base)
        assert c.reprobe == (name == "re-probe")
        assert (c.fraction, c.eta, c.k, c.batch_size) == (
            base.fraction,
            base.eta,
            base.k,
            base.batch_size,
        )


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cell_config_names_seeds_and_budgets(scheduler: str, variant: str) -> None:
    cell = Cell("digits", scheduler, variant, 3)
    if variant == "re-probe" and scheduler not in PROMOTION_SCHEDULERS:
        with pytest.raises(StudyFileError, match="re-probes at promotions"):
            cell_config(cell)
        return
    config = cell_config(cell, {"n_trials": "5", "total_epochs": 50})
    assert config.study_name == cell.study_name == f"bench-digits-{scheduler}-s3-{variant}"
    assert config.seed == 3
    assert (config.budget.n_trials, config.budget.total_epochs) == (5, 50)
    assert config.scheduler.name == scheduler
    assert config.ohgw.enabled == (variant != "vanilla")
    source = load_study_file(DEFAULT_STUDY_DIRS[1] / f"digits-{scheduler}.toml")
    # Apart from the name, seed, budget and [ohgw], the cell is the study file.
    same = config.replace(
        name=source.name, seed=source.seed, budget=source.budget, path=source.path
    )
    assert same.replace(ohgw=source.ohgw) == source


def test_cells_and_names_are_distinct_and_seed_major() -> None:
    cells = grid_cells("digits", ["asha", "pasha"], list(VARIANTS), range(3))
    assert len({c.study_name for c in cells}) == len(cells) == 2 * len(VARIANTS) * 3
    assert [c.seed for c in cells] == sorted(c.seed for c in cells)
    with pytest.raises(StudyFileError, match="unknown variant"):
        Cell("digits", "asha", "nope", 0)
    with pytest.raises(StudyFileError, match="unknown scheduler"):
        Cell("digits", "sha", "vanilla", 0)
    with pytest.raises(StudyFileError, match="--budget"):
        cell_config(cells[0], {"n_trials": "many"})
    with pytest.raises(StudyFileError, match="unknown sampler"):
        Cell("digits", "asha", "vanilla", 0, "nope")


def test_sampler_axis_keeps_pairs_and_old_names() -> None:
    variants = ["vanilla", "line-search"]
    cells = grid_cells("mnist1d", ["asha"], variants, range(2), ["tpe", "random"])
    assert [c.study_name for c in cells[:4]] == [
        "bench-mnist1d-asha-s0-vanilla",
        "bench-mnist1d-asha-s0-line-search",
        "bench-mnist1d-asha-random-s0-vanilla",
        "bench-mnist1d-asha-random-s0-line-search",
    ]
    assert [c.seed for c in cells] == [0] * 4 + [1] * 4
    tpe, random = cell_config(cells[0]), cell_config(cells[2])
    assert (tpe.sampler, random.sampler) == ("tpe", "random")
    assert tpe.seed == random.seed == 0 and random.replace(sampler="tpe", name=tpe.name) == tpe


def _through_json(config):
    """What a worker process receives: the configuration as JSON text, parsed back."""
    return config_from_dict(json.loads(json.dumps(config_to_dict(config))))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_json_round_trip(path: pathlib.Path) -> None:
    for variant in VARIANTS:
        config = load_study_file(path)
        if variant == "re-probe" and config.scheduler.name not in PROMOTION_SCHEDULERS:
            continue
        config = config.replace(ohgw=VARIANTS[variant](config.ohgw), seed=7)
        assert _through_json(config) == config


def test_json_round_trips_odd_values() -> None:
    config = load_study_file(DEFAULT_STUDY_DIRS[1] / "digits-asha.toml")
    space = dict(config.space)
    momentum = space.pop("momentum")
    space["augment"] = optuna.distributions.FloatDistribution(0.0, 2.0, step=0.25)
    config = config.replace(
        name='odd "name"',
        target=None,
        sampler_options={"n_startup_trials": 3, "multivariate": True, "prior_weight": 0.5},
        space=space,
        fixed={"momentum": momentum.low + 0.3},
        budget=dataclasses.replace(config.budget, wall_seconds=12.5, total_epochs=7),
    )
    assert _through_json(config) == config


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))


def test_tiny_grid_end_to_end(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "digits-asha.toml").write_text(
        SMALL_STUDY.format(name="digits-asha", max_epochs=1, n_trials=5, scheduler="asha")
    )
    cells = grid_cells("digits", ["asha"], ["vanilla", "ohgw-normalized"], range(2))
    url = f"journal:{tmp_path / 'bench.journal'}"
    seen: list[tuple[str, str]] = []
    results = run_grid(
        cells,
        url,
        1,
        {"n_trials": 2},
        grid_dir=tmp_path / "grid",
        study_dirs=[studies],
        on_cell=lambda i, n, cell, status: seen.append((cell.study_name, status)),
    )
    assert [r.status for r in results] == ["done"] * 4
    assert [s for _, s in seen] == ["running", "done"] * 4
    assert [n for n, _ in seen[::2]] == [c.study_name for c in cells]
    trials = {}
    for cell in cells:
        config = cell_config(cell, {"n_trials": 2}, [studies])
        study = _study(url, cell.study_name)
        assert budget_spent(config, study.get_trials())
        assert study.user_attrs["ohgw.seed"] == cell.seed
        assert study.user_attrs["ohgw.enabled"] == (cell.variant != "vanilla")
        # The workers ran the cell's own configuration (variant applied), given as JSON.
        assert study.user_attrs["ohgw.step_rule"] == (
            config.ohgw.step if config.ohgw.enabled else "off"
        )
        assert not (tmp_path / "grid" / "cells").exists()
        trials[cell.variant, cell.seed] = study.trials
    for seed in range(2):
        vanilla = trials["vanilla", seed][0]
        ohgw = trials["ohgw-normalized", seed][0]
        assert vanilla.state in (TrialState.COMPLETE, TrialState.PRUNED)
        raw = {name: ohgw.user_attrs[attrs.raw(name)] for name in vanilla.params}
        assert raw == pytest.approx(vanilla.params, rel=1e-12)
        assert ohgw.params != vanilla.params  # the warm start moved it
    assert trials["vanilla", 0][0].params != trials["vanilla", 1][0].params

    # Rerunning (through the command) skips every finished cell and adds no trials.
    result = CliRunner().invoke(
        bench,
        [
            "--task", "digits", "--schedulers", "asha", "--variants", "vanilla,ohgw-normalized",
            "--seeds", "2", "--budget", "n_trials=2", "--storage", url,
            "--studies-dir", str(studies), "--grid-dir", str(tmp_path / "grid"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 cell(s) run, 4 already finished" in result.output
    for cell in cells:
        assert len(_study(url, cell.study_name).trials) == len(trials[cell.variant, cell.seed])

    # --first-seed: fresh seeds (a replication) run beside the finished ones, paired as before.
    result = CliRunner().invoke(
        bench,
        [
            "--task", "digits", "--schedulers", "asha", "--variants", "vanilla",
            "--seeds", "1", "--first-seed", "1", "--budget", "n_trials=2", "--storage", url,
            "--studies-dir", str(studies), "--grid-dir", str(tmp_path / "grid"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 cell(s) run, 1 already finished" in result.output  # seed 1 ran above


def test_cli_errors_are_one_line(tmp_path: pathlib.Path) -> None:
    runner = CliRunner()
    result = runner.invoke(bench, ["--task", "digits", "--variants", "vanilla,bogus"])
    assert result.exit_code == 2 and "unknown variant 'bogus'" in result.output
    result = runner.invoke(bench, ["--task", "digits", "--budget", "n_trials"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = runner.invoke(bench, ["--task", "digits", "--first-seed", "-1"])
    assert result.exit_code == 2 and "--first-seed must be at least 0" in result.output
    result = runner.invoke(
        bench, ["--task", "digits", "--schedulers", "asha", "--studies-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "unknown study 'digits-asha'" in result.output


def test_a_cell_stopped_after_its_last_configuration_started_is_not_finished() -> None:
    """Killed when ``n_trials`` configurations had ended but others still ran: the budget
    counts as spent, yet the cell is unfinished (virtual: rerun whole; real: resumed)."""
    cell = Cell("digits", "asha", "vanilla", 0, workers=8)
    config = cell_config(cell, {"n_trials": "3"})
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name=cell.study_name, storage=storage)
    for _ in range(3):
        study.tell(study.ask(), state=TrialState.PRUNED)
    running = study.ask()
    assert budget_spent(config, study.get_trials())
    assert not cell_finished(config, storage) and not cell_finished(config, storage, virtual=True)
    study.tell(running, state=TrialState.PRUNED)
    assert cell_finished(config, storage)  # a real cell: spent, nothing running
    assert not cell_finished(config, storage, virtual=True)  # a virtual one needs the mark
    study.set_user_attr(DONE_ATTR, True)
    assert cell_finished(config, storage, virtual=True)
