#!/usr/bin/env bash
# Run the test suite: `scripts/test.sh [cargo test arguments]`, e.g. `scripts/test.sh -p duespark --lib`.
#
# 1. Creates or reuses the Python venv var/test-venv with aiosmtpd, PyYAML and moto's S3 server, and exports
#    DUESPARK_TEST_PYTHON and DUESPARK_TEST_SMTP_SERVER for the tests that start a real SMTP server.
# 2. Checks docker-compose.yml and the Dockerfile with scripts/check_compose.py.
# 3. Without DATABASE_URL, starts a temporary PostgreSQL cluster on 127.0.0.1 (removed on exit) and
#    exports DATABASE_URL for it. Tests create their own databases through that URL, so a
#    DATABASE_URL given from outside must name a role allowed to CREATE DATABASE.
# 4. Runs `cargo test --workspace "$@"`, without `--workspace` when the arguments select packages.
#
# Works as root and as an unprivileged user. PostgreSQL refuses to run as root, so as root the
# temporary cluster runs as the `postgres` system user.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# Pinned, so every run tests against the same SMTP and S3 server code. moto's own dependencies
# (Flask, boto3 and more) are resolved by pip.
python_requirements=(aiosmtpd==1.4.6 atpublic==9.0.0 attrs==26.1.0 PyYAML==6.0.3 'moto[server]==5.2.1')
venv_dir="$repo_root/var/test-venv"

log() {
    echo "test.sh: $*" >&2
}

setup_venv() {
    local stamp="$venv_dir/duespark-requirements.txt"
    local wanted
    wanted=$(printf '%s\n' "${python_requirements[@]}")
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] \
        && "$venv_dir/bin/python" -c 'import aiosmtpd, yaml, moto.server' 2>/dev/null; then
        return
    fi

    log "creating Python venv $venv_dir with ${python_requirements[*]}"
    rm -rf "$venv_dir"
    mkdir -p "$(dirname "$venv_dir")"
    if ! python3 -m venv "$venv_dir"; then
        log "python3 -m venv failed; install Python 3 with its venv module (Debian: apt-get install python3-venv)"
        exit 1
    fi
    "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check "${python_requirements[@]}"
    echo "$wanted" >"$stamp"
}

# Print the directory that contains initdb and pg_ctl, searching in the same order as
# `duespark dev` (src/local_pg.rs).
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
    if [[ -n "${PG_BIN_DIR:-}" ]]; then
        log "PG_BIN_DIR=$PG_BIN_DIR does not contain initdb and pg_ctl"
    else
        log "PostgreSQL server programs (initdb, pg_ctl) not found. Install the PostgreSQL server"
        log "(Debian or Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16),"
        log "set PG_BIN_DIR to their directory, or set DATABASE_URL to an existing server."
    fi
    exit 1
}

# Print the match of a glob such as /usr/lib/postgresql/*/bin with the highest version, or nothing.
newest_dir() {
    local pattern=$1
    compgen -G "$pattern" | sort -V | tail -n 1 || true
}

free_port() {
    "$venv_dir/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Set by start_temporary_postgres, read by stop_temporary_postgres on exit.
pg_tmp_dir=""
pg_bin_dir=""

# Run a PostgreSQL server program, as the postgres system user when this script runs as root.
as_server_user() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_temporary_postgres() {
    pg_bin_dir=$(find_pg_bin_dir)
    if [[ $(id -u) -eq 0 ]]; then
        if ! id -u postgres >/dev/null 2>&1; then
            log "running as root, but the postgres system user does not exist; PostgreSQL refuses to run as root"
            exit 1
        fi
        # Under /tmp, because root's TMPDIR may be a directory that postgres cannot reach.
        pg_tmp_dir=$(mktemp -d /tmp/duespark-test-pg.XXXXXX)
        chown postgres: "$pg_tmp_dir"
    else
        pg_tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/duespark-test-pg.XXXXXX")
    fi
    trap stop_temporary_postgres EXIT

    local port data_dir="$pg_tmp_dir/data"
    port=$(free_port)
    log "starting temporary PostgreSQL from $pg_bin_dir in $pg_tmp_dir on 127.0.0.1:$port"
    (cd "$pg_tmp_dir" && as_server_user "$pg_bin_dir/initdb" -D "$data_dir" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C --no-sync >"$pg_tmp_dir/initdb.log" 2>&1) || {
        cat "$pg_tmp_dir/initdb.log" >&2
        log "initdb failed"
        exit 1
    }
    # Durability settings are off because the cluster is thrown away after the run.
    cat >>"$data_dir/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg_tmp_dir'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    (cd "$pg_tmp_dir" && as_server_user "$pg_bin_dir/pg_ctl" start -D "$data_dir" \
        -l "$pg_tmp_dir/postgres.log" -w -t 60 >/dev/null) || {
        tail -n 20 "$pg_tmp_dir/postgres.log" >&2 || true
        log "pg_ctl start failed"
        exit 1
    }
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_temporary_postgres() {
    if [[ -f "$pg_tmp_dir/data/postmaster.pid" ]]; then
        (cd "$pg_tmp_dir" && as_server_user "$pg_bin_dir/pg_ctl" stop -D "$pg_tmp_dir/data" \
            -m immediate -w >/dev/null) || log "failed to stop the temporary PostgreSQL in $pg_tmp_dir"
    fi
    rm -rf "$pg_tmp_dir"
}

setup_venv
export DUESPARK_TEST_PYTHON="$venv_dir/bin/python"
export DUESPARK_TEST_SMTP_SERVER="$repo_root/scripts/smtp_server.py"

"$DUESPARK_TEST_PYTHON" scripts/check_compose.py

# The same offline mode for sqlx's compile-time macros as .cargo/config.toml sets, so a build never
# depends on the database that DATABASE_URL names.
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"

if [[ -z "${DATABASE_URL:-}" ]]; then
    start_temporary_postgres
else
    log "using DATABASE_URL from the environment"
fi

# Each integration test creates a database named duespark_test_<unix time>_<random>. Drop those
# that earlier runs left more than two hours ago; younger ones may belong to a run still going.
drop_stale_test_databases() {
    "$DUESPARK_TEST_PYTHON" - <<'PY' || log "could not list stale test databases; continuing"
import os, re, subprocess, time
url = os.environ["DATABASE_URL"]
names = subprocess.run(
    ["psql", url, "-Atc", r"SELECT datname FROM pg_database WHERE datname LIKE 'duespark\_test\_%'"],
    check=True, capture_output=True, text=True,
).stdout.split()
cutoff = time.time() - 2 * 3600
# Names of 32 hex digits come from an older naming scheme without a time, so they are stale too.
stale = [
    name for name in names
    if ((m := re.match(r"duespark_test_(\d+)_", name)) and int(m.group(1)) < cutoff)
    or re.fullmatch(r"duespark_test_[0-9a-f]{32}", name)
]
for name in stale:
    subprocess.run(["psql", url, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False)
if stale:
    print(f"test.sh: dropped {len(stale)} test databases older than two hours", flush=True)
PY
}
drop_stale_test_databases

# `--workspace` would override a `-p`/`--package` selection, so it is added only without one.
selects_packages() {
    local argument
    for argument in "$@"; do
        case "$argument" in
            --) return 1 ;;
            -p | -p?* | --package | --package=*) return 0 ;;
        esac
    done
    return 1
}

cargo_log=$(mktemp "${TMPDIR:-/tmp}/duespark-test-log.XXXXXX")
status=0
if selects_packages "$@"; then
    cargo test "$@" 2>&1 | tee "$cargo_log" || status=$?
else
    cargo test --workspace "$@" 2>&1 | tee "$cargo_log" || status=$?
fi

# cargo prints one summary per test binary, the last one often for doctests with 0 tests; print the
# totals as the closing line.
totals=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$cargo_log" \
    | awk '{ passed += $1; failed += $2 } END { printf "%d passed, %d failed", passed, failed }')
rm -f "$cargo_log"
echo
echo "tests: $totals"
exit "$status"
