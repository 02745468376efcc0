"""The summary's lead: where a warm start pays, one row per task, scheduler group and arm.

Rules
-----
* Rows: every ``(task, scheduler group)`` of the cells that has a ``vanilla`` arm, and in it
  each step-rule arm (``line-search``, ``ohgw-normalized``) that ran, against vanilla at the
  task's hardest target, configuration 0 in, on each comparison's deciding clock. Tasks in the
  order of :data:`TASK_TITLES`.
* p: the raw two-sided paired Wilcoxon p. Holm p: a row of the primary question
  (:mod:`~optuna_ohgw.evidence.question`) carries the primary family's Holm p; every other row
  is exploratory, Holm-adjusted over the table's other rows alone, except a smoke test's.
* A task of :data:`SMOKE_TASKS` (``digits``) is a smoke test, not evidence: its rows say that it
  ran end to end with the defaults (its ratio and raw p are shown), are in no Holm family and
  are never said to pay.
* The word that starts a row's sentence: *smoke test* for a smoke test's row; *pays* where the
  ratio of medians is at most ``MAX_RATIO`` (0.85) with Holm p below ``ALPHA``, as in
  :attr:`~optuna_ohgw.evidence.comparisons.TargetComparison.pays_off`; else *no gain shown*
  (ratio below 1) or *no gain*; *too few seeds* below ``MIN_PAIRS`` paired seeds; *target
  rarely reached* where an arm's median time is not defined (half its seeds or more never
  reach the target).
* Probe share: the median, over the arm's cells of the paired seeds, of the probe's share of
  the cell's compute (:func:`~optuna_ohgw.evidence.metrics.probe_share`).
* Commit: which commit ran the group's cells: the commits they recorded
  (:data:`~optuna_ohgw.evidence.grid.CODE_ATTR`), in seed order, then, for cells from before
  cells recorded it, the caller's entry for the group (from the grids' ``COMMIT`` files) or
  their count.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence

from optuna_ohgw.evidence.comparisons import (
    MIN_PAIRS,
    PRIMARY_ARMS,
    TargetComparison,
    at_hard_target,
    split_workers,
    with_holm,
)
from optuna_ohgw.evidence.prose import verdict
from optuna_ohgw.evidence.provenance import short
from optuna_ohgw.evidence.report import BASELINE, Cell, _f, _pct

TASK_TITLES: dict[str, str] = {
    "digits": "digits (smoke test)",
    "mnist1d": "MNIST-1D CNN (SGD)",
    "fashion": "Fashion-MNIST CNN (SGD)",
    "fashion-vit-asha": "Fashion-MNIST ViT (AdamW)",
}
"""How the lead names each task, in the lead's order (other tasks follow by name)."""

SMOKE_TASKS: frozenset[str] = frozenset({"digits"})
"""Tasks whose rows are a smoke test: shown, never evidence (in no Holm family)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PaysRow:
    """One row of the lead table."""

    comparison: TargetComparison
    """The arm against vanilla at the hard target, ``p_holm`` set by the module's rule."""
    workers: int
    ties: str
    """``"seeded"`` or ``"index"`` (how the virtual executor broke ties), ``""`` at one worker."""
    primary: bool
    probe_share: float | None
    commit: str
    smoke: bool = False
    """A smoke test's row (:data:`SMOKE_TASKS`): no Holm p, never said to pay."""


def where_it_pays(
    cells: Sequence[Cell],
    vs_vanilla: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    *,
    family: Sequence[TargetComparison] = (),
    commits: Mapping[str, str] | None = None,
) -> list[PaysRow]:
    """The lead table's rows (see the module docstring). ``family``: the primary question's
    comparisons (:func:`~optuna_ohgw.evidence.question.family_comparisons`); ``commits``:
    ``"task group" -> commit``."""
    primary = {
        (c.task, c.scheduler, c.variant): c.p_holm for c in family if c.reference == BASELINE
    }
    picked = [
        c
        for c in at_hard_target(vs_vanilla, targets, arms=PRIMARY_ARMS)
        if c.reference == BASELINE
    ]
    rest = [
        c
        for c in picked
        if (c.task, c.scheduler, c.variant) not in primary and c.task not in SMOKE_TASKS
    ]
    (rest,) = with_holm(rest)
    adjusted = {(c.task, c.scheduler, c.variant): c for c in rest}
    order = list(TASK_TITLES)
    rows = []
    for c in sorted(
        picked,
        key=lambda c: (
            order.index(c.task) if c.task in order else len(order),
            c.task,
            c.scheduler,
            PRIMARY_ARMS.index(c.variant),
        ),
    ):
        key = (c.task, c.scheduler, c.variant)
        is_primary, smoke = key in primary, c.task in SMOKE_TASKS
        if smoke:
            comp = dataclasses.replace(c, p_holm=None)
        else:
            comp = dataclasses.replace(c, p_holm=primary[key]) if is_primary else adjusted[key]
        group = [x for x in cells if (x.task, x.scheduler) == (c.task, c.scheduler)]
        base = {x.seed for x in group if x.variant == BASELINE}
        shares = [
            x.metrics.probe_share
            for x in group
            if x.variant == c.variant and x.seed in base and x.metrics.probe_share is not None
        ]
        _, workers, ties = split_workers(c.scheduler)
        rows.append(
            PaysRow(
                comparison=comp,
                workers=workers,
                ties=ties,
                primary=is_primary,
                probe_share=statistics.median(shares) if shares else None,
                commit=_commits(group, (commits or {}).get(f"{c.task} {c.scheduler}")),
                smoke=smoke,
            )
        )
    return rows


def pays_table(rows: Sequence[PaysRow]) -> list[str]:
    """Markdown: the lead table, one line per :class:`PaysRow`."""
    lines = [
        "| task | scheduler | workers | arm | target | ratio [95% CI] | faster / slower "
        "| p | Holm p | probe share | commit | pays? |",
        "|" + "---|" * 12,
    ]
    for row in rows:
        c = row.comparison
        r, ps = c.ratio[c.clock], c.per_seed.get(c.clock)
        counts = "n/a" if ps is None else f"{ps.faster} / {ps.slower} of {c.n_paired}"
        lines.append(
            f"| {TASK_TITLES.get(c.task, c.task)} | {c.scheduler} | {_workers(row)} | "
            f"{c.variant}{' (primary)' if row.primary else ''} | {c.target:g} | "
            f"{_f(r.ratio)} [{_f(r.low)}, {_f(r.high)}] | {counts} | {_f(c.p, 2)} | "
            f"{_f(c.p_holm, 2)} | {_pct(row.probe_share)} | {row.commit} | {_word(row)} |"
        )
    return lines


def pays_sentences(rows: Sequence[PaysRow]) -> list[str]:
    """One plain sentence per row: where it pays, by how much, and how sure."""
    out = []
    for row in rows:
        c = row.comparison
        r = c.ratio[c.clock]
        workers = f"{row.workers} worker{'s' if row.workers > 1 else ''}"
        ties = f", {row.ties} ties" if row.ties else ""
        where = f"{TASK_TITLES.get(c.task, c.task)}, {c.scheduler} ({workers}{ties})"
        if c.n_paired < MIN_PAIRS:
            body = f"`{c.variant}` and vanilla: {c.n_paired} paired seeds, too few to test"
        elif r.ratio is None:
            body = (
                f"`{c.variant}` and vanilla: the median time to {c.target:g} is not defined "
                f"(half the seeds or more of an arm never reach it; {c.n_reached} of "
                f"{c.n_paired} reached it with `{c.variant}`, {c.n_reached_reference} with "
                "vanilla)"
            )
        elif row.smoke:
            body = (
                f"`{c.variant}` and vanilla ran end to end with the defaults; {c.n_reached} and "
                f"{c.n_reached_reference} of {c.n_paired} paired seeds reached {c.target:g}, "
                f"ratio of median {c.clock} "
                f"{'infinite' if math.isinf(r.ratio) else _f(r.ratio)}, p {_f(c.p, 2)}, "
                "in no Holm family: not evidence either way"
            )
        elif math.isinf(r.ratio):
            body = (
                f"`{c.variant}` never reaches {c.target:g} in half its seeds or more "
                f"({c.n_reached} of {c.n_paired}), vanilla does ({c.n_reached_reference}): "
                f"{verdict(c)}"
            )
        else:
            body = (
                f"`{c.variant}` reaches {c.target:g} in {r.ratio:.2f}x vanilla's "
                f"{c.clock} (95% CI [{_f(r.low)}, {_f(r.high)}], {c.n_paired} paired seeds, "
                f"Holm p {_f(c.p_holm, 2)}): {verdict(c)}"
            )
        share = (
            "" if row.probe_share is None else f"; probing is {_pct(row.probe_share)} of compute"
        )
        out.append(f"- **{_word(row).capitalize()}.** {where}: {body}{share}.")
    return out


def _commits(group: Sequence[Cell], entry: str | None) -> str:
    seen = dict.fromkeys(
        short(x.code["commit"]) for x in sorted(group, key=lambda x: x.seed) if x.code
    )
    missing = sum(not x.code for x in group)
    rest = (entry or f"{missing} cells unrecorded") if missing or not seen else ""
    return "; ".join(part for part in (", ".join(seen), rest) if part) or "n/a"


def _workers(row: PaysRow) -> str:
    return f"{row.workers}" + (f", {row.ties} ties" if row.ties else "")


def _word(row: PaysRow) -> str:
    c = row.comparison
    r = c.ratio[c.clock].ratio
    if row.smoke:
        return "smoke test"
    if c.n_paired < MIN_PAIRS:
        return "too few seeds"
    if r is None:
        return "target rarely reached"
    if c.pays_off:
        return "pays"
    return "no gain shown" if r < 1.0 else "no gain"
