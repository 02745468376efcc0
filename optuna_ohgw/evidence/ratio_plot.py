"""The ratio-against-target plots of ``summary.md`` (matplotlib, imported on first use)."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence

from optuna_ohgw.evidence.comparisons import TargetComparison
from optuna_ohgw.evidence.report import MAX_RATIO, PRIMARY_CLOCK, _order


def plot_ratio_vs_target(
    comps: Sequence[TargetComparison], out: pathlib.Path, clock: str = PRIMARY_CLOCK
) -> list[str]:
    """Per ``(task, scheduler label)``, the ratio against the target (one line per arm, its
    bootstrap 95% CI as a band; ``inf`` and undefined points left out), log y axis; returns the
    file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str, str], list[TargetComparison]] = {}
    for c in comps:
        groups.setdefault((c.task, c.scheduler, c.reference), []).append(c)
    files = []
    for (task, scheduler, reference), group in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for variant in _order({c.variant for c in group}):
            pts = sorted((c for c in group if c.variant == variant), key=lambda c: c.target)
            xs, ys, lo, hi = [], [], [], []
            for c in pts:
                r = c.ratio[clock]
                if r.ratio is None or not math.isfinite(r.ratio) or r.ratio <= 0:
                    continue
                xs.append(c.target)
                ys.append(r.ratio)
                lo.append(r.low if r.low is not None and r.low > 0 else r.ratio)
                hi.append(r.high if r.high is not None and math.isfinite(r.high) else r.ratio)
            if not xs:
                continue
            n = max(c.n_paired for c in pts)
            (line,) = ax.plot(xs, ys, marker="o", mfc="white", label=f"{variant} (n={n})")
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
            sig = [
                (c.target, c.ratio[clock].ratio)
                for c in pts
                if clock == c.clock and c.significant and c.target in xs
            ]
            if sig:  # filled: significant after Holm's correction (deciding clock only)
                ax.plot(*zip(*sig), ls="none", marker="o", color=line.get_color())
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(MAX_RATIO, color="k", ls="--", lw=0.8, label=f"criterion {MAX_RATIO}")
        ax.set_yscale("log")
        ax.set_xlabel("target (validation accuracy)")
        ax.set_ylabel(f"median TTT ratio vs {reference} ({clock})")
        ax.set_title(
            f"{task} / {scheduler}: arm / {reference}, 95% CI band\n"
            + (
                "filled: sooner, significant after Holm correction over the sweep"
                if any(c.clock == clock for c in group)
                else f"(significance is marked on the {group[0].clock} clock's plot)"
            ),
            fontsize=9,
        )
        ax.legend(fontsize=7)
        tag = scheduler.replace("/", "-")
        name = f"ratio-vs-target-{task}-{tag}-vs-{reference}-{clock}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        files.append(name)
    return files
