use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Coin, HexBinary, StdError, StdResult, Storage, Uint128};
use cw_storage_plus::{Item, Map, PrimaryKey};

use crate::msg::{ModelConfig, WorkBudget};
pub use crate::msg::{NftBinding, CHUNK_BYTES};

/// cw2's record of what code this is (`cw2::get_contract_version`). A model has no `migrate`
/// entry point and accepts no collection or mint while it has a wasmd admin: its code never
/// changes once sold (docs/SECURITY.md).
pub const CONTRACT_NAME: &str = "crates.io:cwnn-model-contract";
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Jobs one address may hold at once (running, or finished and not yet cancelled). An
/// `Evaluate` past the limit first drops the sender's oldest finished job.
pub const MAX_JOBS_PER_SENDER: u32 = 8;

/// The owner of record: who controls the model until it is minted as an NFT.
pub const OWNER: Item<Addr> = Item::new("owner");

/// The NFT whose holder controls the model, once `MintNft` has run.
pub const NFT: Item<NftBinding> = Item::new("nft");

/// Fees received and not withdrawn yet, per denom.
pub const PROCEEDS: Map<&str, Uint128> = Map::new("proceeds");

/// Denoms one `Withdraw` pays out (and `Proceeds` lists); more wait for the next call.
pub const MAX_PROCEEDS_DENOMS: usize = 16;

#[cw_serde]
pub struct Model {
    pub config: ModelConfig,
    pub weights_sha256: HexBinary,
    /// The model's identity: [`crate::msg::model_sha256`] of the config and the weights.
    pub model_sha256: HexBinary,
    /// Code ids of the collection contract the model may be minted into (fixed at
    /// instantiation; `MintNft` also refuses a collection that has a wasmd admin).
    pub collection_code_ids: Vec<u64>,
    pub query_budget: WorkBudget,
    pub execute_budget: WorkBudget,
    /// Paid, exactly, with each `Evaluate` and paid `Predict`; it accrues in [`PROCEEDS`] until
    /// the owner withdraws it.
    pub fee: Option<Coin>,
    /// With a fee: whether the `Predict` query answers anyway (the holder's choice; off by
    /// default, so contracts that need an answer pay through the `Predict` execute).
    pub free_queries: bool,
    /// Per layer, from `Layer::plan`: weight bytes, MACs, work and the work each segment pays
    /// besides (what budgets count), units, and its output spec. Not stored: [`load_model`]
    /// plans the config again, a few thousand Wasm operators per layer against 3 SDK gas
    /// (420,000 VM gas) for each byte a stored copy would add to every call's read.
    #[serde(skip)]
    pub weight_bytes: Vec<u64>,
    #[serde(skip)]
    pub macs: Vec<u64>,
    #[serde(skip)]
    pub work: Vec<u64>,
    #[serde(skip)]
    pub segment_work: Vec<u64>,
    #[serde(skip)]
    pub units: Vec<u64>,
    #[serde(skip)]
    pub outputs: Vec<cwnn_layers::TensorSpec>,
    pub finalized: bool,
    /// While set, `Evaluate` and `Predict` are refused; paid jobs still `Continue`. Kept in the model record,
    /// which every inference reads anyway: a key of its own would cost each one a read.
    pub paused: bool,
}

/// The model record: load it with [`load_model`], which fills in the per-layer plans.
pub const MODEL: Item<Model> = Item::new("model");

impl Model {
    /// The record with its per-layer plans, from its config (validated at instantiation).
    pub fn with_plans(self) -> StdResult<Self> {
        let plans = self
            .config
            .plans()
            .map_err(|e| StdError::generic_err(format!("stored model: {e}")))?;
        Ok(self.set_plans(plans))
    }

    /// The record with the per-layer fields taken from `plans` (its config's).
    pub fn set_plans(mut self, plans: Vec<cwnn_layers::LayerPlan>) -> Self {
        self.weight_bytes = plans.iter().map(|p| p.weight_len as u64).collect();
        self.macs = plans.iter().map(|p| p.macs).collect();
        self.work = plans.iter().map(|p| p.work).collect();
        self.segment_work = plans.iter().map(|p| p.segment_work).collect();
        self.units = plans.iter().map(|p| p.units as u64).collect();
        self.outputs = plans.into_iter().map(|p| p.output).collect();
        self
    }
}

/// The model record and its plans ([`Model::with_plans`]).
pub fn load_model(storage: &dyn Storage) -> StdResult<Model> {
    MODEL.load(storage)?.with_plans()
}

/// Where the next upload must go: `(layer, offset)`.
pub const CURSOR: Item<(u32, u64)> = Item::new("cursor");

/// Weight chunks keyed by `(layer, chunk index)`: a segment of a layer reads only its chunks.
/// Raw bytes (see [`save_bytes`]).
pub const WEIGHTS: Map<(u32, u32), Vec<u8>> = Map::new("w");

/// Stores `value` under `map`'s key for `k` as raw bytes. cw-storage-plus would write a
/// `Vec<u8>` as a JSON array, about 3.6 bytes per byte, all billed and parsed on every read.
pub fn save_bytes<'a, K: PrimaryKey<'a>>(storage: &mut dyn Storage, map: &Map<K, Vec<u8>>, k: K, value: &[u8]) {
    storage.set(&map.key(k), value);
}

/// Reads what [`save_bytes`] stored.
pub fn load_bytes<'a, K: PrimaryKey<'a>>(storage: &dyn Storage, map: &Map<K, Vec<u8>>, k: K) -> StdResult<Vec<u8>> {
    storage
        .get(&map.key(k))
        .ok_or_else(|| StdError::not_found("stored bytes"))
}

/// A layer-by-layer evaluation spread over several transactions.
#[cw_serde]
pub struct Job {
    pub creator: Addr,
    /// sha256 of the input's little-endian bytes at its quantized width.
    pub input_sha256: HexBinary,
    /// Next layer to compute; equal to the layer count once finished.
    pub layer: u32,
    /// Next unit of that layer (units below it are already in the stored partial output).
    pub unit: u64,
    /// Tensors held in [`JOB_TENSORS`] (0 = input, k = output of layer k − 1).
    pub stored: Vec<u32>,
    /// Layer segments run so far, over all calls.
    pub segments: u64,
    /// Whether [`JOB_STATE`] holds a recurrent layer's state for this job.
    pub has_state: bool,
}

impl Job {
    /// Whether every layer has run (its output is then stored).
    pub fn finished(&self, model: &Model) -> bool {
        self.layer as usize == model.config.layers.len()
    }
}

pub const NEXT_JOB_ID: Item<u64> = Item::new("next_job");
pub const JOBS: Map<u64, Job> = Map::new("job");
/// `(creator, job id)`: bounds and lists each sender's jobs.
pub const JOBS_BY_CREATOR: Map<(&Addr, u64), ()> = Map::new("job_by");
pub const JOB_COUNT: Map<&Addr, u32> = Map::new("job_n");
/// A job's tensors at their quantized width (raw bytes), only those a later layer (or the
/// caller) reads.
pub const JOB_TENSORS: Map<(u64, u32), Vec<u8>> = Map::new("jt");
/// A recurrent layer's carried state between two segments, as raw little-endian i32.
pub const JOB_STATE: Map<u64, Vec<u8>> = Map::new("js");
