//! What deploying a model costs, transaction by transaction, in SDK gas: each message runs in
//! cosmwasm-vm with the chain's storage billing (its instance cost, VM gas, reads and writes at
//! 2,000 + 30 per byte, result bytes), plus the transaction's bytes at 10 SDK gas each.
//!
//! A transaction's bytes are its message's JSON plus [`TX_ENVELOPE_BYTES`] for the rest of a
//! signed `MsgExecuteContract` (an estimate: the exact figure depends on the chain's address
//! length, the signer's key type and the fee). Storing the model contract's code is counted
//! apart: a chain that already has cwnn's code needs no `StoreCode`.
//!
//! Minting runs in two VMs, as in `vm/tests/gas.rs`: the model's `MintNft` (its queries to the
//! collection answered directly), then the collection's mint from the model, which queries the
//! model's `ModelInfo`; that query's own gas (an instance cost and the model's execution) is
//! added to the transaction.

use anyhow::{anyhow, Result};
use cosmwasm_std::{
    to_json_binary, Addr, Binary, Checksum, CodeInfoResponse, ContractInfoResponse, ContractResult, CosmosMsg,
    Response, SystemResult, WasmMsg, WasmQuery,
};
use cwnn_bake::RuntimeId;
use cwnn_collection::msg::{BakedRuntime, InstantiateMsg as CollectionInit};
use cwnn_model_contract::msg::{ExecuteMsg, InstantiateMsg, QueryMsg};
use serde::Serialize;

use crate::chain::GasRecord;
use crate::runner::{Call, ChainVm};

/// SDK gas per transaction byte (x/auth `DefaultTxSizeCostPerByte`).
pub const TX_BYTE_COST: u64 = 10;
/// SDK gas per byte of stored code (wasmd `DefaultCompileCost`).
pub const COMPILE_COST_PER_BYTE: u64 = 3;
/// A signed transaction's bytes besides its contract message: the `MsgExecuteContract`
/// envelope (type URL, sender and contract addresses), one secp256k1 signer's public key and
/// signature, sequence and a one-denom fee. An estimate (~300 bytes on a typical chain).
pub const TX_ENVELOPE_BYTES: u64 = 300;

/// The code id the measurement gives the collection code, accepted by the model it deploys.
const COLLECTION_CODE_ID: u64 = 1;
const MODEL_CODE_ID: u64 = 2;

/// One transaction.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TxCost {
    pub what: String,
    /// The message's JSON bytes (the transaction carries them and [`TX_ENVELOPE_BYTES`] more).
    pub msg_bytes: u64,
    /// The contract calls' SDK gas: instance cost, VM gas, storage, result bytes.
    pub call_sdk_gas: u64,
    /// `(msg_bytes + TX_ENVELOPE_BYTES) · 10`.
    pub tx_bytes_sdk_gas: u64,
    pub sdk_gas: u64,
}

impl TxCost {
    fn new(what: impl Into<String>, msg_bytes: usize, call_sdk_gas: u64) -> Self {
        let tx_bytes_sdk_gas = (msg_bytes as u64 + TX_ENVELOPE_BYTES) * TX_BYTE_COST;
        TxCost {
            what: what.into(),
            msg_bytes: msg_bytes as u64,
            call_sdk_gas,
            tx_bytes_sdk_gas,
            sdk_gas: call_sdk_gas + tx_bytes_sdk_gas,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeployCost {
    /// `StoreCode` of the Wasm: compile cost and tx bytes as sent (uncompressed; gzip shrinks
    /// the tx bytes, not the compile cost). The model contract's only where the chain lacks
    /// cwnn's code; a baked model's always (it is also the first transaction).
    pub store_code: TxCost,
    /// (Store code when baked,) instantiate, every upload, finalize, mint: one transaction each.
    pub transactions: Vec<TxCost>,
    /// The transactions' sum (the model contract's store code excluded).
    pub total_sdk_gas: u64,
}

fn ok<T>(what: &str, call: Call<T>) -> Result<GasRecord> {
    call.result.map_err(|e| anyhow!("{what} refused: {e}"))?;
    Ok(call.gas)
}

fn json_len(msg: &impl Serialize) -> Result<usize> {
    Ok(serde_json::to_vec(msg)?.len())
}

/// What is deployed: cwnn's model contract with uploaded weights, or a baked model.
#[derive(Clone, Copy)]
pub enum Code<'a> {
    /// The model contract's Wasm; the weights (one byte string per layer) are uploaded.
    Stored { wasm: &'a [u8], weights: &'a [Vec<u8>] },
    /// A baked model's own Wasm, minted through the collection's check of its `runtime`.
    Baked { wasm: &'a [u8], runtime: &'a RuntimeId },
}

/// Deploys the model in `instantiate` as `code`, then mints it into a collection of
/// `collection_wasm`, measuring every transaction. A baked model's `StoreCode` is one of them.
pub fn deploy_cost(code: Code, collection_wasm: &[u8], instantiate: &InstantiateMsg) -> Result<DeployCost> {
    let (Code::Stored { wasm, .. } | Code::Baked { wasm, .. }) = code;
    let mut vm = ChainVm::new(wasm)?;
    let owner = vm.addr("owner");
    let msg = InstantiateMsg {
        collection_code_ids: Some(vec![COLLECTION_CODE_ID]),
        ..instantiate.clone()
    };
    let store_code = TxCost::new("store code", wasm.len(), wasm.len() as u64 * COMPILE_COST_PER_BYTE);
    let mut txs = match code {
        Code::Baked { .. } => vec![store_code.clone()],
        Code::Stored { .. } => vec![],
    };
    txs.push(TxCost::new(
        "instantiate",
        json_len(&msg)?,
        ok("instantiate", vm.instantiate(&owner, &msg, &[])?)?.total_sdk_gas,
    ));
    if let Code::Stored { weights, .. } = code {
        let uploads = ExecuteMsg::uploads(weights);
        let n = uploads.len();
        for (i, up) in uploads.iter().enumerate() {
            let gas = ok("upload", vm.execute(&owner, up, &[])?)?.total_sdk_gas;
            txs.push(TxCost::new(format!("upload {}/{n}", i + 1), json_len(up)?, gas));
        }
        let finalize = ExecuteMsg::Finalize {};
        let gas = ok("finalize", vm.execute(&owner, &finalize, &[])?)?.total_sdk_gas;
        txs.push(TxCost::new("finalize", json_len(&finalize)?, gas));
    }
    txs.push(mint(&mut vm, code, collection_wasm, &owner)?);
    Ok(DeployCost {
        store_code,
        total_sdk_gas: txs.iter().map(|t| t.sdk_gas).sum(),
        transactions: txs,
    })
}

/// The `MintNft` transaction, in the chain's order: the model binds itself and sends the
/// mint; the collection checks the model (a baked one's data section against its runtime) and
/// mints after querying the (now bound) model's `ModelInfo`.
fn mint(model: &mut ChainVm, code: Code, collection_wasm: &[u8], owner: &str) -> Result<TxCost> {
    let mut coll = ChainVm::new(collection_wasm)?;
    let creator = coll.addr("creator");
    let init = CollectionInit {
        name: "models".into(),
        symbol: "CWNN".into(),
        model_code_ids: match code {
            Code::Stored { .. } => vec![MODEL_CODE_ID],
            Code::Baked { .. } => vec![],
        },
        baked_runtimes: match code {
            Code::Stored { .. } => None,
            Code::Baked { runtime, .. } => Some(vec![BakedRuntime::from(runtime)]),
        },
    };
    ok("collection instantiate", coll.instantiate(&creator, &init, &[])?)?;

    let mint_nft = ExecuteMsg::MintNft {
        collection: coll.contract().to_string(),
        token_uri: None,
        claimed_accuracy_bps: None,
    };
    model.answer_wasm_queries(|_| SystemResult::Ok(ContractResult::Ok(contract_info(COLLECTION_CODE_ID))));
    let call = model.execute(owner, &mint_nft, &[])?;
    let mint_model = sent_message(&call)?;
    let bound = ok("mint_nft", call)?.total_sdk_gas;

    let info_call = model.query(&QueryMsg::ModelInfo {})?;
    let info_gas = info_call.gas.total_sdk_gas;
    let info = info_call.result.map_err(|e| anyhow!("model_info refused: {e}"))?;
    let (Code::Stored { wasm, .. } | Code::Baked { wasm, .. }) = code;
    let checksum = Checksum::generate(wasm);
    coll.answer_wasm_queries(move |q| {
        SystemResult::Ok(ContractResult::Ok(match q {
            WasmQuery::ContractInfo { .. } => contract_info(MODEL_CODE_ID),
            WasmQuery::CodeInfo { code_id } => {
                to_json_binary(&CodeInfoResponse::new(*code_id, Addr::unchecked("creator"), checksum))
                    .expect("serializable")
            }
            _ => info.clone(),
        }))
    });
    let model_addr = model.contract().to_string();
    let minted = ok("mint_model", coll.execute_raw(&model_addr, &mint_model, &[])?)?.total_sdk_gas;
    Ok(TxCost::new("mint", json_len(&mint_nft)?, bound + info_gas + minted))
}

/// The message a call's response sends to another contract (the model's `MintModel`).
pub fn sent_message(call: &Call<Response>) -> Result<Binary> {
    let res = call.result.as_ref().map_err(|e| anyhow!("refused: {e}"))?;
    match res.messages.first().map(|m| &m.msg) {
        Some(CosmosMsg::Wasm(WasmMsg::Execute { msg, .. })) => Ok(msg.clone()),
        _ => Err(anyhow!("the call sent no contract message")),
    }
}

/// A contract of `code_id` without a wasmd admin, as the model and the collection require.
fn contract_info(code_id: u64) -> cosmwasm_std::Binary {
    let info = ContractInfoResponse::new(code_id, Addr::unchecked("creator"), None, false, None);
    to_json_binary(&info).expect("serializable")
}

impl DeployCost {
    /// The costs as a text table.
    pub fn table(&self) -> String {
        let header = ["transaction", "msg bytes", "calls SDK", "tx bytes SDK", "SDK gas"];
        let row = |t: &TxCost| {
            vec![
                t.what.clone(),
                t.msg_bytes.to_string(),
                t.call_sdk_gas.to_string(),
                t.tx_bytes_sdk_gas.to_string(),
                t.sdk_gas.to_string(),
            ]
        };
        let mut s = crate::report::text_table(&[-16, 12, 12, 13, 12], &header, self.transactions.iter().map(row));
        s += &format!(
            "\nDeploying: {} SDK gas in {} transactions (tx bytes counted at {TX_BYTE_COST} per byte, {TX_ENVELOPE_BYTES} estimated per tx besides the message).\n",
            self.total_sdk_gas,
            self.transactions.len()
        );
        if self.transactions.first() != Some(&self.store_code) {
            s += &format!(
                "Storing the model contract's code ({} bytes), where the chain lacks it: {} SDK gas ({COMPILE_COST_PER_BYTE} per byte to compile, {} for the tx bytes uncompressed).\n",
                self.store_code.msg_bytes, self.store_code.sdk_gas, self.store_code.tx_bytes_sdk_gas
            );
        }
        s
    }
}
