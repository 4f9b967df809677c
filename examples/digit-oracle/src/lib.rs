//! A dApp that uses a cwnn model: it asks the model contract for class scores with a
//! `Predict` smart query and keeps the winning digit. This is how another contract calls a
//! model in the same transaction; for models over the query budget, send `Evaluate` as a
//! sub-message instead and read `EvaluateResponse` from the reply data.

pub mod contract;
pub mod msg;
pub mod state;

pub use contract::ContractError;
