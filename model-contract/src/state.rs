use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, HexBinary};
use cw_storage_plus::{Item, Map};

use crate::msg::{ModelConfig, WorkBudget};

/// Weights are stored in values of at most this many bytes (the chain's limit is 128 KiB).
pub const CHUNK_BYTES: u64 = 128 * 1024;

/// Who controls the model.
pub const OWNER: Item<Addr> = Item::new("owner");

#[cw_serde]
pub struct Model {
    pub config: ModelConfig,
    pub weights_sha256: HexBinary,
    pub query_budget: WorkBudget,
    /// Per layer, from `Layer::plan` at instantiation: weight bytes, MACs and units.
    pub weight_bytes: Vec<u64>,
    pub macs: Vec<u64>,
    pub units: Vec<u64>,
    /// Per layer: its output spec.
    pub outputs: Vec<cwnn_layers::TensorSpec>,
    pub finalized: bool,
}

pub const MODEL: Item<Model> = Item::new("model");

/// Where the next upload must go: `(layer, offset)`.
pub const CURSOR: Item<(u32, u64)> = Item::new("cursor");

/// Weight chunks keyed by `(layer, chunk index)`: a segment of a layer reads only its chunks.
pub const WEIGHTS: Map<(u32, u32), Vec<u8>> = Map::new("w");
