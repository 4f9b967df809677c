//! The per-layer gas report: a model contract deployed in cosmwasm-vm, one `Predict` with the
//! contract's layer markers, and a plan of how many calls a block gas limit allows.
//!
//! Per-layer figures come from debug markers inside a single call (`cwnn:layer:<i>` before
//! each layer, `cwnn:end` after the last) rather than from evaluating layer by layer across
//! calls: one call has no job bookkeeping between layers, so each layer's VM gas and storage
//! reads are its own, and the call's remaining cost (loading the model, parsing the input,
//! answering) is reported once as overhead.

use anyhow::{anyhow, bail, Result};
use cosmwasm_std::from_json;
use cwnn_model_contract::msg::{ExecuteMsg, InstantiateMsg, ModelInfoResponse, QueryMsg, WorkBudget};
use serde::Serialize;

use crate::chain::{GAS_MULTIPLIER, INSTANCE_COST, SMART_QUERY_GAS_LIMIT};
use crate::runner::ChainVm;

#[derive(Clone, Debug, Serialize)]
pub struct LayerGas {
    pub index: usize,
    pub kind: String,
    pub macs: u64,
    pub weight_bytes: u64,
    pub storage_reads: u64,
    pub vm_gas: u64,
    /// `vm_gas / macs`; absent for layers without MACs.
    pub vm_gas_per_mac: Option<f64>,
    pub storage_sdk_gas: u64,
    /// `vm_gas / 140,000 + storage_sdk_gas`.
    pub sdk_gas: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GasReport {
    pub layers: Vec<LayerGas>,
    pub instance_sdk_gas: u64,
    /// The call's gas outside its layers: model record, input, response.
    pub overhead_sdk_gas: u64,
    /// The whole `Predict` (one call): layers, overhead and instance cost.
    pub total_sdk_gas: u64,
    pub block_gas: u64,
    /// Execute calls (`Evaluate` + `Continue`) needed if each may use `block_gas`.
    pub calls: u64,
    /// Whether `Predict` fits wasmd's 3,000,000 SDK-gas smart-query limit.
    pub fits_query: bool,
}

/// The error of a refused call.
/// Budgets that never refuse: a measurement runs the whole model in one call.
fn unlimited() -> WorkBudget {
    WorkBudget {
        max_work: u64::MAX,
        max_weight_bytes: u64::MAX,
        max_segments: u32::MAX,
    }
}

fn refused(what: &'static str) -> impl Fn(String) -> anyhow::Error {
    move |e| anyhow!("{what} refused: {e}")
}

/// Deploys `wasm` (the model contract, or a baked model) with `instantiate` (budgets lifted so
/// the whole model runs in one call), uploads `weights` (one byte string per layer) and
/// finalizes unless baked, and measures one `Predict` on `input`.
pub fn measure(
    wasm: &[u8],
    instantiate: &InstantiateMsg,
    weights: &[Vec<u8>],
    input: &[i32],
    block_gas: u64,
) -> Result<GasReport> {
    let mut vm = ChainVm::new(wasm)?;
    let owner = vm.addr("owner");
    let msg = InstantiateMsg {
        query_budget: Some(unlimited()),
        execute_budget: Some(unlimited()),
        ..instantiate.clone()
    };
    vm.instantiate(&owner, &msg, &[])?
        .result
        .map_err(refused("instantiate"))?;
    let model_info = |vm: &mut ChainVm| -> Result<ModelInfoResponse> {
        let info = vm
            .query(&QueryMsg::ModelInfo {})?
            .result
            .map_err(refused("model_info"))?;
        Ok(from_json(info)?)
    };
    if !model_info(&mut vm)?.baked {
        for up in ExecuteMsg::uploads(weights) {
            vm.execute(&owner, &up, &[])?.result.map_err(refused("upload"))?;
        }
        vm.execute(&owner, &ExecuteMsg::Finalize {}, &[])?
            .result
            .map_err(refused("finalize"))?;
    }
    let info = model_info(&mut vm)?;
    let call = vm.query(&QueryMsg::Predict {
        input: input.to_vec(),
        input_bytes: None,
    })?;
    call.result.map_err(refused("predict"))?;

    let infos = &info.layers;
    let markers = &call.markers;
    if markers.len() != infos.len() + 1 {
        bail!(
            "expected {} layer markers, the contract emitted {}",
            infos.len() + 1,
            markers.len()
        );
    }
    let mut layers = Vec::with_capacity(infos.len());
    for (index, (li, m)) in infos.iter().zip(markers.windows(2)).enumerate() {
        let (vm_gas, storage) = (m[1].vm_gas - m[0].vm_gas, m[1].storage_sdk_gas - m[0].storage_sdk_gas);
        let macs = li.macs;
        layers.push(LayerGas {
            index,
            kind: li.kind.clone(),
            macs,
            weight_bytes: li.weight_bytes,
            storage_reads: m[1].storage_reads - m[0].storage_reads,
            vm_gas,
            vm_gas_per_mac: (macs > 0).then(|| vm_gas as f64 / macs as f64),
            storage_sdk_gas: storage,
            sdk_gas: vm_gas / GAS_MULTIPLIER + storage,
        });
    }
    let in_layers: u64 = layers.iter().map(|l| l.sdk_gas).sum();
    let total = call.gas.total_sdk_gas;
    let overhead = total.saturating_sub(in_layers + INSTANCE_COST);
    Ok(GasReport {
        calls: plan_calls(&layers, overhead, block_gas),
        layers,
        instance_sdk_gas: INSTANCE_COST,
        overhead_sdk_gas: overhead,
        total_sdk_gas: total,
        block_gas,
        fits_query: total <= SMART_QUERY_GAS_LIMIT,
    })
}

/// Calls needed when each may spend `block_gas`: layers packed in order, each call paying the
/// instance cost and the per-call overhead; a layer larger than what is left is split into
/// segments across calls (as `Evaluate` / `Continue` do). An estimate: job bookkeeping
/// writes are not counted.
pub fn plan_calls(layers: &[LayerGas], overhead: u64, block_gas: u64) -> u64 {
    let cap = block_gas.saturating_sub(INSTANCE_COST + overhead).max(1);
    let (mut calls, mut used) = (1u64, 0u64);
    for l in layers {
        let mut g = l.sdk_gas;
        while used + g > cap {
            g -= cap - used;
            calls += 1;
            used = 0;
        }
        used += g;
    }
    calls
}

impl GasReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let header = [
            "layer",
            "kind",
            "MACs",
            "weight B",
            "reads",
            "VM gas",
            "gas/MAC",
            "storage SDK",
            "SDK gas",
        ];
        let rows = self.layers.iter().map(|l| {
            vec![
                l.index.to_string(),
                l.kind.clone(),
                l.macs.to_string(),
                l.weight_bytes.to_string(),
                l.storage_reads.to_string(),
                l.vm_gas.to_string(),
                l.vm_gas_per_mac.map_or("-".into(), |g| format!("{g:.0}")),
                l.storage_sdk_gas.to_string(),
                l.sdk_gas.to_string(),
            ]
        });
        let mut s = text_table(&[5, -16, 12, 12, 6, 15, 9, 12, 12], &header, rows);
        s += &format!(
            "\nPredict in one query: {} SDK gas ({} instance + {} overhead + layers); {} the {} SDK-gas query limit.\n",
            self.total_sdk_gas,
            self.instance_sdk_gas,
            self.overhead_sdk_gas,
            if self.fits_query { "fits" } else { "exceeds" },
            SMART_QUERY_GAS_LIMIT
        );
        s += &format!(
            "At {} SDK gas per transaction: {} Evaluate/Continue call(s).\n",
            self.block_gas, self.calls
        );
        s
    }
}

/// A text table: `header`, then one line per row, each cell right-aligned to its column's
/// width or left-aligned where the width is negative; two spaces after the first column.
pub fn text_table(widths: &[i32], header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
            s += match i {
                0 => "",
                1 => "  ",
                _ => " ",
            };
            let n = w.unsigned_abs() as usize;
            s += &if w < 0 {
                format!("{cell:<n$}")
            } else {
                format!("{cell:>n$}")
            };
        }
        s + "\n"
    };
    let mut s = line(header);
    for row in rows {
        s += &line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    s
}

/// One `Train` step's gas, and the storage floor it is held to: reading and writing the
/// trained layers' stored values once (their Dense bytes and the fractions, as the chain
/// bills them).
#[derive(Clone, Debug, Serialize)]
pub struct TrainGas {
    pub step: crate::chain::GasRecord,
    /// The trained layers' Dense bytes (the head's, and the hidden layer's when it trains).
    pub head_bytes: usize,
    pub fraction_bytes: usize,
    /// SDK gas of one read and one write of those values.
    pub head_read_write: u64,
}

/// Deploys `wasm` with `instantiate` (a trainable model; budgets lifted), uploads `weights`,
/// finalizes and measures one `Train` on `examples`, then the floor from the values it wrote.
pub fn train_gas(
    wasm: &[u8],
    instantiate: &InstantiateMsg,
    weights: &[Vec<u8>],
    examples: Vec<cwnn_model_contract::msg::TrainExample>,
) -> Result<TrainGas> {
    use crate::chain::ChainStorage;
    use cwnn_model_contract::state::{FRACTIONS, WEIGHTS};
    let mut vm = ChainVm::new(wasm)?;
    let owner = vm.addr("owner");
    let msg = InstantiateMsg {
        execute_budget: Some(unlimited()),
        ..instantiate.clone()
    };
    vm.instantiate(&owner, &msg, &[])?
        .result
        .map_err(refused("instantiate"))?;
    for m in ExecuteMsg::uploads(weights).iter().chain([&ExecuteMsg::Finalize {}]) {
        vm.execute(&owner, m, &[])?.result.map_err(refused("upload"))?;
    }
    let call = vm.execute(&owner, &ExecuteMsg::Train { examples }, &[])?;
    call.result.map_err(refused("train"))?;
    let training = instantiate.training.as_ref().ok_or(anyhow!("not a trainable model"))?;
    let index = training.head.locate(&instantiate.model)?;
    let first = index - usize::from(training.head.hidden.is_some());
    let data = vm.storage().data();
    let value = |key: &[u8]| data.get(key).map(Vec::len).ok_or(anyhow!("no value written"));
    let cost = |k: usize, v: usize| ChainStorage::read_cost(k, v) + ChainStorage::write_cost(k, v);
    let fraction_bytes = value(FRACTIONS)?;
    let (mut head_bytes, mut head_read_write) = (0, cost(FRACTIONS.len(), fraction_bytes));
    for layer in first..=index {
        let key = WEIGHTS.key((layer as u32, 0)).to_vec();
        head_bytes += value(&key)?;
        head_read_write += cost(key.len(), value(&key)?);
    }
    Ok(TrainGas {
        step: call.gas,
        head_bytes,
        fraction_bytes,
        head_read_write,
    })
}
