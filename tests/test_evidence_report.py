"""The bench report: statistics on hand-made numbers, and a report of a tiny hand-made grid."""

from __future__ import annotations

import csv
import datetime as dt
import math

import numpy as np
import optuna
import pytest
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from cli.report import report
from optuna_ohgw import attrs
from optuna_ohgw.evidence import report as rep
from optuna_ohgw.evidence.stats import (
    censor,
    censored_median,
    ks_shift,
    median_ratio_ci,
    paired_wilcoxon,
)
from optuna_ohgw.storage import open_storage

# ----- stats ------------------------------------------------------------------------------------


def test_clear_paired_shift_is_significant() -> None:
    b = [10.0, 12.0, 9.0, 11.0, 13.0, 10.5, 12.5, 11.5]
    a = [x * 0.7 for x in b]  # every seed 30% faster
    w = paired_wilcoxon(a, b)
    assert w.n_used == 8 and w.n_unordered == 0
    assert w.p is not None and w.p < 0.05
    assert w.p == pytest.approx(2 / 2**8)  # exact: all 8 signs negative, two-sided
    assert w.median_difference < 0


def test_median_difference_of_censored_seeds_is_none_where_undefined() -> None:
    # The report printed numpy's "invalid value encountered in reduce": the two middle
    # differences of an even count were -inf and +inf (one seed each side censored).
    import warnings

    inf = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = paired_wilcoxon([1.0, inf], [inf, 1.0], [False, True], [True, False])
        assert w.median_difference is None and w.n_used == 2
        w = paired_wilcoxon([1.0, 1.0, inf], [inf, inf, 1.0], [False] * 2 + [True],
                            [True] * 2 + [False])  # fmt: skip
        assert w.median_difference == -inf
        w = paired_wilcoxon([1.0, 2.0, 5.0, inf], [3.0, 1.0, 4.0, 1.0], [False] * 3 + [True])
        assert w.median_difference == 1.0  # (1 + 1) / 2: the middle of -2, 1, 1, +inf


def test_identical_arms_give_no_significance() -> None:
    a = [3.0, 1.0, 2.0, 5.0]
    w = paired_wilcoxon(a, list(a))
    assert w.p is None and "zero" in w.note
    assert paired_wilcoxon([1.0], [2.0]).p is None  # n < 2
    noise = paired_wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.5, 1.5, 3.5, 3.5, 5.5, 5.5])
    assert noise.p is not None and noise.p > 0.05


def test_bootstrap_ci_contains_the_true_ratio() -> None:
    rng = np.random.default_rng(1)
    b = rng.lognormal(mean=2.0, sigma=0.2, size=30)
    a = 0.8 * b * rng.lognormal(mean=0.0, sigma=0.05, size=30)
    r = median_ratio_ci(a, b, n_boot=500, seed=0)
    assert r.low is not None and r.high is not None
    assert r.low <= 0.8 <= r.high
    assert r.low <= r.ratio <= r.high
    assert r.ratio == pytest.approx(np.median(a) / np.median(b))
    assert median_ratio_ci(a, b, n_boot=500, seed=0) == r  # seeded


def test_censoring_rules() -> None:
    c = censor([5.0, None, 7.0], [10.0, 12.0, 10.0])
    assert list(c.time) == [5.0, 12.0, 7.0] and list(c.censored) == [False, True, False]
    assert c.n_censored == 1
    # Median with the censored run at +inf: sorted 5, 7, inf -> 7 (kept, not dropped: 6 would be).
    assert censored_median(c.time, c.censored) == 7.0
    assert censored_median([1.0, 2.0], [False, True]) == math.inf
    assert censored_median([1.0, 2.0, 3.0], [False, True, True]) == math.inf

    # a censored at 100 vs b reached at 4: ordered (a slower), takes the largest rank.
    # a censored at 3 vs b reached at 9: unknown order, left out. Both censored: left out.
    a = [1.0, 2.0, 100.0, 3.0, 50.0, 3.0]
    b = [2.0, 3.0, 4.0, 9.0, 50.0, 4.0]
    w = paired_wilcoxon(a, b, [False, False, True, True, True, False], [False] * 4 + [True, False])
    assert w.n_pairs == 6 and w.n_used == 4 and w.n_unordered == 2
    # Differences -1, -1, -1, +big: ranks 2, 2, 2, 4 -> W+ = 4, W- = 6.
    assert w.statistic == pytest.approx(4.0)

    # Ratio of medians with censoring: median(a) = inf (2 of 3 censored) -> ratio inf.
    r = median_ratio_ci([1.0, 9.0, 9.0], [2.0, 2.0, 2.0], n_boot=50, a_censored=[0, 1, 1])
    assert r.ratio == math.inf
    r = median_ratio_ci([1.0, 1.0, 1.0], [2.0, 9.0, 9.0], n_boot=50, b_censored=[0, 1, 1])
    assert r.ratio == 0.0


def test_ks_shift() -> None:
    same = ks_shift([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.statistic == 0.0 and same.p == pytest.approx(1.0)
    shifted = ks_shift(list(range(20)), [x + 100.0 for x in range(20)])
    assert shifted.statistic == 1.0 and shifted.p < 1e-6
    assert ks_shift([], [1.0]).p is None


# ----- a tiny bench grid ------------------------------------------------------------------------

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)
LR = FloatDistribution(1e-3, 1.0, log=True)


def _trial(values: list[float], *, probe: float | None, lr: float, grad: float | None):
    ua = {
        attrs.EPOCHS: len(values),
        attrs.EPOCH_SECONDS: [1.0] * len(values),
        attrs.SETUP_SECONDS: 0.05,
        "test_accuracy": values[-1] - 0.01,
    }
    if probe is not None:
        ua.update({attrs.PROBE_SECONDS: probe, attrs.STATUS: "ok", attrs.grad("lr"): grad})
    else:
        ua[attrs.STATUS] = "off"
    t = create_trial(
        state=TrialState.COMPLETE,
        value=values[-1],
        params={"lr": lr},
        distributions={"lr": LR},
        user_attrs=ua,
        intermediate_values={i + 1: v for i, v in enumerate(values)},
    )
    t.datetime_start = T0
    t.datetime_complete = T0 + dt.timedelta(seconds=0.05 + len(values))
    return t


GRID = {
    # (variant, seed): validation values per epoch (target 0.9)
    ("vanilla", 0): [0.5, 0.6, 0.7, 0.91],  # reached at epoch 4
    ("vanilla", 1): [0.5, 0.6, 0.7, 0.8],  # censored at 4 epochs
    ("ohgw-normalized", 0): [0.6, 0.92, 0.93, 0.93],  # reached at epoch 2
    ("ohgw-normalized", 1): [0.7, 0.8, 0.91, 0.92],  # reached at epoch 3
}


def _make_grid(storage, scheduler: str = "asha") -> None:
    for (variant, seed), values in GRID.items():
        study = optuna.create_study(
            study_name=f"bench-digits-{scheduler}-{variant}-s{seed}",
            storage=storage,
            direction="maximize",
        )
        study.set_user_attr("ohgw.target", 0.9)
        ohgw = variant != "vanilla"
        study.add_trial(
            _trial(
                values,
                probe=0.01 if ohgw else None,
                lr=0.05 + 0.01 * seed,
                grad=0.3 - seed if ohgw else None,
            )
        )
    if scheduler == "asha":
        optuna.create_study(study_name="digits-asha", storage=storage)  # not a bench cell


def test_names_are_parsed() -> None:
    assert rep.parse_name("bench-digits-asha-promotion-ohgw-raw-s12") == {
        "task": "digits",
        "scheduler": "asha-promotion",
        "variant": "ohgw-raw",
        "seed": 12,
        "workers": 1,
    }
    assert rep.parse_name("bench-mnist1d-pasha-s3-random-sign") == {
        "task": "mnist1d",
        "scheduler": "pasha",
        "variant": "random-sign",
        "seed": 3,
        "workers": 1,
    }
    assert rep.parse_name("bench-mnist1d-asha-random-s3-line-search") == {
        "task": "mnist1d",
        "scheduler": "asha/random",
        "variant": "line-search",
        "seed": 3,
        "workers": 1,
    }
    assert rep.parse_name("bench-fashion-asha-promotion-s0-re-probe")["scheduler"] == (
        "asha-promotion"
    )
    # N > 1 workers: -wN after the sampler in the name, @N before it in the label.
    assert rep.parse_name("bench-fashion-asha-w8-s0-line-search") == {
        "task": "fashion",
        "scheduler": "asha@8",
        "variant": "line-search",
        "seed": 0,
        "workers": 8,
    }
    assert rep.parse_name("bench-mnist1d-asha-promotion-random-w8-s2-re-probe")["scheduler"] == (
        "asha-promotion@8/random"
    )
    assert rep.parse_name("digits-asha") is None
    assert rep.parse_name("bench-digits-asha-unknown-s0") is None


def test_report_end_to_end(tmp_path) -> None:
    storage = optuna.storages.InMemoryStorage()
    _make_grid(storage)
    rows = rep.collect(storage, task="digits")
    assert len(rows) == 4
    assert rep.collect(storage, task="cifar10") == []
    cells = rep.load_cells(storage)
    out = tmp_path / "reports" / "tiny"
    path = rep.write_report(rows, cells, out, "ohgw-optuna report --task digits", n_boot=200)

    with open(out / "results.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 4
    by = {(r["variant"], r["seed"]): r for r in got}
    assert by[("vanilla", "0")]["ttt_epochs"] == "4.0"
    assert by[("vanilla", "1")]["ttt_epochs"] == "" and by[("vanilla", "1")]["censored_epochs"]
    assert by[("vanilla", "1")]["censored_epochs"] == "True"
    assert by[("vanilla", "1")]["budget_epochs"] == "4.0"
    assert by[("ohgw-normalized", "0")]["ttt_epochs"] == "2.0"
    assert float(by[("ohgw-normalized", "0")]["probe_seconds"]) == pytest.approx(0.01)

    text = path.read_text()
    assert text.splitlines()[3] == "ohgw-optuna report --task digits"  # the command, on top
    assert "## Success criteria" in text and "## Headline" in text
    # 2 seeds: Wilcoxon cannot reach p < 0.05, so criterion 1 does not hold; accuracy and
    # compute do (OHGW is more accurate; probes are 0.01 s of 4.06 s).
    assert "digits/asha/ohgw-normalized: holds: accuracy, compute; does NOT hold: ttt." in text
    assert "the claim does NOT hold." in text
    assert "| digits | asha | vanilla | 2 | 1 |" in text  # one censored vanilla seed
    assert "Hyperparameter shift" in text and "| digits | asha | lr | 2 | 2 |" in text
    for name in (
        "curves-digits-asha-epochs.png",
        "curves-digits-asha-compute.png",
        "ttt-digits-asha-epochs.png",
        "hyperparameters-digits-asha.png",
        "hypergradient-digits-asha.png",
    ):
        assert (out / name).stat().st_size > 0
        assert f"]({name})" in text

    comps = {c.variant: c for c in rep.compare(rows, n_boot=200)}
    ohgw = comps["ohgw-normalized"]
    # Medians on epochs: ohgw 2.5, vanilla (4, censored) -> inf: the ratio is 0.
    assert ohgw.median_ttt["epochs"] == 2.5 and comps["vanilla"].median_ttt["epochs"] == math.inf
    assert ohgw.ratio["epochs"].ratio == 0.0
    assert ohgw.wilcoxon["epochs"].n_used == 2  # the censored vanilla seed ranks last, kept
    assert ohgw.criteria == {"ttt": False, "accuracy": True, "compute": True}
    assert ohgw.median_epochs == 4
    assert rep.compare_schedulers(rows) == []  # one scheduler: nothing to compare across


def test_schedulers_are_compared_with_asha_vanilla(tmp_path) -> None:
    storage = optuna.storages.InMemoryStorage()
    _make_grid(storage, "asha")
    _make_grid(storage, "dyhpo")
    rows = rep.collect(storage)
    got = {(s, v): r for _, s, v, r in rep.compare_schedulers(rows, n_boot=200)}
    assert set(got) == {
        ("asha", "ohgw-normalized"),
        ("dyhpo", "vanilla"),
        ("dyhpo", "ohgw-normalized"),
    }
    same = got[("dyhpo", "vanilla")]  # asha vanilla's own curves: both medians censored, no test
    assert same["epochs"][0] == math.inf
    assert same["epochs"][1].ratio is None and same["epochs"][2].p is None
    better = got[("dyhpo", "ohgw-normalized")]
    assert better["epochs"][0] == 2.5 and better["epochs"][1].ratio == 0.0
    assert better["accuracy"] == (pytest.approx(0.915), "test") and better["n"] == 2
    text = rep.write_report(rows, rep.load_cells(storage), tmp_path / "r", "cmd", n_boot=200)
    assert "## Schedulers against asha vanilla" in text.read_text()
    assert "| digits | dyhpo | ohgw-normalized | 2 | 2.5 | 0 [" in text.read_text()


def test_report_without_data_skips_plots(tmp_path) -> None:
    path = rep.write_report([], [], tmp_path / "empty", "ohgw-optuna report")
    text = path.read_text()
    assert "0 cells" in text and "(no data)" in text
    assert (tmp_path / "empty" / "results.csv").read_text().startswith("task,scheduler")


def test_cli_report_on_a_journal(tmp_path) -> None:
    url = f"journal:{tmp_path / 'bench' / 'digits.journal'}"
    _make_grid(open_storage(url, heartbeat=False))
    result = CliRunner().invoke(
        report,
        [
            "--storage",
            url,
            "--name",
            "tiny",
            "--out",
            str(tmp_path / "reports"),
            "--dashboard-notes",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 cells" in result.output and "note on 4 studies" in result.output
    # The notes are the dashboard's own (what optuna-dashboard shows on the study page).
    from optuna_dashboard._note import get_note_from_system_attrs

    storage = open_storage(url, heartbeat=False)
    study = optuna.load_study(study_name="bench-digits-asha-ohgw-normalized-s0", storage=storage)
    note = get_note_from_system_attrs(storage.get_study_system_attrs(study._study_id), None)[
        "body"
    ]
    assert "digits / asha / ohgw-normalized, seed 0" in note
    assert "time to target 0.9: 2 epochs" in note
    assert "against vanilla over 2 paired seeds" in note
    text = (tmp_path / "reports" / "tiny" / "report.md").read_text()
    assert text.splitlines()[3].startswith("ohgw-optuna report --storage journal:")

    missing = CliRunner().invoke(report, ["--storage", f"journal:{tmp_path / 'none.journal'}"])
    assert missing.exit_code == 2 and "no journal file" in missing.output
    no_args = CliRunner().invoke(report, [])
    assert no_args.exit_code == 2 and "--task" in no_args.output


def test_holm_adjusts_step_down_in_input_order() -> None:
    from optuna_ohgw.evidence.stats import holm

    # Sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4*0.005, 3*0.01, 2*0.03, max(that, 1*0.04).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.5, float("nan"), 0.2]) == [None, 0.5, None, 0.4]
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []
    # One test alone is not adjusted; the family-wise bound holds: adjusted >= raw.
    assert holm([0.03]) == [0.03]
    ps = [0.001 * k for k in range(1, 40)]
    assert all(a >= p for a, p in zip(holm(ps), ps))
