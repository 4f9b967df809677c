#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    from_json, to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Reply, Response, StdError, StdResult, SubMsg,
    WasmMsg,
};
use cwnn_model_contract::msg::{ExecuteMsg as ModelExecute, PredictResponse, QueryMsg as ModelQuery};
use thiserror::Error;

use crate::msg::{Classification, ExecuteMsg, InstantiateMsg, QueryMsg};
use crate::state::{LAST, MODEL, PENDING};

/// Reply id of the model's paid `Predict`.
const PREDICT_REPLY: u64 = 1;

#[derive(Error, Debug, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    Std(#[from] StdError),
    #[error("the model returned no scores")]
    EmptyOutput {},
    #[error("the model's reply carried no answer")]
    NoAnswer {},
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(deps: DepsMut, _env: Env, _info: MessageInfo, msg: InstantiateMsg) -> StdResult<Response> {
    let model = deps.api.addr_validate(&msg.model)?;
    MODEL.save(deps.storage, &model)?;
    Ok(Response::new().add_attribute("model", model))
}

/// `Classify` sends the model its paid `Predict` with exactly the funds it was given: the
/// model takes its fee (or refuses a wrong amount, reverting the whole transaction), so the
/// oracle never keeps anything. The answer comes back in the reply.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, _env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::Classify { input } => {
            PENDING.save(deps.storage, &info.sender)?;
            let predict = WasmMsg::Execute {
                contract_addr: MODEL.load(deps.storage)?.into_string(),
                msg: to_json_binary(&ModelExecute::Predict {
                    input,
                    input_bytes: None,
                })?,
                funds: info.funds,
            };
            Ok(Response::new()
                .add_attribute("action", "classify")
                .add_submessage(SubMsg::reply_on_success(predict, PREDICT_REPLY)))
        }
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn reply(deps: DepsMut, _env: Env, reply: Reply) -> Result<Response, ContractError> {
    let sender = PENDING.load(deps.storage)?;
    PENDING.remove(deps.storage);
    let res = reply.result.into_result().map_err(StdError::generic_err)?;
    #[allow(deprecated)] // chains before CosmWasm 2.0 fill only `data`
    let data = match res.msg_responses.first() {
        Some(r) => r.value.clone(),
        None => res.data.ok_or(ContractError::NoAnswer {})?,
    };
    let out: PredictResponse = from_json(execute_data(&data))?;
    let c = argmax(&out)?;
    LAST.save(deps.storage, &sender, &c)?;
    Ok(Response::new()
        .add_attribute("label", c.label.to_string())
        .set_data(to_json_binary(&c)?))
}

/// The contract's data inside a `MsgExecuteContractResponse` (protobuf field 1, as wasmd
/// wraps it), or the bytes as they are when they are already the JSON.
fn execute_data(bytes: &[u8]) -> &[u8] {
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    if bytes.first() != Some(&0x0a) {
        return bytes;
    }
    while let Some(&b) = bytes.get(at) {
        len |= ((b & 0x7f) as usize) << shift;
        at += 1;
        shift += 7;
        if b & 0x80 == 0 || shift > 28 {
            break;
        }
    }
    bytes.get(at..at.saturating_add(len)).unwrap_or(bytes)
}

/// The highest score (the first on a tie).
fn argmax(out: &PredictResponse) -> Result<Classification, ContractError> {
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

/// Classifies with the model's `Predict` query: free models, or models whose holder allows
/// free queries.
fn classify(deps: Deps, input: Vec<i32>) -> Result<Classification, ContractError> {
    let model = MODEL.load(deps.storage)?;
    let out: PredictResponse = deps.querier.query_wasm_smart(
        model,
        &ModelQuery::Predict {
            input,
            input_bytes: None,
        },
    )?;
    argmax(&out)
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
