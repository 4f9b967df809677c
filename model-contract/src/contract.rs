//! Entry points: instantiate, and the dispatch of each message to its handler in
//! [`crate::execute`] or [`crate::query`]. There is no `migrate`: a model's code never changes.

#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};

use crate::config::{
    check_baked, check_budgets, check_code_ids, check_fee, check_segments_fit, next_cursor, validate_model,
};
use crate::error::ContractError;
use crate::execute as exec;
use crate::msg::{model_sha256, ExecuteMsg, InstantiateMsg, QueryMsg, WorkBudget};
use crate::query as q;
use crate::state::{baked, Model, CONTRACT_NAME, CONTRACT_VERSION, CURSOR, MODEL, NEXT_JOB_ID, OWNER};

/// Whether `msg` makes the model trainable; a build without the `train` feature (a baked
/// model's runtime) refuses it.
fn trainable(msg: &InstantiateMsg) -> Result<bool, ContractError> {
    match (cfg!(feature = "train"), msg.training.is_some()) {
        (false, true) => Err(ContractError::NotTrainable(
            "this build leaves training out (a baked model's runtime)",
        )),
        (_, t) => Ok(t),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    exec::nonpayable(&info)?;
    let trainable = trainable(&msg)?;
    let owner = match msg.owner {
        Some(o) => deps.api.addr_validate(&o)?,
        None => info.sender,
    };
    if msg.weights_sha256.len() != 32 {
        return Err(ContractError::HashLength(msg.weights_sha256.len()));
    }
    check_fee(&msg.fee)?;
    let query_budget = msg.query_budget.unwrap_or_else(WorkBudget::default_query);
    let execute_budget = msg.execute_budget.unwrap_or_else(WorkBudget::default_execute);
    check_budgets(&query_budget, &execute_budget)?;
    let collection_code_ids = msg.collection_code_ids.unwrap_or_default();
    check_code_ids(&collection_code_ids)?;
    let plans = validate_model(&msg.model)?;
    let model = Model {
        model_sha256: model_sha256(&msg.model, &msg.weights_sha256)?,
        config: msg.model,
        weights_sha256: msg.weights_sha256,
        collection_code_ids,
        query_budget,
        execute_budget,
        fee: msg.fee,
        free_queries: msg.free_queries.unwrap_or(false),
        weight_bytes: vec![],
        macs: vec![],
        work: vec![],
        segment_work: vec![],
        units: vec![],
        outputs: vec![],
        finalized: false,
        paused: false,
        trainable,
        version: 0,
    }
    .set_plans(plans);
    check_segments_fit(&model)?;
    #[cfg(feature = "train")]
    let training = msg
        .training
        .map(|t| crate::train::check_training(deps.api, &model, t))
        .transpose()?;

    // A baked model's weights are in its code: complete and final from the start.
    let model = match baked() {
        Some(p) => {
            check_baked(&p, &model)?;
            Model {
                finalized: true,
                ..model
            }
        }
        None => model,
    };
    let cursor = match model.finalized {
        true => (model.weight_bytes.len() as u32, 0),
        false => next_cursor(&model, 0, 0),
    };
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    CURSOR.save(deps.storage, &cursor)?;
    MODEL.save(deps.storage, &model)?;
    OWNER.save(deps.storage, &owner)?;
    NEXT_JOB_ID.save(deps.storage, &1)?;
    #[cfg(feature = "train")]
    if let Some(t) = &training {
        crate::state::TRAINING.save(deps.storage, t)?;
    }
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("owner", owner)
        .add_attribute("model_sha256", model.model_sha256.to_hex())
        .add_attribute("layers", model.config.layers.len().to_string())
        .add_attribute("baked", model.finalized.to_string())
        .add_attribute("weight_bytes", model.weight_bytes.iter().sum::<u64>().to_string()))
}

/// Messages anyone may send pay (`Predict`, `Evaluate`) or take no funds; the owner's
/// messages check the sender first ([`exec::owner_only`]) and take no funds.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    use ExecuteMsg::*;
    let owner = |deps: &DepsMut| exec::owner_only(deps.as_ref(), &info);
    match msg {
        Predict { input, input_bytes } => exec::predict(deps, info, input, input_bytes),
        Evaluate {
            input,
            input_bytes,
            steps,
        } => exec::evaluate(deps, info, input, input_bytes, steps),
        Continue { job_id, steps } => {
            exec::nonpayable(&info)?;
            exec::continue_job(deps, job_id, steps)
        }
        CancelJob { job_id } => {
            exec::nonpayable(&info)?;
            exec::cancel_job(deps, info.sender, job_id)
        }
        UploadWeights { layer, offset, data } => {
            owner(&deps)?;
            exec::upload_weights(deps, layer, offset, data)
        }
        RewindUpload { layer, offset } => {
            owner(&deps)?;
            exec::rewind_upload(deps, layer, offset)
        }
        Finalize {} => {
            owner(&deps)?;
            exec::finalize(deps)
        }
        TransferOwnership { new_owner } => {
            owner(&deps)?;
            exec::transfer_ownership(deps, new_owner)
        }
        MintNft {
            collection,
            token_uri,
            claimed_accuracy_bps,
        } => {
            let owner = owner(&deps)?;
            exec::mint_nft(deps, env, owner, collection, token_uri, claimed_accuracy_bps)
        }
        SetFee { fee } => {
            owner(&deps)?;
            exec::set_fee(deps, fee)
        }
        SetFreeQueries { free_queries } => {
            owner(&deps)?;
            exec::set_free_queries(deps, free_queries)
        }
        Withdraw { denom } => {
            let owner = owner(&deps)?;
            exec::withdraw(deps, owner, denom)
        }
        SetPaused { paused } => {
            owner(&deps)?;
            exec::set_paused(deps, paused)
        }
        SetBudgets {
            query_budget,
            execute_budget,
        } => {
            owner(&deps)?;
            exec::set_budgets(deps, query_budget, execute_budget)
        }
        #[cfg(feature = "train")]
        Train { examples } => crate::train::train(deps, env, info, examples),
        #[cfg(feature = "train")]
        Reinforce {
            job_id,
            reward,
            input,
            input_bytes,
        } => crate::train::reinforce(deps, env, info, job_id, reward, (input, input_bytes)),
        #[cfg(feature = "train")]
        SetTraining { rules } => {
            owner(&deps)?;
            crate::train::set_training(deps, rules)
        }
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Owner {} => to_json_binary(&q::owner(deps)?),
        QueryMsg::Proceeds {} => to_json_binary(&q::proceeds(deps)?),
        QueryMsg::ModelInfo {} => to_json_binary(&q::model_info(deps)?),
        QueryMsg::Predict { input, input_bytes } => to_json_binary(&q::predict(deps, input, input_bytes)?),
        QueryMsg::Job { id } => to_json_binary(&q::job_info(deps, id)?),
        QueryMsg::Jobs { creator } => to_json_binary(&q::jobs(deps, creator)?),
    }
}
