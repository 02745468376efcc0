"""DyHPO: the deep-kernel GP, multi-fidelity EI, proposals through OHGW, the resume race."""

from __future__ import annotations

import math
import multiprocessing
import pathlib
import uuid

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from scipy import integrate, stats

from optuna_ohgw import FunctionProbe, OHGWSampler, attrs, lineage
from optuna_ohgw.schedulers import (
    PROPOSAL,
    DeepKernelGP,
    DyHPO,
    ProposalSampler,
    SurrogateFitError,
    claim,
    expected_improvement,
)
from optuna_ohgw.schedulers.dyhpo import ACQUISITION, DECISION_SECONDS, budget_ladder
from optuna_ohgw.storage import open_storage
from optuna_ohgw.studyfile import StudyFileError, load_study_file
from tests.conftest import ROOT, backend_url, run_cli

SPACE = {
    "lr": FloatDistribution(1e-3, 1.0, log=True),
    "momentum": FloatDistribution(0.0, 0.9),
}
T = 12


def _curve(quality: float, speed: float, epochs: int) -> list[float]:
    """A saturating learning curve: its level is set by ``quality``, its pace by ``speed``."""
    return [
        0.5 + 0.45 * quality - 0.4 * math.exp(-t * (0.1 + 0.5 * speed))
        for t in range(1, epochs + 1)
    ]


# ----- expected improvement ----------------------------------------------------------------


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize(
    ("mean", "std", "best"), [(0.5, 0.1, 0.6), (0.7, 0.05, 0.6), (0.2, 1.0, 0.2)]
)
def test_expected_improvement_equals_the_integral(
    maximize: bool, mean: float, std: float, best: float
) -> None:
    gain = (lambda y: max(y - best, 0.0)) if maximize else (lambda y: max(best - y, 0.0))
    numeric, _ = integrate.quad(
        lambda y: gain(y) * stats.norm.pdf(y, mean, std),
        mean - 12 * std,
        mean + 12 * std,
        points=[best],
        limit=200,
    )
    closed = expected_improvement(
        *(torch.tensor([v], dtype=torch.float64) for v in (mean, std, best)), maximize=maximize
    )
    assert float(closed[0]) == pytest.approx(numeric, rel=1e-6, abs=1e-12)


# ----- the surrogate -----------------------------------------------------------------------


def _synthetic(seed: int = 0, n_configs: int = 20):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    configs = rng.random((n_configs, 2))
    observed = rng.integers(1, 8, n_configs)
    xs, budgets, prefixes, ys = [], [], [], []
    for x, n in zip(configs, observed):
        curve = _curve(x[0], x[1], int(n))
        for j in range(int(n)):
            xs.append(list(x))
            budgets.append((j + 1) / T)
            prefixes.append(curve[:j])
            ys.append(curve[j] + rng.normal(0.0, 0.003))
    return configs, observed, (xs, budgets, prefixes, ys)


def test_the_surrogate_fits_a_family_of_learning_curves_and_ranks_them() -> None:
    configs, observed, data = _synthetic()
    gp = DeepKernelGP(2, T - 1, seed=0)
    report = gp.fit(*data)
    assert report.scratch and math.isfinite(report.loss)
    # Every configuration one epoch further, and every configuration at the last epoch.
    for budget_of in (lambda n: n + 1, lambda n: T):
        budgets = [budget_of(int(n)) for n in observed]
        truth = [_curve(x[0], x[1], b)[-1] for x, b in zip(configs, budgets)]
        mean, std = gp.predict(
            [list(x) for x in configs],
            [b / T for b in budgets],
            [_curve(x[0], x[1], int(n)) for x, n in zip(configs, observed)],
        )
        assert bool(torch.all(std > 0))
        rho = stats.spearmanr(mean.numpy(), truth).statistic
        assert rho > 0.9, rho
        assert int(np.argmax(mean.numpy())) == int(np.argmax(truth))
    next_truth = [_curve(x[0], x[1], int(n) + 1)[-1] for x, n in zip(configs, observed)]
    mean, _ = gp.predict(
        [list(x) for x in configs],
        [(int(n) + 1) / T for n in observed],
        [_curve(x[0], x[1], int(n)) for x, n in zip(configs, observed)],
    )
    assert float(np.abs(mean.numpy() - next_truth).mean()) < 0.02


def test_refits_are_warm_and_fall_back_to_scratch_when_they_stall() -> None:
    _, _, data = _synthetic()
    gp = DeepKernelGP(2, T - 1, seed=0)
    assert gp.fit(*data).scratch
    assert not gp.fit(*data).scratch  # warm: the previous network and kernel go on
    gp.stall_margin = -1e9  # every warm refit now counts as stalled
    assert gp.fit(*data).scratch
    with pytest.raises(SurrogateFitError):
        DeepKernelGP(2, T - 1).fit(data[0][:2], data[1][:2], data[2][:2], [0.5, math.nan])
    with pytest.raises(SurrogateFitError):
        DeepKernelGP(2, T - 1).predict(data[0][:1], data[1][:1], data[2][:1])


def test_the_same_seed_gives_the_same_surrogate() -> None:
    _, _, data = _synthetic()
    a, b = DeepKernelGP(2, T - 1, seed=3), DeepKernelGP(2, T - 1, seed=3)
    a.fit(*data)
    b.fit(*data)
    query = (data[0][:5], data[1][:5], data[2][:5])
    assert torch.equal(a.predict(*query)[0], b.predict(*query)[0])


# ----- the scheduler -----------------------------------------------------------------------


def test_budget_ladder() -> None:
    assert budget_ladder("epoch", 1, 3, 5) == [1, 2, 3, 4, 5]
    assert budget_ladder("epoch", 2, 3, 4) == [2, 3, 4]
    assert budget_ladder("rung", 1, 3, 27) == [1, 3, 9, 27]
    with pytest.raises(ValueError, match="advance"):
        budget_ladder("hours", 1, 3, 9)


def _study_with_curves(storage=None, name: str = "dyhpo"):  # type: ignore[no-untyped-def]
    """Eight configurations paused after 2 or 3 epochs; configuration 5 is clearly the best."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    rng = np.random.default_rng(0)
    for config in range(8):
        quality = 0.95 if config == 5 else 0.1 + 0.05 * config
        epochs = 3 if config % 2 else 2
        params = {"lr": float(10 ** rng.uniform(-3, 0)), "momentum": float(rng.uniform(0, 0.9))}
        curve = _curve(quality, 0.5, epochs)
        study.add_trial(
            create_trial(
                value=curve[-1],
                params=params,
                distributions=SPACE,
                intermediate_values={e + 1: v for e, v in enumerate(curve)},
                user_attrs={lineage.CONFIG: config, lineage.PAUSED: True},
            )
        )
        resume = {"config": config, "parent": config, "epoch": epochs, "segment": 1}
        study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params=params,
                distributions=SPACE,
                user_attrs={lineage.CONFIG: config, lineage.START_EPOCH: epochs},
                system_attrs={lineage.RESUME: resume, "fixed_params": params},
            )
        )
    return study


def test_ei_advances_the_obviously_better_configuration() -> None:
    study = _study_with_curves()
    scheduler = DyHPO(1, 3, T, SPACE, seed=0)
    chosen = scheduler.choose(study, study.get_trials(), allow_new=False)
    assert chosen is not None and lineage.config_of(chosen) == 5
    decision = scheduler.decision_attrs()
    assert decision[ACQUISITION] > 0 and decision[DECISION_SECONDS] > 0
    assert scheduler.new_configuration() is None


def test_a_new_configuration_wins_when_every_paused_one_is_hopeless() -> None:
    study = optuna.create_study(direction="maximize")
    rng = np.random.default_rng(1)
    for config in range(6):  # a good first epoch, then flat: nothing left to gain by going on
        params = {"lr": float(10 ** rng.uniform(-3, 0)), "momentum": float(rng.uniform(0, 0.9))}
        values = [0.2 + 0.1 * config] * 4
        study.add_trial(
            create_trial(
                value=values[-1],
                params=params,
                distributions=SPACE,
                intermediate_values={e + 1: v for e, v in enumerate(values)},
                user_attrs={lineage.CONFIG: config},
            )
        )
    config = 0
    params = study.trials[0].params
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            params=params,
            distributions=SPACE,
            system_attrs={lineage.RESUME: {"config": 0, "parent": 0, "epoch": 4, "segment": 1}},
        )
    )
    scheduler = DyHPO(1, 3, T, SPACE, seed=0)
    assert scheduler.choose(study, study.get_trials(), allow_new=True) is None
    proposal = scheduler.new_configuration()
    assert proposal is not None and set(proposal) == set(SPACE)
    assert all(SPACE[k]._contains(v) for k, v in proposal.items())
    # Without room for new configurations, the paused one is advanced all the same.
    chosen = scheduler.choose(study, study.get_trials(), allow_new=False)
    assert chosen is not None and lineage.config_of(chosen) == config


def test_a_proposal_is_sampled_and_nudged_by_ohgw() -> None:
    """DyHPO's proposed values reach the trial as sampled values, so OHGW probes and nudges
    them (an enqueued trial's values would be left alone)."""

    def loss(params: dict[str, float]) -> tuple[float, dict[str, float]]:
        return params["lr"] ** 2, {"lr": 2 * params["lr"], "momentum": 1.0}

    probe = FunctionProbe(loss, param_names=["lr", "momentum"])
    sampler = OHGWSampler(
        ProposalSampler(optuna.samplers.RandomSampler(seed=0)), probe, search_space=SPACE
    )
    study = optuna.create_study(sampler=sampler)
    proposal = {"lr": 0.1, "momentum": 0.5}
    trial_id = study._storage.create_new_trial(study._study_id)
    study._storage.set_trial_system_attr(trial_id, PROPOSAL, proposal)
    trial = optuna.Trial(study, trial_id)
    lr, momentum = (
        trial.suggest_float("lr", 1e-3, 1.0, log=True),
        trial.suggest_float("momentum", 0.0, 0.9),
    )
    frozen = study._storage.get_trial(trial_id)
    assert frozen.user_attrs[attrs.STATUS] == "ok"
    assert frozen.user_attrs[attrs.raw("lr")] == pytest.approx(0.1)
    assert frozen.user_attrs[attrs.raw("momentum")] == pytest.approx(0.5)
    assert lr < 0.1 and momentum < 0.5  # both gradients positive: both step down
    # A trial without a proposal is the base sampler's, untouched by ProposalSampler.
    plain = optuna.create_study(sampler=ProposalSampler(optuna.samplers.RandomSampler(seed=7)))
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for s in (plain, reference):
        s.optimize(lambda t: t.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=3)
    assert [t.params for t in plain.trials] == [t.params for t in reference.trials]


def test_study_files() -> None:
    for task in ("digits", "mnist1d", "cifar10"):
        config = load_study_file(ROOT / "studies" / f"{task}-dyhpo.toml")
        assert config.scheduler.name == "dyhpo" and config.scheduler.advance == "epoch"
        assert config.budget.total_epochs > 0 and config.budget.n_trials > 0


def test_advance_is_a_dyhpo_setting(tmp_path: pathlib.Path) -> None:
    text = (ROOT / "studies" / "digits-asha.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(text.replace('name = "asha"', 'name = "asha"\nadvance = "rung"'))
    with pytest.raises(StudyFileError, match="advance.*DyHPO"):
        load_study_file(path)


# ----- several workers ---------------------------------------------------------------------


def _decide_and_claim(url: str, name: str, queue, barrier) -> None:  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat=False))
    # Every process decides alike (same seed): the worst case for a double advance.
    scheduler = DyHPO(1, 3, T, SPACE, surrogate=DeepKernelGP(2, T - 1, seed=0, scratch_steps=60))
    trials = study.get_trials()
    scheduler.surrogate.fit(*scheduler.training_points(trials))  # the slow part, done first
    barrier.wait(timeout=120)
    while True:
        chosen = scheduler.choose(study, study.get_trials(), allow_new=False)
        if chosen is None:
            queue.put(None)
            return
        if claim(study, chosen):
            queue.put(lineage.config_of(chosen))
            return


@pytest.mark.parametrize("backend", ["sqlite", "journal", "postgresql"])
def test_no_two_workers_advance_the_same_configuration(
    backend: str, tmp_path: pathlib.Path
) -> None:
    """Four processes that all rank the candidates alike decide and claim at once: each ends up
    advancing a different configuration (losers of a claim decide again)."""
    url = backend_url(backend, tmp_path, "race")
    name = f"dyhpo-race-{uuid.uuid4().hex[:12]}"  # the PostgreSQL database outlives runs
    storage = open_storage(url, heartbeat=False)
    study = _study_with_curves(storage, name)
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(4)
    procs = [
        ctx.Process(target=_decide_and_claim, args=(url, name, queue, barrier)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    won = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    assert None not in won and len(set(won)) == 4, won
    assert 5 in won  # the best one was advanced, once
    running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert sorted(lineage.config_of(t) for t in running) == sorted(won)
    if backend == "postgresql":
        optuna.delete_study(study_name=name, storage=storage)


DYHPO_STUDY = """\
name = "digits-dyhpo-small"
task = "digits"
seed = 0
max_epochs = 6

[scheduler]
name = "dyhpo"

[budget]
n_trials = 6
total_epochs = 20

[space]
lr = { low = 1e-2, high = 0.5, log = true }
momentum = { low = 0.0, high = 0.9 }
label_smoothing = { low = 0.0, high = 0.2 }
"""


def test_dyhpo_runs_with_two_workers(tmp_path: pathlib.Path) -> None:
    (tmp_path / "digits-dyhpo-small.toml").write_text(DYHPO_STUDY)
    result = run_cli(
        "run",
        "--study",
        str(tmp_path / "digits-dyhpo-small.toml"),
        "--n-workers",
        "2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    storage = open_storage(f"journal:{tmp_path / 'runs' / 'digits-dyhpo-small.journal'}")
    trials = optuna.load_study(study_name="digits-dyhpo-small", storage=storage).trials
    assert not [
        t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL)
    ]
    curves = lineage.learning_curves(trials)
    assert len(curves) <= 7  # two workers may both start the last one: overshoot by one
    epochs = sum(t.user_attrs.get(attrs.EPOCHS, 0) for t in trials)
    assert 20 <= epochs <= 21  # the epoch budget, overshot by at most the other worker's epoch
    # Every segment trains exactly one epoch, and no epoch of a configuration twice.
    for config, curve in curves.items():
        segments = [
            t for t in trials if lineage.config_of(t) == config and t.state == TrialState.COMPLETE
        ]
        starts = [t.user_attrs[lineage.START_EPOCH] for t in segments]
        assert sorted(starts) == list(range(len(segments))), (config, starts)
        assert all(len(t.intermediate_values) == 1 for t in segments)
        assert sorted(curve) == list(range(1, len(segments) + 1))
    assert max(len(c) for c in curves.values()) >= 3, "nothing was advanced beyond 2 epochs"
    decided = [t for t in trials if ACQUISITION in t.user_attrs]
    assert decided, "no decision was made by the surrogate"
    # New configurations after the initial design are DyHPO's proposals, warm-started by OHGW.
    # A proposal that lost the last budget slot to the other worker is closed untrained.
    proposed = [t for t in trials if PROPOSAL in t.system_attrs]
    lost = [t for t in proposed if lineage.OVER_BUDGET in t.user_attrs]
    assert all(t.state == TrialState.PRUNED and not t.params for t in lost)
    for t in (t for t in proposed if lineage.OVER_BUDGET not in t.user_attrs):
        assert t.user_attrs[attrs.STATUS] == "ok"
        for name, value in t.system_attrs[PROPOSAL].items():
            assert t.user_attrs[attrs.raw(name)] == pytest.approx(value)
