use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, Coin, HexBinary, StdError, StdResult, Storage, Uint128};
use cw_storage_plus::{Item, Map, PrimaryKey};

use crate::msg::{ModelConfig, Training, WorkBudget};
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

/// The model record. Every call reads it at 3 SDK gas per byte, so defaults are left out, and
/// a baked contract leaves out what its payload holds (config and hashes, [`baked`]).
#[cw_serde]
pub struct Model {
    #[serde(with = "stored_config")]
    #[schemars(with = "Option<ModelConfig>")]
    pub config: ModelConfig,
    #[serde(with = "stored_weights_sha256")]
    #[schemars(with = "Option<HexBinary>")]
    pub weights_sha256: HexBinary,
    /// The model's identity: [`crate::msg::model_sha256`] of the config and the weights.
    #[serde(with = "stored_model_sha256")]
    #[schemars(with = "Option<HexBinary>")]
    pub model_sha256: HexBinary,
    /// Code ids of the collection contract the model may be minted into (fixed at
    /// instantiation; `MintNft` also refuses a collection that has a wasmd admin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection_code_ids: Vec<u64>,
    #[serde(
        default = "WorkBudget::default_query",
        skip_serializing_if = "WorkBudget::is_default_query"
    )]
    pub query_budget: WorkBudget,
    #[serde(
        default = "WorkBudget::default_execute",
        skip_serializing_if = "WorkBudget::is_default_execute"
    )]
    pub execute_budget: WorkBudget,
    /// Paid, exactly, with each `Evaluate` and paid `Predict`; it accrues in [`PROCEEDS`] until
    /// the owner withdraws it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Coin>,
    /// With a fee: whether the `Predict` query answers anyway (the holder's choice; off by
    /// default, so contracts that need an answer pay through the `Predict` execute).
    #[serde(default, skip_serializing_if = "is_false")]
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
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Whether [`TRAINING`] holds a trainable head. Then [`VERSION`], once written, holds the
    /// hashes above for the current weights ([`load_model`] puts them in).
    #[serde(default, skip_serializing_if = "is_false")]
    pub trainable: bool,
    /// Training steps taken: from [`VERSION`], not stored here.
    #[serde(skip)]
    pub version: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The payload this contract's Wasm carries, if it is a baked model (`cwnn bake`): its config
/// and weights are read from memory, never from storage.
pub fn baked() -> Option<cwnn_bake::Payload<'static>> {
    cwnn_bake::payload::in_memory()
}

/// The baked payload's config (its JSON is what the contract serializes, see `cwnn bake`).
pub fn baked_config(p: &cwnn_bake::Payload) -> StdResult<ModelConfig> {
    cosmwasm_std::from_json(p.config)
}

/// The Wasm of `runtime` (this contract's) with `config` and `weights` (one byte string per
/// layer) baked in (`cwnn bake`). The config is baked as the contract serializes it, so the
/// baked model's `model_sha256` is the package's.
pub fn bake(runtime: &[u8], config: &ModelConfig, weights: &[Vec<u8>]) -> Result<Vec<u8>, cwnn_bake::BakeError> {
    let unserializable = |_| cwnn_bake::BakeError::Payload("config does not serialize");
    let json = cosmwasm_std::to_json_vec(config).map_err(unserializable)?;
    let model = crate::msg::model_sha256(config, &crate::msg::weights_sha256(weights)).map_err(unserializable)?;
    let model: [u8; 32] = model.to_array().map_err(unserializable)?;
    cwnn_bake::bake(runtime, &json, &weights.concat(), &model)
}

/// Serde for a record field a baked contract reads from its payload: stored as `null` there.
macro_rules! from_payload {
    ($module:ident, $t:ty, $read:expr) => {
        mod $module {
            use super::*;
            use cosmwasm_schema::serde::{de::Error, Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                match baked() {
                    Some(_) => s.serialize_none(),
                    None => s.serialize_some(v),
                }
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                match (Option::<$t>::deserialize(d)?, baked()) {
                    (Some(v), _) => Ok(v),
                    (None, Some(p)) => $read(&p).map_err(D::Error::custom),
                    (None, None) => Err(D::Error::custom("stored model without its config or hashes")),
                }
            }
        }
    };
}

from_payload!(stored_config, ModelConfig, baked_config);
from_payload!(stored_weights_sha256, HexBinary, |p: &cwnn_bake::Payload| {
    StdResult::Ok(HexBinary::from(&p.weights_sha256[..]))
});
from_payload!(stored_model_sha256, HexBinary, |p: &cwnn_bake::Payload| {
    StdResult::Ok(HexBinary::from(&p.model_sha256[..]))
});

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

/// The model record and its plans ([`Model::with_plans`]); a trained model's version and
/// hashes from [`VERSION`].
pub fn load_model(storage: &dyn Storage) -> StdResult<Model> {
    let mut model = MODEL.load(storage)?.with_plans()?;
    if model.trainable {
        if let Some(v) = storage.get(VERSION) {
            let bad = || StdError::generic_err("stored version record");
            model.version = u64::from_le_bytes(v.get(..8).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
            model.weights_sha256 = HexBinary::from(v.get(8..40).ok_or_else(bad)?);
            model.model_sha256 = HexBinary::from(v.get(40..72).ok_or_else(bad)?);
        }
    }
    Ok(model)
}

/// A trainable model's head and rules.
pub const TRAINING: Item<Training> = Item::new("train");

/// A trained model's version (u64 LE), weights_sha256 and model_sha256: 72 raw bytes, which
/// every inference of a trainable model reads (the model record is too large to rewrite on
/// each step). Absent until the first step.
pub const VERSION: &[u8] = b"ver";

/// Writes [`VERSION`] from `model`.
pub fn save_version(storage: &mut dyn Storage, model: &Model) {
    let mut v = model.version.to_le_bytes().to_vec();
    v.extend_from_slice(model.weights_sha256.as_slice());
    v.extend_from_slice(model.model_sha256.as_slice());
    storage.set(VERSION, &v);
}

/// The head's fractions (`cwnn_layers::train::Head::fractions`), raw; absent until the first
/// step (all zero).
pub const FRACTIONS: &[u8] = b"frac";

/// Updates in the current block: `(height, count)`. Written only under a per-block cap.
pub const TRAIN_BLOCK: Item<(u64, u32)> = Item::new("tb");
/// Updates per address in the current block. Written only under a per-address cap.
pub const TRAIN_BY: Map<&Addr, (u64, u32)> = Map::new("tby");

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

/// A layer-by-layer evaluation spread over several transactions. Every `Evaluate` writes one
/// at 30 SDK gas per byte: defaults are left out and the hash is stored in base64.
#[cw_serde]
pub struct Job {
    pub creator: Addr,
    /// sha256 of the input's little-endian bytes at its quantized width.
    #[serde(with = "base64_hash")]
    #[schemars(with = "cosmwasm_std::Binary")]
    pub input_sha256: HexBinary,
    /// Next layer to compute; equal to the layer count once finished.
    pub layer: u32,
    /// Next unit of that layer (units below it are already in the stored partial output).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unit: u64,
    /// Tensors held in [`JOB_TENSORS`] (0 = input, k = output of layer k − 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored: Vec<u32>,
    /// Layer segments run so far, over all calls.
    pub segments: u64,
    /// Whether [`JOB_STATE`] holds a recurrent layer's state for this job.
    #[serde(default, skip_serializing_if = "is_false")]
    pub has_state: bool,
    /// The model's version when the job started: a job runs on one version, so `Continue`
    /// after a training step is refused (`ModelUpdated`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
    /// Whether the job's creator has sent its `Reinforce`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reinforced: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A hash stored as base64 (44 bytes of JSON) rather than hex (64).
mod base64_hash {
    use cosmwasm_schema::serde::{Deserialize, Deserializer, Serialize, Serializer};
    use cosmwasm_std::{Binary, HexBinary};

    pub fn serialize<S: Serializer>(h: &HexBinary, s: S) -> Result<S::Ok, S::Error> {
        Binary::from(h.as_slice()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HexBinary, D::Error> {
        Binary::deserialize(d).map(|b| HexBinary::from(b.as_slice()))
    }
}

impl Job {
    /// Whether every layer has run (its output is then stored).
    pub fn finished(&self, model: &Model) -> bool {
        self.layer as usize == model.config.layers.len()
    }

    /// Whether the job can go on at the model's version: it runs on its own, or it has not
    /// started the first trained layer yet (so nothing it computed depends on the update), in
    /// which case it moves to the model's version. A job that has can never finish
    /// (`ModelUpdated`).
    pub fn rebase(&mut self, storage: &dyn Storage, model: &Model) -> StdResult<bool> {
        if self.version == model.version {
            return Ok(true);
        }
        // A build without training (a runtime) has no versions; this keeps its parser out.
        #[cfg(feature = "train")]
        let hidden = TRAINING.load(storage)?.head.hidden.is_some();
        #[cfg(not(feature = "train"))]
        let hidden = {
            let _ = storage;
            false
        };
        // The first layer a step changes: the head (the layer before the last), or the
        // hidden layer before it.
        let trained = 1 + u32::from(hidden);
        let first = (model.config.layers.len() as u32).saturating_sub(1 + trained);
        let untouched = self.layer < first || (self.layer == first && self.unit == 0);
        if untouched {
            self.version = model.version;
        }
        Ok(untouched)
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
