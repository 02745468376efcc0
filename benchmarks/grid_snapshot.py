"""Snapshot a grid's journals for committing, and restore the ones this machine lacks.

    python benchmarks/grid_snapshot.py runs/issueNN reports/issueNN/grid

Each ``GRID/*.journal`` is written to ``OUT/NAME.journal.gz`` with its finished cells only and
``GRID`` as the ``@GRID@`` placeholder (:func:`optuna_ohgw.evidence.snapshot.snapshot_journal`);
then every snapshot without a journal in ``GRID`` is restored there.
"""

from __future__ import annotations

import pathlib
import sys

from optuna_ohgw.evidence.snapshot import restore_journal, snapshot_journal


def main(grid: pathlib.Path, out: pathlib.Path) -> None:
    grid.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for journal in sorted(grid.glob("*.journal")):
        kept = snapshot_journal(journal, out / f"{journal.name}.gz", grid)
        print(f"{journal.name}: {len(kept)} finished cells: {', '.join(kept)}")
    for snapshot in sorted(out.glob("*.journal.gz")):
        journal = grid / snapshot.name.removesuffix(".gz")
        if not journal.exists():
            restore_journal(snapshot, journal, grid)
            print(f"restored {journal}")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]))
