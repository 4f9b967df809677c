use cosmwasm_std::StdError;
use thiserror::Error;

/// Every way a message can be refused. A refused message changes no state.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("unauthorized: only the model owner may do this")]
    Unauthorized {},
}
