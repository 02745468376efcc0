#!/bin/bash
# Issue 24's replication: snapshot its finished cells for committing (reports/issue24/grid/,
# runs/issue24 as @GRID@), restore what this machine lacks from the snapshots, and regenerate
# reports/issue24/ (report.md, results.csv, plots, summary.md) on the epochs clock.
#
#   bash benchmarks/issue24/report.sh         (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${OHGW_PYTHON:-.venv/bin/python}
"$PY" - <<'PY'
import pathlib
from optuna_ohgw.evidence.snapshot import restore_journal, snapshot_journal
grid, out = pathlib.Path("runs/issue24"), pathlib.Path("reports/issue24/grid")
grid.mkdir(parents=True, exist_ok=True)
out.mkdir(parents=True, exist_ok=True)
for journal in sorted(grid.glob("*.journal")):
    kept = snapshot_journal(journal, out / f"{journal.name}.gz", grid)
    print(f"{journal.name}: {len(kept)} finished cells")
for snapshot in sorted(out.glob("*.journal.gz")):
    journal = grid / snapshot.name.removesuffix(".gz")
    if not journal.exists():
        restore_journal(snapshot, journal, grid)
        print(f"restored {journal}")
PY
if [ -f runs/issue24/code/COMMIT ]; then cp runs/issue24/code/COMMIT reports/issue24/grid/COMMIT; fi
STORAGES=()
for j in runs/issue24/*.journal; do STORAGES+=(--storage "journal:$j"); done
"${OHGW_CLI:-.venv/bin/ohgw-optuna}" report "${STORAGES[@]}" --name replication \
  --out reports/issue24 --finished-only --summary --clock epochs --planned-seeds 10 \
  --targets fashion=0.82,0.85,0.86
