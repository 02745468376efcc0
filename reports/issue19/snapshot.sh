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
# The one-worker journals start as issue 13's snapshots: commit one only once it has cells of
# its own (resume.sh restores it from issue 13's otherwise).
ISSUE13 = {"fashion-w1.journal": "fashion", "mnist1d-w1.journal": "mnist1d"}
for journal in sorted(grid.glob("*.journal")):
    target = out / f"{journal.name}.gz"
    kept = snapshot_journal(journal, target, grid)
    if journal.name in ISSUE13:
        issue13 = gzip.open(f"reports/issue13/grid/{ISSUE13[journal.name]}.journal.gz", "rt")
        old = set(re.findall(r'"study_name": *"([^"]+)"', issue13.read()))
    if journal.name in ISSUE13 and set(kept) <= old:
        target.unlink()
        print(f"{journal.name}: only issue 13's {len(kept)} cells, not snapshotted")
        continue
    print(f"{journal.name}: {len(kept)} finished cells")
PY
