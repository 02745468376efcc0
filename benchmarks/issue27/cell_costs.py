"""Issue 27: what each arm's cells cost, from the journals (finished cells only).

From the repository root, after ``bash benchmarks/issue27/snapshot.sh`` has restored them:

    .venv/bin/python benchmarks/issue27/cell_costs.py [JOURNAL ...]

Per (task, scheduler group, arm): the number of cells, the median of each cell's trained
epochs, its compute seconds (training and probing, summed over the cell's configurations: the
one core's work), the probe's share of that compute, and the median wall seconds of the cells
that recorded it (their count in brackets; ``ohgw.bench.code``, cells from 7c3492a on), with
the commits that ran them.
"""

from __future__ import annotations

import glob
import statistics
import sys

from optuna_ohgw.evidence.provenance import short
from optuna_ohgw.evidence.report import load_cells
from optuna_ohgw.storage import open_storage

STAGES = ("vit", "cnn-ties", "dyhpo", "smoke")
"""The grid's journals (pilot-j* holds two of vit-j*'s cells again: never both)."""


def main(journals: list[str]) -> None:
    cells = [
        c
        for j in journals
        for c in load_cells(open_storage(f"journal:{j}", heartbeat=False), finished_only=True)
    ]
    groups: dict[tuple[str, str, str], list] = {}  # type: ignore[type-arg]
    for c in cells:
        groups.setdefault((c.task, c.scheduler, c.variant), []).append(c)
    print("task | group | arm | cells | epochs | compute s | probe share | wall s | commits")
    for (task, group, arm), cs in sorted(groups.items()):
        shares = [c.metrics.probe_share for c in cs if c.metrics.probe_share is not None]
        walls = [c.code["wall_seconds"] for c in cs if c.code]
        commits = sorted({short(c.code["commit"]) for c in cs if c.code})
        print(
            f"{task} | {group} | {arm} | {len(cs)} | "
            f"{statistics.median(c.metrics.total_epochs for c in cs):.0f} | "
            f"{statistics.median(c.metrics.total_compute for c in cs):.0f} | "
            f"{100 * statistics.median(shares) if shares else 0:.1f}% | "
            f"{f'{statistics.median(walls):.0f} ({len(walls)})' if walls else 'n/a'} | "
            f"{', '.join(commits) or 'not recorded: see its grid/COMMIT file'}"
        )


if __name__ == "__main__":
    default = [
        j for stage in STAGES for j in sorted(glob.glob(f"runs/issue27/{stage}-j*.journal"))
    ]
    main(sys.argv[1:] or default)
