//! Runs a contract's Wasm in cosmwasm-vm 2.2 (the VM wasmd embeds, with its validation and
//! operator metering) over a [`ChainStorage`], and records what each call cost.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use cosmwasm_std::{
    Addr, Binary, Checksum, Coin, ContractResult, Env, MessageInfo, QuerierResult, Response, WasmQuery,
};
use cosmwasm_vm::testing::{mock_env, MockApi, MockQuerier};
use cosmwasm_vm::{
    call_execute_raw, call_instantiate_raw, call_query_raw, capabilities_from_csv, Backend, Cache, CacheOptions,
    InstanceOptions, Size,
};
use serde::Serialize;

use crate::chain::{ChainStorage, GasRecord, GAS_MULTIPLIER};

/// Capabilities of a current wasmd chain (what cosmwasm-check 2.2 assumes by default).
const CAPABILITIES: &str = "iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";

/// Gas limit of one call: 100M SDK gas, more than any block allows, so the figures are never
/// cut short; limits are compared afterwards.
pub const CALL_GAS_LIMIT: u64 = 100_000_000 * GAS_MULTIPLIER;

/// A point inside a call where the contract said `deps.api.debug(label)`: the gas used up to
/// there. The model contract marks each layer (`cwnn:layer:<i>`) and the end (`cwnn:end`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub label: String,
    pub vm_gas: u64,
    pub storage_sdk_gas: u64,
    pub storage_reads: u64,
}

/// One call's result with its gas.
#[derive(Debug)]
pub struct Call<T> {
    /// The contract's answer, or its error message.
    pub result: std::result::Result<T, String>,
    pub gas: GasRecord,
    pub markers: Vec<Marker>,
}

/// One contract deployed in an in-process cosmwasm-vm, storage kept between calls. A call
/// that fails leaves storage as it was, as a failed transaction does.
pub struct ChainVm {
    cache: Cache<MockApi, ChainStorage, MockQuerier>,
    checksum: Checksum,
    storage: ChainStorage,
    querier: Option<MockQuerier>,
    api: MockApi,
    env: Env,
    gas_limit: u64,
    _dir: tempfile::TempDir,
}

impl ChainVm {
    /// Stores `wasm` after the same checks a chain's `StoreCode` runs.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let options = CacheOptions::new(
            dir.path(),
            capabilities_from_csv(CAPABILITIES),
            Size::mebi(64),
            Size::mebi(32),
        );
        // SAFETY: the cache directory is ours alone (a fresh temporary directory).
        let cache = unsafe { Cache::new(options) }.map_err(|e| anyhow!("{e}"))?;
        let checksum = cache
            .store_code(wasm, true, true)
            .map_err(|e| anyhow!("the chain would refuse this Wasm: {e}"))?;
        Ok(ChainVm {
            cache,
            checksum,
            storage: ChainStorage::default(),
            querier: Some(MockQuerier::new(&[])),
            api: MockApi::default(),
            env: mock_env(),
            gas_limit: CALL_GAS_LIMIT,
            _dir: dir,
        })
    }

    /// A valid address for `name` (bech32, the VM's mock prefix).
    pub fn addr(&self, name: &str) -> String {
        self.api.addr_make(name)
    }

    /// The contract's address.
    pub fn contract(&self) -> &Addr {
        &self.env.contract.address
    }

    /// Answers the contract's queries to other contracts with `handler`. The VM charges only the
    /// caller's side of such a query; on chain the callee's gas and an instance cost are added
    /// (run the callee in its own `ChainVm` to measure them).
    pub fn answer_wasm_queries(&mut self, handler: impl Fn(&WasmQuery) -> QuerierResult + 'static) {
        let mut querier = self.querier.take().unwrap_or_else(|| MockQuerier::new(&[]));
        querier.update_wasm(handler);
        self.querier = Some(querier);
    }

    /// Gas (CosmWasm gas, storage included) each later call may use; [`CALL_GAS_LIMIT`] by
    /// default. A call that runs out fails and leaves storage as it was.
    pub fn set_gas_limit(&mut self, limit: u64) {
        self.gas_limit = limit;
    }

    /// Starts over with empty storage: a fresh contract of the same code, without compiling it
    /// again.
    pub fn clear_storage(&mut self) {
        self.storage = ChainStorage::default();
    }

    /// The contract's storage as it stands.
    pub fn storage(&self) -> &ChainStorage {
        &self.storage
    }

    pub fn instantiate(&mut self, sender: &str, msg: &impl Serialize, funds: &[Coin]) -> Result<Call<Response>> {
        let info = serde_json::to_vec(&self.info(sender, funds))?;
        let msg = serde_json::to_vec(msg)?;
        self.call(true, |instance, env| {
            decoded(call_instantiate_raw(instance, &json(env), &info, &msg))
        })
    }

    pub fn execute(&mut self, sender: &str, msg: &impl Serialize, funds: &[Coin]) -> Result<Call<Response>> {
        self.execute_raw(sender, &serde_json::to_vec(msg)?, funds)
    }

    /// [`ChainVm::execute`] with a message already serialized (one contract sent another).
    pub fn execute_raw(&mut self, sender: &str, msg: &[u8], funds: &[Coin]) -> Result<Call<Response>> {
        let info = serde_json::to_vec(&self.info(sender, funds))?;
        self.call(true, |instance, env| {
            decoded(call_execute_raw(instance, &json(env), &info, msg))
        })
    }

    pub fn query(&mut self, msg: &impl Serialize) -> Result<Call<Binary>> {
        let msg = serde_json::to_vec(msg)?;
        self.call(false, |instance, env| {
            decoded(call_query_raw(instance, &json(env), &msg))
        })
    }

    fn info(&self, sender: &str, funds: &[Coin]) -> MessageInfo {
        MessageInfo {
            sender: Addr::unchecked(sender),
            funds: funds.to_vec(),
        }
    }

    fn call<T: ResultBytes>(
        &mut self,
        writes: bool,
        f: impl FnOnce(
            &mut cosmwasm_vm::Instance<MockApi, ChainStorage, MockQuerier>,
            &Env,
        ) -> cosmwasm_vm::VmResult<ContractResult<T>>,
    ) -> Result<Call<T>> {
        let before = self.storage.clone();
        let (meter, reads) = (self.storage.meter(), self.storage.reads());
        let (start, reads_start) = (meter.load(Ordering::Relaxed), reads.load(Ordering::Relaxed));
        let backend = Backend {
            api: self.api,
            storage: self.storage.clone(),
            querier: self.querier.take().unwrap_or_else(|| MockQuerier::new(&[])),
        };
        let options = InstanceOptions {
            gas_limit: self.gas_limit,
        };
        let mut instance = self
            .cache
            .get_instance(&self.checksum, backend, options)
            .map_err(|e| anyhow!("{e}"))?;
        let markers = Arc::new(Mutex::new(Vec::new()));
        let (sink, marker_meter, marker_reads) = (markers.clone(), meter.clone(), reads.clone());
        let gas_limit = self.gas_limit;
        instance.set_debug_handler(move |label, info| {
            if let Ok(mut m) = sink.lock() {
                let storage = marker_meter.load(Ordering::Relaxed) - start;
                let used = gas_limit - info.gas_remaining;
                m.push(Marker {
                    label: label.to_string(),
                    vm_gas: used - storage * GAS_MULTIPLIER,
                    storage_sdk_gas: storage,
                    storage_reads: marker_reads.load(Ordering::Relaxed) - reads_start,
                });
            }
        });
        let outcome = f(&mut instance, &self.env);
        let report = instance.create_gas_report();
        let backend = instance.recycle().context("the VM kept the backend")?;
        self.querier = Some(backend.querier);
        let storage_sdk_gas = meter.load(Ordering::Relaxed) - start;
        let result = match outcome {
            Ok(ContractResult::Ok(r)) => Ok(r),
            Ok(ContractResult::Err(e)) => Err(e),
            Err(e) => Err(format!("VM error: {e}")),
        };
        self.storage = match (&result, writes) {
            (Ok(_), true) => backend.storage,
            _ => before,
        };
        let result_bytes = result.as_ref().map_or(0, ResultBytes::len);
        let markers = markers.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(Call {
            result,
            gas: GasRecord::new(report.used_internally, storage_sdk_gas, result_bytes),
            markers,
        })
    }
}

/// The JSON of the env, as wasmd passes it to a contract.
fn json(env: &Env) -> Vec<u8> {
    serde_json::to_vec(env).expect("an Env serializes")
}

/// A raw call's result decoded as wasmd decodes it: without cosmwasm-vm's typed calls' size
/// limits (256 KiB for an execute's response), which a chain does not apply.
fn decoded<T: serde::de::DeserializeOwned>(
    raw: cosmwasm_vm::VmResult<Vec<u8>>,
) -> cosmwasm_vm::VmResult<ContractResult<T>> {
    let bytes = raw?;
    Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| ContractResult::Err(format!("undecodable result: {e}"))))
}

/// Bytes of a call's JSON result, which wasmd bills per byte.
trait ResultBytes {
    fn len(&self) -> usize;
}

impl ResultBytes for Binary {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
}

impl ResultBytes for Response {
    fn len(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }
}

/// Capabilities this runner offers, for tests.
pub fn capabilities() -> HashSet<String> {
    capabilities_from_csv(CAPABILITIES)
}
