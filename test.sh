#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs and starts what the tests need
# (PostgreSQL from Debian's packages), runs fmt, clippy and every test, then stops what
# it started. Usage: ./test.sh [extra args for the test runner]
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

started_pg=""
cleanup() {
  if [ -n "$started_pg" ]; then
    say "stopping the PostgreSQL cluster this script started ($started_pg)"
    as_root pg_ctlcluster $started_pg stop || true
  fi
}
trap cleanup EXIT

ensure_postgres() {
  if [ -n "${TESORO_TEST_PG:-}" ]; then
    say "using PostgreSQL at TESORO_TEST_PG"
    return
  fi
  if ! dpkg -s postgresql >/dev/null 2>&1; then
    say "installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
    say "creating PostgreSQL $ver cluster 'main'"
    as_root pg_createcluster "$ver" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
    say "starting PostgreSQL $ver"
    as_root pg_ctlcluster "$ver" main start
    started_pg="$ver main"
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
  # A throwaway role for the tests; each test makes and drops its own database.
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tesoro_test') THEN
        CREATE ROLE tesoro_test LOGIN CREATEDB PASSWORD 'tesoro_test';
      END IF; END \\\$\\\$;\"" >/dev/null
  export TESORO_TEST_PG="postgres://tesoro_test:tesoro_test@127.0.0.1:5432/postgres"
}

ensure_postgres

# The portal's end-to-end tests (crates/tesoro/tests/e2e_*.rs) drive a real headless
# Chromium through chromedriver: Debian's packages, installed when missing.
ensure_chromium() {
  if [ "${TESORO_SKIP_BROWSER:-}" = 1 ]; then
    say "TESORO_SKIP_BROWSER=1: the browser tests will skip"
    return
  fi
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "installing Chromium and chromedriver from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  TESORO_CHROMIUM=$(command -v chromium)
  TESORO_CHROMEDRIVER=$(command -v chromedriver)
  export TESORO_CHROMIUM TESORO_CHROMEDRIVER
  chromedriver --version | head -n 1
}
ensure_chromium

# The node tests (crates/tesoro/tests/node_*.rs) run a real bitcoind: $BITCOIND if set, else
# a cached build made once per machine from the crates.io package carrying Core's source.
say "bitcoind for the node tests"
BITCOIND=$(./scripts/bitcoind.sh)
export BITCOIND
"$BITCOIND" -version | head -n 1

# A clean build must fit a small disk: no incremental caches (they only help rebuilds).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
