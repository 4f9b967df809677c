#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    from_json, to_json_binary, Addr, Binary, Deps, DepsMut, Env, HexBinary, MessageInfo, Order, Response, StdResult,
};
use cw721::extension::Cw721OnchainExtensions;
use cw721::msg::{Cw721ExecuteMsg, Cw721InstantiateMsg, Cw721QueryMsg, NftExtensionMsg};
use cw721::state::Trait;
use cw721::traits::{Cw721Execute, Cw721Query};
use cw721::DefaultOptionalNftExtensionMsg;
use cw721::{DefaultOptionalCollectionExtension, DefaultOptionalCollectionExtensionMsg, DefaultOptionalNftExtension};
use cw_storage_plus::Bound;
use serde::Deserialize;

use crate::error::ContractError;
use crate::msg::{
    BakedRuntime, ConfigResponse, ExecuteMsg, InstantiateMsg, ModelEntry, ModelsResponse, QueryMsg, TokenOfResponse,
};
use crate::state::{ModelMetadata, BAKED_RUNTIMES, MODELS, MODEL_CODE_IDS, TOKEN_BY_MODEL};
use cwnn_bake::RuntimeId;

const CONTRACT_NAME: &str = "crates.io:cwnn-collection";
const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

type Cw721<'a> = Cw721OnchainExtensions<'a>;
type BaseExecuteMsg =
    Cw721ExecuteMsg<DefaultOptionalNftExtensionMsg, DefaultOptionalCollectionExtensionMsg, cosmwasm_std::Empty>;
type BaseQueryMsg = Cw721QueryMsg<DefaultOptionalNftExtension, DefaultOptionalCollectionExtension, cosmwasm_std::Empty>;

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(deps: DepsMut, env: Env, info: MessageInfo, msg: InstantiateMsg) -> Result<Response, ContractError> {
    let runtimes = msg.baked_runtimes.unwrap_or_default();
    if msg.model_code_ids.is_empty() && runtimes.is_empty() {
        return Err(ContractError::InvalidConfig(
            "name at least one model code id or baked runtime",
        ));
    }
    for r in &runtimes {
        runtime_id(r)?;
    }
    MODEL_CODE_IDS.save(deps.storage, &msg.model_code_ids)?;
    BAKED_RUNTIMES.save(deps.storage, &runtimes)?;
    // The collection itself is the only minter, so every token goes through `MintModel`.
    let base = Cw721InstantiateMsg {
        name: msg.name,
        symbol: msg.symbol,
        collection_info_extension: None,
        minter: Some(env.contract.address.to_string()),
        creator: Some(info.sender.to_string()),
        withdraw_address: None,
    };
    Ok(Cw721::default().instantiate_with_version(deps, &env, &info, base, CONTRACT_NAME, CONTRACT_VERSION)?)
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(deps: DepsMut, env: Env, info: MessageInfo, msg: ExecuteMsg) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::MintModel {
            owner,
            token_uri,
            claimed_accuracy_bps,
            baked,
        } => mint_model(deps, env, info, owner, token_uri, claimed_accuracy_bps, baked),
        // The rest is CW721 with the same JSON.
        other => {
            let base: BaseExecuteMsg = from_json(to_json_binary(&other)?)?;
            Ok(Cw721::default().execute(deps, &env, &info, base)?)
        }
    }
}

/// The part of the model contract's `ModelInfoResponse` the collection reads.
#[derive(Deserialize)]
struct ModelInfo {
    name: String,
    input: Spec,
    weights_sha256: HexBinary,
    model_sha256: HexBinary,
    finalized: bool,
    layers: Vec<LayerInfo>,
}

#[derive(Deserialize)]
struct Spec {
    shape: Vec<u32>,
}

#[derive(Deserialize)]
struct LayerInfo {
    kind: String,
    output: Spec,
    weight_bytes: u64,
    macs: u64,
}

#[cosmwasm_schema::cw_serde]
enum ModelQuery {
    ModelInfo {},
}

/// A [`BakedRuntime`] as `cwnn_bake` takes it, refused when malformed.
fn runtime_id(r: &BakedRuntime) -> Result<RuntimeId, ContractError> {
    RuntimeId::try_from(r).map_err(ContractError::InvalidConfig)
}

/// Checks that the sender is an instance of an accepted model code, or a bake of an accepted
/// runtime (its data section `baked` proves it), with no wasmd admin (an admin could migrate a
/// sold model to code that hands it back); gives its code id and whether it is baked.
fn check_model(deps: Deps, sender: &Addr, baked: Option<&Binary>) -> Result<(u64, bool), ContractError> {
    let code_ids = MODEL_CODE_IDS.load(deps.storage)?;
    let not_a_model = || ContractError::NotAModel {
        address: sender.to_string(),
        code_ids: code_ids.clone(),
    };
    let info = deps
        .querier
        .query_wasm_contract_info(sender)
        .map_err(|_| not_a_model())?;
    let is_baked = match (code_ids.contains(&info.code_id), baked) {
        (true, _) => false,
        (false, Some(d)) => {
            check_bake(deps, sender, info.code_id, d)?;
            true
        }
        (false, None) => return Err(not_a_model()),
    };
    match info.admin {
        Some(admin) => Err(ContractError::ModelHasAdmin {
            model: sender.to_string(),
            admin: admin.into_string(),
        }),
        None => Ok((info.code_id, is_baked)),
    }
}

/// Checks that code `code_id` is an accepted runtime baked with data section `d`.
fn check_bake(deps: Deps, model: &Addr, code_id: u64, d: &[u8]) -> Result<(), ContractError> {
    let checksum = deps.querier.query_wasm_code_info(code_id)?.checksum;
    let mut reason = "the collection accepts no baked runtime".to_string();
    for r in BAKED_RUNTIMES.load(deps.storage)? {
        match cwnn_bake::verify(&runtime_id(&r)?, d, checksum.as_slice()) {
            Ok(()) => return Ok(()),
            Err(e) => reason = e.to_string(),
        }
    }
    Err(ContractError::NotGenuineBake {
        model: model.to_string(),
        reason,
    })
}

fn mint_model(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    owner: String,
    token_uri: Option<String>,
    claimed_accuracy_bps: Option<u16>,
    baked: Option<Binary>,
) -> Result<Response, ContractError> {
    let model = info.sender;
    let (code_id, baked) = check_model(deps.as_ref(), &model, baked.as_ref())?;
    // The token id is the model's address: nobody else can mint it first.
    let token_id = model.to_string();
    if let Some(token_id) = TOKEN_BY_MODEL.may_load(deps.storage, &model)? {
        return Err(ContractError::AlreadyMinted {
            model: model.into_string(),
            token_id,
        });
    }
    let m: ModelInfo = deps.querier.query_wasm_smart(&model, &ModelQuery::ModelInfo {})?;
    if !m.finalized {
        return Err(ContractError::NotFinalized {
            model: model.into_string(),
        });
    }
    let meta = ModelMetadata {
        model: model.clone(),
        name: m.name,
        weights_sha256: m.weights_sha256,
        model_sha256: m.model_sha256,
        code_id,
        baked,
        layers: m.layers.iter().map(|l| l.kind.clone()).collect(),
        weight_bytes: m.layers.iter().fold(0, |s, l| s.saturating_add(l.weight_bytes)),
        macs: m.layers.iter().fold(0, |s, l| s.saturating_add(l.macs)),
        input_shape: m.input.shape,
        output_shape: m.layers.last().map(|l| l.output.shape.clone()).unwrap_or_default(),
        claimed_accuracy_bps,
        token_uri: token_uri.clone(),
    };
    // The same facts as NFT attributes, which wallets and marketplaces display.
    let shape = |s: &[u32]| s.iter().map(u32::to_string).collect::<Vec<_>>().join("×");
    let mut traits = vec![
        ("model", meta.model.to_string()),
        ("model_sha256", meta.model_sha256.to_hex()),
        ("model_code_id", meta.code_id.to_string()),
        ("baked", meta.baked.to_string()),
        ("weights_sha256", meta.weights_sha256.to_hex()),
        ("layers", meta.layers.join(" → ")),
        ("weight_bytes", meta.weight_bytes.to_string()),
        ("macs", meta.macs.to_string()),
        ("input", shape(&meta.input_shape)),
        ("output", shape(&meta.output_shape)),
    ];
    if let Some(a) = claimed_accuracy_bps {
        traits.push(("claimed_accuracy", format!("{}.{:02} %", a / 100, a % 100)));
    }
    let extension = NftExtensionMsg {
        name: Some(meta.name.clone()),
        description: Some(format!("cwnn model {} ({} layers)", meta.name, meta.layers.len())),
        external_url: token_uri.clone(),
        attributes: Some(
            traits
                .into_iter()
                .map(|(t, v)| Trait {
                    display_type: None,
                    trait_type: t.into(),
                    value: v,
                })
                .collect(),
        ),
        ..Default::default()
    };
    MODELS.save(deps.storage, &token_id, &meta)?;
    TOKEN_BY_MODEL.save(deps.storage, &model, &token_id)?;
    // The collection is the minter: mint as itself.
    let minter = MessageInfo {
        sender: env.contract.address.clone(),
        funds: vec![],
    };
    let res = Cw721::default().mint(deps, &env, &minter, token_id, owner, token_uri, Some(extension))?;
    Ok(res.add_attribute("model", model))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> Result<Binary, ContractError> {
    Ok(match msg {
        QueryMsg::Models { start_after, limit } => {
            let limit = limit.unwrap_or(10).min(30) as usize;
            let start = start_after.as_deref().map(Bound::exclusive);
            let models = MODELS
                .range(deps.storage, start, None, Order::Ascending)
                .take(limit)
                .map(|r| r.map(|(token_id, model)| ModelEntry { token_id, model }))
                .collect::<StdResult<_>>()?;
            to_json_binary(&ModelsResponse { models })?
        }
        QueryMsg::Model { token_id } => to_json_binary(&MODELS.load(deps.storage, &token_id)?)?,
        QueryMsg::Config {} => to_json_binary(&ConfigResponse {
            model_code_ids: MODEL_CODE_IDS.load(deps.storage)?,
            baked_runtimes: BAKED_RUNTIMES.load(deps.storage)?,
        })?,
        QueryMsg::TokenOf { model } => {
            let model = deps.api.addr_validate(&model)?;
            to_json_binary(&TokenOfResponse {
                token_id: TOKEN_BY_MODEL.load(deps.storage, &model)?,
            })?
        }
        other => {
            let base: BaseQueryMsg = from_json(to_json_binary(&other)?)?;
            Cw721::default().query(deps, &env, base)?
        }
    })
}
