"""``summary.md``: the one-page verdict of a grid, with its ratio-vs-target plots.

:func:`write_summary` puts together what the focused modules compute and say:

* :mod:`optuna_ohgw.evidence.comparisons`: time to target at several targets, each arm against
  vanilla and random-sign, paired by seed; the rules (targets, pairing, what *pays off*, the
  fewest paired seeds) are stated there;
* :mod:`optuna_ohgw.evidence.question`: the primary question, declared before the data, and the
  default step rule it decides;
* :mod:`optuna_ohgw.evidence.where_it_pays`: the lead table, one row per task, scheduler and arm;
* :mod:`optuna_ohgw.evidence.configurations`: the step diagnostic and the same configuration
  nudged or not;
* :mod:`optuna_ohgw.evidence.ratio_plot`: the plots;
* :mod:`optuna_ohgw.evidence.prose`: the Markdown tables and sentences.

Their public names are importable from here too.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

from optuna_ohgw.evidence.comparisons import (
    CLOCKS_SHOWN,
    CONTROL,
    MIN_PAIRS,
    NEAR_ONE,
    PRIMARY_ARMS,
    SWEEP,
    SWEEP_BOOT,
    TARGETS,
    AccuracyDifference,
    TargetComparison,
    accuracy_differences,
    compare_at_targets,
    first_configuration_runs,
    paired_seed_counts,
    seconds_per_epoch,
    short_arms,
    split_label,
    split_workers,
    sweep_comparisons,
    target_rows,
    with_holm,
)
from optuna_ohgw.evidence.configurations import (
    DEEP,
    MOVED,
    NOISE,
    UNIT,
    MoveSummary,
    ParameterEffect,
    SameConfiguration,
    move_summaries,
    parameter_effects,
    same_configurations,
)
from optuna_ohgw.evidence.prose import (  # noqa: F401 - _accuracy_text, _short_text: callers import them here
    _accuracy_text,
    _short_text,
    _worker_lines,
    first_configuration_table,
    first_wave_table,
    move_table,
    parameter_effect_table,
    primary_table,
    same_configuration_statements,
    same_configuration_table,
    statements,
    step_rule_statement,
    sweep_statements,
    target_table,
    verdict,
    without_first_table,
)
from optuna_ohgw.evidence.question import (
    ISSUE19,
    ISSUE27,
    QUESTIONS,
    Question,
    StepRuleDecision,
    decide_step_rule,
    family_comparisons,
)
from optuna_ohgw.evidence.ratio_plot import plot_ratio_vs_target
from optuna_ohgw.evidence.report import (
    ALPHA,
    BASELINE,
    MAX_RATIO,
    N_BOOT,
    PRIMARY_CLOCK,
    Cell,
    Comparison,
)
from optuna_ohgw.evidence.where_it_pays import (
    SMOKE_TASKS,
    TASK_TITLES,
    PaysRow,
    pays_sentences,
    pays_table,
    where_it_pays,
)

__all__ = [
    "ALPHA",
    "AccuracyDifference",
    "BASELINE",
    "CLOCKS_SHOWN",
    "CONTROL",
    "Cell",
    "Comparison",
    "DEEP",
    "ISSUE19",
    "ISSUE27",
    "MAX_RATIO",
    "MIN_PAIRS",
    "MOVED",
    "MoveSummary",
    "NEAR_ONE",
    "NOISE",
    "N_BOOT",
    "PRIMARY_ARMS",
    "PRIMARY_CLOCK",
    "ParameterEffect",
    "PaysRow",
    "QUESTIONS",
    "Question",
    "SMOKE_TASKS",
    "SWEEP",
    "SWEEP_BOOT",
    "SameConfiguration",
    "StepRuleDecision",
    "TARGETS",
    "TASK_TITLES",
    "TargetComparison",
    "UNIT",
    "accuracy_differences",
    "compare_at_targets",
    "decide_step_rule",
    "family_comparisons",
    "first_configuration_runs",
    "first_configuration_table",
    "first_wave_table",
    "move_summaries",
    "move_table",
    "paired_seed_counts",
    "parameter_effect_table",
    "parameter_effects",
    "pays_sentences",
    "pays_table",
    "plot_ratio_vs_target",
    "primary_table",
    "same_configuration_statements",
    "same_configuration_table",
    "same_configurations",
    "seconds_per_epoch",
    "short_arms",
    "split_label",
    "split_workers",
    "statements",
    "step_rule_statement",
    "sweep_comparisons",
    "sweep_statements",
    "target_rows",
    "target_table",
    "verdict",
    "where_it_pays",
    "with_holm",
    "without_first_table",
    "write_summary",
]


def write_summary(
    cells: Sequence[Cell],
    path: str | pathlib.Path,
    figures: str | pathlib.Path,
    command: str,
    *,
    targets: Mapping[str, Sequence[float]] = TARGETS,
    planned_seeds: int = 20,
    n_boot: int = N_BOOT,
    clock: str = PRIMARY_CLOCK,
    notes: str | None = None,
    question: Question = ISSUE27,
    commits: Mapping[str, str] | None = None,
) -> pathlib.Path:
    """Write the one-page verdict to ``path`` and its ratio-vs-target plots into ``figures``
    (linked relative to ``path``); return ``path``. ``clock`` decides what pays off (the seed's
    criterion is on ``compute``; ``epochs`` where other jobs made the machine's speed vary).
    ``notes`` (Markdown, the authors' reading of the numbers) follows the lead table, as "In
    plain words". ``question``: the primary question and its step rule
    (:mod:`~optuna_ohgw.evidence.question`); ``commits``: ``"task group" -> commit`` for the
    lead table. Cells of a smoke-test task (:data:`SMOKE_TASKS`) are in the lead table only,
    in no Holm family and no other table."""
    from optuna_ohgw.evidence.report import compare, row_of

    smoke = [c for c in cells if c.task in SMOKE_TASKS]
    cells = [c for c in cells if c.task not in SMOKE_TASKS]
    smoke_vs_vanilla = compare_at_targets(
        target_rows(smoke, targets), BASELINE, n_boot=n_boot, clock=clock
    )
    path, figures = pathlib.Path(path), pathlib.Path(figures)
    figures.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    comps = compare([row_of(c) for c in cells], n_boot=n_boot)
    rows = target_rows(cells, targets)
    warm = {c.variant for c in cells} - {BASELINE, CONTROL, "toward-middle"}
    families = []
    for first in (False, True):
        rows = target_rows(cells, targets, without_first=first)
        for ref, which in ((BASELINE, None), (CONTROL, warm)):
            families.append(
                compare_at_targets(
                    rows, ref, variants=which, n_boot=n_boot, clock=clock, without_first=first
                )
            )
    # One family: every p value of the two time-to-target tables, Holm-adjusted together.
    vs_vanilla, vs_control, wo_vanilla, wo_control = with_holm(*families)
    # The first wave left out, several workers only: a table of its own, Holm over it alone.
    parallel = [c for c in cells if c.workers > 1]
    wave_rows = target_rows(parallel, targets, without_first_wave=True)
    wave_vanilla, wave_control = with_holm(
        compare_at_targets(wave_rows, BASELINE, n_boot=n_boot, clock=clock),
        compare_at_targets(wave_rows, CONTROL, variants=warm, n_boot=n_boot, clock=clock),
    )
    waves = sorted({c.metrics.first_wave for c in parallel})
    runs = first_configuration_runs(cells)
    accuracy = accuracy_differences(cells)
    n_family = sum(c.p is not None for f in families for c in f)
    primary = family_comparisons(question, families[0], families[1], targets)
    one_worker = tuple((t, split_workers(g)[0]) for t, g in question.family)
    alone = family_comparisons(question, families[0], families[1], targets, groups=one_worker)
    decision = decide_step_rule(question, families[0], targets, planned_seeds, family=primary)
    lead = where_it_pays(
        [*cells, *smoke],
        [*families[0], *smoke_vs_vanilla],
        targets,
        family=primary,
        commits=commits,
    )
    family_groups = ", ".join(f"{t} {g}" for t, g in question.family)
    sweep = {
        task: SWEEP.get(task, tuple(v)) for task, v in targets.items() if task not in SMOKE_TASKS
    }
    sweep_vanilla, sweep_control = sweep_comparisons(cells, sweep, clock=clock)
    files = [
        f
        for comps_ in (sweep_vanilla, sweep_control)
        for f in plot_ratio_vs_target(comps_, figures, clock)
    ]
    workers = _worker_lines(cells)
    counts = paired_seed_counts(cells)
    same = same_configurations(cells)
    short = short_arms(cells, planned_seeds)
    rel = figures.relative_to(path.parent) if figures.is_relative_to(path.parent) else figures
    lines = [
        "# Where does a warm start pay off? (summary)",
        "",
        "```",
        command,
        "```",
        "",
        "## Where it pays",
        "",
        "Each step-rule arm against vanilla at each task's hard target, configuration 0 in, "
        f"on the {clock} clock, one row per task and scheduler group (ratio of median time to "
        "target with its paired bootstrap 95% CI; faster / slower: seeds; p: paired two-sided "
        "Wilcoxon). Holm p: the primary question's rows (marked) are Holm-adjusted within its "
        "family, the other rows together as one exploratory family. *Pays*: ratio <= "
        f"{MAX_RATIO} with Holm p < {ALPHA}. Probe share: the median share of a cell's compute "
        "spent probing. `@8r`: eight virtual workers breaking ties in a seeded order; `@8`: "
        "ties to the lower worker (configuration 0 is never stopped)."
        + (
            f" {', '.join(sorted({c.task for c in smoke}))}: a smoke test that the defaults "
            "run end to end, in no Holm family and no other table."
            if smoke
            else ""
        ),
        "",
        *pays_table(lead),
        "",
        *pays_sentences(lead),
        "",
        *(["## In plain words", "", notes.strip(), ""] if notes else []),
        "## The grid",
        "",
        f"{len(cells)} cells. Paired seeds (seeds with every arm of the group) per "
        f"(task, scheduler/sampler), of {planned_seeds} planned:",
        "",
        *(
            f"- {task} / {sched}: {n} paired seed(s) (the fullest arm has {m})"
            for (task, sched), (n, m) in sorted(counts.items())
        ),
        "",
        _short_text(short, counts, planned_seeds),
        "",
        "Machine speed: training seconds per epoch ranged "
        + "; ".join(
            f"{lo:.2f}-{hi:.2f} s ({task} / {sched})"
            for (task, sched), (lo, hi) in sorted(seconds_per_epoch(cells).items())
        )
        + " across cells (other jobs shared the cores). The compute clock inherits that "
        "spread; the epochs clock (machine independent) is shown next to it.",
        "",
        *(
            [
                "TPE's first `n_startup_trials` (10) configurations are drawn by a RandomSampler "
                "seeded like the Random arm's, so a TPE arm and its Random twin are the same run "
                "until the 10th configuration: where a target is reached by then, the two give "
                "the same time on the epochs clock.",
                "",
            ]
            if any(split_label(c.scheduler)[1] == "random" for c in cells)
            else []
        ),
        "Workers per group (a group's label ends in `@N` when its cells ran with N > 1 workers):",
        "",
        *workers,
        "",
        "Targets, fixed before the grid ran: "
        + "; ".join(f"{t}: {', '.join(f'{x:g}' for x in v)}" for t, v in sorted(targets.items()))
        + ".",
        "",
        f"## The primary question `{question.name}` (decides the default step rule)",
        "",
        f"Fixed {question.declared}: at the hardest target of {family_groups}, configuration "
        f"0 in, on the {clock} clock, do {' and '.join(f'`{a}`' for a in question.arms)} "
        f"reach the target sooner than vanilla and than {CONTROL}? Its comparisons "
        f"({len(primary)} so far) are one Holm family; every other p value on this page is "
        "exploratory.",
        "",
        "Per-seed ratio: the median over paired seeds of the arm's time over the reference's "
        "(a seed where only one side reached the target counts as 0 or infinite, by rank); "
        "faster / tied / slower: the seeds where the arm reached the target sooner, at the "
        "same time, later. Final test accuracy: medians over the paired seeds of the test "
        "accuracy of each cell's configuration chosen by validation, their difference in "
        "points, and the paired two-sided Wilcoxon p of the per-seed differences (not "
        "corrected). Verdict: 'sooner' only where the ratio of medians is below "
        f"{1 - NEAR_ONE:g} and its whole CI below 1; a p < {ALPHA} beside a CI that includes 1 "
        f"or a ratio within {100 * NEAR_ONE:.0f}% of 1 is 'fragile'.",
        "",
        *primary_table(primary, accuracy),
        "",
        f"**The default step rule**, fixed with the question: {question.rule_text} "
        "The rule's comparisons, with the p that decides:",
        "",
        *primary_table(decision.comparisons, accuracy),
        "",
        step_rule_statement(decision),
        "",
        *(
            [
                "Side by side, the same comparisons at one worker (context, not part of the "
                "decision; Holm over these alone):",
                "",
                *primary_table(alone, accuracy),
                "",
            ]
            if alone
            else []
        ),
        f"## Time to target ({clock} clock decides), OHGW / vanilla and OHGW / random-sign",
        "",
        f"Ratio of median time to target on the {clock} clock (compute: seconds of training "
        "and probing summed; epochs: trained epochs, probes not counted, see 'probe share'), "
        "paired bootstrap 95% CI, paired two-sided Wilcoxon p, then the ratio and p on the other "
        "clock; 'reached' counts "
        f"the arm's paired seeds that reached the target. **pays off**: ratio <= {MAX_RATIO} and "
        f"p < {ALPHA} against vanilla on the {clock} clock (the seed's first criterion). "
        "'3 criteria': time to target at the hardest target / final accuracy / extra compute, "
        "the last two at the study file's target as in the task's report. "
        f"Holm: the p value adjusted with Holm's step-down method over all {n_family} "
        "comparisons of this table and the next (both references, every target, configuration "
        "0 in and out); 'pays off' and every verdict below use it.",
        "",
        *target_table(vs_vanilla, vs_control, targets, comps),
        "## Time to target with configuration 0 left out",
        "",
        "The same comparisons with the first configuration's values left out of every cell "
        "(its epochs still count on the clock): what the search found besides the study's "
        "first draw, which ASHA with one worker trains to the end before anything competes.",
        "",
        *without_first_table(wo_vanilla, wo_control, targets),
        *(
            [
                "## Time to target with the first wave left out (several workers)",
                "",
                "The virtual executor runs each worker's epochs at virtual times. Where two "
                "workers' clocks tie, the cells of a group labelled `@N` let the lower worker "
                "report first, so configuration 0, worker 0's first draw, reports first "
                "whenever its clock ties with another worker's; those labelled `@Nr` break ties "
                "in an order seeded by the cell's seed. Configuration 0 trained as "
                "many epochs as any configuration of its cell in "
                + "; ".join(f"{n} of {m} cells ({t} / {g})" for (t, g), (n, m) in runs.items())
                + "; under ASHA that means it was never stopped at a rung. Here every cell "
                "leaves out the values of its first wave, the "
                "configurations its workers started at virtual time 0 before any result was "
                "known ("
                + ", ".join(
                    f"configurations {min(w)}-{max(w)}" if len(w) > 1 else f"configuration {w[0]}"
                    for w in waves
                )
                + "; their epochs still count): what the search found after the first draws. "
                "Holm over this table alone (not in the family above).",
                "",
                *first_wave_table(wave_vanilla, wave_control, targets),
            ]
            if parallel
            else []
        ),
        "## Target sweep",
        "",
        f"Each arm's ratio on the {clock} clock at every target of "
        + "; ".join(
            f"{t}: {min(v):g}-{max(v):g} in steps of 0.005" for t, v in sorted(sweep.items())
        )
        + f" (plots below, CI bands from {SWEEP_BOOT} bootstrap replicates); Holm-adjusted "
        "over the whole sweep (every arm, target and reference), which is conservative since "
        "neighbouring targets are nearly the same test.",
        "",
        *sweep_statements(sweep_vanilla, sweep_control),
        "",
        "## Who reaches the targets",
        "",
        "Seeds in which configuration 0, the study's first draw, reached each target by itself. "
        "ASHA and Hyperband (stopping schedulers) train that configuration to the last epoch "
        "before any other competes with it: where it reaches a target, the time to that target "
        "measures what the warm start did to that one configuration's training, not the search. "
        "The promotion schedulers pause it at the first rung like every other.",
        "",
        *first_configuration_table(cells, targets),
        "## What the steps change",
        "",
        "From the ``ohgw.raw.*`` / ``ohgw.nudged.*`` attrs of every warm-started trial, seeds "
        "pooled; positions in range units (log space for log-scaled parameters). 'inward': the "
        "step ended closer to the middle of the range; 'clipped': it ended on a bound.",
        "",
        *move_table(move_summaries(cells)),
        "",
        "## The same configuration, nudged or not",
        "",
        "Each warm-started configuration next to its vanilla twin: the same seed, trial number "
        "and raw draw, hence the same initial weights and batches; Δ is the first epoch's "
        "validation value minus the twin's, in points (positive is better). The quarters select "
        "on vanilla's value, so regression to the mean alone makes the first positive and the "
        f"second negative: read every row against `{NOISE}`, whose ~1e-6 move is no change at "
        "all. p: two-sided Wilcoxon over the twins.",
        "",
        *same_configuration_table(same),
        "",
        *same_configuration_statements(same),
        "",
        f"Which parameters matter, read from `{CONTROL}`: its directions are random, so "
        "regressing its twins' Δ on every parameter's move toward the middle of its range "
        "(negative: outward) at once gives each parameter's effect on the first epoch per "
        f"inward move of {UNIT:g} of its range (log space for log-scaled parameters).",
        "",
        *parameter_effect_table(parameter_effects(cells)),
        "",
        "## Verdict",
        "",
        *statements(vs_vanilla, vs_control),
        "",
        "## Plots",
        "",
        *(f"![{f}]({rel / f})" for f in files),
        "",
    ]
    path.write_text("\n".join(lines))
    return path
