#!/bin/bash
# Issue 24's replication: snapshot its finished cells for committing (reports/issue24/grid/,
# runs/issue24 as @GRID@), restore what this machine lacks from the snapshots, and regenerate
# reports/issue24/ (report.md, results.csv, plots, summary.md) on the epochs clock.
#
#   bash benchmarks/issue24/report.sh         (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${OHGW_PYTHON:-.venv/bin/python}
"$PY" benchmarks/grid_snapshot.py runs/issue24 reports/issue24/grid
if [ -f runs/issue24/code/COMMIT ]; then cp runs/issue24/code/COMMIT reports/issue24/grid/COMMIT; fi
STORAGES=()
for j in runs/issue24/*.journal; do STORAGES+=(--storage "journal:$j"); done
"${OHGW_CLI:-.venv/bin/ohgw-optuna}" report "${STORAGES[@]}" --name replication \
  --out reports/issue24 --finished-only --summary --clock epochs --planned-seeds 10 \
  --targets fashion=0.82,0.85,0.86
