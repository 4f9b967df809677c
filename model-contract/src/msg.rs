use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Coin, HexBinary};
use cwnn_layers::{Layer, TensorSpec};

pub use crate::state::NftBinding;

#[cw_serde]
pub struct InstantiateMsg {
    pub model: ModelConfig,
    /// sha256 of every layer's weights concatenated in layer order: what `Finalize` checks.
    pub weights_sha256: HexBinary,
    /// Work a `Predict` query may do; defaults to [`WorkBudget::default_query`].
    pub query_budget: Option<WorkBudget>,
    /// Work one `Evaluate` / `Continue` call may do; defaults to [`WorkBudget::default_execute`].
    /// Every layer's smallest segment (one unit) must fit it.
    pub execute_budget: Option<WorkBudget>,
    /// Paid with each `Evaluate`, sent on to the owner at once; none by default.
    pub fee: Option<Coin>,
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

/// Limits on the work of one call. Weight bytes read dominate gas on chain (3 SDK gas a byte);
/// a MAC costs about 1,000 CosmWasm gas, i.e. ~0.007 SDK gas.
#[cw_serde]
pub struct WorkBudget {
    pub max_macs: u64,
    /// Weight bytes the call's segments read (a recurrent layer reads its weights per segment).
    pub max_weight_bytes: u64,
    /// Layer segments per call; a whole-model `Predict` runs one per layer.
    pub max_segments: u32,
}

impl WorkBudget {
    /// Fits a 3,000,000 SDK-gas smart query: 512 KiB of weights cost ~1.6M SDK gas to read,
    /// 20M MACs ~0.15M.
    pub fn default_query() -> Self {
        WorkBudget {
            max_macs: 20_000_000,
            max_weight_bytes: 512 * 1024,
            max_segments: 256,
        }
    }

    /// About 3.5M SDK gas per call: 1 MiB of weights (~3.2M) and 20M MACs (~0.15M).
    pub fn default_execute() -> Self {
        WorkBudget {
            max_macs: 20_000_000,
            max_weight_bytes: 1024 * 1024,
            max_segments: 64,
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
    /// Starts a job on a quantized input (as in `Predict`) and runs up to `steps` layer
    /// segments within the execute budget (all it may, if `steps` is absent). Pays the fee.
    /// The response data is an [`EvaluateResponse`].
    Evaluate { input: Vec<i32>, steps: Option<u32> },
    /// Runs more of a job. Anyone may continue any job, so relayers can finish it.
    Continue { job_id: u64, steps: Option<u32> },
    /// Deletes a job, running or finished, with everything it stored (its creator only).
    CancelJob { job_id: u64 },
    /// Mints the model's token in `collection` (a cwnn-collection) to the current owner and
    /// binds the model to it: from then on whoever holds the token controls the model (owner
    /// only, once, after `Finalize`). See the collection's README for the handshake.
    MintNft {
        collection: String,
        token_id: String,
        /// Docs / license of the model.
        token_uri: Option<String>,
        /// The author's claimed top-1 accuracy, in basis points (9,750 = 97.50 %).
        claimed_accuracy_bps: Option<u16>,
    },
    /// Sets or removes the fee (owner only).
    SetFee { fee: Option<Coin> },
    /// Sends the fees received so far to the sender (owner only): with an NFT, to whoever holds
    /// it now.
    Withdraw {},
    /// Stops or resumes `Evaluate`, `Continue` and `Predict` (owner only).
    SetPaused { paused: bool },
    /// Replaces both work budgets (owner only); each layer's smallest segment must still fit.
    SetBudgets {
        query_budget: WorkBudget,
        execute_budget: WorkBudget,
    },
}

/// What a model sends its collection in `MintNft` (cwnn-collection's `MintModel`).
#[cw_serde]
pub enum CollectionExecuteMsg {
    MintModel {
        token_id: String,
        owner: String,
        token_uri: Option<String>,
        claimed_accuracy_bps: Option<u16>,
    },
}

/// The CW721 query a bound model makes to learn who holds its token.
#[cw_serde]
pub enum CollectionQueryMsg {
    OwnerOf {
        token_id: String,
        include_expired: Option<bool>,
    },
}

/// The part of CW721's `OwnerOfResponse` the model reads (unknown fields are ignored).
#[derive(cosmwasm_schema::serde::Deserialize)]
#[serde(crate = "cosmwasm_schema::serde")]
pub struct TokenOwner {
    pub owner: String,
}

impl ExecuteMsg {
    /// The `UploadWeights` messages for a model's weights (one byte string per layer), in the
    /// order the contract accepts them.
    pub fn uploads(weights: &[Vec<u8>]) -> Vec<ExecuteMsg> {
        let chunk = crate::state::CHUNK_BYTES as usize;
        let mut msgs = Vec::new();
        for (layer, w) in weights.iter().enumerate() {
            for (k, data) in w.chunks(chunk).enumerate() {
                msgs.push(ExecuteMsg::UploadWeights {
                    layer: layer as u32,
                    offset: (k * chunk) as u64,
                    data: Binary::from(data),
                });
            }
        }
        msgs
    }
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
    /// A job's progress, and its output once finished.
    #[returns(JobResponse)]
    Job { id: u64 },
    /// The ids of a creator's jobs (at most `MAX_JOBS_PER_SENDER`).
    #[returns(JobsResponse)]
    Jobs { creator: String },
    /// Fees received and not withdrawn yet.
    #[returns(ProceedsResponse)]
    Proceeds {},
}

#[cw_serde]
pub struct OwnerResponse {
    /// Who controls the model now: the NFT's holder once minted, else the owner of record.
    pub owner: String,
    pub nft: Option<NftBinding>,
}

#[cw_serde]
pub struct ProceedsResponse {
    pub proceeds: Vec<Coin>,
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
    pub execute_budget: WorkBudget,
    pub fee: Option<Coin>,
    pub paused: bool,
    pub nft: Option<NftBinding>,
    pub layers: Vec<LayerInfo>,
}

#[cw_serde]
pub struct PredictResponse {
    /// The last layer's output, quantized (dequantize with `output`'s parameters).
    pub output: TensorSpec,
    pub data: Vec<i32>,
}

#[cw_serde]
pub struct JobResponse {
    pub id: u64,
    pub creator: Addr,
    pub input_sha256: HexBinary,
    pub finished: bool,
    /// Next layer to compute (the layer count once finished) and next unit in it.
    pub layer: u32,
    pub unit: u64,
    pub layers: u32,
    pub segments: u64,
    /// The last layer's output once finished, as in [`PredictResponse`].
    pub output: Option<PredictResponse>,
}

#[cw_serde]
pub struct JobsResponse {
    pub ids: Vec<u64>,
}

/// Data of an `Evaluate` / `Continue` response, for contracts that call them as sub-messages.
#[cw_serde]
pub struct EvaluateResponse {
    pub job_id: u64,
    pub finished: bool,
    pub output: Option<PredictResponse>,
}
