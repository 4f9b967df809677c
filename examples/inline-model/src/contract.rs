#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{from_json, to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdError, StdResult};
use cwnn_layers::{GraphError, ModelConfig};
use cwnn_model_contract::input_tensor;
use thiserror::Error;

use crate::model::{CONFIG_JSON, MODEL_SHA256, WEIGHTS, WEIGHTS_SHA256};
use crate::msg::{Classification, InstantiateMsg, ModelResponse, QueryMsg};

const CONTRACT_NAME: &str = "crates.io:cwnn-inline-model";
const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),
    #[error("{0}")]
    Input(#[from] cwnn_model_contract::ContractError),
    #[error("{0}")]
    Model(#[from] GraphError),
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(deps: DepsMut, _env: Env, _info: MessageInfo, _msg: InstantiateMsg) -> StdResult<Response> {
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new().add_attribute("model_sha256", MODEL_SHA256))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(_deps: Deps, _env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    let config: ModelConfig = from_json(CONFIG_JSON)?;
    Ok(match msg {
        QueryMsg::Classify { input, input_bytes } => to_json_binary(&classify(&config, input, input_bytes)?)?,
        QueryMsg::Model {} => to_json_binary(&ModelResponse {
            name: config.name,
            model_sha256: MODEL_SHA256.into(),
            weights_sha256: WEIGHTS_SHA256.into(),
        })?,
    })
}

/// The model on one input, checked as the model contract checks it.
pub fn classify(config: &ModelConfig, input: Vec<i32>, bytes: Option<Binary>) -> Result<Classification, ContractError> {
    let x = input_tensor(&config.input, input, bytes)?;
    let out = config
        .run_concatenated(WEIGHTS, x)?
        .pop()
        .ok_or(StdError::generic_err("no output"))?;
    let scores = out.data.to_i32s();
    // The first of equal maxima, as the importer's accuracy counts it.
    let label = scores
        .iter()
        .enumerate()
        .fold(0, |best, (i, &s)| if s > scores[best] { i } else { best });
    Ok(Classification {
        label: label as u32,
        scores,
    })
}
