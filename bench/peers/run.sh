#!/usr/bin/env bash
# Runs the peer job queues (Graphile Worker and pg-boss, from graphile.mjs and pgboss.mjs) and,
# with --duespark, `duespark bench`, against one PostgreSQL server, for several rounds, so the
# figures come out side by side.
#
# Each system gets a database of its own, duespark_peer_<name>, which this script creates on the
# server and drops when it exits. The script stops when one of these databases already exists,
# because another run may be using it. It runs `npm ci` first when node_modules is missing.
# Rounds alternate the systems (round 1: each system once, then round 2, ...).
#
# Output: the JSON lines of every system and round on stdout, each with a "round" field. At the
# end, summarize.mjs prints the medians on stderr. `duespark bench` gives the same three figures:
# insert, drain and latency.
#
# Example, from the repository root, with ours built by `cargo build --release`:
#   bash bench/peers/run.sh --rounds 3 --duespark target/release/duespark > peers.jsonl

set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash bench/peers/run.sh [options]

Options:
  --server URL                 PostgreSQL server, without a database path or query
                               (default postgres://postgres@127.0.0.1:5432)
  --rounds R                   rounds per system (default 3)
  --jobs N                     no-op jobs per insert and drain (default 20000)
  --peers LIST                 comma-separated peers: graphile,pgboss (default both)
  --graphile-args "ARGS"       extra options for graphile.mjs, e.g. "--concurrency 32"
  --pgboss-args "ARGS"         extra options for pgboss.mjs, e.g. "--batch-size 500"
  --duespark BIN               also run `BIN bench` (the duespark binary); off by default
  --duespark-concurrency C     --concurrency of `duespark bench` (default 6000)
  --duespark-batch B           --batch of `duespark bench` (default 3000)
  -h, --help                   print this help
EOF
}

server="postgres://postgres@127.0.0.1:5432"
rounds=3
jobs=20000
peers="graphile,pgboss"
graphile_args=""
pgboss_args=""
duespark_bin=""
duespark_concurrency=6000
duespark_batch=3000

while [[ $# -gt 0 ]]; do
  case "$1" in
    --server) server="${2:?--server needs a value}"; shift 2 ;;
    --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --peers) peers="${2:?--peers needs a value}"; shift 2 ;;
    --graphile-args) graphile_args="${2?--graphile-args needs a value}"; shift 2 ;;
    --pgboss-args) pgboss_args="${2?--pgboss-args needs a value}"; shift 2 ;;
    --duespark) duespark_bin="${2:?--duespark needs a value}"; shift 2 ;;
    --duespark-concurrency) duespark_concurrency="${2:?--duespark-concurrency needs a value}"; shift 2 ;;
    --duespark-batch) duespark_batch="${2:?--duespark-batch needs a value}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

for value in "$rounds" "$jobs" "$duespark_concurrency" "$duespark_batch"; do
  if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: --rounds, --jobs, --duespark-concurrency and --duespark-batch must be positive integers, got '$value'" >&2
    exit 2
  fi
done
server="${server%/}"

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

systems=()
IFS=',' read -r -a peer_list <<<"$peers"
for peer in "${peer_list[@]}"; do
  case "$peer" in
    graphile | pgboss) systems+=("$peer") ;;
    *) echo "run.sh: unknown peer '$peer', expected graphile or pgboss" >&2; exit 2 ;;
  esac
done
if [[ -n "$duespark_bin" ]]; then
  if [[ ! -x "$duespark_bin" ]]; then
    echo "run.sh: --duespark: '$duespark_bin' is not an executable file; build it with cargo build --release" >&2
    exit 2
  fi
  duespark_bin="$(cd "$(dirname "$duespark_bin")" && pwd)/$(basename "$duespark_bin")"
  systems+=("duespark")
fi

if [[ ! -d "$bench_dir/node_modules" ]]; then
  echo "run.sh: node_modules is missing; running npm ci in $bench_dir" >&2
  (cd "$bench_dir" && npm ci --no-audit --no-fund >&2)
fi

created_databases=()
results="$(mktemp)"
system_output="$(mktemp)"
child_pid=""

drop_databases() {
  local database
  for database in "${created_databases[@]}"; do
    psql "$server/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >&2 ||
      echo "run.sh: failed to drop database $database; drop it with:" \
        "psql $server/postgres -c 'DROP DATABASE $database'" >&2
  done
  rm -f "$results" "$system_output"
}

stop_child() {
  if [[ -n "$child_pid" ]]; then
    kill "$child_pid" 2>/dev/null || true
    wait "$child_pid" 2>/dev/null || true
  fi
}

trap drop_databases EXIT
trap 'stop_child; exit 130' INT
trap 'stop_child; exit 143' TERM

for system in "${systems[@]}"; do
  database="duespark_peer_$system"
  exists="$(psql "$server/postgres" -v ON_ERROR_STOP=1 -Atqc "SELECT 1 FROM pg_database WHERE datname = '$database'")"
  if [[ -n "$exists" ]]; then
    echo "run.sh: database $database already exists on $server; another run may be using it." \
      "If none is, drop it with: psql $server/postgres -c 'DROP DATABASE $database'" >&2
    exit 1
  fi
  psql "$server/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $database" >&2
  created_databases+=("$database")
done

# Runs `duespark bench`, whose JSON lines already have the peers' format.
run_duespark() {
  DATABASE_URL="$server/duespark_peer_duespark" RUST_LOG=warn \
    "$duespark_bin" bench --jobs "$jobs" --concurrency "$duespark_concurrency" --batch "$duespark_batch" \
    --measure insert,drain,latency --json
}

# Runs one system. It is started in the background, and exec makes the peer's node process the
# background job itself, so that INT and TERM can stop it by its PID at once.
run_system() {
  local system="$1"
  local url="$server/duespark_peer_$system"
  case "$system" in
    # The option strings are split into words on purpose.
    # shellcheck disable=SC2086
    graphile) exec node "$bench_dir/graphile.mjs" --database-url "$url" --jobs "$jobs" $graphile_args ;;
    # shellcheck disable=SC2086
    pgboss) exec node "$bench_dir/pgboss.mjs" --database-url "$url" --jobs "$jobs" $pgboss_args ;;
    duespark) run_duespark ;;
  esac
}

for ((round = 1; round <= rounds; round++)); do
  for system in "${systems[@]}"; do
    echo "run.sh: round $round of $rounds: $system" >&2
    run_system "$system" >"$system_output" &
    child_pid=$!
    wait "$child_pid"
    child_pid=""
    sed "s/^{/{\"round\":$round,/" "$system_output" | tee -a "$results"
  done
done

echo "run.sh: medians" >&2
node "$bench_dir/summarize.mjs" <"$results" >&2
