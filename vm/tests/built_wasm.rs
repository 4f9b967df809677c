//! The Wasm that scripts/build-wasm.sh produced passes the chain's checks.

use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::check::{check_contract, check_module};

#[test]
fn model_contract_passes_cosmwasm_check_and_has_no_floats() {
    check_contract(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
}

#[test]
fn kernel_module_is_mvp_and_float_free() {
    check_module(&read_wasm("cwnn_wasm_kernels").unwrap()).unwrap();
}

#[test]
fn kernel_module_is_not_a_contract() {
    // The contract check really checks: a module without the CosmWasm interface fails it.
    let err = check_contract(&read_wasm("cwnn_wasm_kernels").unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("interface_version"), "{err:#}");
}
