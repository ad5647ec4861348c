#!/usr/bin/env bash
# Restore drill: `scripts/restore_drill.sh BACKUP_FILE`.
#
# Runs the restore procedure of docs/runbook.md (the bash block between the markers
# `<!-- restore-procedure:start -->` and `<!-- restore-procedure:end -->`) verbatim, with
# `bash -euo pipefail`, against a fresh PostgreSQL cluster that this script creates on 127.0.0.1
# and removes on exit. Then it prints one line per main table on stdout, `<table> <rows>`, for
# accounts, clients, invoices, reminders and duespark_queue.jobs of the restored database.
# Everything else (the procedure's own output, progress, timings) goes to stderr. Any failure exits
# nonzero.
#
# BACKUP_FILE is a `duespark backup` archive with its `.sha256` sidecar next to it.
#
# Environment:
#   DUESPARK_BIN   the duespark binary that runs `duespark migrate`; default: `duespark` in PATH.
#   RESTORE_JOBS   parallel pg_restore jobs; default 2.
#   PG_BIN_DIR     directory of initdb, pg_ctl and the client tools; default: searched like
#                  scripts/test.sh does.
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runbook="$repo_root/docs/runbook.md"

log() {
    echo "restore_drill.sh: $*" >&2
}

fail() {
    log "$*"
    exit 1
}

if [[ $# -ne 1 ]]; then
    fail "usage: scripts/restore_drill.sh BACKUP_FILE"
fi
[[ -f "$1" ]] || fail "backup file $1 not found"
backup_file=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

# Print the match of a glob such as /usr/lib/postgresql/*/bin with the highest version, or nothing.
newest_dir() {
    compgen -G "$1" | sort -V | tail -n 1 || true
}

# Print the directory that contains initdb and pg_ctl, searched in the same order as scripts/test.sh.
find_pg_bin_dir() {
    local candidates=()
    if [[ -n "${PG_BIN_DIR:-}" ]]; then
        candidates=("$PG_BIN_DIR")
    else
        if command -v pg_config >/dev/null; then
            candidates+=("$(pg_config --bindir)")
        fi
        if command -v initdb >/dev/null; then
            candidates+=("$(dirname "$(command -v initdb)")")
        fi
        candidates+=(
            "$(newest_dir '/usr/lib/postgresql/*/bin')"
            "$(newest_dir '/opt/homebrew/opt/postgresql@*/bin')"
            "$(newest_dir '/usr/local/opt/postgresql@*/bin')"
        )
    fi
    local dir
    for dir in "${candidates[@]}"; do
        if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return
        fi
    done
    fail "PostgreSQL server programs (initdb, pg_ctl) not found; install the PostgreSQL server or set PG_BIN_DIR"
}

# Print the restore procedure: the lines of the one fenced block between the markers, without fences.
extract_procedure() {
    awk '
        /<!-- restore-procedure:start -->/ { inside = 1; next }
        /<!-- restore-procedure:end -->/ { inside = 0; next }
        inside && /^```/ { fences++; next }
        inside && fences == 1 { print }
        END { if (fences != 2) exit 1 }
    ' "$runbook"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a PostgreSQL server program, as the postgres system user when this script runs as root.
as_server_user() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_bin_dir=$(find_pg_bin_dir)
duespark_bin=${DUESPARK_BIN:-$(command -v duespark || true)}
[[ -n "$duespark_bin" && -x "$duespark_bin" ]] \
    || fail "duespark binary not found: set DUESPARK_BIN or put duespark in PATH (cargo build --release)"

# Set before the trap, read by cleanup on exit.
drill_dir=""
data_dir=""

cleanup() {
    if [[ -n "$data_dir" && -f "$data_dir/postmaster.pid" ]]; then
        (cd "$drill_dir" && as_server_user "$pg_bin_dir/pg_ctl" stop -D "$data_dir" -m immediate -w >/dev/null) \
            || log "failed to stop the drill's PostgreSQL in $data_dir"
    fi
    if [[ -n "$drill_dir" ]]; then
        rm -rf "$drill_dir"
    fi
}
trap cleanup EXIT

# Under /tmp, because root's TMPDIR may be a directory that the postgres user cannot reach.
drill_dir=$(mktemp -d /tmp/duespark-restore-drill.XXXXXX)
if [[ $(id -u) -eq 0 ]]; then
    id -u postgres >/dev/null 2>&1 \
        || fail "running as root, but the postgres system user does not exist; PostgreSQL refuses to run as root"
    chown postgres: "$drill_dir"
fi
data_dir="$drill_dir/data"

procedure="$drill_dir/restore-procedure.sh"
extract_procedure >"$procedure" || fail "no single fenced block between the restore-procedure markers in $runbook"
[[ -s "$procedure" ]] || fail "the restore procedure in $runbook is empty"

port=$(free_port)
log "starting a fresh PostgreSQL cluster from $pg_bin_dir in $drill_dir on 127.0.0.1:$port"
(cd "$drill_dir" && as_server_user "$pg_bin_dir/initdb" -D "$data_dir" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C >"$drill_dir/initdb.log" 2>&1) || {
    cat "$drill_dir/initdb.log" >&2
    fail "initdb failed"
}
cat >>"$data_dir/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$drill_dir'
EOF
(cd "$drill_dir" && as_server_user "$pg_bin_dir/pg_ctl" start -D "$data_dir" -l "$drill_dir/postgres.log" \
    -w -t 60 >/dev/null) || {
    tail -n 20 "$drill_dir/postgres.log" >&2 || true
    fail "pg_ctl start failed"
}

# The procedure's tools: duespark and the client programs of the cluster's version, first in PATH.
mkdir "$drill_dir/bin"
ln -s "$duespark_bin" "$drill_dir/bin/duespark"

log "running the restore procedure of docs/runbook.md on $backup_file"
started=$SECONDS
(
    cd "$drill_dir"
    # Only the procedure's own variables, so no PG* or DATABASE_URL setting of the caller leaks in.
    env -i \
        HOME="$drill_dir" \
        PATH="$drill_dir/bin:$pg_bin_dir:/usr/local/bin:/usr/bin:/bin" \
        BACKUP_FILE="$backup_file" \
        NEW_PGHOST=127.0.0.1 \
        NEW_PGPORT="$port" \
        NEW_PGUSER=postgres \
        NEW_DATABASE=duespark \
        RESTORE_JOBS="${RESTORE_JOBS:-2}" \
        bash -euo pipefail "$procedure"
) >&2 || fail "the restore procedure failed after $((SECONDS - started)) s"
log "restore procedure finished in $((SECONDS - started)) s"

"$pg_bin_dir/psql" -h 127.0.0.1 -p "$port" -U postgres -d duespark -X -At -F ' ' -v ON_ERROR_STOP=1 -c "
    SELECT table_name, row_count FROM (
        SELECT 1 AS position, 'accounts' AS table_name, count(*) AS row_count FROM accounts
        UNION ALL SELECT 2, 'clients', count(*) FROM clients
        UNION ALL SELECT 3, 'invoices', count(*) FROM invoices
        UNION ALL SELECT 4, 'reminders', count(*) FROM reminders
        UNION ALL SELECT 5, 'duespark_queue.jobs', count(*) FROM duespark_queue.jobs
    ) AS counts ORDER BY position"
