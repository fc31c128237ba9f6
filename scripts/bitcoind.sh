#!/usr/bin/env bash
# Prints the path of a bitcoind (and bitcoin-cli beside it) for the tests, building one if
# needed, the way a user's machine would get it:
#   1. $BITCOIND if set (a node the user already has);
#   2. else a cached build under ${TESORO_CACHE:-$HOME/.cache/tesoro}, keyed by the version
#      of the crates.io package that carries Bitcoin Core's source (libbitcoinkernel-sys);
#   3. else build it from that package with CMake (8-10 minutes on 2 cores), then cache it.
# Wallet, GUI, ZMQ, IPC, tests, bench and fuzz are off; WITH_EMBEDDED_ASMAP=OFF because the
# crate does not ship the asmap data.
set -euo pipefail

if [ -n "${BITCOIND:-}" ]; then
  [ -x "$BITCOIND" ] || { echo "BITCOIND=$BITCOIND is not an executable" >&2; exit 1; }
  echo "$BITCOIND"
  exit 0
fi

KERNEL_VERSION=0.4.1
cache="${TESORO_CACHE:-$HOME/.cache/tesoro}/bitcoind-kernel-sys-$KERNEL_VERSION"
# One build at a time: test binaries started together (cargo nextest) without $BITCOIND all
# call this script; the first builds, the others wait here and then find the cached one.
mkdir -p "$(dirname "$cache")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache.lock"
  flock 9
fi
if [ -x "$cache/bin/bitcoind" ] && [ -x "$cache/bin/bitcoin-cli" ]; then
  echo "$cache/bin/bitcoind"
  exit 0
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
dpkg -s libboost-dev >/dev/null 2>&1 || need+=(libboost-dev)
command -v g++ >/dev/null 2>&1 || need+=(build-essential)
command -v ccache >/dev/null 2>&1 || need+=(ccache)
if [ ${#need[@]} -gt 0 ]; then
  echo "bitcoind: installing ${need[*]} from Debian's packages" >&2
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "bitcoind: fetching libbitcoinkernel-sys $KERNEL_VERSION (Bitcoin Core's source) from crates.io" >&2
mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-core-source"
version = "0.0.0"
edition = "2021"
[dependencies]
libbitcoinkernel-sys = "=$KERNEL_VERSION"
TOML
touch "$work/fetch/src/lib.rs"
(cd "$work/fetch" && cargo fetch -q >&2)
crate=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/libbitcoinkernel-sys-$KERNEL_VERSION.crate | head -n 1)
tar -xzf "$crate" -C "$work"
src="$work/libbitcoinkernel-sys-$KERNEL_VERSION/bitcoin"
[ -f "$src/CMakeLists.txt" ] || { echo "bitcoind: no Core source tree in $crate" >&2; exit 1; }

echo "bitcoind: building bitcoind and bitcoin-cli (8-10 minutes on 2 cores; cached afterwards in $cache)" >&2
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DBUILD_DAEMON=ON -DBUILD_CLI=ON -DBUILD_TX=OFF -DBUILD_UTIL=OFF -DBUILD_WALLET_TOOL=OFF \
  -DENABLE_WALLET=OFF -DENABLE_IPC=OFF -DWITH_ZMQ=OFF -DBUILD_GUI=OFF -DBUILD_TESTS=OFF \
  -DBUILD_BENCH=OFF -DBUILD_FUZZ_BINARY=OFF -DBUILD_KERNEL_LIB=OFF -DBUILD_KERNEL_TEST=OFF \
  -DENABLE_EXTERNAL_SIGNER=OFF -DWITH_EMBEDDED_ASMAP=OFF -DBUILD_UTIL_CHAINSTATE=OFF >"$work/cmake.log" 2>&1 \
  || { tail -n 40 "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" -j "$(nproc)" --target bitcoind bitcoin-cli >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; exit 1; }
mkdir -p "$cache/bin"
cp "$work/build/bin/bitcoind" "$work/build/bin/bitcoin-cli" "$cache/bin/"
"$cache/bin/bitcoind" -version | head -n 1 >&2
echo "$cache/bin/bitcoind"
