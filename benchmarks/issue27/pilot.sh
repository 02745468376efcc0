#!/bin/bash
# Issue 27's ViT target pilot (reports/issue27/PLAN.md, step 1): the Fashion-MNIST ViT recipe,
# ASHA (TPE), vanilla, seeds 0-1, eight virtual workers with seeded ties, the study file's 60
# configurations. Its only use is to fix the ViT's targets before any warm-start arm runs.
#   bash benchmarks/issue27/pilot.sh      (the stage runner's pilot stage; OHGW_GRID_COMMIT=REV
#                                          runs another commit)
exec bash "$(dirname "$0")/run.sh" pilot
