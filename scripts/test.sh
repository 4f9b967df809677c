#!/usr/bin/env bash
# Every test, on a fresh machine: installs the Wasm target and rust-src, builds each Wasm
# artifact at the MVP level and checks it (cosmwasm-check 2.2.10's validation + float scan,
# after proving the float gate rejects a planted float), then runs the workspace's tests,
# criterion benches included (once each, in test mode).
set -euo pipefail
cd "$(dirname "$0")/.."

# One native build of everything (the Wasm checker included), shared by every step below.
cargo test --workspace --all-targets --no-run
CWNN_WASM_CHECK="${CARGO_TARGET_DIR:-target}/debug/cwnn-wasm-check" scripts/build-wasm.sh --self-test
cargo test --workspace --all-targets
cargo test --workspace --doc
