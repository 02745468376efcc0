"""``n_trials`` is exact: a configuration's budget slot is decided before it trains, so many
workers racing for the last slots never overshoot (issue 18, breakage 7: 44 for 40 with 8)."""

from __future__ import annotations

import pathlib
import re
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import lineage
from optuna_ohgw.runner import admits
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import load_study_file
from tests.conftest import PG_URL, backend_url, run_cli

N_TRIALS = 40
WORKERS = 8


@pytest.mark.parametrize(
    ("backend", "scheduler"),
    [("journal", "asha-promotion"), ("postgresql", "asha-promotion"), ("journal", "asha")],
)
def test_eight_workers_make_exactly_n_trials_configurations(
    backend: str, scheduler: str, small_study, tmp_path: pathlib.Path
) -> None:
    name = f"budget-{uuid.uuid4().hex[:8]}"
    url = backend_url(backend, tmp_path, name)
    # One epoch per configuration: the workers race for slots all along, not only at the end.
    path = small_study(name, max_epochs=1, n_trials=N_TRIALS, scheduler=scheduler)
    try:
        result = run_cli(
            "run", "--study", str(path), "--no-ohgw", "--n-workers", str(WORKERS),
            "--storage", url, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert re.search(rf"^configurations\s+{N_TRIALS}$", result.stdout, re.MULTILINE)
        study = optuna.load_study(study_name=f"{name}-vanilla", storage=open_storage(url))
        trials = study.trials
        assert len(lineage.configurations(trials)) == N_TRIALS
        lost_race = [t for t in trials if lineage.OVER_BUDGET in t.user_attrs]
        assert all(t.state == TrialState.PRUNED and not t.intermediate_values for t in lost_race)
        trained = [
            t
            for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t not in lost_race
        ]
        assert len(trained) == N_TRIALS
        assert len(trials) == N_TRIALS + len(lost_race)
    finally:
        if backend == "postgresql":
            optuna.delete_study(study_name=f"{name}-vanilla", storage=open_storage(PG_URL))


def test_a_slot_goes_to_the_earlier_trial(small_study) -> None:
    config = load_study_file(small_study(n_trials=2))
    study = optuna.create_study()
    for _ in range(3):
        study.ask()  # three RUNNING trials: configurations 0, 1, 2
    trials = study.trials
    assert admits(config, trials, 0) and admits(config, trials, 1)
    assert not admits(config, trials, 2)  # 0 and 1 come first
    study.tell(0, state=TrialState.FAIL)  # a failed, unretried configuration frees its slot
    assert admits(config, study.trials, 2)
