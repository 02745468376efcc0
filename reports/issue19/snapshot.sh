#!/bin/bash
# Snapshot issue 19's journals for committing: finished cells only, runs/issue19 as @GRID@.
#   bash reports/issue19/snapshot.sh     (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
"${OHGW_PYTHON:-.venv/bin/python}" - <<'PY'
import gzip, pathlib, re
from optuna_ohgw.evidence.snapshot import snapshot_journal
grid, out = pathlib.Path("runs/issue19"), pathlib.Path("reports/issue19/grid")
out.mkdir(parents=True, exist_ok=True)
# The one-worker journal starts as issue 13's Fashion-MNIST snapshot: commit it only once it
# has cells of its own (resume.sh restores it from issue 13's otherwise).
issue13 = gzip.open("reports/issue13/grid/fashion.journal.gz", "rt").read()
old = set(re.findall(r'"study_name": *"([^"]+)"', issue13))
for journal in sorted(grid.glob("*.journal")):
    target = out / f"{journal.name}.gz"
    kept = snapshot_journal(journal, target, grid)
    if journal.name == "fashion-w1.journal" and set(kept) <= old:
        target.unlink()
        print(f"{journal.name}: only issue 13's {len(kept)} cells, not snapshotted")
        continue
    print(f"{journal.name}: {len(kept)} finished cells")
PY
