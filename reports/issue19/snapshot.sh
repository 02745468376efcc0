#!/bin/bash
# Snapshot issue 19's journals for committing: finished cells only, runs/issue19 as @GRID@.
#   bash reports/issue19/snapshot.sh     (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
"${OHGW_PYTHON:-.venv/bin/python}" - <<'PY'
import pathlib
from optuna_ohgw.evidence.snapshot import snapshot_journal
grid, out = pathlib.Path("runs/issue19"), pathlib.Path("reports/issue19/grid")
out.mkdir(parents=True, exist_ok=True)
for journal in sorted(grid.glob("*.journal")):
    kept = snapshot_journal(journal, out / f"{journal.name}.gz", grid)
    print(f"{journal.name}: {len(kept)} finished cells")
PY
