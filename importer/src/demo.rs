//! `cwnn demo`: the bundled digits model from ONNX to chain and back, in one command.
//!
//! Imports `models/digits-mlp` (compiled into the binary, so the demo runs from anywhere),
//! deploys the model contract's Wasm in an in-process cosmwasm-vm with the chain's gas
//! schedule, uploads and finalizes the weights, evaluates every test digit layer by layer
//! (`Evaluate` then `Continue`, one layer per transaction), verifies each inference from its
//! events, and prints float vs native vs on-chain accuracy and the per-layer gas table.

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use cwnn_model_contract::msg::{EvaluateResponse, ExecuteMsg};
use cwnn_vm::runner::ChainVm;
use serde::Serialize;
use serde_json::{json, Value};

use crate::import::{self, argmax, ImportArgs};
use crate::quantize::{quantize_input, Precision};

/// The bundled model: ONNX, calibration digits and the labelled test split.
const MODEL: &[u8] = include_bytes!("../../models/digits-mlp/model.onnx");
const CALIBRATION: &[u8] = include_bytes!("../../models/digits-mlp/calibration.csv");
const TEST: &[u8] = include_bytes!("../../models/digits-mlp/test.csv");

#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    pub digits: usize,
    pub float_top1: f64,
    pub native_top1: f64,
    pub chain_top1: f64,
    /// Inferences whose on-chain output equals the native one, bit for bit.
    pub bit_identical: usize,
    /// Inferences that `cwnn verify` confirms from their events.
    pub verified: usize,
    pub transactions: usize,
    /// Mean SDK gas of one whole inference (all its transactions).
    pub mean_sdk_gas: u64,
    pub predict_sdk_gas: u64,
}

/// Runs the demo on the first `limit` test digits (all by default) at `precision`, printing
/// to `out`.
pub fn run(limit: Option<usize>, precision: Precision, out: &mut impl Write) -> Result<DemoSummary> {
    let dir = tempfile::tempdir()?;
    let files = [
        ("model.onnx", MODEL),
        ("calibration.csv", CALIBRATION),
        ("test.csv", TEST),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes)?;
    }
    writeln!(
        out,
        "1. import models/digits-mlp/model.onnx in {} precision (calibrated on 200 training digits)",
        precision.name()
    )?;
    let args = ImportArgs {
        model: dir.path().join("model.onnx"),
        calibration: vec![dir.path().join("calibration.csv")],
        name: Some("digits-mlp".into()),
        precision,
        ..Default::default()
    };
    let imported = import::import(&args)?;
    let package_dir = dir.path().join("package");
    imported.write(&package_dir, &Default::default())?;
    write!(out, "{}", import::report_table(&imported.quant.report))?;

    let test = import::read_samples(&imported.float, &[dir.path().join("test.csv")])?;
    let labels = test.labels.context("test.csv has labels")?;
    let n = limit.unwrap_or(test.inputs.len()).min(test.inputs.len());
    let (inputs, labels) = (&test.inputs[..n], &labels[..n]);
    let acc = import::accuracy(&imported.float, &imported.quant, inputs, labels)?;

    writeln!(
        out,
        "\n2. deploy the model contract in cosmwasm-vm, upload and finalize"
    )?;
    let wasm = cwnn_vm::artifacts::read_wasm("cwnn_model_contract")?;
    let mut vm = ChainVm::new(&wasm)?;
    let owner = vm.addr("author");
    let package = &imported.package;
    vm.instantiate(&owner, &package.instantiate, &[])?
        .result
        .map_err(|e| anyhow!("instantiate: {e}"))?;
    let uploads = ExecuteMsg::uploads(&package.weights);
    let bar = crate::progress::bar(uploads.len() as u64 + 1, "uploading");
    for msg in uploads.iter().chain([&ExecuteMsg::Finalize {}]) {
        vm.execute(&owner, msg, &[])?
            .result
            .map_err(|e| anyhow!("upload: {e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(
        out,
        "   {} upload transaction(s), weights sha256 {}",
        uploads.len(),
        package.instantiate.weights_sha256
    )?;

    writeln!(
        out,
        "\n3. evaluate {n} test digits layer by layer (one layer per transaction)"
    )?;
    let user = vm.addr("user");
    let bar = crate::progress::bar(n as u64, "evaluating");
    let (mut right, mut identical, mut transactions, mut gas) = (0, 0, 0, 0u64);
    let mut events = Vec::new();
    for (x, &label) in inputs.iter().zip(labels) {
        let q = quantize_input(&package.instantiate.model.input, x);
        let native = package.instantiate.model.run_all(&package.weights, q.clone())?;
        let values: Vec<i32> = q.data.to_i32s();
        let mut msg = ExecuteMsg::Evaluate {
            input: values,
            steps: Some(1),
        };
        let output = loop {
            let call = vm.execute(&user, &msg, &[])?;
            transactions += 1;
            gas += call.gas.total_sdk_gas;
            let res = call.result.map_err(|e| anyhow!("evaluate: {e}"))?;
            events.extend(res.events.iter().map(|e| {
                let attrs: Vec<Value> = e
                    .attributes
                    .iter()
                    .map(|a| json!({"key": a.key, "value": a.value}))
                    .collect();
                json!({"type": format!("wasm-{}", e.ty), "attributes": attrs})
            }));
            let data: EvaluateResponse = serde_json::from_slice(&res.data.context("no response data")?)?;
            match data.output {
                Some(o) => break o,
                None => {
                    msg = ExecuteMsg::Continue {
                        job_id: data.job_id,
                        steps: Some(1),
                    }
                }
            }
        };
        let ours = native.last().context("output")?;
        identical += usize::from((0..ours.len()).all(|i| ours.data.get(i) == output.data.get(i).copied()));
        let real: Vec<f64> = output
            .data
            .iter()
            .map(|&v| cwnn_tensor::host::dequantize(v, &output.output.quant))
            .collect();
        right += usize::from(argmax(real) as i64 == label);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let verdicts = crate::verify::verify(package, &Value::Array(events))?;
    let verified = verdicts.iter().filter(|v| v.matches).count();

    let report = cwnn_vm::report::measure(
        &wasm,
        &package.instantiate,
        &package.weights,
        &package.input(),
        30_000_000,
    )?;
    let summary = DemoSummary {
        digits: n,
        float_top1: acc.float_top1,
        native_top1: acc.int8_top1,
        chain_top1: right as f64 / n.max(1) as f64,
        bit_identical: identical,
        verified,
        transactions,
        mean_sdk_gas: gas / n.max(1) as u64,
        predict_sdk_gas: report.total_sdk_gas,
    };
    writeln!(out, "   top-1 accuracy on {n} held-out digits:")?;
    writeln!(out, "     float (f64 reference)  {:6.2} %", summary.float_top1 * 100.0)?;
    let p = precision.name();
    writeln!(
        out,
        "     {p:<4}, native           {:6.2} %",
        summary.native_top1 * 100.0
    )?;
    writeln!(
        out,
        "     {p:<4}, on chain         {:6.2} %",
        summary.chain_top1 * 100.0
    )?;
    writeln!(
        out,
        "   {identical}/{n} on-chain outputs equal the native ones bit for bit; {verified}/{} verified from events",
        verdicts.len()
    )?;
    writeln!(
        out,
        "   {transactions} transactions, {} SDK gas per inference on average",
        summary.mean_sdk_gas
    )?;
    writeln!(
        out,
        "\n4. gas per layer (one Predict query; cwnn gas prints this for any package)"
    )?;
    write!(out, "{}", report.table())?;
    if identical != n || verified != n {
        bail!("on-chain results differ from the native ones");
    }
    Ok(summary)
}
