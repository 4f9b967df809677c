//! A cosmwasm-vm backend that bills storage the way a wasmd chain does (../shared/GAS.md), and
//! the gas record of one call.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cosmwasm_std::{Order, Record};
use cosmwasm_vm::{BackendError, BackendResult, GasInfo, Storage};

/// CosmWasm gas per SDK gas: wasmd `DefaultGasMultiplier` (x/wasm/types/gas_register.go, v0.53+).
pub const GAS_MULTIPLIER: u64 = 140_000;
/// SDK gas of one KV read: cosmos-sdk store/types/gas.go `KVGasConfig().ReadCostFlat`.
pub const READ_COST_FLAT: u64 = 1_000;
/// ... `ReadCostPerByte`, charged on key and value bytes.
pub const READ_COST_PER_BYTE: u64 = 3;
/// ... `WriteCostFlat`.
pub const WRITE_COST_FLAT: u64 = 2_000;
/// ... `WriteCostPerByte`, charged on key and value bytes.
pub const WRITE_COST_PER_BYTE: u64 = 30;
/// ... `DeleteCost` (also `HasCost`).
pub const DELETE_COST: u64 = 1_000;
/// ... `IterNextCostFlat`, per step of an iterator (store/gaskv `consumeSeekGas`).
pub const ITER_NEXT_COST_FLAT: u64 = 30;
/// SDK gas per contract call: wasmd `DefaultInstanceCost` (x/wasm/types/gas_register.go);
/// 2,000 (`DefaultInstanceCostDiscount`) for pinned contracts, which this does not model.
pub const INSTANCE_COST: u64 = 60_000;
/// SDK gas per byte of a call's JSON result (../shared/GAS.md, "contract result JSON").
pub const RESULT_COST_PER_BYTE: u64 = 1;
/// Bytes wasmd puts before every key of a contract's store: the prefix 0x03 and the 32-byte
/// contract address (x/wasm/types/keys.go `GetContractStorePrefix`). The gas KV store sits
/// under the prefix store, so these bytes are billed on every access.
pub const CONTRACT_KEY_PREFIX_BYTES: u64 = 33;
/// wasmd's default smart-query gas limit (`defaultSmartQueryGasLimit`), in SDK gas.
pub const SMART_QUERY_GAS_LIMIT: u64 = 3_000_000;

/// A contract's storage, charging KV gas as the Cosmos SDK's gas KV store does. Charges are
/// reported to the VM as externally used gas (in CosmWasm gas, as wasmvm does) and added up
/// in SDK gas in [`ChainStorage::meter`].
#[derive(Clone, Debug, Default)]
pub struct ChainStorage {
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    iterators: HashMap<u32, (Vec<Record>, usize)>,
    meter: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}

impl ChainStorage {
    /// SDK gas charged since this storage was created (shared by its clones).
    pub fn meter(&self) -> Arc<AtomicU64> {
        self.meter.clone()
    }
    /// Reads (`get`) since this storage was created (shared by its clones).
    pub fn reads(&self) -> Arc<AtomicU64> {
        self.reads.clone()
    }
    /// The stored key-value pairs.
    pub fn data(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.data
    }
    fn charge(&self, sdk_gas: u64) -> GasInfo {
        self.meter.fetch_add(sdk_gas, Ordering::Relaxed);
        GasInfo::with_externally_used(sdk_gas * GAS_MULTIPLIER)
    }
    /// SDK gas of reading `bytes` of key and value.
    pub fn read_cost(key: usize, value: usize) -> u64 {
        READ_COST_FLAT + READ_COST_PER_BYTE * (CONTRACT_KEY_PREFIX_BYTES + key as u64 + value as u64)
    }
    /// SDK gas of writing a key and value.
    pub fn write_cost(key: usize, value: usize) -> u64 {
        WRITE_COST_FLAT + WRITE_COST_PER_BYTE * (CONTRACT_KEY_PREFIX_BYTES + key as u64 + value as u64)
    }
    fn seek_cost(record: Option<&Record>) -> u64 {
        ITER_NEXT_COST_FLAT
            + record.map_or(0, |(k, v)| {
                READ_COST_PER_BYTE * (CONTRACT_KEY_PREFIX_BYTES + k.len() as u64 + v.len() as u64)
            })
    }
}

impl Storage for ChainStorage {
    fn get(&self, key: &[u8]) -> BackendResult<Option<Vec<u8>>> {
        let value = self.data.get(key).cloned();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let gas = self.charge(Self::read_cost(key.len(), value.as_ref().map_or(0, Vec::len)));
        (Ok(value), gas)
    }

    fn scan(&mut self, start: Option<&[u8]>, end: Option<&[u8]>, order: Order) -> BackendResult<u32> {
        let in_range = |k: &Vec<u8>| start.is_none_or(|s| k.as_slice() >= s) && end.is_none_or(|e| k.as_slice() < e);
        let mut records: Vec<Record> = self
            .data
            .iter()
            .filter(|(k, _)| in_range(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if order == Order::Descending {
            records.reverse();
        }
        // Creating an SDK gas iterator seeks to (and pays for) its first element.
        let gas = self.charge(Self::seek_cost(records.first()));
        let id = self.iterators.len() as u32 + 1;
        self.iterators.insert(id, (records, 0));
        (Ok(id), gas)
    }

    fn next(&mut self, iterator_id: u32) -> BackendResult<Option<Record>> {
        let Some((records, pos)) = self.iterators.get_mut(&iterator_id) else {
            return (Err(BackendError::iterator_does_not_exist(iterator_id)), GasInfo::free());
        };
        let record = records.get(*pos).cloned();
        *pos += 1;
        let following = records.get(*pos).cloned();
        // Each step pays for the element it moves to.
        let gas = self.charge(Self::seek_cost(following.as_ref()));
        (Ok(record), gas)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> BackendResult<()> {
        let gas = self.charge(Self::write_cost(key.len(), value.len()));
        self.data.insert(key.to_vec(), value.to_vec());
        (Ok(()), gas)
    }

    fn remove(&mut self, key: &[u8]) -> BackendResult<()> {
        let gas = self.charge(DELETE_COST);
        self.data.remove(key);
        (Ok(()), gas)
    }
}

/// What one call cost. `vm_gas` is CosmWasm gas metered inside the VM (operators, host calls,
/// address API); the rest is SDK gas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GasRecord {
    pub vm_gas: u64,
    pub storage_sdk_gas: u64,
    pub instance_sdk_gas: u64,
    pub result_sdk_gas: u64,
    /// `vm_gas / 140,000` (rounded down, as wasmd converts) plus the SDK-gas parts.
    pub total_sdk_gas: u64,
}

impl GasRecord {
    pub fn new(vm_gas: u64, storage_sdk_gas: u64, result_bytes: usize) -> Self {
        let result_sdk_gas = RESULT_COST_PER_BYTE * result_bytes as u64;
        GasRecord {
            vm_gas,
            storage_sdk_gas,
            instance_sdk_gas: INSTANCE_COST,
            result_sdk_gas,
            total_sdk_gas: vm_gas / GAS_MULTIPLIER + storage_sdk_gas + INSTANCE_COST + result_sdk_gas,
        }
    }
}
