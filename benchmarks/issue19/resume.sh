#!/bin/bash
# Resume issue 19's grid in the background (one command, from the repository root):
#
#   bash benchmarks/issue19/resume.sh [COMMIT]        (OHGW_GRID_JOBS=N processes; default: one per core)
#
# If runs/issue19 has no journals yet, they are restored from the committed snapshots
# (reports/issue19/grid/*.journal.gz, finished cells only, @GRID@ -> this folder), and the
# one-worker journals from issue 13's Fashion-MNIST and MNIST-1D snapshots where issue 19 has
# none (journals.py). The code the grid runs is frozen into runs/issue19/code from COMMIT
# (default: the commit the grid started on, reports/issue19/grid/COMMIT, so that every cell,
# and both cells of every pair, ran the same code: later commits seed the base sampler per
# trial and draw other configurations). The grid then runs
# detached (setsid nohup) as a queue of cells that JOBS processes share (run_queue.py: the stages
# in the issue's order of priority), logging to runs/issue19/grid.log; while it runs
# (runs/issue19/grid.pid names a live process) this refuses to start a second one.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
GRID=runs/issue19
mkdir -p "$GRID"
JOBS=${OHGW_GRID_JOBS:-$(nproc)}
if [ -f "$GRID/grid.pid" ]; then
  for pid in $(cat "$GRID/grid.pid"); do
    if kill -0 "$pid" 2>/dev/null; then
      echo "error: the grid is already running (pid $pid); stop it first" >&2
      exit 2
    fi
  done
fi
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
"$PY" benchmarks/issue19/journals.py restore "$GRID"
rm -rf "$GRID/code" && mkdir -p "$GRID/code"
COMMIT=${1:-$(cat reports/issue19/grid/COMMIT)}
git archive "$COMMIT" | tar -x -C "$GRID/code"
ln -s cli "$GRID/code/optuna_ohgw_cli" && ln -s studies "$GRID/code/optuna_ohgw_studies"
git rev-parse "$COMMIT" > "$GRID/code/COMMIT"
# The queue runner of this checkout (copied: later edits cannot change a running grid), JOBS
# processes of one core each sharing it; no process runs now, so every claim is stale.
cp benchmarks/issue19/run_queue.py "$GRID/run_queue.py"
rm -rf "$GRID/claims"
: > "$GRID/grid.pid"
for i in $(seq "$JOBS"); do
  (cd "$GRID/code"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD" \
      setsid nohup nice -n 5 "$PY" ../run_queue.py .. >> ../grid.log 2>&1 &
    echo $! >> ../grid.pid)
done
echo "grid running in the background ($JOBS processes: $(tr '\n' ' ' < "$GRID/grid.pid")), code $(cat "$GRID/code/COMMIT"); log $GRID/grid.log"
