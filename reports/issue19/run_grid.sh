#!/bin/bash
# Issue 19's grid: every stage in order of priority, seed by seed (seed-major inside a stage),
# on ONE core (one torch thread, eight virtual workers simulated in one process). Resumable:
# rerun it and finished cells are skipped; a virtual cell stopped part-way is rerun whole.
#
#   bash reports/issue19/run_grid.sh [GRID]     (from the repository root; GRID: runs/issue19)
#
# It runs the code frozen in GRID/code (made by resume.sh from a commit), not the working tree,
# so later edits cannot change a grid that is running.
set -euo pipefail
GRID=$(cd "${1:-runs/issue19}" && pwd)
cd "$GRID/code"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$GRID/code"
PY=${OHGW_PYTHON:-python}
bench() {  # bench JOURNAL ARGS...: one stage on GRID/JOURNAL.journal
  local j=$1; shift
  echo "== $(date -u +%FT%TZ) stage $j: $*"
  nice -n 5 "$PY" -m optuna_ohgw_cli.main bench "$@" --storage "journal:$GRID/$j.journal" \
    --grid-dir "$GRID/$j"
}
# (a) Fashion-MNIST ASHA (TPE), 8 virtual workers x {vanilla, line-search, random-sign}
bench fashion-w8 --task fashion --schedulers asha --variants vanilla,line-search,random-sign \
  --seeds 20 --virtual-workers 8 --budget n_trials=30
# (b) the same at 1 worker (issue 13's 11 seeds are in this journal already; virtual N=1 is a
#     real one-worker run decision for decision), with issue 13's ohgw-normalized arm
bench fashion-w1 --task fashion --schedulers asha \
  --variants vanilla,line-search,random-sign,ohgw-normalized --seeds 20 --virtual-workers 1 \
  --budget n_trials=30
# (c) Fashion-MNIST ASHA at 8 workers: ohgw-normalized and toward-middle
bench fashion-w8 --task fashion --schedulers asha --variants ohgw-normalized,toward-middle \
  --seeds 20 --virtual-workers 8 --budget n_trials=30
# (d) MNIST-1D ASHA (TPE) at 8 workers x the five arms (the study file's 60 configurations)
bench mnist1d-w8 --task mnist1d --schedulers asha \
  --variants vanilla,ohgw-normalized,line-search,random-sign,toward-middle --seeds 20 \
  --virtual-workers 8
# (e) MNIST-1D PASHA and promotion ASHA at 8 workers x {vanilla, ohgw-normalized, line-search}
bench mnist1d-promotion-w8 --task mnist1d --schedulers pasha,asha-promotion \
  --variants vanilla,ohgw-normalized,line-search --seeds 20 --virtual-workers 8
echo "== $(date -u +%FT%TZ) every stage finished"
