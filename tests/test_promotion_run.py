"""``ohgw-optuna run`` with PASHA and promotion ASHA: real workers pausing and resuming."""

from __future__ import annotations

import pathlib
import re

import optuna
from optuna.trial import TrialState

from optuna_ohgw import attrs, lineage
from optuna_ohgw.artifact_store import TOKEN_ATTR
from optuna_ohgw.schedulers.pasha import PASHA, increases
from optuna_ohgw.storage import open_storage
from tests.conftest import run_cli

PASHA_STUDY = """\
name = "digits-pasha-small"
task = "digits"
seed = 0
max_epochs = 9

[scheduler]
name = "{scheduler}"
min_resource = 1
reduction_factor = 3

[budget]
n_trials = 12

[space]
lr = {{ low = 1e-2, high = 0.5, log = true }}
momentum = {{ low = 0.0, high = 0.9 }}
label_smoothing = {{ low = 0.0, high = 0.2 }}
"""


def _run(tmp_path: pathlib.Path, scheduler: str) -> optuna.Study:
    path = tmp_path / "digits-pasha-small.toml"
    path.write_text(PASHA_STUDY.format(scheduler=scheduler))
    result = run_cli("run", "--study", str(path), "--n-workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^configurations\s+12$", result.stdout, re.MULTILINE)
    storage = open_storage(f"journal:{tmp_path / 'runs' / 'digits-pasha-small.journal'}")
    return optuna.load_study(study_name="digits-pasha-small", storage=storage)


def _check_lineage(study: optuna.Study, tmp_path: pathlib.Path) -> None:
    trials = study.trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not [t for t in trials if t.state == TrialState.FAIL]
    assert len(lineage.configurations(trials)) == 12
    resumed = [t for t in trials if t.user_attrs.get(lineage.PARENT) is not None]
    assert resumed, "nothing was ever resumed"
    by_number = {t.number: t for t in trials}
    for t in resumed:
        parent = by_number[t.user_attrs[lineage.PARENT]]
        assert parent.user_attrs.get(lineage.PAUSED) is True
        assert t.params == parent.params  # resumed with the same configuration
        if t.state == TrialState.COMPLETE:
            # OHGW nudges only a configuration's first segment.
            assert t.user_attrs[attrs.STATUS].startswith("skipped: every probed parameter")
            start = t.user_attrs[lineage.START_EPOCH]
            assert min(t.intermediate_values) == start + 1
    firsts = [t for t in trials if t.user_attrs.get(lineage.SEGMENT) == 0]
    assert all(t.user_attrs[attrs.STATUS] == "ok" for t in firsts)
    # Each epoch is counted once: a configuration's epochs add up to its furthest epoch.
    curves = lineage.learning_curves(trials)
    for config, curve in curves.items():
        used = sum(
            t.user_attrs.get(attrs.EPOCHS, 0)
            for t in trials
            if lineage.config_of(t) == config and t.state == TrialState.COMPLETE
        )
        assert used == max(curve)
    folder = tmp_path / "runs" / "checkpoints" / "digits-pasha-small"
    token = study._storage.get_study_system_attrs(study._study_id)[TOKEN_ATTR]
    # Nothing resumable is left, so no checkpoint either: only the store's marker.
    assert [p.name for p in folder.iterdir()] == [f"ohgw-store-{token}.json"]


def test_pasha_with_two_workers(tmp_path: pathlib.Path) -> None:
    study = _run(tmp_path, "pasha")
    _check_lineage(study, tmp_path)
    raised = [i["max_resource"] for i in increases(study.user_attrs)]
    maximum = PASHA(1, 3, 9).resource_limit(study)
    assert raised == sorted(set(raised)) and maximum == max([3, *raised])
    reached = max(max(t.intermediate_values, default=0) for t in study.trials)
    assert reached <= maximum


def test_promotion_asha_with_two_workers(tmp_path: pathlib.Path) -> None:
    study = _run(tmp_path, "asha-promotion")
    _check_lineage(study, tmp_path)
    reached = max(max(t.intermediate_values, default=0) for t in study.trials)
    assert reached == 9  # 12 configurations: the best one reaches the top rung


def test_reprobe_switch_nudges_every_resumed_segment(tmp_path: pathlib.Path) -> None:
    # The study-file switch, through real worker processes: every resumed segment that trained
    # was re-probed from its checkpoint and records where its configuration moved.
    path = tmp_path / "digits-pasha-small.toml"
    text = PASHA_STUDY.format(scheduler="asha-promotion").replace("n_trials = 12", "n_trials = 6")
    text = text.replace("max_epochs = 9", "max_epochs = 3")
    path.write_text(text.replace("[budget]", "[ohgw]\nreprobe = true\n\n[budget]"))
    result = run_cli("run", "--study", str(path), "--n-workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    storage = open_storage(f"journal:{tmp_path / 'runs' / 'digits-pasha-small.journal'}")
    trials = optuna.load_study(study_name="digits-pasha-small", storage=storage).trials
    resumed = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get(lineage.PARENT) is not None
    ]
    assert resumed, "nothing was ever resumed"
    by_number = {t.number: t for t in trials}
    for t in resumed:
        assert t.user_attrs[attrs.REPROBE_STATUS] == "ok"
        parent = by_number[t.user_attrs[lineage.PARENT]]
        for name in ("lr", "momentum", "label_smoothing"):
            # Where it moved from: the first segment's nudged value, or the last re-probe's.
            before = parent.user_attrs.get(
                attrs.reprobe_to(name), parent.user_attrs.get(attrs.nudged(name))
            )
            assert t.user_attrs[attrs.reprobe_from(name)] == before
        assert any(
            t.user_attrs[attrs.reprobe_to(n)] != t.user_attrs[attrs.reprobe_from(n)]
            for n in ("lr", "momentum", "label_smoothing")
        )
