#!/bin/bash
# Issue 27's grid, stage by stage (reports/issue27/PLAN.md), in the background and resumable:
#
#   bash benchmarks/issue27/run.sh STAGE [STAGE ...]   (OHGW_GRID_JOBS processes, default 2)
#
# STAGE: pilot (ViT ASHA vanilla, seeds 0-1: the targets), vit-ls (ViT ASHA: vanilla,
# line-search), vit-more (ohgw-normalized, random-sign), cnn-ties (Fashion CNN ASHA, vanilla and
# line-search, 30 configurations, seeded ties), dyhpo (Fashion CNN DyHPO: vanilla,
# ohgw-normalized, line-search), smoke-pilot (digits ASHA vanilla, seeds 0-1: the smoke test's
# targets), smoke (digits ASHA: vanilla, line-search; the lead table's smoke-test row). Seeds
# 0-19, seed by seed; process i takes seeds i, i+JOBS, ...
# of each stage in turn (the next stage as soon as its share of the last is done), with its own
# journal runs/issue27/JOURNAL-jI.journal (the ViT stages share vit-jI, which starts as the
# pilot's journal, so its vanilla cells of seeds 0-1 are the pilot's: report from vit-j*, never
# beside pilot-j*, which hold the same two cells). Journals this machine lacks are restored
# from the committed snapshots first; finished cells are skipped, a virtual cell stopped
# part-way reruns whole. The code is frozen into runs/issue27/code from OHGW_GRID_COMMIT
# (default HEAD); a grid still running is never re-frozen under itself. Commit progress with
# bash benchmarks/issue27/snapshot.sh.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
STAGES="pilot, vit-ls, vit-more, cnn-ties, dyhpo, smoke-pilot, smoke"
[ $# -gt 0 ] || { echo "error: give stages: $STAGES" >&2; exit 2; }
GRID=runs/issue27
JOBS=${OHGW_GRID_JOBS:-2}
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
if [ -f "$GRID/jobs.pid" ]; then
  for pid in $(cat "$GRID/jobs.pid"); do
    if kill -0 "$pid" 2>/dev/null; then
      echo "error: issue 27's grid is still running (process $pid, $GRID/jobs.pid); let it" \
        "finish or stop it (kill -- -$pid) first" >&2
      exit 2
    fi
  done
fi
declare -A JOURNAL ARGS SEEDS
for STAGE in "$@"; do
  SEEDS[$STAGE]=20
  case "$STAGE" in
    pilot) JOURNAL[$STAGE]=pilot; SEEDS[$STAGE]=2
      ARGS[$STAGE]="--study studies/fashion-vit-asha.toml --variants vanilla" ;;
    vit-ls) JOURNAL[$STAGE]=vit
      ARGS[$STAGE]="--study studies/fashion-vit-asha.toml --variants vanilla,line-search" ;;
    vit-more) JOURNAL[$STAGE]=vit
      ARGS[$STAGE]="--study studies/fashion-vit-asha.toml --variants ohgw-normalized,random-sign" ;;
    cnn-ties) JOURNAL[$STAGE]=cnn-ties
      ARGS[$STAGE]="--task fashion --schedulers asha --variants vanilla,line-search --budget n_trials=30" ;;
    dyhpo) JOURNAL[$STAGE]=dyhpo
      ARGS[$STAGE]="--task fashion --schedulers dyhpo --variants vanilla,ohgw-normalized,line-search" ;;
    smoke-pilot) JOURNAL[$STAGE]=smoke; SEEDS[$STAGE]=2
      ARGS[$STAGE]="--task digits --schedulers asha --variants vanilla" ;;
    smoke) JOURNAL[$STAGE]=smoke
      ARGS[$STAGE]="--task digits --schedulers asha --variants vanilla,line-search" ;;
    *) echo "error: unknown stage $STAGE ($STAGES)" >&2; exit 2 ;;
  esac
done
bash benchmarks/issue27/snapshot.sh > /dev/null  # restores what this machine lacks
for i in $(seq 0 $((JOBS - 1))); do
  if [ ! -f "$GRID/vit-j$i.journal" ] && [ -f "$GRID/pilot-j$i.journal" ]; then
    cp "$GRID/pilot-j$i.journal" "$GRID/vit-j$i.journal"
  fi
done
COMMIT=$(git rev-parse "${OHGW_GRID_COMMIT:-HEAD}")
bash benchmarks/freeze_code.sh "$GRID" "$COMMIT"
rm -f "$GRID/jobs.pid"
for i in $(seq 0 $((JOBS - 1))); do
  SCRIPT=""
  for STAGE in "$@"; do
    SCRIPT+="for ((s = $i; s < ${SEEDS[$STAGE]}; s += $JOBS)); do
      '$PY' -m optuna_ohgw_cli.main bench ${ARGS[$STAGE]} --seeds 1 --first-seed \$s \
        --virtual-workers 8 --virtual-ties seeded \
        --storage journal:../${JOURNAL[$STAGE]}-j$i.journal --grid-dir ../cells \
        >> ../$STAGE-j$i.log 2>&1 || exit 1
    done
    "
  done
  (cd "$GRID/code" && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD" \
    exec setsid nohup nice -n 5 bash -c "$SCRIPT" > /dev/null 2>&1) &
  echo $! >> "$GRID/jobs.pid"
done
echo "issue 27 stages $* running ($JOBS processes: $(tr '\n' ' ' < "$GRID/jobs.pid")), code" \
  "$COMMIT; logs $GRID/STAGE-j*.log"
