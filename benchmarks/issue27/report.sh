#!/bin/bash
# Regenerate reports/summary.md (question issue27, with its lead table "Where it pays") and
# reports/issue27/ from every committed journal: issue 13's and issue 19's grids and issue 27's
# stages (finished cells). One command, from the repository root:
#
#   bash benchmarks/issue27/report.sh
#
# It restores the journals this machine lacks from their snapshots first. Issue 19's own page
# (question issue19) is bash benchmarks/issue19/report.sh, which also writes reports/summary.md:
# run this one after it.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash benchmarks/issue19/restore.sh > /dev/null
bash benchmarks/issue27/snapshot.sh > /dev/null  # restores issue 27's journals
STORAGES=()
for j in runs/issue19/mnist1d-w1 runs/issue13/mnist1d-promotion runs/issue13/mnist1d-hyperband \
  runs/issue19/fashion-w1 runs/issue19/fashion-w8 runs/issue19/mnist1d-w8 \
  runs/issue19/mnist1d-promotion-w8 runs/issue27/vit-j0 runs/issue27/vit-j1 \
  runs/issue27/cnn-ties-j0 runs/issue27/cnn-ties-j1 runs/issue27/dyhpo-j0 runs/issue27/dyhpo-j1 \
  runs/issue27/smoke-j0 runs/issue27/smoke-j1; do
  [ -f "$j.journal" ] && STORAGES+=(--storage "journal:$j.journal")
done
"${OHGW_CLI:-.venv/bin/ohgw-optuna}" report "${STORAGES[@]}" --name issue27 --out reports \
  --finished-only --summary --clock epochs --planned-seeds 20 --question issue27 \
  --commits reports/issue27/commits.toml --notes reports/issue27/notes.md \
  --notes reports/issue19/notes.md
