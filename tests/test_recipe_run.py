"""The example recipe under ``ohgw-optuna run --n-workers 2`` with PASHA and ASHA: every new
configuration is warm-started (``ohgw.status = ok``, nudged values in force)."""

from __future__ import annotations

import pathlib

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import attrs
from optuna_ohgw.storage import open_storage
from tests.conftest import run_cli

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "own_recipe"


@pytest.mark.parametrize("scheduler", ["pasha", "asha"])
def test_the_example_recipe_runs_on_two_workers(scheduler: str, tmp_path: pathlib.Path) -> None:
    study = (EXAMPLE / "study.toml").read_text()
    study = study.replace('"train.py"', f'"{EXAMPLE / "train.py"}"')
    study = study.replace('name = "pasha"', f'name = "{scheduler}"')
    path = tmp_path / "mine.toml"
    path.write_text(study)
    result = run_cli("run", "--study", str(path), "--n-workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    url = f"journal:{tmp_path / 'runs' / 'own-recipe.journal'}"
    trials = optuna.load_study(study_name="own-recipe", storage=open_storage(url)).trials
    new = [t for t in trials if attrs.raw("lr") in t.user_attrs]  # first segments
    assert len(new) == 8
    assert {t.user_attrs[attrs.STATUS] for t in new} == {"ok"}
    for t in new:
        assert t.params["lr"] == t.user_attrs[attrs.nudged("lr")]
        assert t.user_attrs[attrs.nudged("lr")] != t.user_attrs[attrs.raw("lr")]
        assert isinstance(t.params["width"], int)
    assert not [t for t in trials if t.state in (TrialState.FAIL, TrialState.RUNNING)]


def test_bench_and_report_on_a_user_recipe(tmp_path: pathlib.Path) -> None:
    study = str(EXAMPLE / "study.toml")
    grid = ("--variants", "vanilla,line-search", "--seeds", "2", "--virtual-workers", "4")
    done = run_cli("bench", "--study", study, *grid, "--budget", "n_trials=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 cell(s) run" in done.stdout
    report = run_cli("report", "--study", study, cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "reports" / "own-recipe" / "report.md").read_text()
    assert "| own-recipe | pasha@4r | line-search | 2 |" in text  # seeded ties: -w4r
