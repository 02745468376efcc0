#!/bin/bash
# Regenerate reports/issue19/ and reports/summary.md from the committed journals (one command,
# from the repository root):
#
#   bash benchmarks/issue19/report.sh
#
# It restores issue 13's journals (runs/issue13/) and issue 19's (runs/issue19/, finished cells)
# from their snapshots where this machine has none, then runs the report command that
# reports/summary.md shows at its top. Run benchmarks/issue19/snapshot.sh first to include the
# cells a running grid has finished since the last snapshot.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash benchmarks/issue19/restore.sh
# runs/issue19/mnist1d-w1 holds issue 13's one-worker MNIST-1D cells and stage (f)'s new seeds:
# it stands in for runs/issue13/mnist1d.
STORAGES=()
for j in runs/issue19/mnist1d-w1 runs/issue13/mnist1d-promotion runs/issue13/mnist1d-hyperband \
  runs/issue19/fashion-w1 runs/issue19/fashion-w8 runs/issue19/mnist1d-w8 \
  runs/issue19/mnist1d-promotion-w8; do
  [ -f "$j.journal" ] && STORAGES+=(--storage "journal:$j.journal")
done
"${OHGW_CLI:-.venv/bin/ohgw-optuna}" report "${STORAGES[@]}" --name issue19 --out reports \
  --finished-only --summary --clock epochs --planned-seeds 20 --notes reports/issue19/notes.md \
  --question issue19
