#!/bin/bash
# Snapshot issue 19's journals for committing: finished cells only, runs/issue19 as @GRID@.
#   bash benchmarks/issue19/snapshot.sh     (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
"${OHGW_PYTHON:-.venv/bin/python}" - <<'PY'
import pathlib, sys
sys.path.insert(0, "benchmarks/issue19")
from journals import only_issue13
from optuna_ohgw.evidence.snapshot import snapshot_journal
grid, out = pathlib.Path("runs/issue19"), pathlib.Path("reports/issue19/grid")
out.mkdir(parents=True, exist_ok=True)
for journal in sorted(grid.glob("*.journal")):
    target = out / f"{journal.name}.gz"
    kept = snapshot_journal(journal, target, grid)
    # A one-worker journal is committed only once it has cells of its own (resume.sh restores
    # it from issue 13's snapshot otherwise).
    if only_issue13(journal.stem, kept):
        target.unlink()
        print(f"{journal.name}: only issue 13's {len(kept)} cells, not snapshotted")
        continue
    print(f"{journal.name}: {len(kept)} finished cells")
PY
