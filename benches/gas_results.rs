//! Writes benches/RESULTS.md: the per-layer gas of reference models, measured by running the
//! model contract's Wasm in cosmwasm-vm with the chain's gas schedule (cwnn-vm's report).
//! Run: `cargo run -p cwnn-benches --bin gas-results` (it builds the Wasm first if needed).

use std::fmt::Write;

use cwnn_importer::quantize::Precision;
use cwnn_layers::WeightFormat;
use cwnn_model_contract::msg::CHUNK_BYTES;
use cwnn_model_contract::testing::{
    conv_only, conv_only_as, conv_only_int4, dense_only, dense_only_as, dense_only_int4, lenet, mlp, skip_lstm,
    skip_lstm_as, TestModel,
};
use cwnn_tensor::DType;
use cwnn_vm::kernels::KernelModule;
use cwnn_vm::report::measure;
use cwnn_wasm_kernels::{bench_input, op};

fn main() -> anyhow::Result<()> {
    let wasm = cwnn_vm::artifacts::read_wasm("cwnn_model_contract")?;
    let models: [(&str, TestModel); 11] = [
        ("Dense int8 256→256", dense_only(256, 256)),
        (
            "Conv2D int8 16→16 channels, 3×3, 16×16 input, same padding",
            conv_only(16, 16, 3, 16),
        ),
        ("MLP 784→128 (ReLU) →10 → softmax", mlp(784, 128, 10)),
        ("LSTM 6×4 → 8, Dense per step, skip Dense, Add", skip_lstm()),
        ("Dense int16 256→256", dense_only_as(256, 256, DType::I16)),
        (
            "Conv2D int16 16→16 channels, 3×3, 16×16 input, same padding",
            conv_only_as(16, 16, 3, 16, DType::I16),
        ),
        ("LSTM graph above in int16", skip_lstm_as(DType::I16)),
        ("Dense 256→256 with int4 weights", dense_only_int4(256, 256)),
        (
            "Conv2D 16→16 channels, 3×3, 16×16 input, same padding, int4 weights",
            conv_only_int4(16, 16, 3, 16),
        ),
        (
            "LeNet-5 shape (28×28, 61,706 parameters), int8",
            lenet(WeightFormat::Native),
        ),
        (
            "LeNet-5 shape, int4 weights (`cwnn import --weights int4`)",
            lenet(WeightFormat::Int4),
        ),
    ];
    let mut out = String::from(
        "# Gas results\n\n\
         Measured by `cargo run -p cwnn-benches --bin gas-results`, which rewrites this file: the\n\
         model contract's Wasm (`scripts/build-wasm.sh`, MVP, `-disable-lsr`) runs one `Predict` in\n\
         cosmwasm-vm 2.2.10 with wasmd's storage gas (cwnn-vm `ChainStorage`, ../shared/GAS.md).\n\
         VM gas is CosmWasm gas (140,000 = 1 SDK gas); storage and totals are SDK gas. Gas counts\n\
         are deterministic for a given toolchain and contract build.\n\n\
         The gas tests (`vm/tests/gas.rs`) hold Dense 256→256 and Conv2D 16→16 3×3 to at most\n\
         900 VM gas per MAC (int8 and int4 weights), their int16 forms to 3,500 and 4,200, a\n\
         whole MLP inference and LeNet-5 with int4 weights to within 10 % of 60,000 + the\n\
         storage floor of reading every weight once, int4 Dense 256→256 to at most 0.52\n\
         stored bytes per parameter, and a training step of a 64 → 10 head on 8 examples to at\n\
         most twice one read and write of the head's stored values (beside the instance cost). The LeNet-5 models have deterministic weights: gas depends\n\
         on shapes and bytes, not values (a trained LeNet imports to the same bytes).\n\n\
         The deployment tables (`cwnn gas` prints them for a package) count each transaction's\n\
         contract calls as measured and its bytes at 10 SDK gas each (cwnn-vm `deploy`).\n",
    );
    let all = models.into_iter().chain([
        (
            "Bundled demo model: models/digits-mlp (64 → 64 ReLU → 10 → softmax, from cwnn-trainer)",
            bundled(Precision::Int8, WeightFormat::Native)?,
        ),
        (
            "Bundled demo model in `int16` precision (`cwnn import --precision int16`)",
            bundled(Precision::Int16, WeightFormat::Native)?,
        ),
        (
            "Bundled demo model with int4 weights (`cwnn import --weights int4`)",
            bundled(Precision::Int8, WeightFormat::Int4)?,
        ),
        (
            "One encoder block, int8: 8 tokens of 32, 2 heads (scores `matmul`, softmax over each row, \
             context `matmul`; the heads split and merged by `permute`), output projection, residual, \
             `layer_norm`, GELU feed-forward 32 → 64 → 32, residual, `layer_norm` (benches/data/encoder_block, \
             from scripts/onnx-graphs.py)",
            encoder(Precision::Int8)?,
        ),
        ("The encoder block in `int16` precision", encoder(Precision::Int16)?),
    ]);
    for (name, m) in all {
        let r = measure(&wasm, &m.instantiate_msg(), &m.weights, &m.sample_values(), 30_000_000)?;
        let floor: u64 = m
            .weights
            .iter()
            .flat_map(|w| w.chunks(CHUNK_BYTES as usize))
            .map(|c| 1_000 + 3 * c.len() as u64)
            .sum::<u64>()
            + 60_000;
        writeln!(out, "\n## {name}\n\n```text\n{}```", r.table())?;
        let dense: Vec<(usize, usize)> = m
            .config
            .layers
            .iter()
            .zip(&m.weights)
            .filter_map(|(l, w)| match &l.layer {
                cwnn_layers::Layer::Dense(d) => Some(((d.in_features + 1) * d.out_features, w.len())),
                _ => None,
            })
            .collect();
        let (params, bytes) = dense.iter().fold((0, 0), |(p, b), (lp, lb)| (p + lp, b + lb));
        if params > 0 {
            writeln!(
                out,
                "\nDense layers: {params} parameters (weights and biases) in {bytes} bytes with their \
                 constants, {:.3} per parameter.",
                bytes as f64 / params as f64
            )?;
        }
        writeln!(
            out,
            "\nStorage floor (instance + each weight chunk read once, keys not counted): {floor} SDK gas; \
             measured {:.1} % above it.",
            (r.total_sdk_gas as f64 / floor as f64 - 1.0) * 100.0
        )?;
    }
    out += BAKED_INTRO;
    for (name, m) in [
        ("LeNet-5 shape, int8, baked", lenet(WeightFormat::Native)),
        ("LeNet-5 shape, int4 weights, baked", lenet(WeightFormat::Int4)),
        (
            "Bundled demo model, baked",
            bundled(Precision::Int8, WeightFormat::Native)?,
        ),
    ] {
        let (runtime_name, runtime) = cwnn_vm::artifacts::runtime_for(&m.config)?;
        let baked = cwnn_model_contract::state::bake(&runtime, &m.config, &m.weights)?;
        let r = measure(&baked, &m.instantiate_msg(), &m.weights, &m.sample_values(), 30_000_000)?;
        let (predict, evaluate) = baked_calls(&baked, &m)?;
        writeln!(
            out,
            "\n## {name}\n\n{} bytes of Wasm, on `{runtime_name}`. With the input as bytes and default budgets: \
             `Predict` {predict} SDK gas ({:.3} × the 60,000 instance floor), one `Evaluate` \
             transaction {evaluate}. One `Predict` with the report's markers and JSON input:\n\n\
             ```text\n{}```",
            baked.len(),
            predict as f64 / 60_000.0,
            r.table()
        )?;
    }
    let collection = cwnn_vm::artifacts::read_wasm("cwnn_collection")?;
    for (name, m) in [
        (
            "the bundled demo model, baked",
            bundled(Precision::Int8, WeightFormat::Native)?,
        ),
        ("the LeNet-5 shape with int4 weights, baked", lenet(WeightFormat::Int4)),
    ] {
        let (_, runtime_wasm) = cwnn_vm::artifacts::runtime_for(&m.config)?;
        let runtime = cwnn_bake::RuntimeId::of(&runtime_wasm)?;
        let baked = cwnn_model_contract::state::bake(&runtime_wasm, &m.config, &m.weights)?;
        let code = cwnn_vm::deploy::Code::Baked {
            wasm: &baked,
            runtime: &runtime,
        };
        let d = cwnn_vm::deploy::deploy_cost(code, &collection, &m.instantiate_msg())?;
        writeln!(out, "\n## Deploying {name}\n\n```text\n{}```", d.table())?;
    }
    for (name, m) in [
        (
            "the bundled demo model (int8)",
            bundled(Precision::Int8, WeightFormat::Native)?,
        ),
        ("MLP 784→128 (ReLU) →10 → softmax", mlp(784, 128, 10)),
        ("Dense int8 512→300 (two weight chunks)", dense_only(512, 300)),
        ("the LeNet-5 shape with int4 weights", lenet(WeightFormat::Int4)),
    ] {
        let d = cwnn_vm::deploy::deploy_cost(
            cwnn_vm::deploy::Code::Stored {
                wasm: &wasm,
                weights: &m.weights,
            },
            &collection,
            &m.instantiate_msg(),
        )?;
        writeln!(out, "\n## Deploying {name}\n\n```text\n{}```", d.table())?;
    }
    train_section(&wasm, &bundled(Precision::Int8, WeightFormat::Native)?, &mut out)?;
    out += "\n## Other Wasm hosts: wasmtime fuel\n\n\
        The same layers in the kernel module (`cwnn-wasm-kernels`, MVP build) under wasmtime with\n\
        fuel metering (about one unit per Wasm operator). Time per MAC: `cargo bench -p cwnn-benches\n\
        --bench wasm` (native vs wasmtime).\n\n| layer | MACs | fuel | fuel per MAC |\n|---|---:|---:|---:|\n";
    let mut module = KernelModule::new(&cwnn_vm::artifacts::read_wasm("cwnn_wasm_kernels")?)?;
    for (name, code, dims, macs) in [
        ("Dense 256→256", op::BENCH_DENSE, [256, 256, 0, 0], 256 * 256u64),
        (
            "Conv2D 16→16 3×3 16×16",
            op::BENCH_CONV,
            [16, 16, 3, 16],
            16 * 16 * 9 * 256,
        ),
    ] {
        let (_, fuel) = module.run(code, &bench_input(code, dims))?;
        writeln!(out, "| {name} | {macs} | {fuel} | {:.2} |", fuel as f64 / macs as f64)?;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md");
    std::fs::write(path, out)?;
    println!("wrote {path}");
    Ok(())
}

const BAKED_INTRO: &str = "\n## Baked models\n\n\
    `cwnn bake` puts a model's config and weights in its contract's own Wasm (the model\n\
    contract's runtime plus one data segment): a call reads them from memory, so it pays the\n\
    instance cost and its computation, no weight reads. The gas tests hold LeNet-5 baked to\n\
    1.10 × the instance floor per `Predict` (input as bytes, default budgets) and 100,000 SDK\n\
    gas per one-call `Evaluate` (issue 18's targets).\n";

/// A baked model's `Predict` query and one-call `Evaluate`, input as bytes, default budgets.
fn baked_calls(wasm: &[u8], m: &TestModel) -> anyhow::Result<(u64, u64)> {
    use cosmwasm_std::Binary;
    use cwnn_model_contract::msg::{ExecuteMsg, QueryMsg};
    let mut vm = cwnn_vm::runner::ChainVm::new(wasm)?;
    let owner = vm.addr("owner");
    vm.instantiate(&owner, &m.instantiate_msg(), &[])?
        .result
        .map_err(anyhow::Error::msg)?;
    let spec = &m.config.input;
    let bytes: Vec<u8> = m
        .sample_values()
        .iter()
        .flat_map(|&v| match spec.dtype {
            cwnn_tensor::DType::I8 => vec![v as i8 as u8],
            _ => (v as i16).to_le_bytes().to_vec(),
        })
        .collect();
    let input_bytes = Some(Binary::from(bytes));
    let q = vm.query(&QueryMsg::Predict {
        input: vec![],
        input_bytes: input_bytes.clone(),
    })?;
    q.result.map_err(anyhow::Error::msg)?;
    let e = vm.execute(
        &owner,
        &ExecuteMsg::Evaluate {
            input: vec![],
            input_bytes,
            steps: None,
        },
        &[],
    )?;
    e.result.map_err(anyhow::Error::msg)?;
    Ok((q.gas.total_sdk_gas, e.gas.total_sdk_gas))
}

/// benches/data/encoder_block imported and calibrated on its own inputs; the first is the sample.
fn encoder(precision: Precision) -> anyhow::Result<TestModel> {
    use cwnn_importer::samples::{read_tensor, split};
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/encoder_block"));
    let options = cwnn_importer::onnx::Options::default();
    let model = cwnn_importer::import::load(&dir.join("model.onnx"), &options)?;
    let x = read_tensor(&dir.join("input.npy"))?;
    let samples = split(dir, x, &model.input_shape, model.input_batch_axis)?;
    let q = cwnn_importer::quantize::quantize(&model, &samples, "encoder-block", precision)?;
    let sample = q.config.input.quantize(&samples[0])?;
    Ok(TestModel {
        config: q.config,
        weights: q.weights,
        sample,
    })
}

/// The bundled demo model, imported as `cwnn import` does, with an all-zero input.
fn bundled(precision: Precision, weights: WeightFormat) -> anyhow::Result<TestModel> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/digits-mlp");
    let digits = cwnn_importer::import::import(&cwnn_importer::import::ImportArgs {
        model: format!("{dir}/model.onnx").into(),
        calibration: vec![format!("{dir}/calibration.csv").into()],
        precision,
        weights,
        ..Default::default()
    })?;
    Ok(TestModel {
        config: digits.quant.config.clone(),
        weights: digits.package.weights.clone(),
        sample: digits
            .quant
            .config
            .input
            .quantize(&ndarray::ArrayD::zeros(digits.float.input_shape.clone()))?,
    })
}

/// One `Train` step of the bundled model's 64 → 10 head at several batch sizes, against the
/// storage of reading and writing that head once (`vm/tests/gas.rs` holds batch 8 to twice it).
fn train_section(wasm: &[u8], m: &TestModel, out: &mut String) -> anyhow::Result<()> {
    use cwnn_model_contract::msg::{TrainExample, TrainPolicy};
    let rules = cwnn_model_contract::msg::TrainingRules {
        max_batch: 32,
        ..cwnn_model_contract::testing::rules(TrainPolicy::Owner {})
    };
    *out += "\n## Training on chain: one `Train` step of the bundled demo model's 64 → 10 head\n\n\
        Owner-only rules, no caps (a cap adds a small read and write). The head's stored values are\n\
        its Dense bytes (730) and its fractions (650, the master weights' extra bits); \"trained values\n\
        read + write\" is one read and one write of both, keys included. The step is the whole transaction\n\
        but the 60,000 instance cost: a forward pass per example (both layers' weights read once),\n\
        the gradient, the update, both values and the version record written.\n\n\
        With `--train-layers 2` the Dense before the head (64 → 64, ReLU: 4,672 bytes and 4,160\n\
        fraction bytes) trains too, and its values count in \"read + write\".\n\n\
        | layers | batch | step SDK gas | of it storage | VM gas | trained values read + write | step / (read + write) |\n\
        |---:|---:|---:|---:|---:|---:|---:|\n";
    for (layers, batch) in [(1, 1u32), (1, 8), (1, 32), (2, 8)] {
        let msg = m.trainable_msg_with(rules.clone(), layers);
        let examples = (0..batch as i32)
            .map(|k| TrainExample {
                input: m.sample_values().iter().map(|v| (v + 5 * k).clamp(-128, 127)).collect(),
                input_bytes: None,
                label: k as u32 % 10,
            })
            .collect();
        let g = cwnn_vm::report::train_gas(wasm, &msg, &m.weights, examples)?;
        let step = g.step.total_sdk_gas - g.step.instance_sdk_gas;
        writeln!(
            out,
            "| {layers} | {batch} | {step} | {} | {} | {} | {:.2} |",
            g.step.storage_sdk_gas,
            g.step.vm_gas,
            g.head_read_write,
            step as f64 / g.head_read_write as f64
        )?;
    }
    Ok(())
}
