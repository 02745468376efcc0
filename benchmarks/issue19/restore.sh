#!/bin/bash
# Restore issue 13's journals (runs/issue13/) and issue 19's (runs/issue19/, finished cells)
# from their committed snapshots where this machine has none (from the repository root).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${OHGW_PYTHON:-.venv/bin/python}
"$PY" - <<'PY'
import pathlib
from optuna_ohgw.evidence.snapshot import restore_journal
folder = pathlib.Path("runs/issue13")
folder.mkdir(parents=True, exist_ok=True)
for name in ("mnist1d-promotion", "mnist1d-hyperband"):
    journal = folder / f"{name}.journal"
    if not journal.exists():
        restore_journal(pathlib.Path("reports/issue13/grid", name + ".journal.gz"), journal, folder)
        print(f"restored {journal}")
PY
"$PY" benchmarks/issue19/journals.py restore runs/issue19
