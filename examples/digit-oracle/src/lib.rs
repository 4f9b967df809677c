//! A dApp that uses a cwnn model. Its `Classify` execute sends the model a paid `Predict`
//! execute (forwarding exactly the funds it got, so it keeps none) and keeps the winning digit
//! from the reply: how another contract gets a model's answer inside its own transaction, fee
//! included. Its `Classify` query uses the model's free `Predict` query, which a model with a
//! fee answers only if its holder allows free queries. For models over the execute budget,
//! send `Evaluate` as a sub-message and read `EvaluateResponse` from the reply data.

pub mod contract;
pub mod msg;
pub mod state;

pub use contract::ContractError;
