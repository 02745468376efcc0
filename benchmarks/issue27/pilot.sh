#!/bin/bash
# Issue 27's ViT target pilot (reports/issue27/PLAN.md, step 1): the Fashion-MNIST ViT recipe,
# ASHA (TPE), vanilla, seeds 0-1, eight virtual workers with seeded ties, 60 configurations (the study file's).
# Its only use is to fix the ViT's targets before any warm-start arm runs. Resumable: rerun it.
#
#   bash benchmarks/issue27/pilot.sh [COMMIT]       (default: HEAD; frozen into runs/issue27/code)
#
# One process per seed (OHGW_GRID_JOBS, default 2), detached; logs runs/issue27/pilot-jI.log.
# Snapshot: bash benchmarks/issue27/snapshot.sh (finished cells into reports/issue27/grid/).
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
GRID=runs/issue27
JOBS=${OHGW_GRID_JOBS:-2}
mkdir -p "$GRID"
PY=${OHGW_PYTHON:-$ROOT/.venv/bin/python}
COMMIT=$(git rev-parse "${1:-HEAD}")
rm -rf "$GRID/code" && mkdir -p "$GRID/code"
git archive "$COMMIT" | tar -x -C "$GRID/code"
ln -s cli "$GRID/code/optuna_ohgw_cli" && ln -s studies "$GRID/code/optuna_ohgw_studies"
echo "$COMMIT" > "$GRID/code/COMMIT"
for i in $(seq 0 $((JOBS - 1))); do
  (cd "$GRID/code"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD" setsid nohup nice -n 5 bash -c '
      for ((s = '"$i"'; s < 2; s += '"$JOBS"')); do
        "'"$PY"'" -m optuna_ohgw_cli.main bench --study studies/fashion-vit-asha.toml \
          --variants vanilla --seeds 1 --first-seed "$s" --virtual-workers 8 \
          --virtual-ties seeded \
          --storage "journal:../pilot-j'"$i"'.journal" --grid-dir ../cells || exit 1
      done' >> "../pilot-j$i.log" 2>&1 &)
done
echo "pilot running ($JOBS processes), code $COMMIT; logs $GRID/pilot-j*.log"
