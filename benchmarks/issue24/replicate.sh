#!/bin/bash
# Issue 24's replication at HEAD: the primary comparison of issue 19 (Fashion-MNIST ASHA with
# TPE, eight virtual workers, 30 configurations per cell, vanilla against line-search) with the
# self-check on and every other default as a user gets it, on fresh seeds 100.. that the
# issue-19 grid never used. Resumable: rerun it; finished cells are skipped, a virtual cell
# stopped part-way is rerun whole.
#
#   bash benchmarks/issue24/replicate.sh [COMMIT]     (default: HEAD; OHGW_GRID_JOBS, default 2)
#
# The code is frozen into runs/issue24/code from COMMIT (recorded in runs/issue24/code/COMMIT),
# so later edits of the checkout cannot change a running grid. JOBS processes of one core each
# split the seeds (process i takes seeds 100+i, 100+i+JOBS, ...), one journal each
# (runs/issue24/fashion-w8-jI.journal), detached (setsid nohup), logs runs/issue24/jI.log.
# Report: bash benchmarks/issue24/report.sh
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
GRID=runs/issue24
SEEDS=${OHGW_SEEDS:-10}
JOBS=${OHGW_GRID_JOBS:-2}
mkdir -p "$GRID"
if [ -f "$GRID/grid.pid" ]; then
  for pid in $(cat "$GRID/grid.pid"); do
    if kill -0 "$pid" 2>/dev/null; then
      echo "error: the replication is already running (pid $pid)" >&2
      exit 2
    fi
  done
fi
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
COMMIT=$(git rev-parse "${1:-$(cat "$GRID/code/COMMIT" 2>/dev/null || echo HEAD)}")
bash benchmarks/freeze_code.sh "$GRID" "$COMMIT"
: > "$GRID/grid.pid"
for i in $(seq 0 $((JOBS - 1))); do
  (cd "$GRID/code"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD" setsid nohup nice -n 5 bash -c '
      for ((s = 100 + '"$i"'; s < 100 + '"$SEEDS"'; s += '"$JOBS"')); do
        "'"$PY"'" -m optuna_ohgw_cli.main bench --task fashion --schedulers asha \
          --variants vanilla,line-search --seeds 1 --first-seed "$s" --virtual-workers 8 \
          --budget n_trials=30 --storage "journal:../fashion-w8-j'"$i"'.journal" \
          --grid-dir ../cells || exit 1
      done' >> "../j$i.log" 2>&1 &
    echo $! >> ../grid.pid)
done
echo "replication running ($JOBS processes: $(tr '\n' ' ' < "$GRID/grid.pid")), code $COMMIT; logs $GRID/j*.log"
