#!/usr/bin/env bash
# Every test, on a fresh machine: installs the Wasm target and rust-src, builds each Wasm
# artifact at the MVP level and checks it (cosmwasm-check 2.2.10's validation + float scan,
# after proving the float gate rejects a planted float), then runs the workspace's tests,
# criterion benches included (once each, in test mode), and the TypeScript client's tests
# and browser test (clients/ts; npm packages and Debian's chromium are installed here).
set -euo pipefail
cd "$(dirname "$0")/.."

# One native build of everything (the Wasm checker included), shared by every step below.
cargo test --workspace --all-targets --no-run
CWNN_WASM_CHECK="${CARGO_TARGET_DIR:-target}/debug/cwnn-wasm-check" scripts/build-wasm.sh --self-test
# Every test reads the Wasm just built and checked. Without this each test process would first
# run `build-wasm.sh --no-check` again: about a minute, as each runtime's features relink the
# contract (measured 67 s with nothing changed).
CWNN_WASM_DIR="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/wasm32-unknown-unknown/release"
export CWNN_WASM_DIR
cargo test --workspace --all-targets
cargo test --workspace --doc

# The TypeScript client (clients/ts): its tests against this build's `cwnn` and contract Wasm,
# then its example page in headless Chromium (Debian's package, installed here if missing).
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
(cd clients/ts && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run test:browser)
