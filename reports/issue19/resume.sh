#!/bin/bash
# Resume issue 19's grid in the background (one command, from the repository root):
#
#   bash reports/issue19/resume.sh [COMMIT]
#
# If runs/issue19 has no journals yet, they are restored from the committed snapshots
# (reports/issue19/grid/*.journal.gz, finished cells only, @GRID@ -> this folder), and the
# one-worker journal from issue 13's Fashion-MNIST snapshot where issue 19 has none. The code
# the grid runs is frozen into runs/issue19/code from COMMIT (default: the commit the grid
# started on, reports/issue19/grid/COMMIT, so that every cell, and both cells of every pair,
# ran the same code: later commits seed the base sampler per trial and draw other
# configurations). The grid then runs
# detached (setsid nohup), logging to runs/issue19/grid.log; while it runs (runs/issue19/grid.pid
# names a live process) this refuses to start a second one.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
GRID=runs/issue19
mkdir -p "$GRID"
if [ -f "$GRID/grid.pid" ] && kill -0 "$(cat "$GRID/grid.pid")" 2>/dev/null; then
  echo "error: the grid is already running (pid $(cat "$GRID/grid.pid")); stop it first" >&2
  exit 2
fi
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
"$PY" - "$GRID" <<'PY'
import pathlib, sys
from optuna_ohgw.evidence.snapshot import restore_journal
grid = pathlib.Path(sys.argv[1])
snaps = pathlib.Path("reports/issue19/grid")
for snap in sorted(snaps.glob("*.journal.gz")):
    journal = grid / snap.name.removesuffix(".gz")
    if not journal.exists():
        restore_journal(snap, journal, grid)
        print(f"restored {journal}")
w1 = grid / "fashion-w1.journal"
if not w1.exists():
    restore_journal("reports/issue13/grid/fashion.journal.gz", w1, grid)
    print(f"restored {w1} from issue 13's snapshot")
PY
rm -rf "$GRID/code" && mkdir -p "$GRID/code"
COMMIT=${1:-$(cat reports/issue19/grid/COMMIT)}
git archive "$COMMIT" | tar -x -C "$GRID/code"
ln -s cli "$GRID/code/optuna_ohgw_cli" && ln -s studies "$GRID/code/optuna_ohgw_studies"
git rev-parse "$COMMIT" > "$GRID/code/COMMIT"
OHGW_PYTHON="$PY" setsid nohup bash "$GRID/code/reports/issue19/run_grid.sh" "$GRID" >> "$GRID/grid.log" 2>&1 &
echo $! > "$GRID/grid.pid"
echo "grid running in the background (pid $!), code $(cat "$GRID/code/COMMIT"); log $GRID/grid.log"
