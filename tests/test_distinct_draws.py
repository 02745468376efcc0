"""Every worker, on every machine and after every restart, draws its own configurations: the
base sampler is seeded per trial (study seed, trial number), and the storage numbers trials."""

from __future__ import annotations

import optuna
import pytest

from optuna_ohgw.runner import build_base_sampler
from optuna_ohgw.studyfile import load_study_file
from tests.conftest import SMALL_STUDY


def _objective(trial: optuna.Trial) -> float:
    return sum(trial.suggest_float(n, 0.0, 1.0) for n in ("a", "b", "c"))


def _draws(study: optuna.Study) -> list[tuple[float, ...]]:
    return [tuple(t.params.values()) for t in study.trials]


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_two_machines_and_a_restart_never_share_a_draw(sampler: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.toml"
    path.write_text(SMALL_STUDY.format(name="s", max_epochs=3, n_trials=8, scheduler="asha"))
    config = load_study_file(path)
    config = config.replace(sampler=sampler)
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="s", storage=storage)
    # Two machines, each with its worker 0, take turns; then machine 0's worker restarts.
    machines = [
        optuna.load_study(study_name="s", storage=storage, sampler=build_base_sampler(config))
        for _ in range(2)
    ]
    for _ in range(12):
        for study in machines:
            study.optimize(_objective, n_trials=1)
    restarted = optuna.load_study(
        study_name="s", storage=storage, sampler=build_base_sampler(config)
    )
    restarted.optimize(_objective, n_trials=6)
    draws = _draws(restarted)
    assert len(draws) == 30 and len(set(draws)) == 30
    # Reproducible: the same seed on a fresh storage draws the same first configurations.
    again = optuna.create_study(sampler=build_base_sampler(config))
    again.optimize(_objective, n_trials=3)
    alone = optuna.create_study(sampler=build_base_sampler(config))
    alone.optimize(_objective, n_trials=3)
    assert _draws(again) == _draws(alone)
    other_seed = optuna.create_study(sampler=build_base_sampler(config.replace(seed=1)))
    other_seed.optimize(_objective, n_trials=3)
    assert _draws(other_seed) != _draws(alone)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_trials_in_flight_at_once_keep_their_own_streams(sampler: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two trials asked before either samples (threads, ``n_jobs``) draw what each draws alone:
    a trial's sampler is its own from ``before_trial`` to ``after_trial``."""
    path = tmp_path / "s.toml"
    path.write_text(SMALL_STUDY.format(name="s", max_epochs=3, n_trials=8, scheduler="asha"))
    config = load_study_file(path).replace(sampler=sampler)
    alone = optuna.create_study(sampler=build_base_sampler(config))
    expected = []
    for _ in range(2):
        trial = alone.ask()
        expected.append(trial.suggest_float("a", 0.0, 1.0))
        alone.tell(trial, 0.0)
    together = optuna.create_study(sampler=build_base_sampler(config))
    first, second = together.ask(), together.ask()
    got = [first.suggest_float("a", 0.0, 1.0), second.suggest_float("a", 0.0, 1.0)]
    assert got == expected and got[0] != got[1]
    together.tell(second, 0.0)
    together.tell(first, 0.0)
    assert not together.sampler._by_trial  # each trial's sampler let go at its tell
