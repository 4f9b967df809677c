use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{to_json_vec, Addr, Binary, Coin, HexBinary, StdResult};
use cwnn_layers::train::Head;
use cwnn_layers::TensorSpec;
pub use cwnn_layers::{LayerConfig, ModelConfig};
use cwnn_tensor::Dyadic;
use sha2::{Digest, Sha256};

/// Weights are uploaded and stored in values of at most this many bytes (the chain's limit is
/// 128 KiB). Activations and recurrent state must fit one such value too.
pub const CHUNK_BYTES: u64 = 128 * 1024;

/// A model's token: set once by the model itself in `MintNft`, so no other contract can claim
/// it. The token id is the model's own address, so nobody can take it first.
#[cw_serde]
pub struct NftBinding {
    pub collection: Addr,
    pub token_id: String,
}

/// sha256 of `bytes`: how events and manifests name inputs, outputs and weight files.
pub fn sha256(bytes: &[u8]) -> HexBinary {
    HexBinary::from(Sha256::digest(bytes).to_vec())
}

/// sha256 of every layer's weights concatenated in layer order: what `Finalize` checks.
pub fn weights_sha256(weights: &[Vec<u8>]) -> HexBinary {
    let mut h = Sha256::new();
    weights.iter().for_each(|w| h.update(w));
    HexBinary::from(h.finalize().to_vec())
}

/// A model's identity: sha256 of `"cwnn-model-v1"`, the weights' sha256 (32 bytes) and the
/// config's JSON as the contract serializes it. Two models with the same hash compute the same
/// function: same wiring, specs, clamps, tables and weights. Shown in `ModelInfo`, the NFT's
/// metadata and every inference event; `cwnn verify` recomputes it.
pub fn model_sha256(config: &ModelConfig, weights_sha256: &[u8]) -> StdResult<HexBinary> {
    let mut h = Sha256::new();
    h.update(b"cwnn-model-v1");
    h.update(weights_sha256);
    h.update(to_json_vec(config)?);
    Ok(HexBinary::from(h.finalize().to_vec()))
}

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
    /// Paid, exactly, with each `Evaluate` and `Predict` execute; it accrues in the model until
    /// the owner withdraws it. None by default.
    pub fee: Option<Coin>,
    /// With a fee, whether the `Predict` query still answers for free; false by default.
    pub free_queries: Option<bool>,
    /// Owner of the model; defaults to the instantiating address.
    pub owner: Option<String>,
    /// Code ids of the cwnn collection the model may be minted into; none by default (then
    /// `MintNft` is refused). Fixed for the model's life.
    pub collection_code_ids: Option<Vec<u64>>,
    /// Makes the model's head trainable on chain (`Train`, `Reinforce`); none by default.
    #[cfg(feature = "train")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
    /// The runtimes of baked models (built without the `train` feature) refuse any training
    /// (`NotTrainable`) without parsing it.
    #[cfg(not(feature = "train"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<cosmwasm_std::Empty>,
}

/// A trainable model: its head, fixed at instantiation, and the rules the owner may change.
#[cw_serde]
pub struct Training {
    /// The last Dense layer (before the model's final Softmax): its shape, quantization and
    /// step constants (`cwnn import --trainable` computes them from the quantized weights).
    pub head: Head,
    pub rules: TrainingRules,
}

/// Who may train a model and how fast (`SetTraining` replaces them).
#[cw_serde]
pub struct TrainingRules {
    /// The learning rate, `mantissa / 2^shift`.
    pub lr: Dyadic,
    /// Examples one `Train` may carry, 1 to [`MAX_TRAIN_BATCH`].
    pub max_batch: u32,
    pub policy: TrainPolicy,
    /// Updates (`Train` or `Reinforce`) the model takes in one block; no cap by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_block: Option<u32>,
    /// Updates one address may make in one block; no cap by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_address: Option<u32>,
    /// While set, `Train` and `Reinforce` are refused.
    #[serde(default)]
    pub frozen: bool,
    /// The largest `Reinforce` reward magnitude, in 1/256; 256 (a reward of 1) by default, at
    /// most 32,768. A reward of `r` steps like `r/256` labelled examples in a batch of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reward: Option<u32>,
}

impl TrainingRules {
    /// The reward bound in force.
    pub fn max_reward(&self) -> u32 {
        self.max_reward.unwrap_or(256)
    }
}

/// The most examples one `Train` may carry.
pub const MAX_TRAIN_BATCH: u32 = 64;
/// The most addresses an allowlist may hold (every update reads the list).
pub const MAX_ALLOWLIST: usize = 32;

/// Who may send `Train` and `Reinforce`. The owner (the NFT's holder once minted) always may,
/// and pays no fee.
#[cw_serde]
pub enum TrainPolicy {
    Owner {},
    Allowlist {
        addresses: Vec<String>,
    },
    /// Anyone, paying `fee` exactly with each update (kept with the model's other fees).
    Anyone {
        fee: Option<Coin>,
    },
}

/// One labelled example of `Train`: the input as in `Predict`, and its class.
#[cw_serde]
pub struct TrainExample {
    #[serde(default)]
    pub input: Vec<i32>,
    pub input_bytes: Option<Binary>,
    pub label: u32,
}

impl InstantiateMsg {
    /// A model with every option at its default: no fee, default budgets, the sender as owner,
    /// no collection.
    pub fn new(model: ModelConfig, weights_sha256: HexBinary) -> Self {
        InstantiateMsg {
            model,
            weights_sha256,
            query_budget: None,
            execute_budget: None,
            fee: None,
            free_queries: None,
            owner: None,
            collection_code_ids: None,
            training: None,
        }
    }
}

/// VM gas (CosmWasm gas) one unit of work may cost: the bound `vm/tests/gas.rs` checks for every
/// layer kind in both precisions on the contract Wasm (int8 Dense and Conv measure ~900).
pub const VM_GAS_PER_WORK: u64 = 1_000;
/// VM gas one layer segment may cost beside its work (its gas marker, weight-read host call,
/// plan and buffers; measured at most 11.4M, a small grouped Conv2d): why budgets cap segments
/// too. 15M VM gas is about 107 SDK gas.
pub const VM_GAS_PER_SEGMENT: u64 = 15_000_000;

/// Limits on the work of one call. Weight bytes read dominate gas on chain (3 SDK gas a byte).
/// Work is counted in units of about one int8 multiply-accumulate: every comparison, table
/// lookup, element-wise op, requantization and copy counts (`LayerPlan::work`), and no layer
/// segment spends more than [`VM_GAS_PER_WORK`] per unit (~0.007 SDK gas) plus
/// [`VM_GAS_PER_SEGMENT`].
#[cw_serde]
pub struct WorkBudget {
    pub max_work: u64,
    /// Weight bytes the call's segments read (a recurrent layer reads its weights per segment).
    pub max_weight_bytes: u64,
    /// Layer segments per call; a whole-model `Predict` runs one per layer.
    pub max_segments: u32,
}

impl WorkBudget {
    /// Fits a 3,000,000 SDK-gas smart query: 512 KiB of weights cost ~1.6M SDK gas to read,
    /// 20M work units at most ~0.15M.
    pub fn default_query() -> Self {
        WorkBudget {
            max_work: 20_000_000,
            max_weight_bytes: 512 * 1024,
            max_segments: 256,
        }
    }

    /// About 3.5M SDK gas per call: 1 MiB of weights (~3.2M) and 20M work units (~0.15M).
    pub fn default_execute() -> Self {
        WorkBudget {
            max_work: 20_000_000,
            max_weight_bytes: 1024 * 1024,
            max_segments: 64,
        }
    }

    pub fn is_default_query(&self) -> bool {
        *self == Self::default_query()
    }

    pub fn is_default_execute(&self) -> bool {
        *self == Self::default_execute()
    }
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Uploads chunk `offset / CHUNK_BYTES` of layer `layer`'s weights (owner only). Chunks
    /// arrive in order, layer by layer; each is exactly `CHUNK_BYTES` long but the last of a
    /// layer, which holds the rest.
    UploadWeights { layer: u32, offset: u64, data: Binary },
    /// Before `Finalize`: moves the upload cursor back to `offset` (a multiple of
    /// `CHUNK_BYTES`) of `layer`, at or before where it stands, so chunks from there on can be
    /// uploaded again (owner only). Recovers from a wrong byte without redeploying.
    RewindUpload { layer: u32, offset: u64 },
    /// Checks that every weight is present and matches `weights_sha256`; the model is then
    /// immutable and can be evaluated (owner only).
    Finalize {},
    /// Hands the model to another address (owner only).
    TransferOwnership { new_owner: String },
    /// The whole model in one call within the execute budget, paying the fee, storing nothing
    /// but the fee: the answer for contracts that need it inside their own transaction. The
    /// response data is a [`PredictResponse`]; emits `cwnn_inference` (job_id 0). The input
    /// is `input` or `input_bytes`, as in the `Predict` query.
    Predict {
        #[serde(default)]
        input: Vec<i32>,
        input_bytes: Option<Binary>,
    },
    /// Starts a job on a quantized input (as in `Predict`) and runs up to `steps` layer
    /// segments within the execute budget (all it may, if `steps` is absent). Pays the fee.
    /// The response data is an [`EvaluateResponse`].
    Evaluate {
        #[serde(default)]
        input: Vec<i32>,
        input_bytes: Option<Binary>,
        steps: Option<u32>,
    },
    /// Runs more of a job, also while the model is paused: a job was paid for when it started.
    /// Anyone may continue any job, so relayers can finish it.
    Continue { job_id: u64, steps: Option<u32> },
    /// Deletes a job, running or finished, with everything it stored (its creator only).
    CancelJob { job_id: u64 },
    /// Mints the model's token in `collection` to the current owner and binds the model to it:
    /// from then on whoever holds the token controls the model (owner only, once, after
    /// `Finalize`). The collection must be an instance of one of `collection_code_ids` with no
    /// wasmd admin; the token id is the model's address. See the collection's README.
    MintNft {
        collection: String,
        /// Docs / license of the model.
        token_uri: Option<String>,
        /// The author's claimed top-1 accuracy, in basis points (9,750 = 97.50 %).
        claimed_accuracy_bps: Option<u16>,
    },
    /// Sets or removes the fee (owner only).
    SetFee { fee: Option<Coin> },
    /// With a fee, whether the `Predict` query answers for free (owner only).
    SetFreeQueries { free_queries: bool },
    /// Sends the fees received so far to the sender (owner only): with an NFT, to whoever holds
    /// it now. All denoms (16 a call), or only `denom`, so one denom the bank won't send can't
    /// hold back the others.
    Withdraw { denom: Option<String> },
    /// Stops or resumes `Evaluate` and `Predict` (owner only); started jobs may still finish.
    SetPaused { paused: bool },
    /// Replaces both work budgets (owner only); each layer's smallest segment must still fit.
    SetBudgets {
        query_budget: WorkBudget,
        execute_budget: WorkBudget,
    },
    /// One SGD step of a trainable model's head on a batch of labelled examples (see
    /// `TrainingRules` for who may): the model's version goes up by one and `cwnn_train`
    /// carries what `cwnn verify` needs to replay it. Jobs started before it are refused.
    #[cfg(feature = "train")]
    Train { examples: Vec<TrainExample> },
    /// A REINFORCE step towards (a positive reward) or away from (a negative one) the class
    /// job `job_id` chose, by its creator, once per finished job. The job's input is sent
    /// again (the job keeps only its hash); the step runs on the current version. `reward`
    /// is in 1/256 (256 = 1), not 0, at most the rules' `max_reward` in magnitude.
    #[cfg(feature = "train")]
    Reinforce {
        job_id: u64,
        reward: i32,
        #[serde(default)]
        input: Vec<i32>,
        input_bytes: Option<Binary>,
    },
    /// Replaces a trainable model's rules (owner only); its head stays.
    #[cfg(feature = "train")]
    SetTraining { rules: TrainingRules },
}

/// What a model sends its collection in `MintNft` (cwnn-collection's `MintModel`).
#[cw_serde]
pub enum CollectionExecuteMsg {
    MintModel {
        owner: String,
        token_uri: Option<String>,
        claimed_accuracy_bps: Option<u16>,
        /// From a baked model: its Wasm's data section, with which the collection checks that
        /// the code is a cwnn runtime it accepts (`cwnn_bake::verify`).
        baked: Option<Binary>,
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
        let chunk = CHUNK_BYTES as usize;
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
    /// Runs the whole model on a quantized input, row-major, given either as `input` (the
    /// values, in the input's integer type) or as `input_bytes` (the same values as
    /// little-endian bytes at the type's width, as the events carry them: a quarter of the VM
    /// gas to parse). A model with a fee answers only if its holder allows free queries (else
    /// `PaidModel`: use the `Predict` execute).
    #[returns(PredictResponse)]
    Predict {
        #[serde(default)]
        input: Vec<i32>,
        input_bytes: Option<Binary>,
    },
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
    /// What the budgets count for the whole layer in one segment: every op of the layer, in
    /// units of about one int8 MAC.
    pub work: u64,
    /// The part of `work` every segment pays whatever its units (so `work − segment_work` is
    /// spread over the units).
    pub segment_work: u64,
    pub units: u64,
}

#[cw_serde]
pub struct ModelInfoResponse {
    pub name: String,
    pub input: TensorSpec,
    pub weights_sha256: HexBinary,
    /// See [`model_sha256`].
    pub model_sha256: HexBinary,
    pub finalized: bool,
    /// Whether the config and weights are baked into the contract's code (`cwnn bake`).
    pub baked: bool,
    pub query_budget: WorkBudget,
    pub execute_budget: WorkBudget,
    pub fee: Option<Coin>,
    pub free_queries: bool,
    pub collection_code_ids: Vec<u64>,
    pub paused: bool,
    pub nft: Option<NftBinding>,
    pub layers: Vec<LayerInfo>,
    /// Training steps taken (0 for a model never trained): the hashes above are this version's.
    #[serde(default)]
    pub version: u64,
    #[cfg(feature = "train")]
    pub training: Option<Training>,
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
    /// The model version the job runs on (see `Continue`).
    #[serde(default)]
    pub version: u64,
    /// Whether its creator has sent its `Reinforce`.
    #[serde(default)]
    pub reinforced: bool,
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
