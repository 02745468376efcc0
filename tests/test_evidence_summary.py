"""Several targets, the random-sign control, the step diagnostic and summary.md, on real
Optuna storages holding hand-made bench cells."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os

import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from cli.report import report
from optuna_ohgw import attrs
from optuna_ohgw.evidence import report as rep
from optuna_ohgw.evidence import stats
from optuna_ohgw.evidence import summary as sm
from optuna_ohgw.evidence.metrics import warm_start_moves
from optuna_ohgw.evidence.snapshot import absolute_paths
from optuna_ohgw.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
LR = FloatDistribution(1e-3, 1.0, log=True)
MOM = FloatDistribution(0.0, 0.9)
T0 = dt.datetime(2026, 1, 1)
# Epochs (1 s each) after which each arm's single trial reaches 0.90 / 0.95 / 0.97.
REACH = {"vanilla": (4, 8, 12), "ohgw-normalized": (2, 4, 6), "random-sign": (2, 4, 12)}


def _curve(variant: str, seed: int) -> list[float]:
    a, b, c = (e + (seed % 2) for e in REACH[variant])
    return [0.97 if e >= c else 0.95 if e >= b else 0.9 if e >= a else 0.5 for e in range(1, 15)]


def _make(storage, seeds: int = 6, *, sampler: str = "", task: str = "mnist1d") -> None:  # type: ignore[no-untyped-def]
    for variant in REACH:
        for seed in range(seeds):
            name = f"bench-{task}-asha{sampler}-s{seed}-{variant}"
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
            study.set_user_attr("ohgw.target", 0.9)
            values = _curve(variant, seed)
            ua = {
                attrs.EPOCHS: len(values),
                attrs.EPOCH_SECONDS: [1.0] * len(values),
                attrs.SETUP_SECONDS: 0.0,
                "test_accuracy": values[-1],
                attrs.STATUS: "off" if variant == "vanilla" else "ok",
            }
            params = {"lr": 0.5, "momentum": 0.0}
            if variant != "vanilla":
                # lr: raw 0.5 moved down (inward in log space, 0.5 is near the top); momentum:
                # raw 0.0 at the lower bound moved up (inward); seed 0 has lr clipped at 1.0.
                ua.update({attrs.raw("lr"): 0.5, attrs.raw("momentum"): 0.0})
                ua[attrs.nudged("lr")] = 1.0 if seed == 0 else 0.3
                ua[attrs.nudged("momentum")] = 0.045
                ua[attrs.PROBE_SECONDS] = 0.0
                params = {"lr": ua[attrs.nudged("lr")], "momentum": 0.045}
            trial = create_trial(
                state=TrialState.COMPLETE,
                value=values[-1],
                params=params,
                distributions={"lr": LR, "momentum": MOM},
                user_attrs=ua,
                intermediate_values={i + 1: v for i, v in enumerate(values)},
            )
            trial.datetime_start = T0
            trial.datetime_complete = T0 + dt.timedelta(seconds=len(values))
            study.add_trial(trial)


@pytest.fixture
def cells():  # type: ignore[no-untyped-def]
    storage = optuna.storages.InMemoryStorage()
    _make(storage)
    return rep.load_cells(storage)


def test_time_to_target_at_every_target_and_the_control(cells) -> None:  # type: ignore[no-untyped-def]
    rows = sm.target_rows(cells, {"mnist1d": (0.90, 0.95, 0.97)})
    assert len(rows) == 3 * len(cells)
    row = next(r for r in rows if r["variant"] == "vanilla" and r["seed"] == 1)
    assert [row["target"], row["ttt_epochs"]] == [0.9, 5.0]
    vs = {(c.variant, c.target): c for c in sm.compare_at_targets(rows, n_boot=200)}
    arms = ("ohgw-normalized", "random-sign")
    assert set(vs) == {(v, t) for v in arms for t in (0.9, 0.95, 0.97)}
    hard = vs[("ohgw-normalized", 0.97)]
    # Medians: ohgw 6.5 epochs, vanilla 12.5: every seed is 6 epochs sooner (p = 2/64).
    assert hard.ratio["epochs"].ratio == pytest.approx(6.5 / 12.5)
    assert hard.wilcoxon["compute"].p == pytest.approx(0.03125)
    assert hard.pays_off and hard.n_paired == 6 and hard.n_reached == 6
    # random-sign matches OHGW at 0.90 and 0.95 but not at 0.97: its ratio there is 1.
    assert vs[("random-sign", 0.95)].pays_off and not vs[("random-sign", 0.97)].pays_off
    control = {
        (c.variant, c.target): c
        for c in sm.compare_at_targets(rows, "random-sign", variants={"ohgw-normalized"})
    }
    assert set(control) == {("ohgw-normalized", t) for t in (0.9, 0.95, 0.97)}
    assert control[("ohgw-normalized", 0.9)].wilcoxon["epochs"].p is None  # identical times
    assert control[("ohgw-normalized", 0.97)].ratio["epochs"].ratio == pytest.approx(6.5 / 12.5)
    text = "\n".join(sm.statements(list(vs.values()), list(control.values())))
    assert "ohgw-normalized @ 0.97" in text and "the hypergradient's direction matters" in text
    assert "ohgw-normalized @ 0.9:" in text
    assert "not significantly better than a random direction" in text


def test_moves_say_which_parameters_move_inward_and_which_are_clipped(cells) -> None:  # type: ignore[no-untyped-def]
    moves = {(m.variant, m.param): m for m in sm.move_summaries(cells)}
    lr, mom = moves[("ohgw-normalized", "lr")], moves[("ohgw-normalized", "momentum")]
    assert lr.n == 6 and lr.moved == 1.0
    assert lr.clipped == pytest.approx(1 / 6) and lr.inward == pytest.approx(5 / 6)
    assert mom.inward == 1.0 and mom.clipped == 0.0 and mom.from_edge == 1.0
    assert mom.median_move == pytest.approx(0.05)
    assert ("vanilla", "lr") not in moves  # no warm start, no move
    one = [m for c in cells if c.variant == "ohgw-normalized" and c.seed == 0 for m in c.moves]
    assert {m.param: m.at_bound for m in one} == {"lr": True, "momentum": False}
    assert warm_start_moves([]) == []


def test_summary_page_names_the_groups_short_of_seeds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = optuna.storages.InMemoryStorage()
    _make(storage, seeds=12)  # 6 seeds give p 0.031, which no Holm correction keeps
    cells = rep.load_cells(storage)
    path = sm.write_summary(
        cells,
        tmp_path / "summary.md",
        tmp_path / "mnist1d",
        "cmd",
        targets={"mnist1d": (0.90, 0.95, 0.97)},  # where the made-up curves step
        n_boot=200,
        planned_seeds=20,
        question=sm.ISSUE19,
    )
    text = path.read_text()
    assert text.index("## Where it pays") < text.index("## The grid")  # the lead
    assert "| MNIST-1D CNN (SGD) | asha | 1 | ohgw-normalized | 0.97 | 0.52 [0.5, 0.538] |" in text
    assert "- **Pays.** MNIST-1D CNN (SGD), asha (1 worker): `ohgw-normalized` reaches" in text
    assert "## The primary question `issue19`" in text and "commit 866bb04" in text
    assert "**Not decided yet; the default stays `normalized`.**" in text
    assert "fashion asha@8: not run; mnist1d asha@8: not run" in text
    assert "mnist1d / asha: 12 paired seed(s)" in text
    assert "**Fewer than 20 seeds** in 1 of 1 groups, seeds per arm: mnist1d / asha (" in text
    assert "provisional" not in text and "The other 0 groups" not in text
    # The primary table at one worker: per-seed ratio, counts, accuracy, verdict.
    assert (
        "| 0.52 [0.5, 0.538] | 0.519 | 12 / 0 / 0 | 0.00049 | 0.00098 | 12/12 of 12 | "
        "0.97 / 0.97 (+0.00 points, p n/a) | sooner, significant |" in text
    )
    assert "## Time to target with the first wave" not in text  # one worker only
    assert "| asha | tpe | ohgw-normalized |" in text and "**pays off**" in text
    assert "## What the steps change" in text and "## Verdict" in text
    assert "until the 10th configuration" not in text  # no Random arm here
    assert "1.00-1.00 s (mnist1d / asha)" in text  # every made-up epoch takes 1 s
    assert "- mnist1d / asha: 1 real worker" in text  # cells without the attr: issue 13's
    # Raw p, then Holm's over the 6 defined comparisons (configuration 0 is every cell's
    # only configuration here, so without it no arm reaches anything: undefined tests).
    assert (
        "0.52 [0.5, 0.538] p=0.00049 (Holm 0.0029); per seed 0.519 (12 faster, 0 slower); "
        "epochs 0.52 p=0.00049 (12/12 reached) **pays off**" in text
    )
    assert "over all 6 comparisons" in text and "## Time to target with configuration 0" in text
    assert "(0/12 reached)" in text
    # The sweep: significant after correction over the sweep, where the arm is sooner.
    assert "mnist1d / asha / ohgw-normalized vs vanilla (n=12): significantly sooner" in text
    plots = sorted(p.name for p in (tmp_path / "mnist1d").glob("ratio-vs-target-*.png"))
    assert plots == [  # the sweep, on the deciding clock
        f"ratio-vs-target-mnist1d-asha-vs-{ref}-compute.png" for ref in ("random-sign", "vanilla")
    ]
    assert "](mnist1d/ratio-vs-target-mnist1d-asha-vs-vanilla-compute.png)" in text


def test_cli_summary_over_two_grids_with_samplers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a, b = (f"journal:{tmp_path / name}" for name in ("tpe.journal", "random.journal"))
    _make(open_storage(a, heartbeat=False), seeds=3)
    _make(open_storage(b, heartbeat=False), seeds=3, sampler="-random")
    out = tmp_path / "reports"
    args = ["--storage", a, "--storage", b, "--name", "mnist1d", "--out", str(out), "--summary"]
    notes = tmp_path / "notes.md"
    notes.write_text("The warm start lifts weak configurations, not the best ones.\n")
    result = CliRunner().invoke(
        report,
        [*args, "--targets", "mnist1d=0.95,0.97", "--clock", "epochs", "--notes", str(notes)],
    )
    assert result.exit_code == 0, result.output
    text = (out / "summary.md").read_text()
    assert "## In plain words\n\nThe warm start lifts weak configurations" in text
    # Paths in the committed page are relative (no path of the machine that wrote it).
    assert f"--notes {os.path.relpath(notes)}" in text and not absolute_paths(text)
    assert "## The same configuration, nudged or not" in text
    assert "(epochs clock decides)" in text and "p=0.25 (Holm 1); per seed" in text
    assert " slower); compute" in text
    assert "| asha | random | ohgw-normalized |" in text and "| asha | tpe | vanilla" not in text
    assert "mnist1d / asha/random: 3 paired seed(s)" in text and "mnist1d: 0.95, 0.97" in text
    assert "until the 10th configuration" in text
    figures = out / "mnist1d"
    assert (figures / "ratio-vs-target-mnist1d-asha-random-vs-vanilla-epochs.png").exists()
    assert (figures / "curves-mnist1d-asha-random-epochs.png").exists()
    bad = CliRunner().invoke(report, [*args, "--targets", "mnist1d"])
    assert bad.exit_code == 2 and "TASK=T1,T2" in bad.output
    # The question and the lead's commits, named on the command line.
    commits = tmp_path / "commits.toml"
    commits.write_text('[commits]\n"mnist1d asha/random" = "abc1234"\n')
    more = ["--targets", "mnist1d=0.95,0.97", "--question", "issue19", "--commits", str(commits)]
    later = tmp_path / "later.md"
    later.write_text("An older reading.\n")
    two = ["--notes", str(notes), "--notes", str(later)]
    result = CliRunner().invoke(report, [*args, *more, *two])
    assert result.exit_code == 0, result.output
    text = (out / "summary.md").read_text()
    assert "## The primary question `issue19`" in text and "--question issue19" in text
    assert "| abc1234 |" in text and f"--commits {os.path.relpath(commits)}" in text
    assert "lifts weak configurations, not the best ones.\n\nAn older reading.\n" in text
    assert "## The primary question `issue27`" in (
        CliRunner().invoke(report, args) and (out / "summary.md").read_text()
    )  # the default: the last question declared
    commits.write_text("[commits]\nmnist1d = 1\n")
    bad = CliRunner().invoke(report, [*args, "--commits", str(commits)])
    assert bad.exit_code == 2 and 'write a [commits] table of "TASK GROUP"' in bad.output


def test_the_cli_offers_every_declared_question() -> None:
    (option,) = [p for p in report.params if p.name == "question"]
    assert list(option.type.choices) == list(sm.QUESTIONS)


def test_finished_only_and_tiny_moves() -> None:
    from optuna_ohgw.evidence.grid import DONE_ATTR

    storage = optuna.storages.InMemoryStorage()
    _make(storage, seeds=2)
    done = "bench-mnist1d-asha-s0-vanilla"
    optuna.load_study(study_name=done, storage=storage).set_user_attr(DONE_ATTR, True)
    assert [c.name for c in rep.load_cells(storage, finished_only=True)] == [done]
    assert len(rep.load_cells(storage)) == 6
    # The seed's raw rule moves log-lr by ~1e-6 of the range: recorded, but not a move.
    study = optuna.create_study(
        study_name="bench-mnist1d-asha-s0-ohgw-raw", storage=storage, direction="maximize"
    )
    study.set_user_attr("ohgw.target", 0.9)
    ua = {attrs.STATUS: "ok", attrs.raw("lr"): 0.5, attrs.nudged("lr"): 0.5 * (1 + 1e-6)}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.9,
            params={"lr": 0.5},
            distributions={"lr": LR},
            user_attrs=ua,
            intermediate_values={1: 0.9},
        )
    )
    moves = sm.move_summaries([c for c in rep.load_cells(storage) if c.variant == "ohgw-raw"])
    assert [(m.param, m.n, m.moved, m.inward) for m in moves] == [("lr", 1, 0.0, None)]


def test_reprobe_moves_are_listed_apart() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(
        study_name="bench-mnist1d-pasha-s0-re-probe", storage=storage, direction="maximize"
    )
    study.set_user_attr("ohgw.target", 0.9)
    ua = {
        attrs.STATUS: "skipped: every probed parameter is fixed (enqueued, retried or resumed)",
        attrs.REPROBE_STATUS: "ok",
        attrs.reprobe_from("momentum"): 0.9,
        attrs.reprobe_to("momentum"): 0.855,
    }
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.9,
            params={"momentum": 0.9},
            distributions={"momentum": MOM},
            user_attrs=ua,
            intermediate_values={2: 0.9},
        )
    )
    (cell,) = rep.load_cells(storage)
    assert cell.moves == [] and len(cell.reprobe_moves) == 1
    (m,) = sm.move_summaries([cell])
    assert (m.variant, m.param) == ("re-probe (at promotions)", "momentum")
    assert (m.clipped, m.inward) == (0.0, 1.0)
    assert m.median_move == pytest.approx(-0.05)
    assert m.from_edge == 1.0  # 0.9 of [0, 0.9] is the upper bound


def test_too_few_paired_seeds_are_not_decided() -> None:
    """With fewer than MIN_PAIRS pairs no Wilcoxon p can be < 0.05: the verdict says so rather
    than 'does not pay off'."""
    storage = optuna.storages.InMemoryStorage()
    _make(storage)
    few = [c for c in rep.load_cells(storage) if c.seed < 3]
    rows = sm.target_rows(few, {"mnist1d": (0.90, 0.95, 0.97)})
    vs = sm.compare_at_targets(rows, n_boot=200)
    assert {c.n_paired for c in vs} == {3}
    text = "\n".join(sm.statements(vs, []))
    assert "fewer than 6 paired seeds" in text and "does not pay off" not in text
    assert "not decided yet (3 paired seeds" in text


# ----- the same configuration, nudged or not ----------------------------------------------------


def _twin_study(storage, name: str, rows) -> None:  # type: ignore[no-untyped-def]
    """``rows``: (raw lr, nudged lr or None for vanilla, first-segment values, resumed?)."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr("ohgw.target", 0.9)
    for raw, nudged, values, resumed in rows:
        ua = {attrs.EPOCHS: len(values), attrs.EPOCH_SECONDS: [1.0] * len(values)}
        if nudged is not None:
            ua.update({attrs.STATUS: "ok", attrs.raw("lr"): raw, attrs.nudged("lr"): nudged})
        trial = create_trial(
            state=TrialState.PRUNED,
            params={"lr": raw if nudged is None else nudged},
            distributions={"lr": LR},
            user_attrs=ua,
            system_attrs={"ohgw:resume": {"config": 0}} if resumed else {},
            intermediate_values={i + 1: v for i, v in enumerate(values)},
        )
        trial.datetime_start = T0
        trial.datetime_complete = T0 + dt.timedelta(seconds=len(values))
        study.add_trial(trial)


def test_same_configurations_pair_twins_by_number_and_raw_draw() -> None:
    storage = optuna.storages.InMemoryStorage()
    vanilla = [
        (0.01, None, [0.50, 0.60, 0.70], False),
        (0.02, None, [0.40], False),
        (0.03, None, [0.80], False),
        (0.04, None, [0.30], False),  # its twin drew another lr: no pair
        (0.03, None, [0.85], True),  # a resumed segment starts later: never a twin
    ]
    warm = [
        (0.01, 0.012, [0.55, 0.62, 0.75], False),  # +5 points, +5 at epoch 3
        (0.02, 0.018, [0.50], False),  # +10, the vanilla worst
        (0.03, 0.028, [0.78], False),  # -2, the vanilla best
        (0.05, 0.040, [0.90], False),
        (0.03, 0.028, [0.10], True),
    ]
    _twin_study(storage, "bench-mnist1d-asha-random-s0-vanilla", vanilla)
    _twin_study(storage, "bench-mnist1d-asha-random-s0-ohgw-normalized", warm)
    cells = rep.load_cells(storage)
    firsts = next(c for c in cells if c.variant == "vanilla").first_epochs
    assert [(f.number, f.values) for f in firsts] == [
        (0, (0.50, 0.60, 0.70)),
        (1, (0.40,)),
        (2, (0.80,)),
        (3, (0.30,)),
    ]
    [row] = sm.same_configurations(cells)
    assert (row.scheduler, row.variant, row.n, row.seeds) == (
        "asha/random",
        "ohgw-normalized",
        3,
        1,
    )
    assert row.mean == pytest.approx((0.05 + 0.10 - 0.02) / 3)
    assert row.median == pytest.approx(0.05)
    assert row.better == pytest.approx(2 / 3) and row.worse == pytest.approx(1 / 3)
    assert row.low == pytest.approx(0.10) and row.high == pytest.approx(-0.02)
    assert row.p is None  # fewer than MIN_PAIRS non-zero deltas
    assert (row.deep_n, row.deep_epoch, row.deep_mean) == (1, 3.0, pytest.approx(0.05))
    text = "\n".join(sm.same_configuration_table([row]) + sm.same_configuration_statements([row]))
    assert "| 3 (1) | +5.00 | +4.33 |" in text
    assert "ohgw-normalized does not change it beyond chance" in text


def test_same_configurations_against_the_noise_floor() -> None:
    """Eight twins each: ohgw-raw's deltas alternate in sign (noise), the normalized step raises
    every one; the statement names the noise floor and the effect above it."""
    storage = optuna.storages.InMemoryStorage()
    base = [(0.01 * (i + 1), [0.5 + 0.01 * i]) for i in range(8)]
    _twin_study(storage, "bench-mnist1d-asha-s0-vanilla", [(r, None, v, False) for r, v in base])
    _twin_study(
        storage,
        "bench-mnist1d-asha-s0-ohgw-raw",
        [
            (r, r * (1 + 1e-6), [v[0] + (0.01 if i % 2 else -0.01)], False)
            for i, (r, v) in enumerate(base)
        ],
    )
    _twin_study(
        storage,
        "bench-mnist1d-asha-s0-ohgw-normalized",
        [(r, r * 1.1, [v[0] + 0.03 + 0.001 * i], False) for i, (r, v) in enumerate(base)],
    )
    rows = sm.same_configurations(rep.load_cells(storage))
    by = {r.variant: r for r in rows}
    assert by["ohgw-raw"].mean == pytest.approx(0.0) and by["ohgw-raw"].p > 0.5
    assert by["ohgw-normalized"].better == 1.0 and by["ohgw-normalized"].p < 0.01
    [line] = sm.same_configuration_statements(rows)
    assert "changes the first epoch by 1.00 points on average" in line
    assert "ohgw-normalized raises the same configurations' first epoch" in line


def test_parameter_effects_read_the_randomized_control() -> None:
    """random-sign twins whose first epoch gains 2 points per 5% inward move of lr and nothing
    from momentum: the regression finds exactly that, in range units (log space for lr)."""
    storage = optuna.storages.InMemoryStorage()
    span = math.log(LR.high) - math.log(LR.low)
    raws = [(0.002, 0.1), (0.01, 0.8), (0.3, 0.2), (0.6, 0.7), (0.05, 0.4), (0.004, 0.6)]
    # lr: in, out, out, in, out, out; momentum: in, in, out, out, in, out (not collinear).
    signs = [(1, 1), (-1, -1), (1, -1), (-1, 1), (1, 1), (-1, 1)]
    for variant in ("vanilla", "random-sign"):
        study = optuna.create_study(
            study_name=f"bench-mnist1d-asha-random-s0-{variant}",
            storage=storage,
            direction="maximize",
        )
        study.set_user_attr("ohgw.target", 0.9)
        for (lr, mom), (s_lr, s_mom) in zip(raws, signs):
            params, ua, value = {"lr": lr, "momentum": mom}, {}, 0.5
            if variant == "random-sign":
                params = {"lr": lr * math.exp(s_lr * 0.05 * span), "momentum": mom + s_mom * 0.045}
                ua = {attrs.STATUS: "ok", attrs.raw("lr"): lr, attrs.raw("momentum"): mom}
                lr_at = (math.log(lr) - math.log(LR.low)) / span
                value += 0.02 * s_lr * (1 if lr_at < 0.5 else -1)  # +2 points per inward step
            trial = create_trial(
                state=TrialState.PRUNED,
                params=params,
                distributions={"lr": LR, "momentum": MOM},
                user_attrs=ua,
                intermediate_values={1: value},
            )
            trial.datetime_start = T0
            trial.datetime_complete = T0 + dt.timedelta(seconds=1)
            study.add_trial(trial)
    effects = {e.param: e for e in sm.parameter_effects(rep.load_cells(storage))}
    assert effects["lr"].effect == pytest.approx(0.02, abs=1e-9)
    assert effects["momentum"].effect == pytest.approx(0.0, abs=1e-9)
    assert effects["lr"].n == 6 and effects["lr"].p < 1e-6
    assert "| mnist1d | asha/random | lr | 6 | +2.00 |" in "\n".join(
        sm.parameter_effect_table(list(effects.values()))
    )


def test_who_reaches_the_targets_names_the_first_configuration(cells) -> None:  # type: ignore[no-untyped-def]
    """Each hand-made cell has one trial (configuration 0) reaching 0.97: the table says that
    the first draw reached every target by itself in every seed."""
    assert {c.first_config_best for c in cells} == {0.97}
    lines = sm.first_configuration_table(cells, {"mnist1d": (0.9, 0.97, 0.99)})
    assert lines[0] == "| task | scheduler | variant | seeds | @ 0.9 | @ 0.97 | @ 0.99 |"
    assert "| mnist1d | asha | vanilla | 6 | 6/6 | 6/6 | 0/6 |" in lines
    assert lines.index("| mnist1d | asha | vanilla | 6 | 6/6 | 6/6 | 0/6 |") == 2  # vanilla first


# ----- the primary question and the default step rule ------------------------------------------


def _at_eight_workers(rename: dict[str, str], seeds: int = 12):  # type: ignore[no-untyped-def]
    storage = optuna.storages.InMemoryStorage()
    _make(storage, seeds=seeds)
    rows = sm.target_rows(rep.load_cells(storage), {"mnist1d": (0.90, 0.95, 0.97)})
    for r in rows:
        r["scheduler"] += "@8"
        r["variant"] = rename.get(r["variant"], r["variant"])
    arms = set(rename.values())
    vs = sm.compare_at_targets(rows, n_boot=200)
    ctl = sm.compare_at_targets(rows, "random-sign", variants=arms, n_boot=200)
    return vs, ctl


MNIST1D_AT_8 = sm.Question(
    name="test",
    declared="in this test",
    family=(("mnist1d", "asha@8"),),
    rule_groups=(("mnist1d", "asha@8"),),
    rule_wins=1,
    rule_holm="family",
)


def test_primary_family_is_the_hard_target_of_its_groups_alone() -> None:
    targets = {"mnist1d": (0.90, 0.95, 0.97)}
    vs, ctl = _at_eight_workers({"ohgw-normalized": "line-search"})
    ones = [dataclasses.replace(c, scheduler="asha") for c in vs]  # a one-worker group
    primary = sm.family_comparisons(MNIST1D_AT_8, [*vs, *ones], ctl, targets)
    assert [(c.variant, c.reference, c.target) for c in primary] == [
        ("line-search", "vanilla", 0.97),
        ("line-search", "random-sign", 0.97),
    ]
    # Holm over these two only, not over the 9 comparisons passed in.
    assert [c.p_holm for c in primary] == pytest.approx(stats.holm([c.p for c in primary]))
    assert primary[0].pays_off and primary[0].n_paired == 12
    alone = sm.family_comparisons(
        MNIST1D_AT_8, [*vs, *ones], ctl, targets, groups=(("mnist1d", "asha"),)
    )
    assert [(c.scheduler, c.variant, c.reference) for c in alone] == [
        ("asha", "line-search", "vanilla")
    ]


def test_default_rule_follows_the_primary_family_at_the_planned_size() -> None:
    targets = {"mnist1d": (0.90, 0.95, 0.97)}
    vs, ctl = _at_eight_workers({"ohgw-normalized": "line-search"})
    primary = sm.family_comparisons(MNIST1D_AT_8, vs, ctl, targets)
    decision = sm.decide_step_rule(MNIST1D_AT_8, vs, targets, 12, family=primary)
    assert decision.line_search and decision.wins == (("mnist1d", "asha@8"),)
    assert decision.comparisons[0].p_holm == primary[0].p_holm  # the family's Holm p decides
    assert sm.step_rule_statement(decision).startswith("**`line-search` becomes the default")
    # Before the planned seeds, or with a group not run, nothing is decided.
    early = sm.decide_step_rule(MNIST1D_AT_8, vs, targets, 20, family=primary)
    assert not early.decided and not early.line_search
    assert "mnist1d asha@8: 12 of 20 paired seeds" in sm.step_rule_statement(early)
    assert "fashion asha@8: not run" in sm.step_rule_statement(
        sm.decide_step_rule(sm.ISSUE19, vs, targets, 12, family=primary)
    )
    # An arm that is not sooner at the hard target keeps the default.
    vs, ctl = _at_eight_workers({"random-sign": "line-search", "ohgw-normalized": "random-sign"})
    primary = sm.family_comparisons(MNIST1D_AT_8, vs, ctl, targets)
    decision = sm.decide_step_rule(MNIST1D_AT_8, vs, targets, 12, family=primary)
    assert decision.decided and not decision.line_search and decision.wins == ()
    assert sm.step_rule_statement(decision).startswith("**The default stays `normalized`**")
    assert "untestable" not in "\n".join(sm.primary_table(primary))


def _rule_comparison(task, group, ratio, high, p, n=20):  # type: ignore[no-untyped-def]
    c = _comparison(ratio, ratio / 2, high, p, n=n)
    return dataclasses.replace(
        c, task=task, scheduler=group, variant="line-search", target=0.9, p_holm=None
    )


def test_issue27_rule_needs_two_of_three_with_holm_over_its_own_and_none_slower() -> None:
    """The rule fixed in reports/issue27/PLAN.md before the data."""
    q, targets = sm.ISSUE27, {"mnist1d": (0.9,), "fashion": (0.9,), "fashion-vit-asha": (0.9,)}
    mnist, cnn, vit = q.rule_groups

    def decide(*rows):  # type: ignore[no-untyped-def]
        comps = [_rule_comparison(t, g, r, h, p) for (t, g), r, h, p in rows]
        return sm.decide_step_rule(q, comps, targets, 20)

    two = decide((mnist, 1.02, 1.2, 0.9), (cnn, 0.6, 0.8, 0.001), (vit, 0.7, 0.9, 0.01))
    assert two.line_search and two.wins == (cnn, vit)
    # Holm over the rule's three: p 0.02 and 0.03 raw become 0.06 and 0.06.
    held = decide((mnist, 1.02, 1.2, 0.9), (cnn, 0.6, 0.8, 0.02), (vit, 0.7, 0.9, 0.03))
    assert [c.p_holm for c in held.comparisons] == pytest.approx([0.9, 0.06, 0.06])
    assert not held.line_search and held.wins == ()
    # Ratio above 0.85 does not pay even where significant.
    assert decide(
        (mnist, 0.9, 0.95, 0.001), (cnn, 0.6, 0.8, 0.001), (vit, 1.0, 1.2, 0.5)
    ).wins == (cnn,)
    # Two wins, but significantly slower on the third: the default stays.
    slow = decide((mnist, 1.3, 1.6, 0.01), (cnn, 0.6, 0.8, 0.001), (vit, 0.7, 0.9, 0.001))
    assert slow.wins == (cnn, vit) and slow.slower == (mnist,) and not slow.line_search
    assert "significantly slower on mnist1d asha@8" in sm.step_rule_statement(slow)
    # A group short of seeds leaves it undecided whatever the others say.
    comps = [
        _rule_comparison(*cnn, 0.6, 0.8, 0.001),
        _rule_comparison(*vit, 0.7, 0.9, 0.001),
        _rule_comparison(*mnist, 0.7, 0.9, 0.001, n=12),
    ]
    short = sm.decide_step_rule(q, comps, targets, 20)
    assert not short.decided and not short.line_search
    assert short.pending == ("mnist1d asha@8: 12 of 20 paired seeds",)
    assert "in at least 2 of the 3 groups" in q.rule_text and "significantly slower" in q.rule_text
    assert not short.foregone  # mnist1d may still pay off: two wins are possible


def test_issue27_rule_says_when_its_outcome_is_already_fixed() -> None:
    q, targets = sm.ISSUE27, {"mnist1d": (0.9,), "fashion": (0.9,), "fashion-vit-asha": (0.9,)}
    mnist, cnn, vit = q.rule_groups

    def decide(*rows):  # type: ignore[no-untyped-def]
        comps = [_rule_comparison(t, g, r, h, p, n=n) for (t, g), r, h, p, n in rows]
        return sm.decide_step_rule(q, comps, targets, 20)

    # Issue 27 at this commit: MNIST-1D 1.02x and the ViT 0.947x at 20 seeds, the CNN rerun
    # not run: at most one group can still pay off, so the default stays, whatever it shows.
    fixed = decide((mnist, 1.02, 1.2, 0.41, 20), (vit, 0.947, 1.3, 0.62, 20))
    assert fixed.foregone and not fixed.decided and not fixed.line_search
    assert fixed.lost == (mnist, vit)
    text = sm.step_rule_statement(fixed)
    assert text.startswith("**Not applied yet, but the outcome is fixed: the default stays")
    assert "at most 1 of 3 groups can still pay off (2 needed)" in text
    assert "fashion asha@8r: not run" in text
    # A group short of seeds counts as still able to pay off, whatever its interim ratio.
    open_ = decide((mnist, 1.02, 1.2, 0.41, 20), (vit, 0.947, 1.3, 0.62, 12))
    assert not open_.foregone and open_.lost == (mnist,)
    # Significantly slower on a complete group: fixed too (the rule wants none slower).
    slow = decide((mnist, 1.3, 1.6, 0.01, 20), (vit, 0.5, 0.7, 0.001, 12))
    assert slow.foregone and "significantly slower on mnist1d asha@8" in sm.step_rule_statement(
        slow
    )


def test_a_smoke_test_task_is_in_the_lead_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    storage = optuna.storages.InMemoryStorage()
    _make(storage, seeds=12)
    targets = {"mnist1d": (0.90, 0.95, 0.97)}
    kwargs = {"n_boot": 200, "question": sm.ISSUE19}
    alone = sm.write_summary(
        rep.load_cells(storage),
        tmp_path / "a" / "s.md",
        tmp_path / "a" / "f",
        "cmd",
        targets=targets,
        **kwargs,
    ).read_text()
    _make(storage, seeds=12, task="digits")
    text = sm.write_summary(
        rep.load_cells(storage),
        tmp_path / "b" / "s.md",
        tmp_path / "b" / "f",
        "cmd",
        targets={**targets, "digits": (0.90, 0.95, 0.97)},
        **kwargs,
    ).read_text()
    smoke = [line for line in text.splitlines() if line.startswith("| digits (smoke test) |")]
    assert len(smoke) == 1 and smoke[0].endswith("| smoke test |")
    # Its raw p is shown; it has no Holm p and is never said to pay, whatever its ratio.
    assert "| 0.52 [0.5, 0.538] | 12 / 0 of 12 | 0.00049 | n/a |" in smoke[0]
    assert (
        "- **Smoke test.** digits (smoke test), asha (1 worker): `ohgw-normalized` and vanilla "
        "ran end to end with the defaults; 12 and 12 of 12 paired seeds reached 0.97" in text
    )
    # The evidence is untouched: the MNIST-1D lead rows (their Holm p) and every table after
    # the lead are as without the smoke cells, which only the targets line names.
    lead = [line for line in alone.splitlines() if line.startswith("| MNIST-1D")]
    assert lead and all(line in text.splitlines() for line in lead)
    rest = text[text.index("## The grid") :].splitlines()
    assert [line for line in rest if "digits" in line] == [
        "Targets, fixed before the grid ran: digits: 0.9, 0.95, 0.97; mnist1d: 0.9, 0.95, 0.97."
    ]
    before = alone[alone.index("## The grid") :].splitlines()
    assert [line for line in rest if not line.startswith("Targets, fixed")] == [
        line for line in before if not line.startswith("Targets, fixed")
    ]


def test_where_it_pays_leads_with_one_row_per_group_and_arm(cells) -> None:  # type: ignore[no-untyped-def]
    targets = {"mnist1d": (0.90, 0.95, 0.97)}
    vs, ctl = _at_eight_workers(
        {"ohgw-normalized": "line-search", "random-sign": "ohgw-normalized"}
    )
    question = dataclasses.replace(MNIST1D_AT_8)
    primary = sm.family_comparisons(question, vs, ctl, targets)
    ones = [dataclasses.replace(c, scheduler="asha") for c in vs]
    rows = sm.where_it_pays(
        cells, [*vs, *ones], targets, family=primary, commits={"mnist1d asha@8": "abc1234"}
    )
    assert [(r.comparison.scheduler, r.comparison.variant, r.primary) for r in rows] == [
        ("asha", "line-search", False),
        ("asha", "ohgw-normalized", False),
        ("asha@8", "line-search", True),
        ("asha@8", "ohgw-normalized", True),
    ]
    (ls,) = [c for c in primary if (c.variant, c.reference) == ("line-search", "vanilla")]
    assert rows[2].comparison.p_holm == ls.p_holm  # the primary family's Holm
    assert (rows[2].workers, rows[2].ties, rows[0].workers, rows[0].ties) == (8, "index", 1, "")
    rest = [rows[0].comparison.p, rows[1].comparison.p]
    assert [rows[0].comparison.p_holm, rows[1].comparison.p_holm] == pytest.approx(
        stats.holm(rest)
    )
    assert rows[2].commit == "abc1234" and rows[0].commit == "18 cells unrecorded"
    # Without an entry, the commits the group's cells recorded, in seed order.
    sha = "4c85f4827f1d5750d51356df8b087bfbc71f6014"
    recorded = [
        dataclasses.replace(c, code={"commit": sha if c.seed < 3 else f"{'a' * 40}+dirty"})
        for c in cells
        if c.seed != 5
    ] + [c for c in cells if c.seed == 5]
    again = sm.where_it_pays(recorded, ones, targets)
    assert again[0].commit == "4c85f48, aaaaaaa+dirty; 3 cells unrecorded"
    entry = {"mnist1d asha": "ad4ca7c (COMMIT file)"}
    again = sm.where_it_pays(recorded, ones, targets, commits=entry)
    assert again[0].commit == "4c85f48, aaaaaaa+dirty; ad4ca7c (COMMIT file)"
    assert sm.where_it_pays(cells, ones, targets, commits=entry)[0].commit == entry["mnist1d asha"]
    assert rows[1].probe_share == 0.0  # the hand-made cells probe for 0 s
    assert rows[0].probe_share is None  # no cell of that arm
    table = sm.pays_table(rows)
    assert table[0].startswith("| task | scheduler | workers | arm | target | ratio [95% CI]")
    assert "| MNIST-1D CNN (SGD) | asha@8 |" in table[4] and "line-search (primary)" in table[4]
    assert table[4].endswith("| abc1234 | pays |")
    said = sm.pays_sentences(rows)
    assert len(said) == 4 and said[2].startswith(
        "- **Pays.** MNIST-1D CNN (SGD), asha@8 (8 workers, index ties): `line-search` reaches"
    )
    assert "`ohgw-normalized` reaches 0.97 in" in said[3] and "**No gain" in said[3]
    # An arm whose median time is not defined (most seeds never reach the target).
    c = dataclasses.replace(_comparison(None, None, None, 1.0), n_reached=3, n_reached_reference=2)
    rare = sm.PaysRow(
        comparison=c, workers=8, ties="seeded", primary=True, probe_share=0.1, commit="x"
    )
    assert sm.pays_table([rare])[2].endswith("| x | target rarely reached |")
    (said,) = sm.pays_sentences([rare])
    assert said.startswith("- **Target rarely reached.** Fashion-MNIST CNN (SGD), asha@8 (8")
    assert "not defined (half the seeds or more" in said and "3 of 20 reached it" in said


# ----- issue 27: per-seed ratios, the verdict rule, accuracy, the first wave, the banner -------


def test_per_seed_ratios_count_faster_and_slower_seeds() -> None:
    # Ratio of medians 10/10 = 1, but seed by seed: 0.5, 0.5, 2, 1, and two censored sides.
    a = [5.0, 5.0, 20.0, 10.0, 30.0, 4.0]
    b = [10.0, 10.0, 10.0, 10.0, 12.0, 50.0]
    ps = stats.per_seed_ratios(
        a, b, [False, False, False, False, True, False], [False] * 5 + [True]
    )
    # a censored at 30 after b's 12: slower (inf); b censored at 50 after a's 4: faster (0).
    assert (ps.faster, ps.tied, ps.slower, ps.unordered) == (3, 1, 2, 0)
    assert ps.median_ratio == pytest.approx(0.75)  # sorted 0, 0.5, 0.5, 1, 2, inf
    # Both censored, or censored before the other's time: order unknown, left out.
    ps = stats.per_seed_ratios(
        [8.0, 3.0, 6.0], [9.0, 5.0, 3.0], [True, True, False], [True, False, False]
    )
    assert (ps.faster, ps.slower, ps.unordered, ps.median_ratio) == (0, 1, 2, 2.0)
    assert stats.per_seed_ratios([], []).median_ratio is None


def _comparison(ratio, low, high, p, faster=10, slower=5, n=20):  # type: ignore[no-untyped-def]
    r = stats.RatioCI(ratio, low, high, 200, 0, 0.95)
    w = stats.WilcoxonResult(n, n, 0, 0, 1.0, p, None)
    return sm.TargetComparison(
        "fashion", "asha@8", "ohgw-normalized", "vanilla", 0.86, n, n, n,
        {"epochs": r}, {"epochs": w}, clock="epochs", p_holm=p,
        per_seed={"epochs": stats.PerSeed(0.9, faster, n - faster - slower, slower, 0)},
    )  # fmt: skip


def test_verdict_says_sooner_only_when_the_ci_is_below_one_and_the_ratio_is_not_near_one() -> None:
    assert sm.verdict(_comparison(0.557, 0.439, 0.848, 0.0006)) == "sooner, significant"
    assert sm.verdict(_comparison(0.393, 0.258, 0.978, 0.097)) == "sooner, not significant"
    # ohgw-normalized at 0.86: a significant p beside a CI that includes 1 is fragile.
    word = sm.verdict(_comparison(0.846, 0.614, 1.08, 0.037))
    assert word == "fragile: p < 0.05, but CI includes 1" and "sooner" not in word
    word = sm.verdict(_comparison(0.975, 0.70, 1.09, 0.037))
    assert word == "fragile: p < 0.05, but CI includes 1 and ratio within 5% of 1"
    assert sm.verdict(_comparison(0.97, 0.90, 0.99, 0.01)).endswith("ratio within 5% of 1")
    assert sm.verdict(_comparison(0.877, 0.747, 1.09, 0.32)) == "not shown sooner"
    assert sm.verdict(_comparison(1.02, 0.765, 1.24, 1.0)) == "not sooner"
    assert sm.verdict(_comparison(0.5, 0.4, 0.6, 0.01, n=4)) == "untestable (n=4 < 6)"
    # A ratio that reads as a gain the seeds do not show says so (random-sign at 0.86).
    c = _comparison(0.868, 0.71, 1.32, 0.18, faster=7, slower=11)
    assert c.gain_not_in_seeds and not c.clearly_sooner
    assert sm.verdict(c) == "not shown sooner; faster in 7, slower in 11 seeds"
    text = "\n".join(sm.statements([c], []))
    assert "faster in 7, slower in 11 seeds" in text and "median per-seed ratio 0.9" in text
    assert not _comparison(0.557, 0.439, 0.848, 0.0006).gain_not_in_seeds
    row = sm.primary_table([c])[2]
    assert "| 0.868 [0.71, 1.32] | 0.9 | 7 / 2 / 11 |" in row and row.endswith("seeds |")


def test_accuracy_differences_are_paired_and_tested(cells) -> None:  # type: ignore[no-untyped-def]
    # The made-up cells: every arm's test accuracy is 0.97; vary ohgw-normalized's by seed.
    moved = [
        dataclasses.replace(
            c,
            metrics=dataclasses.replace(c.metrics, best_test_accuracy=0.97 + 0.001 * (c.seed + 1)),
        )
        if c.variant == "ohgw-normalized"
        else c
        for c in cells
    ]
    acc = sm.accuracy_differences(moved)
    d = acc[("mnist1d", "asha", "ohgw-normalized", "vanilla")]
    assert d.n_paired == 6 and d.median == pytest.approx(0.9735)
    assert d.points == pytest.approx(0.35) and d.wilcoxon.p == pytest.approx(0.03125)
    assert ("mnist1d", "asha", "ohgw-normalized", "random-sign") in acc
    assert ("mnist1d", "asha", "vanilla", "vanilla") not in acc
    assert "0.9735 / 0.97 (+0.35 points, p 0.031)" in sm._accuracy_text(d)


def test_first_configuration_runs_and_short_arms(cells, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert sm.first_configuration_runs(cells) == {}  # one worker: not counted
    eight = [dataclasses.replace(c, workers=8, scheduler="asha@8") for c in cells]
    # Each made-up cell has configuration 0 alone, which trains its 14 epochs.
    assert sm.first_configuration_runs(eight) == {("mnist1d", "asha@8"): (18, 18)}
    short = sm.short_arms([c for c in cells if c.variant != "random-sign" or c.seed < 4], 6)
    assert short == {("mnist1d", "asha"): {"random-sign": 4}}
    counts = sm.paired_seed_counts(cells)
    text = sm._short_text(short, counts, 6)
    assert "mnist1d / asha (random-sign 4; its other arms 6)" in text
    assert "provisional" not in text
    assert sm._short_text({}, counts, 6) == "Every arm of every group has 6 seeds."
    text = sm.write_summary(
        eight, tmp_path / "s.md", tmp_path / "f", "cmd", targets={"mnist1d": (0.9,)}, n_boot=50
    ).read_text()
    assert "## Time to target with the first wave left out (several workers)" in text
    assert "in 18 of 18 cells (mnist1d / asha@8); under ASHA" in text
    assert "(configuration 0; their epochs still count)" in text  # real workers: one config
    assert "### mnist1d, the first wave left out" in text


def test_split_workers_reads_every_label_parse_name_writes() -> None:
    assert sm.split_workers("asha@8r/random") == ("asha/random", 8, "seeded")
    assert sm.split_workers("asha-promotion@8") == ("asha-promotion", 8, "index")
    assert sm.split_workers("asha/random") == ("asha/random", 1, "")
    assert sm.split_workers("pasha") == ("pasha", 1, "")


def test_a_lead_sentence_says_when_only_vanilla_reaches_the_target() -> None:
    c = dataclasses.replace(
        _comparison(math.inf, 0.0, None, 0.12, n=7), n_reached=3, n_reached_reference=4
    )
    row = sm.PaysRow(comparison=c, workers=8, ties="seeded", primary=True, probe_share=0.04,
                     commit="x")  # fmt: skip
    (said,) = sm.pays_sentences([row])
    assert "infx" not in said and "never reaches 0.86 in half its seeds or more (3 of 7)" in said


def test_a_lead_sentence_short_of_seeds_names_its_arm() -> None:
    c = _comparison(1.18, 1.09, 1.55, 0.12, n=4)
    row = sm.PaysRow(comparison=c, workers=8, ties="seeded", primary=False, probe_share=0.06,
                     commit="x")  # fmt: skip
    (said,) = sm.pays_sentences([row])
    assert said.startswith("- **Too few seeds.** Fashion-MNIST CNN (SGD)")
    assert f"`{c.variant}` and vanilla: 4 paired seeds, too few to test" in said
