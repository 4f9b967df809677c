use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::Binary;

#[cw_serde]
pub struct InstantiateMsg {}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    /// The model's scores for one quantized input (`input` values, or `input_bytes` as the
    /// model contract takes them) and the best label.
    #[returns(Classification)]
    Classify {
        #[serde(default)]
        input: Vec<i32>,
        input_bytes: Option<Binary>,
    },
    /// The compiled-in model's identity.
    #[returns(ModelResponse)]
    Model {},
}

#[cw_serde]
pub struct Classification {
    pub label: u32,
    /// The last layer's quantized output (dequantize with the model's output spec).
    pub scores: Vec<i32>,
}

#[cw_serde]
pub struct ModelResponse {
    pub name: String,
    pub model_sha256: String,
    pub weights_sha256: String,
}
