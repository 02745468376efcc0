"""The words of ``summary.md``: Markdown tables and plain sentences.

Pure functions from the frozen results of :mod:`optuna_ohgw.evidence.comparisons` and
:mod:`optuna_ohgw.evidence.configurations` (and a few cell counts) to lines of Markdown; each
docstring states the rule its words follow. Nothing here computes a statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from optuna_ohgw.evidence.comparisons import (
    CLOCKS_SHOWN,
    CONTROL,
    MIN_PAIRS,
    NEAR_ONE,
    AccuracyDifference,
    TargetComparison,
    split_label,
)
from optuna_ohgw.evidence.configurations import (
    DEEP,
    NOISE,
    UNIT,
    MoveSummary,
    ParameterEffect,
    SameConfiguration,
)
from optuna_ohgw.evidence.question import StepRuleDecision
from optuna_ohgw.evidence.report import (
    ALPHA,
    BASELINE,
    MAX_RATIO,
    PRIMARY_CLOCK,
    Cell,
    Comparison,
    _f,
    _order,
    _pct,
)


def verdict(c: TargetComparison) -> str:
    """The word for one comparison, on its deciding clock.

    Rule: the word says *sooner* only when the ratio of medians is below ``1 - NEAR_ONE``
    (0.95) **and** its bootstrap 95% CI lies wholly below 1 (:attr:`~TargetComparison.
    clearly_sooner`); it adds *significant* when the deciding (Holm-adjusted) Wilcoxon p is
    below ``ALPHA`` as well. A Wilcoxon p below ``ALPHA`` beside a CI that includes 1, or a
    ratio within ``NEAR_ONE`` of 1, is called *fragile*: the rank test sees a shift, but the
    medians do not show a gain one can count on. A ratio below 1 that is not clearly sooner is
    *not shown sooner*; a ratio of 1 or more is *not sooner*. Fewer than
    :data:`~optuna_ohgw.evidence.comparisons.MIN_PAIRS` paired seeds is *untestable*. Where the
    ratio reads as a gain the seeds do not show (:attr:`~TargetComparison.gain_not_in_seeds`),
    the word ends with the per-seed counts.
    """
    if c.n_paired < MIN_PAIRS:
        return f"untestable (n={c.n_paired} < {MIN_PAIRS})"
    r = c.ratio[c.clock]
    p = c.p_decides
    significant = p is not None and p < ALPHA
    if r.ratio is None:
        word = "undefined"
    elif c.clearly_sooner:
        word = "sooner, significant" if significant else "sooner, not significant"
    elif significant and r.ratio < 1.0:
        why = (
            "CI includes 1"
            if r.high is None or r.high >= 1.0
            else f"ratio within {100 * NEAR_ONE:.0f}% of 1"
        )
        if (r.high is None or r.high >= 1.0) and r.ratio >= 1.0 - NEAR_ONE:
            why = f"CI includes 1 and ratio within {100 * NEAR_ONE:.0f}% of 1"
        word = f"fragile: p < {ALPHA}, but {why}"
    elif r.ratio < 1.0:
        word = "not shown sooner"
    else:
        word = "not sooner"
    ps = c.per_seed.get(c.clock)
    if ps is not None and c.gain_not_in_seeds:
        word += f"; faster in {ps.faster}, slower in {ps.slower} seeds"
    return word


def step_rule_statement(decision: StepRuleDecision) -> str:
    """The default step rule the question's rule gives (:func:`~optuna_ohgw.evidence.question.
    decide_step_rule`): not decided while a rule group is short of seeds; then ``line-search``
    or ``normalized``, with the groups where it paid off and where it was slower."""
    q = decision.question
    if decision.foregone:
        lost = ", ".join(f"{t} {g}" for t, g in decision.lost) or "none"
        slower = ", ".join(f"{t} {g}" for t, g in decision.slower)
        why = (
            f"its ratio of medians is above {MAX_RATIO} (or undefined) on {lost} with their "
            f"planned seeds, so at most {len(q.rule_groups) - len(decision.lost)} of "
            f"{len(q.rule_groups)} groups can still pay off ({q.rule_wins} needed)"
        )
        if slower and q.rule_no_slower:
            why = f"it is significantly slower on {slower} with its planned seeds"
        return (
            "**Not applied yet, but the outcome is fixed: the default stays `normalized`.** "
            f"Whatever the groups still running show, `line-search` cannot meet the rule: {why}. "
            f"The rule is applied once every group has its planned paired seeds "
            f"({'; '.join(decision.pending)})."
        )
    if not decision.decided:
        return (
            "**Not decided yet; the default stays `normalized`.** The decision is taken once, "
            f"when every group of the rule has its planned paired seeds "
            f"({'; '.join(decision.pending)})."
        )
    wins = ", ".join(f"{t} {g}" for t, g in decision.wins) or "none"
    slower = ", ".join(f"{t} {g}" for t, g in decision.slower)
    tail = f"; significantly slower on {slower}" if slower else ""
    if decision.line_search:
        return (
            f"**`line-search` becomes the default step rule**: it pays off on {wins} "
            f"({len(decision.wins)} of {len(q.rule_groups)}, {q.rule_wins} needed){tail}."
        )
    return (
        f"**The default stays `normalized`**: `line-search` pays off on {wins} "
        f"({len(decision.wins)} of {len(q.rule_groups)}, {q.rule_wins} needed){tail}."
    )


def primary_table(
    primary: Sequence[TargetComparison],
    accuracy: Mapping[tuple[str, str, str, str], AccuracyDifference] | None = None,
) -> list[str]:
    """Markdown: one row per primary comparison: the ratio of medians with its CI, the median
    of the per-seed ratios and the seeds the arm was faster / tied / slower in, the raw and the
    family's Holm p, the final test accuracies (``accuracy``,
    :func:`~optuna_ohgw.evidence.comparisons.accuracy_differences`) and the :func:`verdict`."""
    lines = [
        "| task | group | arm | against | target | ratio [95% CI] | per-seed ratio (median) "
        "| faster / tied / slower | p | Holm p (this family) | reached (arm / reference) "
        "| final test accuracy (arm / reference, p) | verdict |",
        "|" + "---|" * 13,
    ]
    for c in primary:
        r = c.ratio[c.clock]
        ps = c.per_seed.get(c.clock)
        counts = "n/a" if ps is None else f"{ps.faster} / {ps.tied} / {ps.slower}"
        acc = accuracy.get((c.task, c.scheduler, c.variant, c.reference)) if accuracy else None
        lines.append(
            f"| {c.task} | {c.scheduler} | {c.variant} | {c.reference} | {c.target:g} | "
            f"{_f(r.ratio)} [{_f(r.low)}, {_f(r.high)}] | "
            f"{_f(None if ps is None else ps.median_ratio)} | {counts} | "
            f"{_f(c.p, 2)} | {_f(c.p_holm, 2)} | "
            f"{c.n_reached}/{c.n_reached_reference} of {c.n_paired} | "
            f"{_accuracy_text(acc)} | {verdict(c)} |"
        )
    return lines


def _accuracy_text(d: AccuracyDifference | None) -> str:
    if d is None or d.points is None:
        return "n/a"
    return (
        f"{_f(d.median, 4)} / {_f(d.median_reference, 4)} ({d.points:+.2f} points, "
        f"p {_f(d.wilcoxon.p, 2)})"
    )


def first_configuration_table(
    cells: Sequence[Cell], targets: Mapping[str, Sequence[float]]
) -> list[str]:
    """Per ``(task, scheduler, variant)``, in how many seeds configuration 0 (the study's first
    draw) reached each target on its own. A stopping scheduler (``asha``, ``hyperband``) trains
    that configuration to ``max_epochs`` before anything competes with it, so where it reaches a
    target the time to target measures one configuration's training (nudged or not), not the
    search."""
    arms: dict[tuple[str, str], dict[str, list[Cell]]] = {}
    for c in cells:
        arms.setdefault((c.task, c.scheduler), {}).setdefault(c.variant, []).append(c)
    lines = []
    for task in sorted({c.task for c in cells}):
        taus = tuple(targets.get(task, ()))
        if not taus:
            continue
        lines += [
            f"| task | scheduler | variant | seeds | {' | '.join(f'@ {t:g}' for t in taus)} |",
            "|---|---|---|---|" + "---|" * len(taus),
        ]
        for (t, scheduler), by in sorted(arms.items()):
            if t != task:
                continue
            for variant in _order(by):
                cs = by[variant]
                sign = 1.0 if cs[0].metrics.direction == "maximize" else -1.0
                counts = [
                    sum(
                        c.first_config_best is not None and sign * (c.first_config_best - tau) >= 0
                        for c in cs
                    )
                    for tau in taus
                ]
                lines.append(
                    f"| {task} | {scheduler} | {variant} | {len(cs)} | "
                    + " | ".join(f"{k}/{len(cs)}" for k in counts)
                    + " |"
                )
        lines.append("")
    return lines


def first_wave_table(
    vs_vanilla: Sequence[TargetComparison],
    vs_control: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
) -> list[str]:
    """Markdown: per arm of the groups run with several workers, time to target with the first
    wave (:func:`~optuna_ohgw.evidence.metrics.first_wave`) left out, against vanilla at every
    target and against random-sign at the hardest (cells as in :func:`target_table`)."""
    return _ratio_tables(vs_vanilla, vs_control, targets, "### {task}, the first wave left out")


def _short_text(
    short: Mapping[tuple[str, str], Mapping[str, int]],
    counts: Mapping[tuple[str, str], tuple[int, int]],
    planned_seeds: int,
) -> str:
    if not short:
        return f"Every arm of every group has {planned_seeds} seeds."
    parts = []
    for (task, sched), arms in short.items():
        _, fullest = counts[(task, sched)]
        if fullest < planned_seeds:
            parts.append(f"{task} / {sched} ({', '.join(f'{v} {k}' for v, k in arms.items())})")
        else:
            parts.append(
                f"{task} / {sched} ({', '.join(f'{v} {k}' for v, k in arms.items())}; its other "
                f"arms {planned_seeds})"
            )
    full = sum(1 for key in counts if key not in short)
    rest = f" The other {full} groups have {planned_seeds} seeds in every arm." if full else ""
    return (
        f"**Fewer than {planned_seeds} seeds** in {len(short)} of {len(counts)} groups, seeds "
        f"per arm: {'; '.join(parts)}. Their comparisons rest on the paired seeds each row "
        f"shows (n), and one with fewer than {MIN_PAIRS} cannot reach p < {ALPHA}.{rest}"
    )


def parameter_effect_table(rows: Sequence[ParameterEffect]) -> list[str]:
    lines = [
        f"| task | scheduler | parameter | twins | Δ per {UNIT:g} of range inward (points) | "
        "95% CI | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.scheduler} | {r.param} | {r.n} | {_pt(r.effect)} | "
            f"[{_pt(r.low)}, {_pt(r.high)}] | {r.p:.2g} |"
        )
    return lines


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.2f}"


def same_configuration_table(rows: Sequence[SameConfiguration]) -> list[str]:
    lines = [
        "| task | scheduler | variant | twins (seeds) | median Δ | mean Δ | mean abs Δ | "
        "better / worse | mean Δ in vanilla's worst / best quarter | p | "
        f"twins with >= {DEEP} epochs: n, median epoch, mean Δ there |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.scheduler} | {r.variant} | {r.n} ({r.seeds}) | {_pt(r.median)} | "
            f"{_pt(r.mean)} | {100 * r.mean_abs:.2f} | {_pct(r.better)} / {_pct(r.worse)} | "
            f"{_pt(r.low)} / {_pt(r.high)} | {_f(r.p, 2)} | {r.deep_n}, "
            f"{_f(r.deep_epoch, 2)}, {_pt(r.deep_mean)} |"
        )
    return lines


def same_configuration_statements(rows: Sequence[SameConfiguration]) -> list[str]:
    """Per ``(task, scheduler)``: the noise floor, then what each arm does above it."""
    groups: dict[tuple[str, str], list[SameConfiguration]] = {}
    for r in rows:
        groups.setdefault((r.task, r.scheduler), []).append(r)
    lines = []
    for (task, scheduler), rs in sorted(groups.items()):
        noise = next((r for r in rs if r.variant == NOISE), None)
        head = f"- {task} / {scheduler}: "
        if noise is not None:
            head += (
                f"the seed's raw rule (a ~1e-6 move) changes the first epoch by "
                f"{100 * noise.mean_abs:.2f} points on average (mean {_pt(noise.mean)}, "
                f"n={noise.n}): that is the training's own sensitivity. "
            )
        parts = []
        for r in rs:
            if r.variant == NOISE:
                continue
            size = f"mean {_pt(r.mean)}, mean abs {100 * r.mean_abs:.2f}, n={r.n}, p {_f(r.p, 2)}"
            if r.p is not None and r.p < ALPHA:
                effect = "raises" if r.mean > 0 else "lowers"
                parts.append(f"{r.variant} {effect} the same configurations' first epoch ({size})")
            else:
                parts.append(f"{r.variant} does not change it beyond chance ({size})")
        lines.append(head + "; ".join(parts) + ".")
    return lines


def _cell_text(c: TargetComparison | None) -> str:
    if c is None:
        return "n/a"
    r, w = c.ratio[c.clock], c.wilcoxon[c.clock]
    ratio = "n/a" if r.ratio is None else f"{_f(r.ratio)} [{_f(r.low)}, {_f(r.high)}]"
    p = "n/a" if w.p is None else f"{w.p:.2g}"
    if c.p_holm is not None:
        p += f" (Holm {c.p_holm:.2g})"
    mark = " **pays off**" if c.pays_off and c.reference == BASELINE else ""
    ps = c.per_seed.get(c.clock)
    if ps is not None and ps.median_ratio is not None:
        p += f"; per seed {_f(ps.median_ratio)} ({ps.faster} faster, {ps.slower} slower)"
    second = ""
    for other in (k for k in CLOCKS_SHOWN if k != c.clock and k in c.ratio):
        ro, wo = c.ratio[other], c.wilcoxon[other]
        second = f"; {other} {_f(ro.ratio)} p={'n/a' if wo.p is None else f'{wo.p:.2g}'}"
    return f"{ratio} p={p}{second} ({c.n_reached}/{c.n_paired} reached){mark}"


def _ratio_tables(
    vs_vanilla: Sequence[TargetComparison],
    vs_control: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    title: str,
    extra: Sequence[str] = (),
    more: Callable[[str, str, str, Sequence[float]], list[str]] | None = None,
) -> list[str]:
    """Markdown, per task: per arm the ratio against vanilla at every target and against
    random-sign at the hardest; ``extra`` names more columns, which ``more(task, scheduler,
    variant, targets)`` fills. ``title`` is formatted with ``task`` and ``targets``."""
    by = {(c.task, c.scheduler, c.variant, c.target): c for c in vs_vanilla}
    ctl = {(c.task, c.scheduler, c.variant, c.target): c for c in vs_control}
    lines = []
    for task in sorted({c.task for c in vs_vanilla}):
        taus = sorted(targets.get(task, ()))
        if not taus:
            continue
        lines += [
            title.format(task=task, targets=", ".join(f"{t:g}" for t in taus)),
            "",
            "| scheduler | sampler | variant | "
            + " | ".join(f"vs vanilla @ {t:g}" for t in taus)
            + f" | vs {CONTROL} @ {taus[-1]:g} |"
            + "".join(f" {e} |" for e in extra),
            "|" + "---|" * (len(taus) + 4 + len(extra)),
        ]
        arms = sorted(
            {(c.scheduler, c.variant) for c in vs_vanilla if c.task == task},
            key=lambda sv: (split_label(sv[0]), _order([sv[1]]), sv[1]),
        )
        for scheduler, variant in arms:
            name, sampler = split_label(scheduler)
            cells = [_cell_text(by.get((task, scheduler, variant, t))) for t in taus]
            control = (
                "-"
                if variant == CONTROL
                else _cell_text(ctl.get((task, scheduler, variant, taus[-1])))
            )
            tail = more(task, scheduler, variant, taus) if more else []
            lines.append(
                f"| {name} | {sampler} | {variant} | "
                + " | ".join([*cells, control, *tail])
                + " |"
            )
        lines.append("")
    return lines


def target_table(
    vs_vanilla: Sequence[TargetComparison],
    vs_control: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    comparisons: Sequence[Comparison] = (),
) -> list[str]:
    """Markdown: per ``(task, scheduler, sampler, variant)`` the epochs- or compute-clock ratio
    against vanilla at each target, against random-sign at the hardest target, and the seed's
    accuracy and compute criteria (from the report's :class:`Comparison` at the study target)."""
    by = {(c.task, c.scheduler, c.variant, c.target): c for c in vs_vanilla}
    crit = {(c.task, c.scheduler, c.variant): c for c in comparisons}

    def criteria(task: str, scheduler: str, variant: str, taus: Sequence[float]) -> list[str]:
        comp = crit.get((task, scheduler, variant))
        if comp is None:
            return ["n/a", "n/a", "n/a"]
        hard = by.get((task, scheduler, variant, taus[-1]))
        flags = [
            None if hard is None else hard.pays_off,
            comp.criteria["accuracy"],
            comp.criteria["compute"],
        ]
        three = "/".join({True: "yes", False: "no", None: "?"}[f] for f in flags)
        return [_pct(comp.accuracy_drop), _pct(comp.median_probe_share), three]

    return _ratio_tables(
        vs_vanilla,
        vs_control,
        targets,
        "### {task} (targets {targets})",
        ("accuracy drop", "probe share", "3 criteria"),
        criteria,
    )


def without_first_table(
    vs_vanilla: Sequence[TargetComparison],
    vs_control: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
) -> list[str]:
    """Markdown: per arm, time to target with configuration 0 left out, against vanilla at
    every target and against random-sign at the hardest (cells as in :func:`target_table`)."""
    return _ratio_tables(vs_vanilla, vs_control, targets, "### {task}, configuration 0 left out")


def sweep_statements(
    vs_vanilla: Sequence[TargetComparison], vs_control: Sequence[TargetComparison]
) -> list[str]:
    """Per arm, the sweep's targets where it is sooner with significance after correction."""
    lines = []
    for comps, ref in ((vs_vanilla, BASELINE), (vs_control, CONTROL)):
        arms: dict[tuple[str, str, str], list[TargetComparison]] = {}
        for c in comps:
            arms.setdefault((c.task, c.scheduler, c.variant), []).append(c)
        for (task, scheduler, variant), cs in sorted(arms.items()):
            sig = [f"{c.target:g}" for c in sorted(cs, key=lambda c: c.target) if c.significant]
            nominal = [c for c in cs if c.nominal_only]
            n = max(c.n_paired for c in cs)
            if sig:
                text = f"significantly sooner after correction at {', '.join(sig)}"
            elif nominal:
                text = (
                    f"sooner with raw p < {ALPHA} at {len(nominal)} target(s) of the sweep, "
                    "but not significantly after correction at any"
                )
            else:
                text = "not significantly sooner at any target of the sweep"
            lines.append(f"- {task} / {scheduler} / {variant} vs {ref} (n={n}): {text}.")
    return lines


def move_table(moves: Sequence[MoveSummary]) -> list[str]:
    """Markdown table of :func:`~optuna_ohgw.evidence.configurations.move_summaries`."""
    lines = [
        "| task | scheduler | variant | parameter | steps | moved | inward | clipped at a bound "
        "| raw in outer 10% | median move (range units) | best value: inward / outward |",
        "|" + "---|" * 11,
    ]
    for m in moves:
        lines.append(
            f"| {m.task} | {m.scheduler} | {m.variant} | {m.param} | {m.n} | {_pct(m.moved)} | "
            f"{_pct(m.inward)} | {_pct(m.clipped)} | {_pct(m.from_edge)} | "
            f"{m.median_move:+.3f} | {_f(m.outcome_inward, 4)} / {_f(m.outcome_outward, 4)} |"
        )
    return lines


def statements(
    vs_vanilla: Sequence[TargetComparison], vs_control: Sequence[TargetComparison]
) -> list[str]:
    """Plain sentences: which arms pay off at which targets against vanilla, and whether they
    also beat random-sign there (paired Wilcoxon p < ALPHA with a ratio below 1)."""
    ctl = {(c.task, c.scheduler, c.variant, c.target): c for c in vs_control}
    wins = [c for c in vs_vanilla if c.pays_off]
    lines = []
    clock = vs_vanilla[0].clock if vs_vanilla else PRIMARY_CLOCK
    testable = [c for c in vs_vanilla if c.n_paired >= MIN_PAIRS]
    if not wins and testable:
        lines.append(
            f"- No arm reaches any target at least {100 * (1 - MAX_RATIO):.0f}% sooner than "
            f"vanilla with p < {ALPHA} after Holm's correction on the {clock} clock: on these "
            "seeds no warm start is shown to pay off anywhere it can be tested."
        )
    elif not wins:
        lines.append(
            f"- Every arm has fewer than {MIN_PAIRS} paired seeds, too few for a paired "
            f"Wilcoxon test to reach p < {ALPHA}: no arm can be shown to pay off, or not to, yet."
        )
    for c in wins:
        control = ctl.get((c.task, c.scheduler, c.variant, c.target))
        r = c.ratio[c.clock].ratio
        holm = "" if c.p_holm is None else f", Holm {c.p_holm:.2g}"
        text = (
            f"- {c.task} / {c.scheduler} / {c.variant} @ {c.target:g}: ratio {_f(r)} vs "
            f"vanilla on the {c.clock} clock (p {c.wilcoxon[c.clock].p:.2g}{holm}, "
            f"n={c.n_paired})"
        )
        if c.variant == CONTROL:
            text += ": this is the random-direction control itself."
        elif control is None:
            text += f"; no {CONTROL} arm to tell the hypergradient from the move."
        else:
            rc, wc = control.ratio[c.clock].ratio, control.wilcoxon[c.clock]
            beats = control.significant
            holm = "" if control.p_holm is None else f", Holm {control.p_holm:.2g}"
            text += f"; against {CONTROL} {_f(rc)} (p {_f(wc.p, 2)}{holm}): " + (
                "the hypergradient's direction matters."
                if beats
                else "not significantly better than a random direction, so the gain may be "
                "the move, not the hypergradient."
            )
        lines.append(text)
    arms: dict[tuple[str, str, str], list[TargetComparison]] = {}
    for c in vs_vanilla:
        arms.setdefault((c.task, c.scheduler, c.variant), []).append(c)
    for (task, scheduler, variant), cs in sorted(arms.items()):
        if any(c.pays_off for c in cs):
            continue
        ratios = ", ".join(
            f"{_f(c.ratio[c.clock].ratio)} @ {c.target:g}"
            for c in sorted(cs, key=lambda c: c.target)
        )
        illusory = [c for c in sorted(cs, key=lambda c: c.target) if c.gain_not_in_seeds]
        if illusory:
            ratios += "; " + "; ".join(
                f"@ {c.target:g} the ratio reads as a gain the seeds do not show: median "
                f"per-seed ratio {_f(c.per_seed[c.clock].median_ratio)}, faster in "
                f"{c.per_seed[c.clock].faster}, slower in {c.per_seed[c.clock].slower} seeds"
                for c in illusory
            )
        n = max(c.n_paired for c in cs)
        nominal = [c for c in sorted(cs, key=lambda c: c.target) if c.nominal_only]
        if n < MIN_PAIRS:
            word = f"not decided yet ({n} paired seeds, fewer than {MIN_PAIRS})"
        elif nominal:
            word = (
                "sooner only nominally, not significantly after correction ("
                + ", ".join(f"p {c.p:.2g}, Holm {_f(c.p_holm, 2)} @ {c.target:g}" for c in nominal)
                + ")"
            )
        elif any(c.significant for c in cs):
            word = (
                f"significantly sooner, but by less than the criterion's "
                f"{100 * (1 - MAX_RATIO):.0f}%"
            )
        else:
            word = "not significantly sooner at any target"
        lines.append(
            f"- {task} / {scheduler} / {variant}: {word} (ratio vs vanilla {ratios}; n={n})."
        )
    return lines


def _worker_lines(cells: Sequence[Cell]) -> list[str]:
    groups: dict[tuple[str, str], set[tuple[int, bool]]] = {}
    for c in cells:
        groups.setdefault((c.task, c.scheduler), set()).add((c.workers, c.virtual))
    out = []
    for (task, sched), kinds in sorted(groups.items()):
        text = " and ".join(
            f"{n} {'virtual' if v else 'real'} worker{'s' if n > 1 else ''}"
            for n, v in sorted(kinds)
        )
        out.append(f"- {task} / {sched}: {text}")
    return out
