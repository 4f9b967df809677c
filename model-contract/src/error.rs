use cosmwasm_std::StdError;
use cwnn_layers::{GraphError, LayerError};
use thiserror::Error;

/// Every way a message can be refused. A refused message changes no state.
#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),

    #[error("unauthorized: only the model owner may do this")]
    Unauthorized {},

    #[error("invalid model config: {0}")]
    InvalidConfig(&'static str),

    #[error("layer {index}: {source}")]
    Layer { index: usize, source: LayerError },

    #[error("layer {index} reads tensor {input}, which is not computed before it")]
    LayerInput { index: usize, input: u32 },

    #[error("baked model: {0}")]
    Baked(&'static str),

    #[error("weights_sha256 must be 32 bytes, got {0}")]
    HashLength(usize),

    #[error("unknown layer {layer}: the model has {layers}")]
    UnknownLayer { layer: u32, layers: usize },

    #[error("out-of-order upload: expected layer {expected_layer} at offset {expected_offset}, got layer {layer} at offset {offset}")]
    OutOfOrder {
        expected_layer: u32,
        expected_offset: u64,
        layer: u32,
        offset: u64,
    },

    #[error("chunk of layer {layer} at offset {offset} must be {expected} bytes, got {actual}")]
    ChunkSize {
        layer: u32,
        offset: u64,
        expected: u64,
        actual: u64,
    },

    #[error("all weights are already uploaded")]
    UploadComplete {},

    #[error("the model is finalized: its weights are immutable")]
    Finalized {},

    #[error("weights incomplete: the next upload expected is layer {layer} at offset {offset}")]
    Incomplete { layer: u32, offset: u64 },

    #[error("weights hash mismatch: expected {expected}, the uploaded weights hash to {actual}")]
    HashMismatch { expected: String, actual: String },

    #[error("the model is not finalized yet")]
    NotFinalized {},

    #[error("over budget: the whole model needs {work} work units and {weight_bytes} weight bytes, one call may use {max_work} and {max_weight_bytes}")]
    OverBudget {
        work: u64,
        weight_bytes: u64,
        max_work: u64,
        max_weight_bytes: u64,
    },

    #[error("invalid input: {0}")]
    Input(&'static str),

    #[error("tensor {tensor} takes {bytes} bytes; activations must fit one 128 KiB storage value")]
    TensorTooLarge { tensor: u32, bytes: u64 },

    #[error("layer {index}: one unit needs {work} work units and {weight_bytes} weight bytes, more than the execute budget allows")]
    SegmentOverBudget { index: usize, work: u64, weight_bytes: u64 },

    #[error("this message takes no funds")]
    UnexpectedFunds {},

    #[error("the model is already minted as token {token_id} of {collection}")]
    AlreadyMinted { collection: String, token_id: String },

    #[error("the model's NFT holds its ownership: transfer the NFT instead")]
    OwnedByNft {},

    #[error("the model is paused by its owner")]
    Paused {},

    #[error("no fees to withdraw")]
    NothingToWithdraw {},

    #[error("wrong fee: exactly {required} required, {paid} sent")]
    WrongFee { required: String, paid: String },

    #[error(
        "this model charges a fee: pay it with the Predict execute message (its holder has not allowed free queries)"
    )]
    PaidModel {},

    #[error("cannot rewind the upload to layer {layer} offset {offset}: it must be a chunk start at or before the next upload expected (layer {cursor_layer} offset {cursor_offset})")]
    InvalidRewind {
        layer: u32,
        offset: u64,
        cursor_layer: u32,
        cursor_offset: u64,
    },

    #[error("{collection} is not an instance of a collection code this model accepts (code id {code_id:?}, accepted {accepted:?})")]
    CollectionNotAccepted {
        collection: String,
        code_id: Option<u64>,
        accepted: Vec<u64>,
    },

    #[error("collection {collection} has a wasmd admin ({admin}), who could migrate it and take every model it holds")]
    CollectionHasAdmin { collection: String, admin: String },

    #[error("steps must be at least 1")]
    ZeroSteps {},

    #[error("job {id} not found")]
    JobNotFound { id: u64 },

    #[error("job {id} is already finished")]
    JobFinished { id: u64 },

    #[error("only job {id}'s creator may cancel or reinforce it")]
    NotJobCreator { id: u64 },

    #[error("too many jobs: an address may hold {max}, none of them finished; cancel one first")]
    TooManyJobs { max: u32 },

    #[error("the model is not trainable: {0}")]
    NotTrainable(&'static str),

    #[error("training is frozen by the model's owner")]
    TrainingFrozen {},

    #[error("{sender} may not train this model")]
    NotAllowedToTrain { sender: String },

    #[error("a training batch holds 1 to {max} examples, got {got}")]
    BatchSize { max: u32, got: usize },

    #[error("example {example}: label {label} is not one of the model's {classes} classes")]
    Label { example: usize, label: u32, classes: u32 },

    #[error("a reward is in 1/256, non-zero and at most {max} in magnitude, got {reward}")]
    Reward { reward: i32, max: u32 },

    #[error("training cap reached: at most {max} updates per block {scope}")]
    TrainingCap { scope: &'static str, max: u32 },

    #[error("job {id} started at model version {job_version}; the model is now at version {version}")]
    ModelUpdated { id: u64, job_version: u64, version: u64 },

    #[error("job {id} is not finished")]
    JobNotFinished { id: u64 },

    #[error("job {id} is already reinforced")]
    AlreadyReinforced { id: u64 },

    #[error("the input's sha256 {actual} is not job {id}'s {expected}")]
    InputMismatch { id: u64, expected: String, actual: String },
}

impl From<ContractError> for StdError {
    /// Queries answer with `StdError`; the message keeps the named error's text.
    fn from(e: ContractError) -> Self {
        match e {
            ContractError::Std(s) => s,
            other => StdError::generic_err(other.to_string()),
        }
    }
}

impl From<GraphError> for ContractError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Input { index, input } => ContractError::LayerInput { index, input },
            GraphError::Layer { index, source } => ContractError::Layer { index, source },
        }
    }
}
