#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL server for optuna-ohgw tests and benchmarks.
#
#   scripts/postgres.sh           install (apt) if needed, init, start, ensure role + db,
#                                 then print the SQLAlchemy URL on the LAST line of stdout
#   scripts/postgres.sh --stop    stop the server (data dir is kept)
#   scripts/postgres.sh --status  print whether the server is running (exit 0 if it is)
#
# Idempotent: re-running while the server is up only (re)checks the role and database.
# All progress messages go to stderr, so `URL=$(scripts/postgres.sh)` captures only the URL.
#
# Environment (defaults in brackets):
#   OHGW_PG_PORT [5433]          TCP port; the server listens on 127.0.0.1 only
#   OHGW_PG_DATA [/tmp/ohgw-pg/data]  cluster data directory (created by initdb)
#   OHGW_PG_SOCKET_DIR [/tmp]    unix-socket directory (used for the admin connection)
#   OHGW_PG_USER [ohgw]  OHGW_PG_PASSWORD [ohgw]  OHGW_PG_DB [ohgw_test]
#
# When run as root the cluster is owned by and run as the `postgres` OS user (PostgreSQL
# refuses to run as root). Otherwise it runs as the invoking user (apt needs sudo then).
set -euo pipefail

PORT="${OHGW_PG_PORT:-5433}"
DATA="${OHGW_PG_DATA:-/tmp/ohgw-pg/data}"
SOCKDIR="${OHGW_PG_SOCKET_DIR:-/tmp}"
DB_USER="${OHGW_PG_USER:-ohgw}"
DB_PASS="${OHGW_PG_PASSWORD:-ohgw}"
DB_NAME="${OHGW_PG_DB:-ohgw_test}"
LOG="$(dirname "$DATA")/postgres.log"
URL="postgresql+psycopg2://${DB_USER}:${DB_PASS}@127.0.0.1:${PORT}/${DB_NAME}"

log() { echo "[postgres.sh] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; }

ACTION=start
case "${1:-}" in
    "") ;;
    --stop) ACTION=stop ;;
    --status) ACTION=status ;;
    -h | --help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
esac

[[ "$PORT" =~ ^[0-9]+$ ]] || die "OHGW_PG_PORT must be a number, got '$PORT'"
[[ "$DB_USER" =~ ^[a-z_][a-z0-9_]*$ ]] || die "OHGW_PG_USER must be a plain identifier"
[[ "$DB_NAME" =~ ^[a-z_][a-z0-9_]*$ ]] || die "OHGW_PG_DB must be a plain identifier"

# Run a command as the cluster owner.
if [[ $EUID -eq 0 ]]; then
    as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
    as_owner() { (cd / && "$@"); }
fi

# Locate the server binaries (Debian keeps them in /usr/lib/postgresql/<ver>/bin).
find_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
        echo "$d"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

BINDIR="$(find_bindir || true)"

install_postgres() {
    log "PostgreSQL server binaries not found; installing with apt-get ..."
    local SUDO=""
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install"
        SUDO="sudo"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    BINDIR="$(find_bindir)" || die "postgresql installed but initdb/pg_ctl still not found"
}

is_running() {
    [[ -n "$BINDIR" && -f "$DATA/PG_VERSION" ]] && as_owner "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

if [[ "$ACTION" == stop ]]; then
    if is_running; then
        as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w >&2
        log "stopped server (data kept in $DATA)"
    else
        log "server in $DATA is not running"
    fi
    exit 0
fi

if [[ "$ACTION" == status ]]; then
    if is_running; then
        log "running: $DATA on 127.0.0.1:$PORT"
        echo "$URL"
        exit 0
    fi
    log "not running ($DATA)"
    exit 3
fi

[[ -n "$BINDIR" ]] || install_postgres
log "using server binaries in $BINDIR ($("$BINDIR/postgres" --version))"

# 1. Data directory + initdb (only once).
if [[ ! -f "$DATA/PG_VERSION" ]]; then
    if [[ -d "$DATA" && -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
        die "$DATA exists, is not empty and is not a PostgreSQL data dir; remove it or set OHGW_PG_DATA"
    fi
    mkdir -p "$DATA"
    chmod 700 "$DATA"
    if [[ $EUID -eq 0 ]]; then
        chown postgres:postgres "$DATA"
    fi
    log "initdb -> $DATA"
    as_owner "$BINDIR/initdb" -D "$DATA" --encoding=UTF8 --locale=C \
        --auth-local=peer --auth-host=scram-sha-256 >&2
else
    have="$(cat "$DATA/PG_VERSION")"
    want="$("$BINDIR/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')"
    [[ "$have" == "$want" ]] || die "$DATA was created by PostgreSQL $have, binaries are $want"
fi

# 2. Start (unless already running) and 3. wait until it accepts connections.
start_server() {
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; then
        die "another server already answers on 127.0.0.1:$PORT; set OHGW_PG_PORT"
    fi
    if [[ $EUID -eq 0 ]]; then
        touch "$LOG"
        chown postgres:postgres "$LOG"
    fi
    log "starting server on 127.0.0.1:$PORT (log: $LOG)"
    as_owner "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-k $SOCKDIR -h 127.0.0.1 -p $PORT" >&2 || {
        tail -n 20 "$LOG" >&2 || true
        die "pg_ctl start failed"
    }
}

if is_running; then
    log "server already running from $DATA"
else
    start_server
fi
# A server that was just killed can still look "running" for a moment (pid alive while it
# shuts down), so keep re-checking and start it again if it went away meanwhile.
ready=0
for _ in $(seq 1 60); do
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; then
        ready=1
        break
    fi
    if ! is_running; then
        start_server
    fi
    sleep 1
done
[[ $ready == 1 ]] || die "server not ready on 127.0.0.1:$PORT (see $LOG)"
"$BINDIR/pg_isready" -h 127.0.0.1 -p "$PORT" >&2

# 4. Role + database (admin connection over the unix socket, peer auth as the owner).
psql_admin() {
    as_owner "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -d postgres "$@"
}
pw_sql="${DB_PASS//\'/\'\'}"
if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" == 1 ]]; then
    psql_admin -c "ALTER ROLE $DB_USER WITH LOGIN PASSWORD '$pw_sql'"
else
    log "creating role $DB_USER"
    psql_admin -c "CREATE ROLE $DB_USER WITH LOGIN PASSWORD '$pw_sql'"
fi
if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
    log "creating database $DB_NAME"
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
fi

# 5. Check that the URL's credentials really work over TCP.
PGPASSWORD="$DB_PASS" "$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d "$DB_NAME" \
    -tAc "SELECT 1" >/dev/null || die "cannot log in as $DB_USER over TCP"
log "ready"
echo "$URL"
