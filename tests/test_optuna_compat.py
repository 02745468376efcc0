"""Each Optuna-internals fast path in ``_optuna_compat`` and its public fallback give the same
answers, on the in-memory, journal, SQLite and PostgreSQL storages."""

from __future__ import annotations

import pathlib
import uuid

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw.schedulers import claim
from optuna_ohgw.storage import open_storage
from tests.conftest import backend_url

BACKENDS = ["memory", "journal", "sqlite", "postgresql"]


@pytest.fixture(params=[True, False], ids=["fast", "public"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(compat, "FAST", request.param)
    return request.param


def _study(backend: str, tmp_path: pathlib.Path) -> optuna.Study:
    storage = None
    if backend != "memory":
        storage = open_storage(backend_url(backend, tmp_path, "compat"))
    return optuna.create_study(storage=storage, study_name=f"compat-{uuid.uuid4().hex}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_ids_attrs_claim_and_heartbeat(backend: str, fast: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    study = _study(backend, tmp_path)
    storage = compat.storage_of(study)
    running = study.ask()
    assert compat.study_id(study) == study._study_id
    assert compat.trial_id(study, running) == running._trial_id
    frozen = study.trials[0]
    assert compat.trial_id(study, frozen) == frozen._trial_id

    record = {f"ohgw.k{i}": float(i) for i in range(5)}
    compat.set_user_attrs(storage, compat.trial_id(study, running), record)
    assert {k: v for k, v in study.trials[0].user_attrs.items() if k.startswith("ohgw.")} == record
    study.tell(running, 1.0)
    with pytest.raises((RuntimeError, optuna.exceptions.UpdateFinishedTrialError)):
        compat.set_user_attrs(storage, compat.trial_id(study, running), record)

    study.enqueue_trial({})
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert claim(study, waiting) is True
    assert claim(study, waiting) is False  # exactly one claimant

    assert compat.heartbeat_enabled(storage) is (backend == "postgresql")
    tid = compat.trial_id(study, study.ask())
    with compat.heartbeat_thread(storage, tid):
        pass
    is_sqlite = compat.sqlite_trial_table(storage) is not None
    assert is_sqlite is (fast and backend == "sqlite")


def test_dist_contains_fast_and_public_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (FloatDistribution(0.1, 1.0, log=True), [0.1, 0.5, 1.0, 0.05, 2.0]),
        (FloatDistribution(0.0, 1.0, step=0.25), [0.0, 0.25, 0.3, 1.0, 1.25]),
        (IntDistribution(1, 9, step=2), [1, 3, 4, 9, 11]),
        (CategoricalDistribution(["a", "b"]), ["a", "b", "c"]),
    ]
    answers = {}
    for fast in (True, False):
        monkeypatch.setattr(compat, "FAST", fast)
        answers[fast] = [compat.dist_contains(d, v) for d, values in cases for v in values]
    assert answers[True] == answers[False]
    assert answers[True].count(True) == 11


def test_the_version_guard() -> None:
    assert compat._version("5.0.0") == (5, 0) and compat._version("5.1.0.dev") == (5, 1)
    low, high = compat.TESTED
    assert compat.FAST == (low <= compat._version(optuna.__version__) < high)
