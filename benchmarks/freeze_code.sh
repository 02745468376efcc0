#!/bin/bash
# Freeze COMMIT's code into GRID/code (the grid never runs the working tree; later edits cannot
# change a running grid), with the package names the console script uses, and record the commit.
#   bash benchmarks/freeze_code.sh GRID COMMIT        (from the repository root)
set -euo pipefail
GRID=$1
COMMIT=$(git rev-parse "$2")
rm -rf "$GRID/code" && mkdir -p "$GRID/code"
git archive "$COMMIT" | tar -x -C "$GRID/code"
ln -s cli "$GRID/code/optuna_ohgw_cli" && ln -s studies "$GRID/code/optuna_ohgw_studies"
echo "$COMMIT" > "$GRID/code/COMMIT"
