"""The promotion rule of promotion-type schedulers: ``floor`` (Li et al.) or ``quantile``
(syne-tune, Ray Tune), chosen in the study file."""

from __future__ import annotations

import pathlib

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from optuna_ohgw import lineage
from optuna_ohgw.runner import build_scheduler
from optuna_ohgw.schedulers import PASHA, PromotionASHA
from optuna_ohgw.studyfile import StudyFileError, load_study_file

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rung_with(values: list[float], direction: str = "maximize") -> optuna.Study:
    """A study whose configurations each paused at epoch 1 with ``values`` (a WAITING
    continuation each, as the pause hook leaves them)."""
    study = optuna.create_study(direction=direction)
    dist = {"x": FloatDistribution(0.0, 1.0)}
    for i, v in enumerate(values):
        study.add_trial(
            create_trial(
                value=v, params={"x": i / 10}, distributions=dist, intermediate_values={1: v}
            )
        )
    for i in range(len(values)):
        resume = {"config": i, "parent": i, "epoch": 1, "segment": 1}
        study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params={"x": i / 10},
                distributions=dist,
                system_attrs={lineage.RESUME: resume},
            )
        )
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_two_in_a_rung(direction: str) -> None:
    study = _rung_with([0.3, 0.7], direction)
    trials = study.get_trials(deepcopy=False)
    assert PromotionASHA(1, 3, 9).choose(study, trials) is None  # floor(2 / 3) = 0
    chosen = PromotionASHA(1, 3, 9, promotion="quantile").choose(study, trials)
    better = 1 if direction == "maximize" else 0
    assert chosen is not None and lineage.config_of(chosen) == better


def test_rules_agree_on_a_full_rung() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    study = _rung_with(values)
    trials = study.get_trials(deepcopy=False)
    at_rung = dict(enumerate(values))
    assert PromotionASHA(1, 3, 9).promotable(at_rung, True) == [5, 4]
    # the 2/3 quantile of 0.1..0.6 is 0.433: the same two, best first
    assert PromotionASHA(1, 3, 9, promotion="quantile").promotable(at_rung, True) == [5, 4]
    assert PromotionASHA(1, 3, 9, promotion="quantile").promotable({0: 0.5}, True) == []
    assert lineage.config_of(PASHA(1, 3, 9, promotion="quantile").choose(study, trials)) == 5
    with pytest.raises(ValueError, match="promotion"):
        PromotionASHA(1, 3, 9, promotion="median")


def test_the_study_file_chooses_the_rule(tmp_path: pathlib.Path) -> None:
    text = (ROOT / "studies" / "digits-pasha.toml").read_text()
    path = tmp_path / "q.toml"
    path.write_text(text.replace('name = "pasha"', 'name = "pasha"\npromotion = "quantile"'))
    config = load_study_file(path)
    assert config.scheduler.promotion == "quantile"
    assert build_scheduler(config).promotion == "quantile"
    assert load_study_file(ROOT / "studies" / "digits-pasha.toml").scheduler.promotion == "floor"
    path.write_text(text.replace('name = "pasha"', 'name = "pasha"\npromotion = "median"'))
    with pytest.raises(StudyFileError, match="scheduler.promotion.*floor, quantile"):
        load_study_file(path)
    asha = (ROOT / "studies" / "digits-asha.toml").read_text()
    path.write_text(asha.replace('name = "asha"', 'name = "asha"\npromotion = "quantile"'))
    with pytest.raises(StudyFileError, match="promotion.*PASHA setting"):
        load_study_file(path)
