"""What we ship is what we measured: each CPU task's shipped study, run by ``ohgw-optuna run``
with the defaults a user gets (step rule, self-check, probe settings), keeps the warm start on.

Only the budget is cut (a few trials of a couple of epochs, two worker processes, so two
self-checks). A default change that turns the warm start off (a self-check that fails on an
exact probe, a step rule that does not move, a probe that errors) fails here.
"""

from __future__ import annotations

import pathlib
import re

import optuna
import pytest
from optuna.trial import TrialState

from optuna_ohgw import attrs
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import find_study_file, shipped_study_dir
from optuna_ohgw.tasks import DatasetMissingError, get_task
from tests.conftest import run_cli

N_TRIALS = 4


@pytest.mark.parametrize(
    "study", ["digits-asha", "mnist1d-asha", "fashion-asha", "fashion-vit-asha"]
)
def test_the_shipped_defaults_keep_the_warm_start_on(study: str, tmp_path: pathlib.Path) -> None:
    shipped = find_study_file(study, [shipped_study_dir()])
    text = shipped.read_text()
    try:
        get_task("fashion")().check_data()  # the Fashion-MNIST studies' data
    except DatasetMissingError as err:
        if "fashion" in study:
            pytest.skip(str(err))
    text = re.sub(r"^max_epochs = \d+", "max_epochs = 2", text, flags=re.M)
    text = re.sub(r"^n_trials = \d+", f"n_trials = {N_TRIALS}", text, flags=re.M)
    path = tmp_path / shipped.name
    path.write_text(text)
    result = run_cli("run", "--study", str(path), "--n-workers", "2", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    storage = open_storage(f"journal:{tmp_path / 'runs' / f'{study}.journal'}", heartbeat=False)
    trials = [
        t
        for t in optuna.load_study(study_name=study, storage=storage).trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and attrs.STATUS in t.user_attrs
    ]
    assert len(trials) == N_TRIALS
    statuses = [t.user_attrs[attrs.STATUS] for t in trials]
    assert statuses == ["ok"] * N_TRIALS, statuses  # no "off: ...", no "error: self-check"
    verdicts = [t.user_attrs[attrs.SELF_CHECK] for t in trials if attrs.SELF_CHECK in t.user_attrs]
    assert len(verdicts) == 2, verdicts  # one self-check per worker process
    assert not [v for v in verdicts if v.startswith("mismatch")], verdicts
    for t in trials:  # the warm start moved every trial (held floats, the ViT's warm-up, not)
        probed = [n for n in t.params if attrs.raw(n) in t.user_attrs]
        assert len(probed) >= 4, (t.number, t.user_attrs)
        assert [n for n in probed if t.user_attrs[attrs.raw(n)] != t.params[n]], t.number
