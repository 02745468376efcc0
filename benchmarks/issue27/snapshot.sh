#!/bin/bash
# Snapshot issue 27's journals for committing (finished cells only, runs/issue27 as @GRID@) into
# reports/issue27/grid/, with the commit the cells ran (runs/issue27/code/COMMIT); restore what
# this machine lacks from the snapshots.
#   bash benchmarks/issue27/snapshot.sh        (from the repository root)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
"${OHGW_PYTHON:-.venv/bin/python}" benchmarks/grid_snapshot.py runs/issue27 reports/issue27/grid
# reports/issue27/grid/COMMIT lists which commit ran which journals' cells: add the running code's
# commit when it is not there yet (edit the line to name the stage's journals).
if [ -f runs/issue27/code/COMMIT ] && ! grep -q "$(cat runs/issue27/code/COMMIT)" reports/issue27/grid/COMMIT 2>/dev/null; then
  echo "(name the journals): $(cat runs/issue27/code/COMMIT)" >> reports/issue27/grid/COMMIT
fi
