use cosmwasm_std::StdError;
use cw721::error::Cw721ContractError;
use thiserror::Error;

/// Every way a message can be refused. A refused message changes no state.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("{0}")]
    Cw721(#[from] Cw721ContractError),

    #[error("{address} is not a cwnn model contract this collection accepts (code ids {code_ids:?})")]
    NotAModel { address: String, code_ids: Vec<u64> },

    #[error("model {model} has a wasmd admin ({admin}), who could migrate it after a sale: instantiate models with no admin")]
    ModelHasAdmin { model: String, admin: String },

    #[error("model {model} is already minted as token {token_id}")]
    AlreadyMinted { model: String, token_id: String },

    #[error("model {model} is not finalized")]
    NotFinalized { model: String },

    #[error("model {model} claims to be a baked cwnn model, but no accepted runtime matches its code: {reason}")]
    NotGenuineBake { model: String, reason: String },

    #[error("invalid collection config: {0}")]
    InvalidConfig(&'static str),
}
