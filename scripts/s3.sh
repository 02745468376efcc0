#!/usr/bin/env bash
# Start (or stop) a throw-away S3-compatible server for optuna-ohgw tests and benchmarks:
# moto's standalone server (pip install 'moto[server]', the test extra), a real HTTP server
# speaking the S3 API, listening on 127.0.0.1 only. It keeps objects in memory.
#
#   scripts/s3.sh           start it unless it already answers, then print the endpoint URL
#                           (for AWS_ENDPOINT_URL) on the LAST line of stdout
#   scripts/s3.sh --stop    stop the server this script started
#   scripts/s3.sh --status  print the endpoint and exit 0 if it answers, else exit 3
#
# Idempotent: re-running while the server is up only prints the endpoint.
# Progress messages go to stderr, so `ENDPOINT=$(scripts/s3.sh)` captures only the URL.
#
# Environment (defaults in brackets):
#   OHGW_S3_PORT [5435]              TCP port on 127.0.0.1
#   OHGW_S3_DIR [/tmp/ohgw-s3]       pid file and log
#   OHGW_MOTO_SERVER [moto_server]   the server command (else .venv/bin/moto_server)
set -euo pipefail

PORT="${OHGW_S3_PORT:-5435}"
DIR="${OHGW_S3_DIR:-/tmp/ohgw-s3}"
ENDPOINT="http://127.0.0.1:${PORT}"
PIDFILE="$DIR/moto.pid"
LOG="$DIR/moto.log"

log() { echo "[s3.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "OHGW_S3_PORT must be a number, got '$PORT'"

answers() {
    # moto answers GET / with its (empty) bucket list; anything else on the port is not ours.
    python3 - "$ENDPOINT" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/", timeout=2) as r:
    body = r.read()
sys.exit(0 if r.status == 200 and b"ListAllMyBucketsResult" in body else 1)
EOF
}

case "${1:-}" in
    "") ;;
    --stop)
        if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            kill "$(cat "$PIDFILE")"
            rm -f "$PIDFILE"
            log "stopped"
        else
            log "not running (no live pid in $PIDFILE)"
        fi
        exit 0 ;;
    --status)
        if answers; then echo "$ENDPOINT"; exit 0; fi
        log "nothing answers on $ENDPOINT"
        exit 3 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $1" ;;
esac

if answers; then
    log "already running on $ENDPOINT"
    echo "$ENDPOINT"
    exit 0
fi

SERVER="${OHGW_MOTO_SERVER:-}"
if [[ -z "$SERVER" ]]; then
    if command -v moto_server >/dev/null 2>&1; then
        SERVER="$(command -v moto_server)"
    elif [[ -x "$(dirname "$0")/../.venv/bin/moto_server" ]]; then
        SERVER="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/moto_server"
    else
        die "moto_server not found: pip install 'moto[server]' (in the test extra) or set OHGW_MOTO_SERVER"
    fi
fi

mkdir -p "$DIR"
log "starting $SERVER on $ENDPOINT (log: $LOG)"
nohup "$SERVER" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"
for _ in $(seq 1 60); do
    if answers; then
        log "ready"
        echo "$ENDPOINT"
        exit 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOG" >&2; die "server exited"; }
    sleep 0.5
done
tail -n 20 "$LOG" >&2
die "server not ready on $ENDPOINT after 30 s"
