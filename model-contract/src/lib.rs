//! cwnn's model contract: holds a quantized network and evaluates it on chain.
//!
//! Layout follows cw-plus: [`contract`] (entry points and dispatch), `execute` and `query`
//! (one handler per message), `config` (validation), `eval` (the engine), [`msg`], [`state`],
//! [`error`].

mod config;
pub mod contract;
pub mod error;
mod eval;
mod execute;
pub mod msg;
mod query;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "train")]
mod train;

pub use crate::error::ContractError;
/// How the contract reads a message's `input` / `input_bytes`, for contracts that run a model
/// themselves (`cwnn bake --rust`).
pub use crate::eval::input_tensor;

/// A deliberate float instruction, compiled only with the `float-canary` feature, so that
/// `scripts/build-wasm.sh --self-test` can show the float gate rejects a contract that has one.
#[cfg(feature = "float-canary")]
#[no_mangle]
pub extern "C" fn float_canary(bits: u64) -> u64 {
    (f64::from_bits(bits) * 1.5).to_bits()
}
