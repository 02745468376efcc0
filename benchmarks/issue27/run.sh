#!/bin/bash
# Issue 27's grid, stage by stage (reports/issue27/PLAN.md), in the background and resumable:
#
#   bash benchmarks/issue27/run.sh STAGE [COMMIT]     (OHGW_GRID_JOBS processes, default 2)
#
# STAGE: pilot (ViT ASHA vanilla, seeds 0-1: the targets), vit-ls (ViT ASHA: vanilla, line-search), vit-more (ohgw-normalized, random-sign),
# cnn-ties (Fashion CNN ASHA, vanilla and line-search, 30 configurations, seeded ties),
# dyhpo (Fashion CNN DyHPO: vanilla, ohgw-normalized, line-search). Seeds 0-19, seed by seed;
# process i takes seeds i, i+JOBS, ... and its own journal runs/issue27/STAGE-jI.journal
# (the ViT stages share vit-jI, which starts as the pilot's journal, so its vanilla cells of
# seeds 0-1 are the pilot's: report from vit-j*, never beside pilot-j*, which hold the same two
# cells). Journals this machine lacks are restored from the committed
# snapshots first; finished cells are skipped, a virtual cell stopped part-way reruns whole. The
# code is frozen into runs/issue27/code from COMMIT (default HEAD). Commit progress with
# bash benchmarks/issue27/snapshot.sh.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
STAGE=${1:?give a stage: pilot, vit-ls, vit-more, cnn-ties or dyhpo}
GRID=runs/issue27
JOBS=${OHGW_GRID_JOBS:-2}
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
SEEDS=20
case "$STAGE" in
  pilot) JOURNAL=pilot; SEEDS=2; ARGS="--study studies/fashion-vit-asha.toml --variants vanilla" ;;
  vit-ls) JOURNAL=vit; ARGS="--study studies/fashion-vit-asha.toml --variants vanilla,line-search" ;;
  vit-more) JOURNAL=vit; ARGS="--study studies/fashion-vit-asha.toml --variants ohgw-normalized,random-sign" ;;
  cnn-ties) JOURNAL=cnn-ties; ARGS="--task fashion --schedulers asha --variants vanilla,line-search --budget n_trials=30" ;;
  dyhpo) JOURNAL=dyhpo; ARGS="--task fashion --schedulers dyhpo --variants vanilla,ohgw-normalized,line-search" ;;
  *) echo "error: unknown stage $STAGE" >&2; exit 2 ;;
esac
bash benchmarks/issue27/snapshot.sh > /dev/null  # restores what this machine lacks
for i in $(seq 0 $((JOBS - 1))); do
  if [ "$JOURNAL" = vit ] && [ ! -f "$GRID/vit-j$i.journal" ] && [ -f "$GRID/pilot-j$i.journal" ]; then
    cp "$GRID/pilot-j$i.journal" "$GRID/vit-j$i.journal"
  fi
done
COMMIT=$(git rev-parse "${2:-HEAD}")
bash benchmarks/freeze_code.sh "$GRID" "$COMMIT"
for i in $(seq 0 $((JOBS - 1))); do
  (cd "$GRID/code"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD" setsid nohup nice -n 5 bash -c '
      for ((s = '"$i"'; s < '"$SEEDS"'; s += '"$JOBS"')); do
        "'"$PY"'" -m optuna_ohgw_cli.main bench '"$ARGS"' --seeds 1 --first-seed "$s" \
          --virtual-workers 8 --virtual-ties seeded \
          --storage "journal:../'"$JOURNAL"'-j'"$i"'.journal" --grid-dir ../cells || exit 1
      done' >> "../$STAGE-j$i.log" 2>&1 &)
done
echo "issue 27 stage $STAGE running ($JOBS processes), code $COMMIT; logs $GRID/$STAGE-j*.log"
