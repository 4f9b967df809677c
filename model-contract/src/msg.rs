use cosmwasm_schema::{cw_serde, QueryResponses};

#[cw_serde]
pub struct InstantiateMsg {
    /// Owner of the model; defaults to the instantiating address.
    pub owner: Option<String>,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Hands the model to another address (owner only).
    TransferOwnership { new_owner: String },
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(OwnerResponse)]
    Owner {},
}

#[cw_serde]
pub struct OwnerResponse {
    pub owner: String,
}
