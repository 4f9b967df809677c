//! `cwnn demo`: a bundled digits model from ONNX to chain and back, in one command.
//!
//! Imports `models/digits-mlp` or `models/digits-transformer` (compiled into the binary, so the
//! demo runs from anywhere; both were trained on the same split, so they share its digits),
//! deploys the model contract's Wasm in an in-process cosmwasm-vm with the chain's gas
//! schedule, uploads and finalizes the weights, evaluates every test digit layer by layer
//! (`Evaluate` then `Continue`, one layer per transaction), verifies each inference from its
//! events, and prints float vs native vs on-chain accuracy and the per-layer gas table.

use std::io::Write;
use std::path::Path;

use cwnn_layers::WeightFormat;
use cwnn_model_contract::msg::{EvaluateResponse, ExecuteMsg};
use cwnn_vm::runner::ChainVm;
use ndarray::ArrayD;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{chain, io, Error, Result};
use crate::import::{self, argmax, ImportArgs};
use crate::package::Package;
use crate::quantize::Precision;

/// The bundled digits: 200 training digits to calibrate on and the labelled test split.
const CALIBRATION: &[u8] = include_bytes!("../../models/digits-mlp/calibration.csv");
const TEST: &[u8] = include_bytes!("../../models/digits-mlp/test.csv");

/// A bundled model (`cwnn-trainer` output, README's "Train your own").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoModel {
    /// 64 → 64 ReLU → 10 → softmax: three layers.
    #[default]
    Mlp,
    /// Two encoder blocks over the 8 image rows (d = 32, 2 heads), mean pooling, 10 classes:
    /// 41 layers.
    Transformer,
}

impl DemoModel {
    /// The model's directory under `models/`.
    pub fn name(self) -> &'static str {
        match self {
            DemoModel::Mlp => "digits-mlp",
            DemoModel::Transformer => "digits-transformer",
        }
    }
    fn onnx(self) -> &'static [u8] {
        match self {
            DemoModel::Mlp => include_bytes!("../../models/digits-mlp/model.onnx"),
            DemoModel::Transformer => include_bytes!("../../models/digits-transformer/model.onnx"),
        }
    }
}

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

/// Runs the demo of `model` on the first `limit` test digits (all by default) at `precision`,
/// with Dense weights stored as `weights`, printing to `out`.
pub fn run(
    model: DemoModel,
    limit: Option<usize>,
    precision: Precision,
    weights: WeightFormat,
    out: &mut impl Write,
) -> Result<DemoSummary> {
    let dir = tempfile::tempdir().map_err(io(Path::new("a temporary directory")))?;
    let imported = import_bundled(dir.path(), model, (precision, weights), out)?;
    let test = import::read_samples(&imported.float, &[dir.path().join("test.csv")])?;
    let labels = test
        .labels
        .ok_or(Error::Chain("the bundled test.csv has no labels".into()))?;
    let n = limit.unwrap_or(test.inputs.len()).min(test.inputs.len());
    let (inputs, labels) = (&test.inputs[..n], &labels[..n]);
    let acc = import::accuracy(&imported.float, &imported.quant, inputs, labels)?;

    writeln!(
        out,
        "\n2. deploy the model contract in cosmwasm-vm, upload and finalize"
    )?;
    let wasm = cwnn_vm::artifacts::read_wasm("cwnn_model_contract").map_err(chain)?;
    let package = &imported.package;
    let mut vm = deploy(&wasm, package, out)?;

    writeln!(
        out,
        "\n3. evaluate {n} test digits layer by layer (one layer per transaction)"
    )?;
    let mut tally = Tally::default();
    let bar = crate::progress::bar(n as u64, "evaluating");
    for (x, &label) in inputs.iter().zip(labels) {
        evaluate(&mut vm, package, x, label, &mut tally)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let verdicts = crate::verify::verify(package, &Value::Array(std::mem::take(&mut tally.events)))?;
    let verified = verdicts.iter().filter(|v| v.matches).count();
    let report = cwnn_vm::report::measure(
        &wasm,
        &package.instantiate,
        &package.weights,
        &package.input(),
        30_000_000,
    )
    .map_err(chain)?;
    let summary = DemoSummary {
        digits: n,
        float_top1: acc.float_top1,
        native_top1: acc.quantized_top1,
        chain_top1: tally.right as f64 / n.max(1) as f64,
        bit_identical: tally.identical,
        verified,
        transactions: tally.transactions,
        mean_sdk_gas: tally.gas / n.max(1) as u64,
        predict_sdk_gas: report.total_sdk_gas,
    };
    print_summary(&summary, &imported.quant.report.label(), verdicts.len(), out)?;
    writeln!(
        out,
        "\n4. gas per layer (one Predict query; cwnn gas prints this for any package)"
    )?;
    write!(out, "{}", report.table())?;
    if summary.bit_identical != n || verified != n {
        return Err(Error::Chain("on-chain results differ from the native ones".into()));
    }
    Ok(summary)
}

/// Step 1: unpacks the bundled model into `dir` and imports it.
fn import_bundled(
    dir: &Path,
    model: DemoModel,
    (precision, weights): (Precision, WeightFormat),
    out: &mut impl Write,
) -> Result<import::Imported> {
    for (name, bytes) in [
        ("model.onnx", model.onnx()),
        ("calibration.csv", CALIBRATION),
        ("test.csv", TEST),
    ] {
        std::fs::write(dir.join(name), bytes).map_err(io(dir))?;
    }
    writeln!(
        out,
        "1. import models/{}/model.onnx in {} precision{} (calibrated on 200 training digits)",
        model.name(),
        precision.name(),
        if weights == WeightFormat::Int4 {
            " with int4 weights"
        } else {
            ""
        }
    )?;
    let args = ImportArgs {
        model: dir.join("model.onnx"),
        calibration: vec![dir.join("calibration.csv")],
        name: Some(model.name().into()),
        precision,
        weights,
        ..Default::default()
    };
    let imported = import::import(&args)?;
    imported.write(&dir.join("package"), &Default::default())?;
    write!(out, "{}", import::report_table(&imported.quant.report))?;
    Ok(imported)
}

/// Step 2: instantiates the contract, uploads the weights and finalizes.
pub(crate) fn deploy(wasm: &[u8], package: &Package, out: &mut impl Write) -> Result<ChainVm> {
    let mut vm = ChainVm::new(wasm).map_err(chain)?;
    let owner = vm.addr("author");
    vm.instantiate(&owner, &package.instantiate, &[])
        .map_err(chain)?
        .result
        .map_err(|e| Error::Chain(format!("instantiate: {e}")))?;
    let uploads = ExecuteMsg::uploads(&package.weights);
    let bar = crate::progress::bar(uploads.len() as u64 + 1, "uploading");
    for msg in uploads.iter().chain([&ExecuteMsg::Finalize {}]) {
        vm.execute(&owner, msg, &[])
            .map_err(chain)?
            .result
            .map_err(|e| Error::Chain(format!("upload: {e}")))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(
        out,
        "   {} upload transaction(s), weights sha256 {}",
        uploads.len(),
        package.instantiate.weights_sha256
    )?;
    Ok(vm)
}

/// What step 3 counts over the digits.
#[derive(Default)]
struct Tally {
    right: usize,
    identical: usize,
    transactions: usize,
    gas: u64,
    /// Every event, as a chain's JSON log shows it (for `cwnn verify`).
    events: Vec<Value>,
}

/// Step 3 for one digit: `Evaluate` then `Continue` one layer per transaction, compared with
/// the native run.
fn evaluate(vm: &mut ChainVm, package: &Package, x: &ArrayD<f64>, label: i64, tally: &mut Tally) -> Result<()> {
    let user = vm.addr("user");
    let q = package.instantiate.model.input.quantize(x)?;
    let native = package.instantiate.model.run_all(&package.weights, q.clone())?;
    let mut msg = ExecuteMsg::Evaluate {
        input: q.data.to_i32s(),
        input_bytes: None,
        steps: Some(1),
    };
    let output = loop {
        let call = vm.execute(&user, &msg, &[]).map_err(chain)?;
        tally.transactions += 1;
        tally.gas += call.gas.total_sdk_gas;
        let res = call.result.map_err(|e| Error::Chain(format!("evaluate: {e}")))?;
        tally.events.extend(res.events.iter().map(event_json));
        let data = res.data.ok_or(Error::Chain("no response data".into()))?;
        let data: EvaluateResponse =
            serde_json::from_slice(&data).map_err(|e| Error::Chain(format!("response data: {e}")))?;
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
    tally.identical +=
        usize::from(native.last().ok_or(Error::Chain("no output".into()))?.data.to_i32s() == output.data);
    let real = output
        .data
        .iter()
        .map(|&v| cwnn_tensor::host::dequantize(v, &output.output.quant));
    tally.right += usize::from(argmax(real) as i64 == label);
    Ok(())
}

/// An event as a chain's JSON log shows it.
pub(crate) fn event_json(e: &cosmwasm_std::Event) -> Value {
    let attrs: Vec<Value> = e
        .attributes
        .iter()
        .map(|a| json!({"key": a.key, "value": a.value}))
        .collect();
    json!({"type": format!("wasm-{}", e.ty), "attributes": attrs})
}

fn print_summary(s: &DemoSummary, p: &str, events: usize, out: &mut impl Write) -> Result<()> {
    let n = s.digits;
    writeln!(out, "   top-1 accuracy on {n} held-out digits:")?;
    for (label, top1) in [
        ("float (f64 reference)".to_string(), s.float_top1),
        (format!("{p}, native"), s.native_top1),
        (format!("{p}, on chain"), s.chain_top1),
    ] {
        writeln!(out, "     {label:<30} {:6.2} %", top1 * 100.0)?;
    }
    writeln!(
        out,
        "   {}/{n} on-chain outputs equal the native ones bit for bit; {}/{events} verified from events",
        s.bit_identical, s.verified
    )?;
    writeln!(
        out,
        "   {} transactions, {} SDK gas per inference on average",
        s.transactions, s.mean_sdk_gas
    )?;
    Ok(())
}
