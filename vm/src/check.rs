//! The checks every cwnn Wasm build must pass before it is shipped.

use std::collections::HashSet;

use anyhow::{bail, Context, Result};
use cosmwasm_vm::internals::{check_wasm, compile_module, Logger};
use cosmwasm_vm::{capabilities_from_csv, WasmLimits};
use wasmparser::{Validator, WasmFeatures};

use crate::floats;

/// cosmwasm-check 2.2.10's default capabilities (packages/check/src/main.rs).
pub const DEFAULT_CAPABILITIES: &str =
    "iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";

/// The feature set cosmwasm-vm 2.2 accepts (packages/vm/src/parsed_wasm.rs): MVP plus mutable
/// globals, sign extension, saturating float-to-int and multi-value. No SIMD, bulk memory or
/// reference types.
pub const CHAIN_FEATURES: WasmFeatures = WasmFeatures::MUTABLE_GLOBAL
    .union(WasmFeatures::SATURATING_FLOAT_TO_INT)
    .union(WasmFeatures::SIGN_EXTENSION)
    .union(WasmFeatures::MULTI_VALUE)
    .union(WasmFeatures::FLOATS);

/// Validates a contract exactly as `cosmwasm-check` 2.2.10 does (static checks with default
/// limits and capabilities, then a wasmer compile), then refuses any float.
pub fn check_contract(wasm: &[u8]) -> Result<()> {
    let caps: HashSet<String> = capabilities_from_csv(DEFAULT_CAPABILITIES);
    check_wasm(wasm, &caps, &WasmLimits::default(), Logger::Off).context("cosmwasm-vm check_wasm")?;
    compile_module(wasm, None).context("cosmwasm-vm compile")?;
    check_no_floats(wasm)
}

/// Validates a plain Wasm module (no CosmWasm interface) against the chain's feature set and
/// refuses any float.
pub fn check_module(wasm: &[u8]) -> Result<()> {
    Validator::new_with_features(CHAIN_FEATURES)
        .validate_all(wasm)
        .context("Wasm validation with the chain's feature set (MVP level)")?;
    check_no_floats(wasm)
}

/// Fails with a listing of the first float uses, if there are any.
pub fn check_no_floats(wasm: &[u8]) -> Result<()> {
    let found = floats::scan(wasm)?;
    if found.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{} float instruction(s) or declaration(s) found:", found.len());
    for f in found.iter().take(10) {
        let func = f.function.map_or(String::new(), |i| format!("function {i}, "));
        msg.push_str(&format!("\n  {func}offset {:#x}: {}", f.offset, f.what));
    }
    bail!(msg)
}
