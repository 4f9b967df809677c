#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, Addr, Api, BankMsg, Binary, Coin, Deps, DepsMut, Env, Event, HexBinary, MessageInfo, Order,
    Response, StdResult, Storage, WasmMsg,
};
use cwnn_layers::{LayerPlan, TensorSpec};
use cwnn_tensor::QTensor;
use sha2::{Digest, Sha256};

use crate::error::ContractError;
use crate::eval::{advance, input_ids, input_tensor, read_weights, response_of, run_model, unit_macs, Budget};
use crate::msg::{
    CollectionExecuteMsg, CollectionQueryMsg, EvaluateResponse, ExecuteMsg, InstantiateMsg, JobResponse, JobsResponse,
    LayerInfo, ModelConfig, ModelInfoResponse, OwnerResponse, PredictResponse, ProceedsResponse, QueryMsg, TokenOwner,
    WorkBudget,
};
use crate::state::{
    load_bytes, save_bytes, Job, Model, NftBinding, CHUNK_BYTES, CURSOR, JOBS, JOBS_BY_CREATOR, JOB_COUNT, JOB_STATE,
    JOB_TENSORS, MAX_JOBS_PER_SENDER, MAX_PROCEEDS_DENOMS, MODEL, NEXT_JOB_ID, NFT, OWNER, PROCEEDS, WEIGHTS,
};

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
    check_fee(&msg.fee)?;
    let query_budget = msg.query_budget.unwrap_or_else(WorkBudget::default_query);
    let execute_budget = msg.execute_budget.unwrap_or_else(WorkBudget::default_execute);
    check_budgets(&query_budget, &execute_budget)?;
    let plans = validate_model(&msg.model)?;
    let model = Model {
        config: msg.model,
        weights_sha256: msg.weights_sha256,
        query_budget,
        execute_budget,
        fee: msg.fee,
        weight_bytes: plans.iter().map(|p| p.weight_len as u64).collect(),
        macs: plans.iter().map(|p| p.macs).collect(),
        units: plans.iter().map(|p| p.units as u64).collect(),
        outputs: plans.into_iter().map(|p| p.output).collect(),
        finalized: false,
        paused: false,
    };
    check_segments_fit(&model)?;
    CURSOR.save(deps.storage, &next_cursor(&model, 0, 0))?;
    MODEL.save(deps.storage, &model)?;
    OWNER.save(deps.storage, &owner)?;
    NEXT_JOB_ID.save(deps.storage, &1)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("owner", owner)
        .add_attribute("layers", model.config.layers.len().to_string())
        .add_attribute("weight_bytes", model.weight_bytes.iter().sum::<u64>().to_string()))
}

fn check_fee(fee: &Option<Coin>) -> Result<(), ContractError> {
    match fee {
        Some(f) if f.amount.is_zero() || f.denom.is_empty() => Err(ContractError::InvalidConfig(
            "a fee needs a denom and a non-zero amount",
        )),
        _ => Ok(()),
    }
}

fn check_budgets(query: &WorkBudget, execute: &WorkBudget) -> Result<(), ContractError> {
    match execute.max_segments == 0 || query.max_segments == 0 {
        true => Err(ContractError::InvalidConfig("a work budget needs max_segments ≥ 1")),
        false => Ok(()),
    }
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
    let fits = |tensor: u32, bytes: Option<usize>| match bytes {
        Some(b) if b as u64 <= CHUNK_BYTES => Ok(()),
        b => Err(ContractError::TensorTooLarge {
            tensor,
            bytes: b.map_or(u64::MAX, |b| b as u64),
        }),
    };
    fits(0, input.bytes())?;
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
        fits(index as u32 + 1, Some(plan.output_bytes))?;
        fits(index as u32 + 1, plan.state_len.checked_mul(4))?;
        if plan.units == 0 {
            return Err(ContractError::InvalidConfig("a layer has no output units"));
        }
        specs.push(plan.output.clone());
        plans.push(plan);
    }
    Ok(plans)
}

/// Every layer's smallest segment (its first unit) must fit one call, or a job could stall.
fn check_segments_fit(model: &Model) -> Result<(), ContractError> {
    let b = &model.execute_budget;
    for (index, lc) in model.config.layers.iter().enumerate() {
        let specs: Vec<&TensorSpec> = input_ids(lc, index)
            .iter()
            .map(|&id| crate::eval::tensor_spec(model, id))
            .collect();
        let weight_bytes = lc
            .layer
            .weight_range(&specs, 0..1)
            .map_err(|source| ContractError::Layer { index, source })?
            .len() as u64;
        let macs = unit_macs(model, index);
        if macs > b.max_macs || weight_bytes > b.max_weight_bytes {
            return Err(ContractError::SegmentOverBudget {
                index,
                macs,
                weight_bytes,
            });
        }
    }
    Ok(())
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
    match msg {
        ExecuteMsg::Evaluate { input, steps } => evaluate(deps, info, input, steps),
        ExecuteMsg::Continue { job_id, steps } => {
            nonpayable(&info)?;
            continue_job(deps, job_id, steps)
        }
        ExecuteMsg::CancelJob { job_id } => {
            nonpayable(&info)?;
            cancel_job(deps, info.sender, job_id)
        }
        ExecuteMsg::UploadWeights { layer, offset, data } => {
            owner_only(deps.as_ref(), &info)?;
            upload_weights(deps, layer, offset, data)
        }
        ExecuteMsg::Finalize {} => {
            owner_only(deps.as_ref(), &info)?;
            finalize(deps)
        }
        ExecuteMsg::TransferOwnership { new_owner } => {
            owner_only(deps.as_ref(), &info)?;
            if NFT.exists(deps.storage) {
                return Err(ContractError::OwnedByNft {});
            }
            let new_owner = deps.api.addr_validate(&new_owner)?;
            OWNER.save(deps.storage, &new_owner)?;
            Ok(Response::new()
                .add_attribute("action", "transfer_ownership")
                .add_attribute("owner", new_owner))
        }
        ExecuteMsg::MintNft {
            collection,
            token_id,
            token_uri,
            claimed_accuracy_bps,
        } => {
            let owner = owner_only(deps.as_ref(), &info)?;
            mint_nft(deps, owner, collection, token_id, token_uri, claimed_accuracy_bps)
        }
        ExecuteMsg::SetFee { fee } => {
            owner_only(deps.as_ref(), &info)?;
            check_fee(&fee)?;
            let mut model = MODEL.load(deps.storage)?;
            model.fee = fee;
            MODEL.save(deps.storage, &model)?;
            let shown = model.fee.map_or("none".into(), |f| f.to_string());
            Ok(Response::new()
                .add_attribute("action", "set_fee")
                .add_attribute("fee", shown))
        }
        ExecuteMsg::Withdraw {} => {
            let owner = owner_only(deps.as_ref(), &info)?;
            withdraw(deps, owner)
        }
        ExecuteMsg::SetPaused { paused } => {
            owner_only(deps.as_ref(), &info)?;
            MODEL.update(deps.storage, |mut m| {
                m.paused = paused;
                StdResult::Ok(m)
            })?;
            Ok(Response::new()
                .add_attribute("action", "set_paused")
                .add_attribute("paused", paused.to_string()))
        }
        ExecuteMsg::SetBudgets {
            query_budget,
            execute_budget,
        } => {
            owner_only(deps.as_ref(), &info)?;
            check_budgets(&query_budget, &execute_budget)?;
            let mut model = MODEL.load(deps.storage)?;
            model.query_budget = query_budget;
            model.execute_budget = execute_budget;
            check_segments_fit(&model)?;
            MODEL.save(deps.storage, &model)?;
            Ok(Response::new().add_attribute("action", "set_budgets"))
        }
    }
}

/// Who controls the model: the holder of its NFT (one CW721 `OwnerOf` query) once minted,
/// else the owner of record.
fn current_owner(deps: Deps) -> Result<Addr, ContractError> {
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

/// Owner-only messages take no funds either. Returns the owner.
fn owner_only(deps: Deps, info: &MessageInfo) -> Result<Addr, ContractError> {
    let owner = current_owner(deps)?;
    if info.sender != owner {
        return Err(ContractError::Unauthorized {});
    }
    nonpayable(info)?;
    Ok(owner)
}

/// Binds the model to `token_id` of `collection` and asks the collection to mint it to
/// `owner`. The binding is written here, by the model, before the collection runs: if the
/// collection refuses, the whole transaction (binding included) is reverted.
fn mint_nft(
    deps: DepsMut,
    owner: Addr,
    collection: String,
    token_id: String,
    token_uri: Option<String>,
    claimed_accuracy_bps: Option<u16>,
) -> Result<Response, ContractError> {
    if let Some(nft) = NFT.may_load(deps.storage)? {
        return Err(ContractError::AlreadyMinted {
            collection: nft.collection.into_string(),
            token_id: nft.token_id,
        });
    }
    if !MODEL.load(deps.storage)?.finalized {
        return Err(ContractError::NotFinalized {});
    }
    if claimed_accuracy_bps.is_some_and(|a| a > 10_000) {
        return Err(ContractError::InvalidConfig(
            "claimed accuracy is at most 10,000 basis points",
        ));
    }
    let collection = deps.api.addr_validate(&collection)?;
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
            token_id: token_id.clone(),
            owner: owner.to_string(),
            token_uri,
            claimed_accuracy_bps,
        })?,
        funds: vec![],
    };
    Ok(Response::new()
        .add_message(mint)
        .add_attribute("action", "mint_nft")
        .add_attribute("collection", collection)
        .add_attribute("token_id", token_id))
}

/// Pays the accrued fees (up to `MAX_PROCEEDS_DENOMS` denoms a call) to `owner`.
fn withdraw(deps: DepsMut, owner: Addr) -> Result<Response, ContractError> {
    let amount: Vec<Coin> = PROCEEDS
        .range(deps.storage, None, None, Order::Ascending)
        .take(MAX_PROCEEDS_DENOMS)
        .map(|r| r.map(|(denom, amount)| Coin { denom, amount }))
        .collect::<StdResult<_>>()?;
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

fn check_running(model: &Model) -> Result<(), ContractError> {
    match model.paused {
        true => Err(ContractError::Paused {}),
        false => Ok(()),
    }
}

fn nonpayable(info: &MessageInfo) -> Result<(), ContractError> {
    match info.funds.is_empty() {
        true => Ok(()),
        false => Err(ContractError::UnexpectedFunds {}),
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
    save_bytes(deps.storage, &WEIGHTS, (layer, (offset / CHUNK_BYTES) as u32), &data);
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
        hasher.update(read_weights(deps.storage, l as u32, 0..len)?.as_slice());
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

/// The fee check: with no fee, no funds; with one, at least the fee in its denom and nothing else.
fn paid_fee(model: &Model, info: &MessageInfo) -> Result<(), ContractError> {
    let Some(fee) = &model.fee else {
        return nonpayable(info);
    };
    let paid = info.funds.iter().find(|c| c.denom == fee.denom);
    if info.funds.iter().any(|c| c.denom != fee.denom) || paid.is_none_or(|c| c.amount < fee.amount) {
        let paid: Vec<String> = info.funds.iter().map(Coin::to_string).collect();
        return Err(ContractError::InsufficientFee {
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

fn evaluate(deps: DepsMut, info: MessageInfo, input: Vec<i32>, steps: Option<u32>) -> Result<Response, ContractError> {
    let model = MODEL.load(deps.storage)?;
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    check_running(&model)?;
    paid_fee(&model, &info)?;
    if steps == Some(0) {
        return Err(ContractError::ZeroSteps {});
    }
    let input = input_tensor(&model.config.input, input)?;
    let creator = info.sender;
    let pruned = make_room(deps.storage, &creator)?;
    let job_id = NEXT_JOB_ID.load(deps.storage)?;
    NEXT_JOB_ID.save(deps.storage, &(job_id + 1))?;
    let input_bytes = input.data.to_le_bytes();
    let mut job = Job {
        creator: creator.clone(),
        input_sha256: HexBinary::from(Sha256::digest(&input_bytes).to_vec()),
        layer: 0,
        unit: 0,
        stored: Vec::new(),
        segments: 0,
        has_state: false,
    };
    JOBS_BY_CREATOR.save(deps.storage, (&creator, job_id), &())?;
    JOB_COUNT.update(deps.storage, &creator, |n| StdResult::Ok(n.unwrap_or(0) + 1))?;
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
    // The fee stays with the model until the owner withdraws it (see `Withdraw`).
    for c in &info.funds {
        PROCEEDS.update(deps.storage, &c.denom, |a| {
            StdResult::Ok(a.unwrap_or_default().checked_add(c.amount)?)
        })?;
        res = res.add_attribute("fee", c.to_string());
    }
    Ok(res)
}

/// Keeps `creator` within `MAX_JOBS_PER_SENDER`: at the limit, drops its oldest finished job.
fn make_room(storage: &mut dyn Storage, creator: &Addr) -> Result<Option<u64>, ContractError> {
    if JOB_COUNT.may_load(storage, creator)?.unwrap_or(0) < MAX_JOBS_PER_SENDER {
        return Ok(None);
    }
    let n = model_layers(storage)?;
    let ids: Vec<u64> = JOBS_BY_CREATOR
        .prefix(creator)
        .keys(storage, None, None, Order::Ascending)
        .take(MAX_JOBS_PER_SENDER as usize)
        .collect::<StdResult<_>>()?;
    for id in ids {
        let job = JOBS.load(storage, id)?;
        if job.layer == n {
            delete_job(storage, id, &job)?;
            return Ok(Some(id));
        }
    }
    Err(ContractError::TooManyJobs {
        max: MAX_JOBS_PER_SENDER,
    })
}

fn model_layers(storage: &dyn Storage) -> StdResult<u32> {
    Ok(MODEL.load(storage)?.config.layers.len() as u32)
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
/// `cwnn_inference` with what `cwnn verify` needs to reproduce it.
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
    let output = advance(
        storage,
        api,
        model,
        job_id,
        job,
        Budget::new(&model.execute_budget, steps),
        input,
    )?;
    JOBS.save(storage, job_id, job)?;
    let output = output.as_ref().map(response_of);
    let mut res = Response::new()
        .add_attribute("job_id", job_id.to_string())
        .add_attribute("segments", (job.segments - before).to_string())
        .add_attribute("layer", job.layer.to_string())
        .add_attribute("unit", job.unit.to_string())
        .add_attribute("finished", output.is_some().to_string());
    if let Some(out) = &output {
        let bytes: Vec<u8> = out_bytes(out);
        res = res.add_event(
            Event::new("cwnn_inference")
                .add_attribute("job_id", job_id.to_string())
                .add_attribute("weights_sha256", model.weights_sha256.to_hex())
                .add_attribute("input_sha256", job.input_sha256.to_hex())
                .add_attribute(
                    "output_sha256",
                    HexBinary::from(Sha256::digest(&bytes).to_vec()).to_hex(),
                )
                .add_attribute("output", Binary::from(bytes).to_base64()),
        );
    }
    Ok(res.set_data(to_json_binary(&EvaluateResponse {
        job_id,
        finished: output.is_some(),
        output,
    })?))
}

/// The output's little-endian bytes at its quantized width, as events carry it.
fn out_bytes(out: &PredictResponse) -> Vec<u8> {
    let w = out.output.dtype.bytes();
    out.data
        .iter()
        .flat_map(|v| v.to_le_bytes().into_iter().take(w))
        .collect()
}

fn continue_job(deps: DepsMut, job_id: u64, steps: Option<u32>) -> Result<Response, ContractError> {
    if steps == Some(0) {
        return Err(ContractError::ZeroSteps {});
    }
    let model = MODEL.load(deps.storage)?;
    check_running(&model)?;
    let mut job = JOBS
        .may_load(deps.storage, job_id)?
        .ok_or(ContractError::JobNotFound { id: job_id })?;
    if job.layer as usize == model.config.layers.len() {
        return Err(ContractError::JobFinished { id: job_id });
    }
    Ok(run_job(deps.storage, deps.api, &model, job_id, &mut job, steps, None)?.add_attribute("action", "continue"))
}

fn cancel_job(deps: DepsMut, sender: Addr, job_id: u64) -> Result<Response, ContractError> {
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

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Owner {} => to_json_binary(&OwnerResponse {
            owner: current_owner(deps)
                .map_err(|e| cosmwasm_std::StdError::generic_err(e.to_string()))?
                .into_string(),
            nft: NFT.may_load(deps.storage)?,
        }),
        QueryMsg::Proceeds {} => to_json_binary(&ProceedsResponse {
            proceeds: PROCEEDS
                .range(deps.storage, None, None, Order::Ascending)
                .take(MAX_PROCEEDS_DENOMS)
                .map(|r| r.map(|(denom, amount)| Coin { denom, amount }))
                .collect::<StdResult<_>>()?,
        }),
        QueryMsg::ModelInfo {} => to_json_binary(&model_info(deps)?),
        QueryMsg::Predict { input } => to_json_binary(&predict(deps, input)?),
        QueryMsg::Job { id } => to_json_binary(&job_info(deps, id)?),
        QueryMsg::Jobs { creator } => {
            let creator = deps.api.addr_validate(&creator)?;
            let ids = JOBS_BY_CREATOR
                .prefix(&creator)
                .keys(deps.storage, None, None, Order::Ascending)
                .take(MAX_JOBS_PER_SENDER as usize)
                .collect::<StdResult<_>>()?;
            to_json_binary(&JobsResponse { ids })
        }
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
        execute_budget: model.execute_budget,
        fee: model.fee,
        paused: model.paused,
        nft: NFT.may_load(deps.storage)?,
        layers,
    })
}

fn job_info(deps: Deps, id: u64) -> Result<JobResponse, ContractError> {
    let model = MODEL.load(deps.storage)?;
    let job = JOBS
        .may_load(deps.storage, id)?
        .ok_or(ContractError::JobNotFound { id })?;
    let n = model.config.layers.len() as u32;
    let output = match job.layer == n {
        true => {
            let spec = &model.outputs[n as usize - 1];
            let bytes = load_bytes(deps.storage, &JOB_TENSORS, (id, n))?;
            let data = cwnn_tensor::TensorData::from_le_bytes(spec.dtype, &bytes)
                .map_err(|_| ContractError::Input("stored tensor"))?;
            Some(PredictResponse {
                output: spec.clone(),
                data: (0..data.len()).map(|i| data.get(i).unwrap_or(0)).collect(),
            })
        }
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
    })
}

/// The whole model in one query, refused up front when it exceeds the query budget.
fn predict(deps: Deps, input: Vec<i32>) -> Result<PredictResponse, ContractError> {
    let model = MODEL.load(deps.storage)?;
    if !model.finalized {
        return Err(ContractError::NotFinalized {});
    }
    check_running(&model)?;
    let input = input_tensor(&model.config.input, input)?;
    Ok(response_of(&run_model(
        deps.storage,
        deps.api,
        &model,
        input,
        &model.query_budget,
    )?))
}
