use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Binary, HexBinary};
use cwnn_layers::{Layer, TensorSpec};

#[cw_serde]
pub struct InstantiateMsg {
    pub model: ModelConfig,
    /// sha256 of every layer's weights concatenated in layer order: what `Finalize` checks.
    pub weights_sha256: HexBinary,
    /// Work a `Predict` query may do; defaults to [`WorkBudget::default_query`].
    pub query_budget: Option<WorkBudget>,
    /// Owner of the model; defaults to the instantiating address.
    pub owner: Option<String>,
}

/// The network: its input and its layers in evaluation order.
#[cw_serde]
pub struct ModelConfig {
    pub name: String,
    pub input: TensorSpec,
    pub layers: Vec<LayerConfig>,
}

#[cw_serde]
pub struct LayerConfig {
    pub layer: Layer,
    /// Tensors this layer reads: 0 is the model input, `k` the output of layer `k − 1`.
    /// Defaults to the previous layer's output (a plain sequential model).
    pub inputs: Option<Vec<u32>>,
}

/// Limits on the work of one call. Weight bytes read dominate gas on chain (3 SDK gas a byte).
#[cw_serde]
pub struct WorkBudget {
    pub max_macs: u64,
    pub max_weight_bytes: u64,
}

impl WorkBudget {
    /// Fits a 3,000,000 SDK-gas smart query: 512 KiB of weights cost ~1.6M SDK gas to read.
    pub fn default_query() -> Self {
        WorkBudget {
            max_macs: 4_000_000,
            max_weight_bytes: 512 * 1024,
        }
    }
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Uploads chunk `offset / CHUNK_BYTES` of layer `layer`'s weights (owner only). Chunks
    /// arrive in order, layer by layer; each is exactly `CHUNK_BYTES` long but the last of a
    /// layer, which holds the rest.
    UploadWeights { layer: u32, offset: u64, data: Binary },
    /// Checks that every weight is present and matches `weights_sha256`; the model is then
    /// immutable and can be evaluated (owner only).
    Finalize {},
    /// Hands the model to another address (owner only).
    TransferOwnership { new_owner: String },
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(OwnerResponse)]
    Owner {},
    #[returns(ModelInfoResponse)]
    ModelInfo {},
    /// Runs the whole model on a quantized input (values in the input's integer type, row-major).
    #[returns(PredictResponse)]
    Predict { input: Vec<i32> },
}

#[cw_serde]
pub struct OwnerResponse {
    pub owner: String,
}

#[cw_serde]
pub struct LayerInfo {
    pub kind: String,
    pub output: TensorSpec,
    pub weight_bytes: u64,
    pub uploaded_bytes: u64,
    pub macs: u64,
    pub units: u64,
}

#[cw_serde]
pub struct ModelInfoResponse {
    pub name: String,
    pub input: TensorSpec,
    pub weights_sha256: HexBinary,
    pub finalized: bool,
    pub query_budget: WorkBudget,
    pub layers: Vec<LayerInfo>,
}

#[cw_serde]
pub struct PredictResponse {
    /// The last layer's output, quantized (dequantize with `output`'s parameters).
    pub output: TensorSpec,
    pub data: Vec<i32>,
}
