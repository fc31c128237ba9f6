#!/usr/bin/env bash
# Load benchmark of `tesoro serve`: the public summary endpoint and the public page, with wrk
# (256 connections, 2 threads, 10 s, latency distribution), on SQLite and on PostgreSQL.
#
#   scripts/loadbench.sh            # both backends (PostgreSQL from TESORO_TEST_PG)
#   BACKENDS=sqlite scripts/loadbench.sh
#   BACKENDS=postgres PAGE_PATH=/state/SV DURATION=10s scripts/loadbench.sh
#   PROFILE=dev DURATION=2s scripts/loadbench.sh   # checks the script with a debug build
#   RUST_LOG=tesoro_server=debug SERVE_LOG=/tmp/serve-logs scripts/loadbench.sh  # keep logs
#
# The office: the generated `reserve.toml` chain (tesoro-testchain), its wallets registered
# under SV-ONBTC below SV, synced from the blocks dir; a few days of prices so the summary
# carries a valuation. Release build in CARGO_TARGET_DIR (default target-web).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-web}
BACKENDS=${BACKENDS:-"sqlite postgres"}
PAGE_PATH=${PAGE_PATH:-/}
SUMMARY_PATH=/api/v1/public/summary?entity=SV
DURATION=${DURATION:-10s}

# PROFILE=dev checks the script itself with a debug build; figures come from release.
PROFILE=${PROFILE:-release}
case $PROFILE in dev) OUT=debug ;; *) OUT=$PROFILE ;; esac

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
# --example alone would build only the example and leave a stale server binary.
nice -n 5 cargo build --profile "$PROFILE" -q -p tesoro --bin tesoro -p tesoro-testchain --example generate
BIN=$CARGO_TARGET_DIR/$OUT/tesoro
# What was measured: the commit, and whether the tree had changes on top of it.
BUILD=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || BUILD="$BUILD+dirty"
GEN=$CARGO_TARGET_DIR/$OUT/examples/generate
WORK=$(mktemp -d)
SERVER_PID=
PG_DB=
drop_pg() { # the PostgreSQL database this run created, if any
    [ -n "$PG_DB" ] || return 0
    psql "$TESORO_TEST_PG" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    PG_DB=
}
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    drop_pg
    rm -rf "$WORK"
}
trap cleanup EXIT

"$GEN" crates/tesoro-testchain/scenarios/reserve.toml "$WORK/chain" >/dev/null
printf "date,price\n" >"$WORK/prices.csv"
python3 - "$WORK" <<'PY'
import datetime, json, shlex, sys
work = sys.argv[1]
exp = json.load(open(f"{work}/chain/expected.json"))
q = shlex.quote  # descriptors hold ' for hardened steps
with open(f"{work}/wallets.sh", "w") as f:
    for w in exp["wallets"]:
        f.write(f"t wallet add --entity SV-ONBTC --name {q(w['name'])} --descriptor {q(w['external'])} "
                f"--change-descriptor {q(w['internal'])} --gap-limit {w['gap_limit']}\n")
    for a in exp["addresses"]:
        f.write(f"t wallet add --entity SV --name {q(a['name'])} --addresses {q(a['address'])}\n")
with open(f"{work}/prices.csv", "a") as f:
    d = datetime.date(2009, 1, 1)
    while d <= datetime.date(2030, 12, 31):
        f.write(f"{d},100000.00\n")
        d += datetime.timedelta(days=30)
PY

setup_office() { # $1 = database URL
    local url=$1
    t() { "$BIN" --db "$url" "$@" >/dev/null; }
    t init --network regtest
    t entity add "El Salvador" --code SV
    t entity add "Bitcoin Office" --code SV-ONBTC --parent SV
    # shellcheck disable=SC1091
    source "$WORK/wallets.sh"
    t sync --source "core-dir:$WORK/chain/blocks"
    t prices import generic "$WORK/prices.csv" --currency USD
}

bench() { # $1 = label, $2 = URL path
    echo "== $1: $2"
    wrk -c256 -t2 -d"$DURATION" --latency "http://$ADDR$2" | tee "$WORK/wrk.txt"
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
    p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.txt")
    p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.txt")
    echo "RESULT $BUILD $BACKEND $1 rps=$rps p50=$p50 p99=$p99"
}

for BACKEND in $BACKENDS; do
    case $BACKEND in
        sqlite) URL="sqlite://$WORK/tesoro.db" ;;
        postgres)
            : "${TESORO_TEST_PG:?set TESORO_TEST_PG=postgres://USER:PW@127.0.0.1:5432/postgres}"
            command -v psql >/dev/null || { echo "psql is missing: apt-get install -y postgresql-client" >&2; exit 1; }
            pg_isready -q -d "$TESORO_TEST_PG" 2>/dev/null || psql "$TESORO_TEST_PG" -qc "SELECT 1" >/dev/null \
                || { echo "PostgreSQL at TESORO_TEST_PG does not answer" >&2; exit 1; }
            # A database of its own, made here and dropped at the end (even on failure).
            PG_DB=tesoro_loadbench_$$
            psql "$TESORO_TEST_PG" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
            psql "$TESORO_TEST_PG" -qc "CREATE DATABASE $PG_DB" >/dev/null
            URL="${TESORO_TEST_PG%/*}/$PG_DB" ;;
        *) echo "unknown backend $BACKEND" >&2; exit 1 ;;
    esac
    # `tesoro init` writes tesoro.toml where it runs: a folder per backend, not the checkout.
    mkdir -p "$WORK/$BACKEND" && cd "$WORK/$BACKEND"
    setup_office "$URL"
    if [ "$BACKEND" = postgres ]; then
        # Measure the steady state: right after the sync, autovacuum and the checkpointer
        # rewrite what the setup just wrote, on the same 2 cores as wrk and the server.
        psql "$URL" -qc "VACUUM ANALYZE" >/dev/null 2>&1 || true
        sleep 5
    fi
    "$BIN" --db "$URL" serve --bind 127.0.0.1:0 2>"$WORK/serve.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do grep -q "serving on" "$WORK/serve.log" && break; sleep 0.1; done
    ADDR=$(sed -n 's/.*serving on http:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.log" | head -1)
    # Warm both caches: the first wave should not measure one build.
    curl -fsS "http://$ADDR$SUMMARY_PATH" >/dev/null
    curl -fsS "http://$ADDR$PAGE_PATH" >/dev/null
    bench summary "$SUMMARY_PATH"
    bench page "$PAGE_PATH"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    # SERVE_LOG=DIR keeps each backend's server log (with RUST_LOG=tesoro_server=debug, say).
    [ -n "${SERVE_LOG:-}" ] && mkdir -p "$SERVE_LOG" && cp "$WORK/serve.log" "$SERVE_LOG/$BACKEND.log"
    drop_pg
done
