#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, HexBinary, MessageInfo, Response, StdResult, Storage};
use cwnn_layers::{LayerPlan, TensorSpec};
use cwnn_tensor::{DType, QTensor, TensorData};
use sha2::{Digest, Sha256};

use crate::error::ContractError;
use crate::msg::{
    ExecuteMsg, InstantiateMsg, LayerConfig, LayerInfo, ModelConfig, ModelInfoResponse, OwnerResponse, PredictResponse,
    QueryMsg, WorkBudget,
};
use crate::state::{Model, CHUNK_BYTES, CURSOR, MODEL, OWNER, WEIGHTS};

const MAX_NAME_BYTES: usize = 128;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    let owner = match msg.owner {
        Some(o) => deps.api.addr_validate(&o)?,
        None => info.sender,
    };
    if msg.weights_sha256.len() != 32 {
        return Err(ContractError::HashLength(msg.weights_sha256.len()));
    }
    let plans = validate_model(&msg.model)?;
    let model = Model {
        config: msg.model,
        weights_sha256: msg.weights_sha256,
        query_budget: msg.query_budget.unwrap_or_else(WorkBudget::default_query),
        weight_bytes: plans.iter().map(|p| p.weight_len as u64).collect(),
        macs: plans.iter().map(|p| p.macs).collect(),
        units: plans.iter().map(|p| p.units as u64).collect(),
        outputs: plans.into_iter().map(|p| p.output).collect(),
        finalized: false,
    };
    CURSOR.save(deps.storage, &next_cursor(&model, 0, 0))?;
    MODEL.save(deps.storage, &model)?;
    OWNER.save(deps.storage, &owner)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("owner", owner)
        .add_attribute("layers", model.config.layers.len().to_string())
        .add_attribute("weight_bytes", model.weight_bytes.iter().sum::<u64>().to_string()))
}

/// Checks the model's input and that every layer accepts what it reads; gives each layer's plan.
fn validate_model(config: &ModelConfig) -> Result<Vec<LayerPlan>, ContractError> {
    if config.layers.is_empty() {
        return Err(ContractError::InvalidConfig("a model needs at least one layer"));
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
    let mut specs = vec![input.clone()];
    let mut plans = Vec::with_capacity(config.layers.len());
    for (index, lc) in config.layers.iter().enumerate() {
        let ids = input_ids(lc, index);
        if let Some(&bad) = ids.iter().find(|&&id| id as usize > index) {
            return Err(ContractError::LayerInput { index, input: bad });
        }
        let refs: Vec<&TensorSpec> = ids.iter().map(|&id| &specs[id as usize]).collect();
        let plan = lc
            .layer
            .plan(&refs)
            .map_err(|source| ContractError::Layer { index, source })?;
        specs.push(plan.output.clone());
        plans.push(plan);
    }
    Ok(plans)
}

/// Tensors layer `index` reads: 0 is the model input, `k` the output of layer `k − 1`.
fn input_ids(lc: &LayerConfig, index: usize) -> Vec<u32> {
    lc.inputs.clone().unwrap_or_else(|| vec![index as u32])
}

/// The first `(layer, offset)` at or after the given one that still needs weights.
fn next_cursor(model: &Model, mut layer: u32, mut offset: u64) -> (u32, u64) {
    while let Some(&len) = model.weight_bytes.get(layer as usize) {
        if offset < len {
            break;
        }
        layer += 1;
        offset = 0;
    }
    (layer, offset)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, _env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    if info.sender != OWNER.load(deps.storage)? {
        return Err(ContractError::Unauthorized {});
    }
    match msg {
        ExecuteMsg::UploadWeights { layer, offset, data } => upload_weights(deps, layer, offset, data),
        ExecuteMsg::Finalize {} => finalize(deps),
        ExecuteMsg::TransferOwnership { new_owner } => {
            let new_owner = deps.api.addr_validate(&new_owner)?;
            OWNER.save(deps.storage, &new_owner)?;
            Ok(Response::new()
                .add_attribute("action", "transfer_ownership")
                .add_attribute("owner", new_owner))
        }
    }
}

fn upload_weights(deps: DepsMut, layer: u32, offset: u64, data: Binary) -> Result<Response, ContractError> {
    let model = MODEL.load(deps.storage)?;
    if model.finalized {
        return Err(ContractError::Finalized {});
    }
    let Some(&len) = model.weight_bytes.get(layer as usize) else {
        return Err(ContractError::UnknownLayer {
            layer,
            layers: model.weight_bytes.len(),
        });
    };
    let (expected_layer, expected_offset) = CURSOR.load(deps.storage)?;
    if expected_layer as usize >= model.weight_bytes.len() {
        return Err(ContractError::UploadComplete {});
    }
    if (layer, offset) != (expected_layer, expected_offset) {
        return Err(ContractError::OutOfOrder {
            expected_layer,
            expected_offset,
            layer,
            offset,
        });
    }
    let expected = CHUNK_BYTES.min(len - offset);
    if data.len() as u64 != expected {
        return Err(ContractError::ChunkSize {
            layer,
            offset,
            expected,
            actual: data.len() as u64,
        });
    }
    WEIGHTS.save(deps.storage, (layer, (offset / CHUNK_BYTES) as u32), &data.to_vec())?;
    let (next_layer, next_offset) = next_cursor(&model, layer, offset + expected);
    CURSOR.save(deps.storage, &(next_layer, next_offset))?;
    Ok(Response::new()
        .add_attribute("action", "upload_weights")
        .add_attribute("layer", layer.to_string())
        .add_attribute("offset", offset.to_string())
        .add_attribute("next_layer", next_layer.to_string())
        .add_attribute("next_offset", next_offset.to_string()))
}

fn finalize(deps: DepsMut) -> Result<Response, ContractError> {
    let mut model = MODEL.load(deps.storage)?;
    if model.finalized {
        return Err(ContractError::Finalized {});
    }
    let (layer, offset) = CURSOR.load(deps.storage)?;
    if (layer as usize) < model.weight_bytes.len() {
        return Err(ContractError::Incomplete { layer, offset });
    }
    let mut hasher = Sha256::new();
    for (l, &len) in model.weight_bytes.iter().enumerate() {
        hasher.update(load_weights(deps.storage, l as u32, len)?);
    }
    let actual = HexBinary::from(hasher.finalize().to_vec());
    if actual != model.weights_sha256 {
        return Err(ContractError::HashMismatch {
            expected: model.weights_sha256.to_hex(),
            actual: actual.to_hex(),
        });
    }
    model.finalized = true;
    MODEL.save(deps.storage, &model)?;
    Ok(Response::new()
        .add_attribute("action", "finalize")
        .add_attribute("weights_sha256", actual.to_hex()))
}

/// A layer's weights, chunk by chunk: the number of reads follows from the config, never from
/// iterating storage.
fn load_weights(storage: &dyn Storage, layer: u32, len: u64) -> StdResult<Vec<u8>> {
    let mut w = Vec::with_capacity(len as usize);
    for k in 0..len.div_ceil(CHUNK_BYTES) {
        w.extend(WEIGHTS.load(storage, (layer, k as u32))?);
    }
    Ok(w)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Owner {} => to_json_binary(&OwnerResponse {
            owner: OWNER.load(deps.storage)?.into_string(),
        }),
        QueryMsg::ModelInfo {} => to_json_binary(&model_info(deps)?),
        QueryMsg::Predict { input } => to_json_binary(&predict(deps, input)?),
    }
}

fn model_info(deps: Deps) -> StdResult<ModelInfoResponse> {
    let model = MODEL.load(deps.storage)?;
    let (cl, co) = CURSOR.load(deps.storage)?;
    let layers = model
        .config
        .layers
        .iter()
        .enumerate()
        .map(|(i, lc)| LayerInfo {
            kind: lc.layer.name().to_string(),
            output: model.outputs[i].clone(),
            weight_bytes: model.weight_bytes[i],
            uploaded_bytes: match (i as u32).cmp(&cl) {
                core::cmp::Ordering::Less => model.weight_bytes[i],
                core::cmp::Ordering::Equal => co,
                core::cmp::Ordering::Greater => 0,
            },
            macs: model.macs[i],
            units: model.units[i],
        })
        .collect();
    Ok(ModelInfoResponse {
        name: model.config.name,
        input: model.config.input,
        weights_sha256: model.weights_sha256,
        finalized: model.finalized,
        query_budget: model.query_budget,
        layers,
    })
}

/// The whole model in one query, refused up front when it exceeds the query budget.
fn predict(deps: Deps, input: Vec<i32>) -> Result<PredictResponse, ContractError> {
    let model = MODEL.load(deps.storage)?;
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    let (macs, weight_bytes) = (model.macs.iter().sum::<u64>(), model.weight_bytes.iter().sum::<u64>());
    let b = &model.query_budget;
    if macs > b.max_macs || weight_bytes > b.max_weight_bytes {
        return Err(ContractError::QueryBudget {
            macs,
            weight_bytes,
            max_macs: b.max_macs,
            max_weight_bytes: b.max_weight_bytes,
        });
    }
    let mut tensors = vec![input_tensor(&model.config.input, input)?];
    for (index, lc) in model.config.layers.iter().enumerate() {
        let weights = load_weights(deps.storage, index as u32, model.weight_bytes[index])?;
        let inputs: Vec<&QTensor> = input_ids(lc, index).iter().map(|&id| &tensors[id as usize]).collect();
        let out = lc
            .layer
            .run(&inputs, &weights)
            .map_err(|source| ContractError::Layer { index, source })?;
        tensors.push(out);
    }
    let last = tensors
        .pop()
        .ok_or(ContractError::InvalidConfig("a model needs at least one layer"))?;
    let data = (0..last.len()).map(|i| last.data.get(i).unwrap_or(0)).collect();
    Ok(PredictResponse {
        output: TensorSpec::of(&last),
        data,
    })
}

/// The model input from a caller's integers: right length, every value in the input's type.
fn input_tensor(spec: &TensorSpec, values: Vec<i32>) -> Result<QTensor, ContractError> {
    if Some(values.len()) != spec.numel() {
        return Err(ContractError::Input(
            "length differs from the input shape's element count",
        ));
    }
    if values
        .iter()
        .any(|v| !(spec.dtype.min()..=spec.dtype.max()).contains(v))
    {
        return Err(ContractError::Input("a value lies outside the input's integer type"));
    }
    let data = match spec.dtype {
        DType::I8 => TensorData::I8(values.into_iter().map(|v| v as i8).collect()),
        DType::I16 => TensorData::I16(values.into_iter().map(|v| v as i16).collect()),
        DType::I32 => TensorData::I32(values),
    };
    QTensor::new(spec.shape.clone(), data, spec.quant)
        .map_err(|_| ContractError::Input("does not match the input spec"))
}
