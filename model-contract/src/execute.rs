//! One handler per execute message. Each checks everything before it writes, so a refused
//! message changes no state.

use cosmwasm_std::{
    to_json_binary, Addr, Api, BankMsg, Binary, Coin, Deps, DepsMut, Env, Event, HexBinary, MessageInfo, Order,
    Response, StdResult, Storage, WasmMsg,
};
use cwnn_tensor::QTensor;
use sha2::{Digest, Sha256};

use crate::config::{check_budgets, check_fee, check_segments_fit, next_cursor};
use crate::error::ContractError;
use crate::eval::{advance, input_tensor, read_weights, response_of, run_model, Budget};
use crate::msg::{sha256, CollectionExecuteMsg, EvaluateResponse, PredictResponse, WorkBudget};
use crate::query::{current_owner, proceeds_page};
use crate::state::{
    load_model, Job, Model, NftBinding, CHUNK_BYTES, CURSOR, JOBS, JOBS_BY_CREATOR, JOB_COUNT, JOB_STATE, JOB_TENSORS,
    MAX_JOBS_PER_SENDER, MODEL, NEXT_JOB_ID, NFT, OWNER, PROCEEDS, WEIGHTS,
};

pub(crate) fn nonpayable(info: &MessageInfo) -> Result<(), ContractError> {
    match info.funds.is_empty() {
        true => Ok(()),
        false => Err(ContractError::UnexpectedFunds {}),
    }
}

/// Owner-only messages take no funds either. Returns the owner.
pub(crate) fn owner_only(deps: Deps, info: &MessageInfo) -> Result<Addr, ContractError> {
    let owner = current_owner(deps)?;
    if info.sender != owner {
        return Err(ContractError::Unauthorized {});
    }
    nonpayable(info)?;
    Ok(owner)
}

/// A model that may start an inference: finalized and not paused.
pub(crate) fn check_ready(model: &Model) -> Result<(), ContractError> {
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    match model.paused {
        true => Err(ContractError::Paused {}),
        false => Ok(()),
    }
}

/// The fee check: with no fee, no funds; with one, exactly the fee and nothing else (an
/// overpayment is refused, not kept).
pub(crate) fn paid(fee: &Option<Coin>, info: &MessageInfo) -> Result<(), ContractError> {
    let Some(fee) = fee else {
        return nonpayable(info);
    };
    if info.funds.as_slice() != [fee.clone()] {
        let paid: Vec<String> = info.funds.iter().map(Coin::to_string).collect();
        return Err(ContractError::WrongFee {
            required: fee.to_string(),
            paid: if paid.is_empty() {
                "nothing".into()
            } else {
                paid.join(",")
            },
        });
    }
    Ok(())
}

/// Adds a paid fee to the proceeds, which stay with the model until the owner withdraws them.
pub(crate) fn accrue(storage: &mut dyn Storage, funds: &[Coin], mut res: Response) -> Result<Response, ContractError> {
    for c in funds {
        PROCEEDS.update(storage, &c.denom, |a| {
            StdResult::Ok(a.unwrap_or_default().checked_add(c.amount)?)
        })?;
        res = res.add_attribute("fee", c.to_string());
    }
    Ok(res)
}

/// `cwnn_inference`: what `cwnn verify` needs to reproduce an answer.
fn inference_event(model: &Model, job_id: u64, input_sha256: &str, out: &PredictResponse) -> Event {
    let bytes = out_bytes(out);
    let event = Event::new("cwnn_inference");
    let event = match model.trainable {
        true => event.add_attribute("version", model.version.to_string()),
        false => event,
    };
    event
        .add_attribute("job_id", job_id.to_string())
        .add_attribute("model_sha256", model.model_sha256.to_hex())
        .add_attribute("weights_sha256", model.weights_sha256.to_hex())
        .add_attribute("input_sha256", input_sha256)
        .add_attribute("output_sha256", sha256(&bytes).to_hex())
        .add_attribute("output", Binary::from(bytes).to_base64())
}

/// The output's little-endian bytes at its quantized width, as events carry it.
fn out_bytes(out: &PredictResponse) -> Vec<u8> {
    let w = out.output.dtype.bytes();
    out.data
        .iter()
        .flat_map(|v| v.to_le_bytes().into_iter().take(w))
        .collect()
}

/// The paid one-shot inference: the whole model within the execute budget.
pub(crate) fn predict(
    deps: DepsMut,
    info: MessageInfo,
    input: Vec<i32>,
    bytes: Option<Binary>,
) -> Result<Response, ContractError> {
    let model = load_model(deps.storage)?;
    check_ready(&model)?;
    paid(&model.fee, &info)?;
    let input = input_tensor(&model.config.input, input, bytes)?;
    let input_bytes = input.data.to_le_bytes();
    let out = run_model(deps.storage, deps.api, &model, input, &model.execute_budget)?;
    let out = response_of(&out);
    let event = inference_event(&model, 0, &sha256(&input_bytes).to_hex(), &out)
        .add_attribute("input", Binary::from(input_bytes).to_base64());
    let res = Response::new()
        .add_attribute("action", "predict")
        .add_event(event)
        .set_data(to_json_binary(&out)?);
    accrue(deps.storage, &info.funds, res)
}

pub(crate) fn evaluate(
    deps: DepsMut,
    info: MessageInfo,
    input: Vec<i32>,
    bytes: Option<Binary>,
    steps: Option<u32>,
) -> Result<Response, ContractError> {
    let model = load_model(deps.storage)?;
    check_ready(&model)?;
    paid(&model.fee, &info)?;
    if steps == Some(0) {
        return Err(ContractError::ZeroSteps {});
    }
    let input = input_tensor(&model.config.input, input, bytes)?;
    let creator = info.sender;
    let (pruned, held) = make_room(deps.storage, &model, &creator)?;
    let job_id = NEXT_JOB_ID.load(deps.storage)?;
    NEXT_JOB_ID.save(deps.storage, &(job_id + 1))?;
    let input_bytes = input.data.to_le_bytes();
    let mut job = Job {
        creator: creator.clone(),
        input_sha256: sha256(&input_bytes),
        layer: 0,
        unit: 0,
        stored: Vec::new(),
        segments: 0,
        has_state: false,
        version: model.version,
        reinforced: false,
    };
    JOBS_BY_CREATOR.save(deps.storage, (&creator, job_id), &())?;
    JOB_COUNT.save(deps.storage, &creator, &(held + 1))?;
    let started = Event::new("cwnn_evaluate")
        .add_attribute("job_id", job_id.to_string())
        .add_attribute("creator", creator.as_str())
        .add_attribute("input_sha256", job.input_sha256.to_hex())
        .add_attribute("input", Binary::from(input_bytes).to_base64());
    let mut res = run_job(deps.storage, deps.api, &model, job_id, &mut job, steps, Some(input))?
        .add_attribute("action", "evaluate")
        .add_event(started);
    if let Some(old) = pruned {
        res = res.add_attribute("pruned_job", old.to_string());
    }
    accrue(deps.storage, &info.funds, res)
}

/// Keeps `creator` within `MAX_JOBS_PER_SENDER`: at the limit, drops its oldest finished job
/// (or one a training step left unable to finish).
/// Gives the pruned job and how many jobs `creator` then holds.
fn make_room(storage: &mut dyn Storage, model: &Model, creator: &Addr) -> Result<(Option<u64>, u32), ContractError> {
    let held = JOB_COUNT.may_load(storage, creator)?.unwrap_or(0);
    if held < MAX_JOBS_PER_SENDER {
        return Ok((None, held));
    }
    let ids: Vec<u64> = JOBS_BY_CREATOR
        .prefix(creator)
        .keys(storage, None, None, Order::Ascending)
        .take(MAX_JOBS_PER_SENDER as usize)
        .collect::<StdResult<_>>()?;
    for id in ids {
        let mut job = JOBS.load(storage, id)?;
        if job.finished(model) || !job.rebase(storage, model)? {
            delete_job(storage, id, &job)?;
            return Ok((Some(id), held - 1));
        }
    }
    Err(ContractError::TooManyJobs {
        max: MAX_JOBS_PER_SENDER,
    })
}

fn delete_job(storage: &mut dyn Storage, id: u64, job: &Job) -> StdResult<()> {
    for &k in &job.stored {
        JOB_TENSORS.remove(storage, (id, k));
    }
    if job.has_state {
        JOB_STATE.remove(storage, id);
    }
    JOBS.remove(storage, id);
    JOBS_BY_CREATOR.remove(storage, (&job.creator, id));
    JOB_COUNT.update(storage, &job.creator, |n| {
        StdResult::Ok(n.unwrap_or(0).saturating_sub(1))
    })?;
    Ok(())
}

/// Runs a job as far as the call's budget goes and saves it; a finished job emits
/// `cwnn_inference`.
fn run_job(
    storage: &mut dyn Storage,
    api: &dyn Api,
    model: &Model,
    job_id: u64,
    job: &mut Job,
    steps: Option<u32>,
    input: Option<QTensor>,
) -> Result<Response, ContractError> {
    let before = job.segments;
    let budget = Budget::new(&model.execute_budget, steps);
    let output = advance(storage, api, model, job_id, job, budget, input)?;
    JOBS.save(storage, job_id, job)?;
    let output = output.as_ref().map(response_of);
    let mut res = Response::new()
        .add_attribute("job_id", job_id.to_string())
        .add_attribute("segments", (job.segments - before).to_string())
        .add_attribute("layer", job.layer.to_string())
        .add_attribute("unit", job.unit.to_string())
        .add_attribute("finished", output.is_some().to_string());
    if let Some(out) = &output {
        res = res.add_event(inference_event(model, job_id, &job.input_sha256.to_hex(), out));
    }
    Ok(res.set_data(to_json_binary(&EvaluateResponse {
        job_id,
        finished: output.is_some(),
        output,
    })?))
}

/// Runs more of a job. A pause does not stop it: the job was paid for when it started.
pub(crate) fn continue_job(deps: DepsMut, job_id: u64, steps: Option<u32>) -> Result<Response, ContractError> {
    if steps == Some(0) {
        return Err(ContractError::ZeroSteps {});
    }
    let model = load_model(deps.storage)?;
    let mut job = JOBS
        .may_load(deps.storage, job_id)?
        .ok_or(ContractError::JobNotFound { id: job_id })?;
    if job.finished(&model) {
        return Err(ContractError::JobFinished { id: job_id });
    }
    if !job.rebase(deps.storage, &model)? {
        return Err(ContractError::ModelUpdated {
            id: job_id,
            job_version: job.version,
            version: model.version,
        });
    }
    Ok(run_job(deps.storage, deps.api, &model, job_id, &mut job, steps, None)?.add_attribute("action", "continue"))
}

pub(crate) fn cancel_job(deps: DepsMut, sender: Addr, job_id: u64) -> Result<Response, ContractError> {
    let job = JOBS
        .may_load(deps.storage, job_id)?
        .ok_or(ContractError::JobNotFound { id: job_id })?;
    if job.creator != sender {
        return Err(ContractError::NotJobCreator { id: job_id });
    }
    delete_job(deps.storage, job_id, &job)?;
    Ok(Response::new()
        .add_attribute("action", "cancel_job")
        .add_attribute("job_id", job_id.to_string()))
}

pub(crate) fn upload_weights(deps: DepsMut, layer: u32, offset: u64, data: Binary) -> Result<Response, ContractError> {
    let model = load_model(deps.storage)?;
    if model.finalized {
        return Err(ContractError::Finalized {});
    }
    let len = layer_bytes(&model, layer)?;
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
    crate::state::save_bytes(deps.storage, &WEIGHTS, (layer, (offset / CHUNK_BYTES) as u32), &data);
    let (next_layer, next_offset) = next_cursor(&model, layer, offset + expected);
    CURSOR.save(deps.storage, &(next_layer, next_offset))?;
    Ok(Response::new()
        .add_attribute("action", "upload_weights")
        .add_attribute("layer", layer.to_string())
        .add_attribute("offset", offset.to_string())
        .add_attribute("next_layer", next_layer.to_string())
        .add_attribute("next_offset", next_offset.to_string()))
}

fn layer_bytes(model: &Model, layer: u32) -> Result<u64, ContractError> {
    model
        .weight_bytes
        .get(layer as usize)
        .copied()
        .ok_or(ContractError::UnknownLayer {
            layer,
            layers: model.weight_bytes.len(),
        })
}

/// Moves the upload cursor back to a chunk start at or before it; the chunks from there on
/// are uploaded again (each overwrites the one stored under its key).
pub(crate) fn rewind_upload(deps: DepsMut, layer: u32, offset: u64) -> Result<Response, ContractError> {
    let model = load_model(deps.storage)?;
    if model.finalized {
        return Err(ContractError::Finalized {});
    }
    let len = layer_bytes(&model, layer)?;
    let (cursor_layer, cursor_offset) = CURSOR.load(deps.storage)?;
    if offset % CHUNK_BYTES != 0 || (offset >= len && offset > 0) || (layer, offset) > (cursor_layer, cursor_offset) {
        return Err(ContractError::InvalidRewind {
            layer,
            offset,
            cursor_layer,
            cursor_offset,
        });
    }
    let (next_layer, next_offset) = next_cursor(&model, layer, offset);
    CURSOR.save(deps.storage, &(next_layer, next_offset))?;
    Ok(Response::new()
        .add_attribute("action", "rewind_upload")
        .add_attribute("next_layer", next_layer.to_string())
        .add_attribute("next_offset", next_offset.to_string()))
}

pub(crate) fn finalize(deps: DepsMut) -> Result<Response, ContractError> {
    let mut model = load_model(deps.storage)?;
    if model.finalized {
        return Err(ContractError::Finalized {});
    }
    let (layer, offset) = CURSOR.load(deps.storage)?;
    if (layer as usize) < model.weight_bytes.len() {
        return Err(ContractError::Incomplete { layer, offset });
    }
    let mut hasher = Sha256::new();
    for (l, &len) in model.weight_bytes.iter().enumerate() {
        hasher.update(read_weights(deps.storage, &model, l as u32, 0..len)?.as_ref());
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
        .add_attribute("weights_sha256", actual.to_hex())
        .add_attribute("model_sha256", model.model_sha256.to_hex()))
}

pub(crate) fn transfer_ownership(deps: DepsMut, new_owner: String) -> Result<Response, ContractError> {
    if NFT.exists(deps.storage) {
        return Err(ContractError::OwnedByNft {});
    }
    let new_owner = deps.api.addr_validate(&new_owner)?;
    OWNER.save(deps.storage, &new_owner)?;
    Ok(Response::new()
        .add_attribute("action", "transfer_ownership")
        .add_attribute("owner", new_owner))
}

/// A collection the model may bind to: an instance of an accepted code, with no wasmd admin
/// (an admin could migrate it to answer `OwnerOf` with anyone).
fn check_collection(deps: Deps, model: &Model, collection: &Addr) -> Result<(), ContractError> {
    let info = deps.querier.query_wasm_contract_info(collection).ok();
    let code_id = info.as_ref().map(|i| i.code_id);
    if !code_id.is_some_and(|id| model.collection_code_ids.contains(&id)) {
        return Err(ContractError::CollectionNotAccepted {
            collection: collection.to_string(),
            code_id,
            accepted: model.collection_code_ids.clone(),
        });
    }
    match info.and_then(|i| i.admin) {
        Some(admin) => Err(ContractError::CollectionHasAdmin {
            collection: collection.to_string(),
            admin: admin.into_string(),
        }),
        None => Ok(()),
    }
}

/// Binds the model to its token (id: the model's own address) in `collection` and asks the
/// collection to mint it to `owner`. The binding is written here, by the model, before the
/// collection runs: if the collection refuses, the whole transaction is reverted.
pub(crate) fn mint_nft(
    deps: DepsMut,
    env: Env,
    owner: Addr,
    collection: String,
    token_uri: Option<String>,
    claimed_accuracy_bps: Option<u16>,
) -> Result<Response, ContractError> {
    if let Some(nft) = NFT.may_load(deps.storage)? {
        return Err(ContractError::AlreadyMinted {
            collection: nft.collection.into_string(),
            token_id: nft.token_id,
        });
    }
    let model = load_model(deps.storage)?;
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    if claimed_accuracy_bps.is_some_and(|a| a > 10_000) {
        return Err(ContractError::InvalidConfig(
            "claimed accuracy is at most 10,000 basis points",
        ));
    }
    let collection = deps.api.addr_validate(&collection)?;
    check_collection(deps.as_ref(), &model, &collection)?;
    let token_id = env.contract.address.into_string();
    NFT.save(
        deps.storage,
        &NftBinding {
            collection: collection.clone(),
            token_id: token_id.clone(),
        },
    )?;
    let mint = WasmMsg::Execute {
        contract_addr: collection.to_string(),
        msg: to_json_binary(&CollectionExecuteMsg::MintModel {
            owner: owner.to_string(),
            token_uri,
            claimed_accuracy_bps,
            baked: crate::state::baked().map(|p| Binary::from(p.data_section())),
        })?,
        funds: vec![],
    };
    Ok(Response::new()
        .add_message(mint)
        .add_attribute("action", "mint_nft")
        .add_attribute("collection", collection)
        .add_attribute("token_id", token_id))
}

pub(crate) fn set_fee(deps: DepsMut, fee: Option<Coin>) -> Result<Response, ContractError> {
    check_fee(&fee)?;
    let mut model = load_model(deps.storage)?;
    model.fee = fee;
    MODEL.save(deps.storage, &model)?;
    let shown = model.fee.map_or("none".into(), |f| f.to_string());
    Ok(Response::new()
        .add_attribute("action", "set_fee")
        .add_attribute("fee", shown))
}

pub(crate) fn set_free_queries(deps: DepsMut, free_queries: bool) -> Result<Response, ContractError> {
    MODEL.update(deps.storage, |mut m| {
        m.free_queries = free_queries;
        StdResult::Ok(m)
    })?;
    Ok(Response::new()
        .add_attribute("action", "set_free_queries")
        .add_attribute("free_queries", free_queries.to_string()))
}

pub(crate) fn set_paused(deps: DepsMut, paused: bool) -> Result<Response, ContractError> {
    MODEL.update(deps.storage, |mut m| {
        m.paused = paused;
        StdResult::Ok(m)
    })?;
    Ok(Response::new()
        .add_attribute("action", "set_paused")
        .add_attribute("paused", paused.to_string()))
}

pub(crate) fn set_budgets(deps: DepsMut, query: WorkBudget, execute: WorkBudget) -> Result<Response, ContractError> {
    check_budgets(&query, &execute)?;
    let mut model = load_model(deps.storage)?;
    model.query_budget = query;
    model.execute_budget = execute;
    check_segments_fit(&model)?;
    MODEL.save(deps.storage, &model)?;
    Ok(Response::new().add_attribute("action", "set_budgets"))
}

/// Pays the accrued fees (up to `MAX_PROCEEDS_DENOMS` denoms a call, or one `denom`) to `owner`.
pub(crate) fn withdraw(deps: DepsMut, owner: Addr, denom: Option<String>) -> Result<Response, ContractError> {
    let amount = match denom {
        None => proceeds_page(deps.storage)?,
        Some(denom) => match PROCEEDS.may_load(deps.storage, &denom)? {
            Some(amount) => vec![Coin { denom, amount }],
            None => vec![],
        },
    };
    if amount.is_empty() {
        return Err(ContractError::NothingToWithdraw {});
    }
    for c in &amount {
        PROCEEDS.remove(deps.storage, &c.denom);
    }
    let shown: Vec<String> = amount.iter().map(Coin::to_string).collect();
    Ok(Response::new()
        .add_message(BankMsg::Send {
            to_address: owner.to_string(),
            amount,
        })
        .add_attribute("action", "withdraw")
        .add_attribute("to", owner)
        .add_attribute("amount", shown.join(",")))
}
