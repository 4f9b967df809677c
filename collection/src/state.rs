use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, HexBinary};
use cw_storage_plus::{Item, Map};

/// Code ids of the model contract whose instances may mint here: a `MintModel` from any
/// other sender, or from a model with a wasmd admin, is refused, so a token always stands for
/// a real cwnn model whose code can never change.
pub const MODEL_CODE_IDS: Item<Vec<u64>> = Item::new("model_code_ids");

/// Runtimes whose baked models may mint here (`BakedRuntime`s, checked at instantiation).
pub const BAKED_RUNTIMES: Item<Vec<crate::msg::BakedRuntime>> = Item::new("baked_runtimes");

/// What a model's token records about it, read from the model at mint time.
#[cw_serde]
pub struct ModelMetadata {
    pub model: Addr,
    pub name: String,
    /// The model's identity: config and weights (the model contract's `model_sha256`).
    pub model_sha256: HexBinary,
    /// The model's code id: a buyer compares its checksum (`wasmd query wasm code-info`) with
    /// the released cwnn-model-contract's, since a collection accepts whatever code ids its
    /// creator named.
    pub code_id: u64,
    /// Whether the model is baked into its own code (one code id per model; the collection
    /// checked it is an accepted runtime's bake).
    pub baked: bool,
    pub weights_sha256: HexBinary,
    /// Layer kinds in order (`dense`, `conv2d`, ...).
    pub layers: Vec<String>,
    /// Bytes of weights on chain (int8 weights, plus per-unit biases and multipliers).
    pub weight_bytes: u64,
    /// Multiply-accumulates of one inference.
    pub macs: u64,
    pub input_shape: Vec<u32>,
    pub output_shape: Vec<u32>,
    /// The author's claim, in basis points (9,750 = 97.50 %).
    pub claimed_accuracy_bps: Option<u16>,
    /// Docs / license.
    pub token_uri: Option<String>,
}

/// Token id → the model's metadata.
pub const MODELS: Map<&str, ModelMetadata> = Map::new("models");
/// Model address → its token id: one token per model.
pub const TOKEN_BY_MODEL: Map<&Addr, String> = Map::new("token_by_model");
