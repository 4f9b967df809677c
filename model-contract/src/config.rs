//! Validation of what the owner configures: the model, its fee and its budgets.

use cosmwasm_std::Coin;
use cwnn_layers::{LayerPlan, TensorSpec};

use crate::error::ContractError;
use crate::eval::{tensor_spec, unit_work};
use crate::msg::{sha256, ModelConfig, WorkBudget};
use crate::state::{baked_config, Model, CHUNK_BYTES};
use cwnn_bake::Payload;

const MAX_NAME_BYTES: usize = 128;

/// Layers a model may have: what a whole-model `Predict` runs in its default 256 segments, and
/// a bound on the per-call bookkeeping over layers, which no budget counts.
pub const MAX_LAYERS: usize = 256;

/// Collection code ids a model may name (a longer list would only cost every `ModelInfo`).
pub const MAX_COLLECTION_CODE_IDS: usize = 16;

pub(crate) fn check_fee(fee: &Option<Coin>) -> Result<(), ContractError> {
    match fee {
        Some(f) if f.amount.is_zero() || f.denom.is_empty() => Err(ContractError::InvalidConfig(
            "a fee needs a denom and a non-zero amount",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_budgets(query: &WorkBudget, execute: &WorkBudget) -> Result<(), ContractError> {
    match execute.max_segments == 0 || query.max_segments == 0 {
        true => Err(ContractError::InvalidConfig("a work budget needs max_segments ≥ 1")),
        false => Ok(()),
    }
}

pub(crate) fn check_code_ids(ids: &[u64]) -> Result<(), ContractError> {
    match ids.len() > MAX_COLLECTION_CODE_IDS {
        true => Err(ContractError::InvalidConfig("at most 16 collection code ids")),
        false => Ok(()),
    }
}

/// Checks the model's input and that every layer accepts what it reads; gives each layer's plan.
pub(crate) fn validate_model(config: &ModelConfig) -> Result<Vec<LayerPlan>, ContractError> {
    if config.layers.is_empty() || config.layers.len() > MAX_LAYERS {
        return Err(ContractError::InvalidConfig("a model needs 1 to 256 layers"));
    }
    if config.name.len() > MAX_NAME_BYTES {
        return Err(ContractError::InvalidConfig("name longer than 128 bytes"));
    }
    let input = &config.input;
    if input.numel().is_none_or(|n| n == 0)
        || input.quant.scale.validate().is_err()
        || !(input.dtype.min()..=input.dtype.max()).contains(&input.quant.zero_point)
    {
        return Err(ContractError::InvalidConfig(
            "input spec: empty shape, invalid scale or zero point out of range",
        ));
    }
    let fits = |tensor: u32, bytes: Option<usize>| match bytes {
        Some(b) if b as u64 <= CHUNK_BYTES => Ok(()),
        b => Err(ContractError::TensorTooLarge {
            tensor,
            bytes: b.map_or(u64::MAX, |b| b as u64),
        }),
    };
    fits(0, input.bytes())?;
    let plans = config.plans()?;
    for (index, plan) in plans.iter().enumerate() {
        fits(index as u32 + 1, Some(plan.output_bytes))?;
        fits(index as u32 + 1, plan.state_len.checked_mul(4))?;
        if plan.units == 0 {
            return Err(ContractError::InvalidConfig("a layer has no output units"));
        }
    }
    Ok(plans)
}

/// Every layer's smallest segment (its first unit) must fit one call, or a job could stall.
pub(crate) fn check_segments_fit(model: &Model) -> Result<(), ContractError> {
    let b = &model.execute_budget;
    for (index, lc) in model.config.layers.iter().enumerate() {
        let specs: Vec<&TensorSpec> = lc.input_ids(index).iter().map(|&id| tensor_spec(model, id)).collect();
        let weight_bytes = lc
            .layer
            .weight_range(&specs, 0..1)
            .map_err(|source| ContractError::Layer { index, source })?
            .len() as u64;
        let work = unit_work(model, index).saturating_add(model.segment_work[index]);
        if work > b.max_work || weight_bytes > b.max_weight_bytes {
            return Err(ContractError::SegmentOverBudget {
                index,
                work,
                weight_bytes,
            });
        }
    }
    Ok(())
}

/// The first `(layer, offset)` at or after the given one that still needs weights.
pub(crate) fn next_cursor(model: &Model, mut layer: u32, mut offset: u64) -> (u32, u64) {
    while let Some(&len) = model.weight_bytes.get(layer as usize) {
        if offset < len {
            break;
        }
        layer += 1;
        offset = 0;
    }
    (layer, offset)
}

/// A baked contract serves the model its Wasm carries: the instantiate message must name
/// that model (config and weights' sha256), so the hash the author expects is the one served.
pub(crate) fn check_baked(p: &Payload, model: &Model) -> Result<(), ContractError> {
    if baked_config(p)? != model.config {
        return Err(ContractError::Baked("the message's model differs from the baked one"));
    }
    if p.weights.len() as u64 != model.weight_bytes.iter().sum::<u64>() {
        return Err(ContractError::Baked(
            "the baked weights' length differs from the layers'",
        ));
    }
    let weights_sha256 = sha256(p.weights);
    if weights_sha256 != model.weights_sha256 || p.weights_sha256[..] != weights_sha256[..] {
        return Err(ContractError::Baked(
            "weights_sha256 differs from the baked weights' sha256",
        ));
    }
    if p.model_sha256[..] != model.model_sha256[..] {
        return Err(ContractError::Baked("the baked model_sha256 differs from the model's"));
    }
    Ok(())
}
