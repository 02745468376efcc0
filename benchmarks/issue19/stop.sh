#!/bin/bash
# Stop issue 19's grid (from the repository root): every queue process in runs/issue19/grid.pid
# and what it started. The cells they were running are rerun whole by the next resume.sh.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PIDS=runs/issue19/grid.pid
[ -f "$PIDS" ] || { echo "no grid has run here ($PIDS missing)"; exit 0; }
for pid in $(cat "$PIDS"); do
  kill -TERM -- "-$pid" 2>/dev/null || true  # setsid: the process group of the queue process
done
for _ in $(seq 50); do
  alive=0
  for pid in $(cat "$PIDS"); do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && { echo "grid stopped"; exit 0; }
  sleep 0.2
done
echo "error: the grid did not stop within 10 s: kill -KILL -- -PID for each PID in $PIDS" >&2
exit 1
