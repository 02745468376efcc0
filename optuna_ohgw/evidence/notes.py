"""optuna-dashboard notes: a short summary of the report on each bench cell's study page."""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from optuna_ohgw.evidence.report import (
    BASELINE,
    PRIMARY_CLOCK,
    Cell,
    Comparison,
    _f,
    _p,
    _pct,
    _ratio_text,
)


def note_body(cell: Cell, comparison: Comparison | None, report: str) -> str:
    """Markdown for one cell: its own figures, then its arm's comparison with vanilla."""
    m = cell.metrics
    ttt = m.time_to_target
    lines = [
        f"## OHGW bench: {cell.task} / {cell.scheduler} / {cell.variant}, seed {cell.seed}",
        "",
        f"- time to target {m.target:g}: {_f(ttt['epochs'])} epochs, "
        f"{_f(ttt['compute'])} compute s, {_f(ttt['wall'])} wall s "
        f"({'reached' if m.reached_target else 'not reached within the budget'})",
        f"- best validation {_f(m.best_value, 4)}, best test accuracy "
        f"{_f(m.best_test_accuracy, 4)}, {m.total_epochs} epochs, "
        f"{_f(m.total_compute)} compute s, probe share {_pct(m.probe_share)}",
    ]
    if comparison is not None and cell.variant != BASELINE:
        c = comparison
        lines += [
            f"- this arm against {BASELINE} over {c.n_paired} paired seeds: time-to-target "
            f"ratio ({PRIMARY_CLOCK}) {_ratio_text(c.ratio[PRIMARY_CLOCK])}, Wilcoxon p "
            f"{_p(c.wilcoxon[PRIMARY_CLOCK])}; epochs {_ratio_text(c.ratio['epochs'])}, "
            f"p {_p(c.wilcoxon['epochs'])}",
        ]
    lines += ["", f"Full report: `{report}`"]
    return "\n".join(lines) + "\n"


def publish_notes(
    storage: str | optuna.storages.BaseStorage,
    cells: Sequence[Cell],
    comparisons: Sequence[Comparison],
    report: str,
) -> int:
    """Save :func:`note_body` as the optuna-dashboard note of every cell's study; returns how
    many. A study's earlier note is replaced (the dashboard keeps its version history)."""
    from optuna_dashboard import save_note

    by_arm = {(c.task, c.scheduler, c.variant): c for c in comparisons}
    for cell in cells:
        study = optuna.load_study(study_name=cell.name, storage=storage)
        comparison = by_arm.get((cell.task, cell.scheduler, cell.variant))
        save_note(study, note_body(cell, comparison, report))
    return len(cells)
