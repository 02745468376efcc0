"""Issue 19's journals: restore them from the committed snapshots, and tell the one-worker
journals' own cells from the issue 13 cells they start with. Used by resume.sh, report.sh and
snapshot.sh (from the repository root):

    python benchmarks/issue19/journals.py restore GRID
"""

from __future__ import annotations

import gzip
import pathlib
import re
import sys

SNAPSHOTS = pathlib.Path("reports/issue19/grid")
# The one-worker journals start as issue 13's snapshot of the same task (its cells are seeds
# 0-10 of Fashion-MNIST and 0-7 of MNIST-1D, run by one real worker).
ISSUE13_SEEDS = {"fashion-w1": "fashion", "mnist1d-w1": "mnist1d"}


def _issue13_snapshot(name: str) -> pathlib.Path:
    return pathlib.Path(f"reports/issue13/grid/{ISSUE13_SEEDS[name]}.journal.gz")


def restore(grid: pathlib.Path) -> None:
    """Restore every journal ``grid`` lacks: from issue 19's snapshot (finished cells only,
    ``@GRID@`` -> ``grid``), else a one-worker journal from issue 13's."""
    from optuna_ohgw.evidence.snapshot import restore_journal

    grid.mkdir(parents=True, exist_ok=True)
    names = {p.name.removesuffix(".journal.gz") for p in SNAPSHOTS.glob("*.journal.gz")}
    for name in sorted(names | set(ISSUE13_SEEDS)):
        journal = grid / f"{name}.journal"
        if journal.exists():
            continue
        if name in names:
            restore_journal(SNAPSHOTS / f"{name}.journal.gz", journal, grid)
            print(f"restored {journal}")
        else:
            restore_journal(_issue13_snapshot(name), journal, grid)
            print(f"restored {journal} from issue 13's snapshot")


def only_issue13(name: str, cells: list[str]) -> bool:
    """True when a journal's finished ``cells`` are all issue 13's (nothing of its own yet)."""
    if name not in ISSUE13_SEEDS:
        return False
    with gzip.open(_issue13_snapshot(name), "rt") as f:
        old = set(re.findall(r'"study_name": *"([^"]+)"', f.read()))
    return set(cells) <= old


if __name__ == "__main__":
    if sys.argv[1:2] != ["restore"] or len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/issue19/journals.py restore GRID")
    restore(pathlib.Path(sys.argv[2]))
