use cosmwasm_schema::{cw_serde, QueryResponses};

#[cw_serde]
pub struct InstantiateMsg {
    /// The cwnn model contract to ask (its output: one score per class).
    pub model: String,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Classifies a quantized image with the model's paid `Predict` (send the model's fee, or
    /// nothing for a free model) and records the label for the sender.
    Classify { input: Vec<i32> },
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    /// Classifies without recording anything.
    #[returns(Classification)]
    Classify { input: Vec<i32> },
    /// The last label recorded for `address`.
    #[returns(Option<Classification>)]
    Last { address: String },
}

#[cw_serde]
pub struct Classification {
    pub label: u32,
    /// The winning class's quantized score.
    pub score: i32,
}
