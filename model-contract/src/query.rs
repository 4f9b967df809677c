//! One handler per query. Each reads a bounded number of keys: no loop over user-controlled
//! storage runs past a fixed limit.

use cosmwasm_std::{Addr, Binary, Coin, Deps, Order, StdError, StdResult, Storage};

use crate::error::ContractError;
use crate::eval::{input_tensor, load_tensor, response_of, run_model};
use crate::execute::check_ready;
use crate::msg::{
    CollectionQueryMsg, JobResponse, JobsResponse, LayerInfo, ModelInfoResponse, OwnerResponse, PredictResponse,
    ProceedsResponse, TokenOwner,
};
use crate::state::{
    load_model, CURSOR, JOBS, JOBS_BY_CREATOR, MAX_JOBS_PER_SENDER, MAX_PROCEEDS_DENOMS, NFT, OWNER, PROCEEDS,
};

/// Who controls the model: the holder of its NFT (one CW721 `OwnerOf` query) once minted,
/// else the owner of record.
pub(crate) fn current_owner(deps: Deps) -> Result<Addr, ContractError> {
    match NFT.may_load(deps.storage)? {
        Some(nft) => {
            let q = CollectionQueryMsg::OwnerOf {
                token_id: nft.token_id,
                include_expired: None,
            };
            let res: TokenOwner = deps.querier.query_wasm_smart(nft.collection, &q)?;
            Ok(deps.api.addr_validate(&res.owner)?)
        }
        None => Ok(OWNER.load(deps.storage)?),
    }
}

pub(crate) fn owner(deps: Deps) -> StdResult<OwnerResponse> {
    Ok(OwnerResponse {
        owner: current_owner(deps)
            .map_err(|e| StdError::generic_err(e.to_string()))?
            .into_string(),
        nft: NFT.may_load(deps.storage)?,
    })
}

/// The first `MAX_PROCEEDS_DENOMS` denoms of the proceeds (what one `Withdraw` pays).
pub(crate) fn proceeds_page(storage: &dyn Storage) -> StdResult<Vec<Coin>> {
    PROCEEDS
        .range(storage, None, None, Order::Ascending)
        .take(MAX_PROCEEDS_DENOMS)
        .map(|r| r.map(|(denom, amount)| Coin { denom, amount }))
        .collect()
}

pub(crate) fn proceeds(deps: Deps) -> StdResult<ProceedsResponse> {
    Ok(ProceedsResponse {
        proceeds: proceeds_page(deps.storage)?,
    })
}

pub(crate) fn model_info(deps: Deps) -> StdResult<ModelInfoResponse> {
    let model = load_model(deps.storage)?;
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
            work: model.work[i].saturating_add(model.segment_work[i]),
            segment_work: model.segment_work[i],
            units: model.units[i],
        })
        .collect();
    Ok(ModelInfoResponse {
        name: model.config.name,
        input: model.config.input,
        weights_sha256: model.weights_sha256,
        model_sha256: model.model_sha256,
        finalized: model.finalized,
        baked: crate::state::baked().is_some(),
        query_budget: model.query_budget,
        execute_budget: model.execute_budget,
        fee: model.fee,
        free_queries: model.free_queries,
        collection_code_ids: model.collection_code_ids,
        paused: model.paused,
        nft: NFT.may_load(deps.storage)?,
        layers,
        version: model.version,
        #[cfg(feature = "train")]
        training: match model.trainable {
            true => Some(crate::state::TRAINING.load(deps.storage)?),
            false => None,
        },
    })
}

pub(crate) fn job_info(deps: Deps, id: u64) -> Result<JobResponse, ContractError> {
    let model = load_model(deps.storage)?;
    let job = JOBS
        .may_load(deps.storage, id)?
        .ok_or(ContractError::JobNotFound { id })?;
    let n = model.config.layers.len() as u32;
    let output = match job.finished(&model) {
        true => Some(response_of(&load_tensor(deps.storage, &model, id, n)?)),
        false => None,
    };
    Ok(JobResponse {
        id,
        creator: job.creator,
        input_sha256: job.input_sha256,
        finished: output.is_some(),
        layer: job.layer,
        unit: job.unit,
        layers: n,
        segments: job.segments,
        output,
        version: job.version,
        reinforced: job.reinforced,
    })
}

pub(crate) fn jobs(deps: Deps, creator: String) -> StdResult<JobsResponse> {
    let creator = deps.api.addr_validate(&creator)?;
    let ids = JOBS_BY_CREATOR
        .prefix(&creator)
        .keys(deps.storage, None, None, Order::Ascending)
        .take(MAX_JOBS_PER_SENDER as usize)
        .collect::<StdResult<_>>()?;
    Ok(JobsResponse { ids })
}

/// The whole model in one query, refused up front when it exceeds the query budget, and
/// refused on a fee'd model unless its holder allows free queries.
pub(crate) fn predict(deps: Deps, input: Vec<i32>, bytes: Option<Binary>) -> Result<PredictResponse, ContractError> {
    let model = load_model(deps.storage)?;
    check_ready(&model)?;
    if model.fee.is_some() && !model.free_queries {
        return Err(ContractError::PaidModel {});
    }
    let input = input_tensor(&model.config.input, input, bytes)?;
    let out = run_model(deps.storage, deps.api, &model, input, &model.query_budget)?;
    Ok(response_of(&out))
}
