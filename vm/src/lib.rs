//! Runs cwnn's Wasm the way a chain does.
//!
//! - [`check`]: the validation `cosmwasm-check` 2.2.10 runs (cosmwasm-vm's `check_wasm` with
//!   default limits and capabilities, then a compile with wasmer), plus cwnn's own rules: no
//!   float instruction anywhere and the MVP feature set.
//! - [`floats`]: the float scan on its own.
//! - [`kernels`]: the kernel module (`cwnn-wasm-kernels`) in wasmtime, for determinism checks.
//! - [`runner`]: contracts in cosmwasm-vm with [`chain`]'s storage billing: gas per call, per layer.
//! - [`report`]: the per-layer gas report and the call planner.
//! - [`deploy`]: what deploying a model costs, transaction by transaction.
//! - [`artifacts`]: where the build script puts the Wasm files.

pub mod artifacts;
pub mod chain;
pub mod check;
pub mod deploy;
pub mod floats;
pub mod kernels;
pub mod report;
pub mod runner;
