#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdError, StdResult};
use cwnn_model_contract::msg::{PredictResponse, QueryMsg as ModelQuery};
use thiserror::Error;

use crate::msg::{Classification, ExecuteMsg, InstantiateMsg, QueryMsg};
use crate::state::{LAST, MODEL};

#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),
    #[error("the model returned no scores")]
    EmptyOutput {},
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(deps: DepsMut, _env: Env, _info: MessageInfo, msg: InstantiateMsg) -> StdResult<Response> {
    let model = deps.api.addr_validate(&msg.model)?;
    MODEL.save(deps.storage, &model)?;
    Ok(Response::new().add_attribute("model", model))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, _env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::Classify { input } => {
            let c = classify(deps.as_ref(), input)?;
            LAST.save(deps.storage, &info.sender, &c)?;
            Ok(Response::new()
                .add_attribute("action", "classify")
                .add_attribute("label", c.label.to_string())
                .set_data(to_json_binary(&c)?))
        }
    }
}

/// Asks the model for its scores and takes the highest (the first on a tie).
fn classify(deps: Deps, input: Vec<i32>) -> Result<Classification, ContractError> {
    let model = MODEL.load(deps.storage)?;
    let out: PredictResponse = deps.querier.query_wasm_smart(model, &ModelQuery::Predict { input })?;
    let (label, &score) = out
        .data
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, &v)| v)
        .ok_or(ContractError::EmptyOutput {})?;
    Ok(Classification {
        label: label as u32,
        score,
    })
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Classify { input } => {
            to_json_binary(&classify(deps, input).map_err(|e| StdError::generic_err(e.to_string()))?)
        }
        QueryMsg::Last { address } => {
            let address = deps.api.addr_validate(&address)?;
            to_json_binary(&LAST.may_load(deps.storage, &address)?)
        }
    }
}
