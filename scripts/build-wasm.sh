#!/usr/bin/env bash
# Builds every Wasm artifact at the MVP feature level (what cosmwasm-check 2.x accepts), then
# validates each exactly as cosmwasm-check 2.2.10 does and refuses any float instruction.
#   scripts/build-wasm.sh              build + check
#   scripts/build-wasm.sh --self-test  first prove the float gate works: a contract built with a
#                                      planted float (feature float-canary) must be rejected
#   scripts/build-wasm.sh --no-check   build only (what tests call to refresh the artifacts)
# Output: target/wasm32-unknown-unknown/release/*.wasm (under $CARGO_TARGET_DIR if set)
set -euo pipefail
cd "$(dirname "$0")/.."

CONTRACTS=(cwnn-model-contract)
MODULES=(cwnn-wasm-kernels)
# Example contracts build on their own: they enable the model contract's `library` feature,
# which would strip its entry points if built in the same invocation.
EXAMPLES=(cwnn-digit-oracle cwnn-inline-model)
# Built at opt-level "z" on their own: cw721 alone is 881 KB at opt-level 3, over the chain's
# 800 KiB MaxWasmSize (657 KB at "z").
SMALL=(cwnn-collection)
# Runtimes for baked models (`cwnn bake` picks the smallest that has a model's layers): the
# model contract with fewer layer families (model-contract's features), as cwnn_runtime_NAME.
RUNTIMES=(core conv seq attn)
TARGET=${CARGO_TARGET_DIR:-target}
OUT=$TARGET/wasm32-unknown-unknown/release

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add rust-src >/dev/null 2>&1 || rustup component add rust-src

# Rust ≥ 1.82 emits bulk-memory, reference types, etc. by default; target-cpu=mvp with a rebuilt
# std turns them off. RUSTC_BOOTSTRAP lets stable cargo use -Zbuild-std.
# -disable-lsr: LLVM's loop strength reduction rewrites the unrolled kernels' addresses into
# separate adds, which the Wasm backend cannot fold into load offsets; without it an unrolled
# multiply-add is 6 Wasm operators instead of 10 (CosmWasm meters each one; benches/RESULTS.md).
wasm_build() {
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C target-cpu=mvp -C llvm-args=-disable-lsr" \
    cargo build --release --lib --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort "$@"
}
name() { echo "${1//-/_}"; }

small_build() {
  for c in "${SMALL[@]}"; do CARGO_PROFILE_RELEASE_OPT_LEVEL=z wasm_build "$@" -p "$c"; done
}

# Before the full model contract: each build writes cwnn_model_contract.wasm.
runtimes_build() {
  for r in "${RUNTIMES[@]}"; do
    local features=()
    [[ $r == core ]] || features=(--features "$r")
    wasm_build "$@" -p cwnn-model-contract --no-default-features "${features[@]}"
    cp "$OUT/cwnn_model_contract.wasm" "$OUT/cwnn_runtime_$r.wasm"
  done
}

if [[ "${1:-}" == "--no-check" ]]; then
  runtimes_build -q
  args=()
  for c in "${CONTRACTS[@]}" "${MODULES[@]}"; do args+=(-p "$c"); done
  wasm_build -q "${args[@]}"
  for c in "${EXAMPLES[@]}"; do wasm_build -q -p "$c"; done
  small_build -q
  exit 0
fi

# The checker. scripts/test.sh passes the one its test build made: building it alone would
# resolve different dependency features and compile part of the tree a second time.
CHECK=${CWNN_WASM_CHECK:-}
if [[ -z "$CHECK" ]]; then
  cargo build -q -p cwnn-vm --bin cwnn-wasm-check
  CHECK=$TARGET/debug/cwnn-wasm-check
fi

if [[ "${1:-}" == "--self-test" ]]; then
  echo "== float gate self-test: a contract with a planted float must be rejected"
  wasm_build -p cwnn-model-contract --features float-canary
  mkdir -p "$TARGET/float-canary"
  cp "$OUT/cwnn_model_contract.wasm" "$TARGET/float-canary/"
  if "$CHECK" --contract "$TARGET/float-canary/cwnn_model_contract.wasm"; then
    echo "float gate self-test FAILED: the planted float was not detected" >&2
    exit 1
  fi
  echo "float gate self-test passed: the planted float was rejected"
fi

echo "== building Wasm (MVP): runtimes ${RUNTIMES[*]}, ${CONTRACTS[*]} ${MODULES[*]}"
runtimes_build
args=()
for c in "${CONTRACTS[@]}" "${MODULES[@]}"; do args+=(-p "$c"); done
wasm_build "${args[@]}"
for c in "${EXAMPLES[@]}"; do wasm_build -p "$c"; done
small_build

checks=()
for c in "${CONTRACTS[@]}" "${EXAMPLES[@]}" "${SMALL[@]}"; do checks+=(--contract "$OUT/$(name "$c").wasm"); done
for r in "${RUNTIMES[@]}"; do checks+=(--contract "$OUT/cwnn_runtime_$r.wasm"); done
for m in "${MODULES[@]}"; do checks+=(--module "$OUT/$(name "$m").wasm"); done
"$CHECK" "${checks[@]}"
