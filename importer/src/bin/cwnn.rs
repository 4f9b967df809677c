//! The `cwnn` command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use cwnn_importer::import::{self, ImportArgs};
use cwnn_importer::onnx::Options;
use cwnn_importer::quantize::dequantize_all;
use cwnn_importer::{bake, samples, Package};
use cwnn_vm::deploy::Code;
use cwnn_vm::report::measure;
use ndarray::{ArrayD, Axis, IxDyn};
use serde_json::json;

#[derive(Parser)]
#[command(name = "cwnn", version, about = "Quantized neural networks for CosmWasm")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    /// int8 weights (per output channel) and int8 activations.
    Int8,
    /// int16 weights (per output channel) and int16 activations, i64 sums: closer to float,
    /// about twice the weight bytes (gas). Embedding (Gather) stays int8-only for now.
    Int16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Weights {
    /// Weights at the precision's width (int8 or int16).
    Native,
    /// Dense, Conv, Embedding and recurrent weights in 4 bits, two per byte (int8 precision
    /// only): about half the weight bytes and gas; `--eval` shows what it costs in accuracy.
    Int4,
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoModel {
    /// models/digits-mlp: 64 → 64 ReLU → 10 → softmax (3 layers).
    Mlp,
    /// models/digits-transformer: 2 encoder blocks over the 8 image rows (d = 32, 2 heads),
    /// mean pooling, 10 classes (41 layers).
    Transformer,
}

impl From<DemoModel> for cwnn_importer::demo::DemoModel {
    fn from(m: DemoModel) -> Self {
        match m {
            DemoModel::Mlp => cwnn_importer::demo::DemoModel::Mlp,
            DemoModel::Transformer => cwnn_importer::demo::DemoModel::Transformer,
        }
    }
}

impl From<Weights> for cwnn_layers::WeightFormat {
    fn from(w: Weights) -> Self {
        match w {
            Weights::Native => cwnn_layers::WeightFormat::Native,
            Weights::Int4 => cwnn_layers::WeightFormat::Int4,
        }
    }
}

impl From<Precision> for cwnn_importer::quantize::Precision {
    fn from(p: Precision) -> Self {
        match p {
            Precision::Int8 => cwnn_importer::quantize::Precision::Int8,
            Precision::Int16 => cwnn_importer::quantize::Precision::Int16,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Imports an ONNX model: calibrates, quantizes and writes a model package.
    Import {
        /// The ONNX model.
        model: PathBuf,
        /// The package directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Sample inputs for calibration (.npy, .pb, .csv, .json; N samples stacked on the
        /// batch axis or one per CSV row). Repeatable.
        #[arg(long, required = true)]
        calibration: Vec<PathBuf>,
        /// Labelled samples (CSV with a `label` column): reports float vs quantized top-1 accuracy
        /// (with `--weights int4`, also vs int8 weights).
        #[arg(long)]
        eval: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "int8")]
        precision: Precision,
        #[arg(long, value_enum, default_value = "native")]
        weights: Weights,
        /// Binds a graph input to a constant read from FILE (weights passed as inputs).
        #[arg(long = "const", value_name = "NAME=FILE")]
        consts: Vec<String>,
        /// Keeps only this graph output (the contract returns one tensor).
        #[arg(long)]
        output: Vec<String>,
        /// The model's name on chain (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// The whole input is one sample (no batch axis), for graphs that reshape across it.
        #[arg(long)]
        no_batch: bool,
        /// The cwnn-collection to mint into (messages/mint.json; a placeholder otherwise).
        #[arg(long)]
        collection: Option<String>,
        /// Code id of the cwnn-collection the model may be minted into (repeat for several;
        /// without one, the model can never be minted). Its token id is its own address.
        #[arg(long = "collection-code-id", value_name = "CODE_ID")]
        collection_code_ids: Vec<u64>,
        /// Docs / license URI recorded in the token.
        #[arg(long)]
        token_uri: Option<String>,
        /// Makes the last Dense (before the final Softmax) trainable on chain by its owner,
        /// at this learning rate (SetTraining changes the rules later).
        #[arg(long, value_name = "LR")]
        trainable: Option<f64>,
        /// With --trainable: 2 trains the Dense before the head too.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        train_layers: u8,
    },
    /// Layers, parameters, bytes, MACs and quantization of a package.
    Inspect { dir: PathBuf },
    /// Runs a package natively, bit for bit as the contract does, on input files.
    Run {
        dir: PathBuf,
        /// Input samples, as `FILE` or `NAME=FILE` (NAME: the model's input).
        #[arg(long, required = true)]
        input: Vec<String>,
        /// Print `{"outputs":[{"name","shape","data","quantized"}],"inputs":[{"name","quantized"}]}`:
        /// dequantized output values, and per sample the quantized input and output as the
        /// contract's little-endian bytes in base64 (what its events carry).
        #[arg(long)]
        json: bool,
    },
    /// Trains a package's head on chain: deploys it in an in-process chain (cosmwasm-vm),
    /// sends one `Train` per batch, and prints accuracy before and after, gas per step, the
    /// same head trained in f64, and whether every version replays from the events.
    TrainOnchain {
        /// The model package directory.
        dir: PathBuf,
        /// Labelled training examples (CSV with a `label` column).
        #[arg(long)]
        data: PathBuf,
        /// Labelled test examples (default: the training examples).
        #[arg(long)]
        test: Option<PathBuf>,
        /// Trains on the first N training examples only.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Examples per `Train` transaction (at most 64).
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// The learning rate (made a dyadic number).
        #[arg(long, default_value_t = 0.25)]
        lr: f64,
        /// Re-initializes the head first with this seed (uniform in ±1/√in, zero biases).
        #[arg(long)]
        reinit: Option<u64>,
        /// For a package not yet trainable: 2 trains the Dense before the head too.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        layers: u8,
    },
    /// Recomputes on-chain inferences from their events (a tx result as JSON) and says whether
    /// each matches bit for bit.
    Verify {
        dir: PathBuf,
        /// The events: `wasmd query tx HASH -o json`, or a list of events.
        #[arg(long)]
        events: PathBuf,
    },
    /// Imports a bundled digits model (`--model`), runs it in an in-process chain (cosmwasm-vm) and
    /// prints float vs on-chain accuracy and the per-layer gas.
    Demo {
        /// Evaluate only the first N test digits.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value = "int8")]
        precision: Precision,
        #[arg(long, value_enum, default_value = "native")]
        weights: Weights,
        /// The bundled model.
        #[arg(long, value_enum, default_value = "mlp")]
        model: DemoModel,
    },
    /// Bakes a model package into a contract Wasm of its own: config and weights in its data
    /// section, read from memory at every call (no uploads, no weight reads from storage).
    /// Writes the package, model.wasm and runtime.json (a collection's `baked_runtimes` entry).
    Bake {
        /// The model package directory.
        dir: PathBuf,
        /// Where to write the baked package.
        #[arg(long, required_unless_present = "rust")]
        out: Option<PathBuf>,
        /// Where to write the model as a Rust module instead (model.rs, weights.bin), for a
        /// contract of your own (examples/inline-model).
        #[arg(long)]
        rust: Option<PathBuf>,
        /// The runtime: a model contract Wasm; by default the smallest that scripts/build-wasm.sh
        /// builds here with every layer family the model uses.
        #[arg(long)]
        runtime: Option<PathBuf>,
    },
    /// Per-layer gas of a model package on cosmwasm-vm with the chain's gas schedule, the
    /// number of calls it needs, and what deploying it costs, transaction by transaction.
    Gas {
        /// The model package directory.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// SDK gas one Evaluate/Continue call may use (a block's or a transaction's limit).
        #[arg(long, default_value_t = 30_000_000)]
        block_gas: u64,
        /// The model contract's Wasm; by default the one scripts/build-wasm.sh builds here.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
}

/// Reads `NAME=FILE` constants: the file's whole tensor is the value.
fn consts(specs: &[String]) -> Result<HashMap<String, ArrayD<f64>>> {
    let mut out = HashMap::new();
    for s in specs {
        let Some((name, file)) = s.split_once('=') else {
            bail!("--const {s}: expected NAME=FILE");
        };
        let path = Path::new(file);
        let t = samples::read_tensor(path).with_context(|| format!("--const {name}"))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

/// `cwnn import`'s flags.
struct ImportFlags {
    model: PathBuf,
    out: PathBuf,
    calibration: Vec<PathBuf>,
    eval: Option<PathBuf>,
    consts: Vec<String>,
    output: Vec<String>,
    name: Option<String>,
    no_batch: bool,
    precision: cwnn_importer::quantize::Precision,
    weights: cwnn_layers::WeightFormat,
    collection_code_ids: Vec<u64>,
    mint: import::MintArgs,
    trainable: Option<f64>,
    train_layers: u8,
}

fn import_cmd(f: ImportFlags) -> Result<()> {
    let args = ImportArgs {
        model: f.model,
        calibration: f.calibration,
        options: Options {
            outputs: f.output,
            consts: consts(&f.consts)?,
            no_batch: f.no_batch,
            ..Default::default()
        },
        name: f.name,
        precision: f.precision,
        weights: f.weights,
    };
    let mut imported = import::import(&args)?;
    if !f.collection_code_ids.is_empty() {
        imported.package.instantiate.collection_code_ids = Some(f.collection_code_ids);
    }
    if let Some(lr) = f.trainable {
        let rules = cwnn_importer::train::owner_rules(lr, 8)?;
        cwnn_importer::train::make_trainable(&mut imported.package, rules, f.train_layers.into())?;
    }
    let m = &imported.manifest;
    println!(
        "{}: {} layers, {} params, {} weight bytes, {} MACs; input {:?}, output {:?}",
        m.name,
        m.layers.len(),
        m.params,
        m.layers.iter().map(|l| l.bytes).sum::<usize>(),
        m.macs,
        m.input.spec.shape,
        m.output.spec.shape
    );
    print!("{}", import::report_table(&imported.quant.report));
    let mut mint = f.mint;
    if let Some(eval) = f.eval {
        let s = import::read_samples(&imported.float, std::slice::from_ref(&eval))?;
        let Some(labels) = s.labels else {
            bail!("{}: no `label` column", eval.display());
        };
        let acc = import::accuracy(&imported.float, &imported.quant, &s.inputs, &labels)?;
        let label = imported.quant.report.label();
        let (quant, float) = (acc.quantized_top1 * 100.0, acc.float_top1 * 100.0);
        print!(
            "top-1 on {} samples: float {float:.2} %, {label} {quant:.2} % ({:+.2} points",
            acc.samples,
            quant - float
        );
        if args.weights != cwnn_layers::WeightFormat::Native {
            // What the smaller weights cost: the same model with int8 weights, same samples.
            let calibration = import::read_samples(&imported.float, &args.calibration)?;
            let native =
                cwnn_importer::quantize::quantize(&imported.float, &calibration.inputs, &m.name, args.precision)?;
            let n = import::accuracy(&imported.float, &native, &s.inputs, &labels)?.quantized_top1 * 100.0;
            print!("; {} weights {n:.2} %, {:+.2} points", args.precision.name(), quant - n);
        }
        println!(")");
        mint.accuracy = Some(acc);
    }
    imported.write(&f.out, &mint)?;
    println!("wrote {}", f.out.display());
    Ok(())
}

fn inspect(dir: PathBuf) -> Result<()> {
    let package = Package::read(&dir)?;
    let manifest = import::read_manifest(&dir).ok();
    let model = &package.instantiate.model;
    let model_sha256 = cwnn_model_contract::msg::model_sha256(model, &package.instantiate.weights_sha256)?;
    println!(
        "{} (model sha256 {model_sha256}, weights sha256 {})",
        model.name, package.instantiate.weights_sha256
    );
    if let Some(m) = &manifest {
        println!(
            "from {} ({}), {} precision{}, {} params",
            m.source,
            m.source_sha256,
            m.precision,
            m.weights.as_ref().map_or(String::new(), |w| format!(", {w} weights")),
            m.params
        );
    }
    let q = |s: &cwnn_layers::TensorSpec| {
        format!(
            "{} scale {:.6} zp {}",
            s.dtype.name(),
            s.quant.scale_f64(),
            s.quant.zero_point
        )
    };
    println!("input  {:?} {}", model.input.shape, q(&model.input));
    println!(
        "{:>5}  {:<16} {:<24} {:<16} {:>10} {:>12}  output quantization",
        "layer", "kind", "node", "output", "weight B", "MACs"
    );
    let (mut bytes, mut macs) = (0, 0);
    for (i, (lc, plan)) in model.layers.iter().zip(model.plans()?).enumerate() {
        let node = manifest
            .as_ref()
            .and_then(|m| m.layers.get(i))
            .map_or("", |l| l.node.as_str());
        println!(
            "{:>5}  {:<16} {:<24} {:<16} {:>10} {:>12}  {}",
            i,
            lc.layer.name(),
            node,
            format!("{:?}", plan.output.shape),
            plan.weight_len,
            plan.macs,
            q(&plan.output)
        );
        bytes += plan.weight_len;
        macs += plan.macs;
    }
    println!(
        "total: {} layers, {bytes} weight bytes, {macs} MACs",
        model.layers.len()
    );
    Ok(())
}

fn run(dir: PathBuf, inputs: Vec<String>, json_out: bool) -> Result<()> {
    let package = Package::read(&dir)?;
    let manifest = import::read_manifest(&dir)?;
    let spec = &package.instantiate.model.input;
    let mut xs = Vec::new();
    let mut labels: Option<Vec<i64>> = None;
    for arg in &inputs {
        let file = match arg.split_once('=') {
            Some((name, file)) if name == manifest.input.name => file,
            Some((name, _)) => bail!(
                "--input {arg}: the model's input is '{}', not '{name}'",
                manifest.input.name
            ),
            None => arg.as_str(),
        };
        let s = samples::read(Path::new(file), &spec.shape, manifest.input.batch_axis)?;
        xs.extend(s.inputs);
        if let Some(l) = s.labels {
            labels.get_or_insert_with(Vec::new).extend(l);
        }
    }
    let bar = cwnn_importer::progress::bar(xs.len() as u64, "running");
    let (mut ys, mut bytes) = (Vec::with_capacity(xs.len()), Vec::with_capacity(xs.len()));
    for x in &xs {
        let qx = spec.quantize(x)?;
        let qx_bytes = qx.data.to_le_bytes();
        let t = package.instantiate.model.run_all(&package.weights, qx)?;
        let y = t.last().expect("output");
        ys.push(ArrayD::from_shape_vec(IxDyn(&y.shape), dequantize_all(y))?);
        bytes.push((qx_bytes, y.data.to_le_bytes()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Samples are stacked back along the output's batch axis (or a new first axis).
    let views: Vec<_> = ys.iter().map(|y| y.view()).collect();
    let out = ndarray::stack(Axis(manifest.output.batch_axis.unwrap_or(0)), &views)?;
    if json_out {
        let data: Vec<f64> = out.iter().copied().collect();
        let b64 = |b: &Vec<u8>| cosmwasm_std::Binary::from(b.as_slice()).to_base64();
        let (qx, qy): (Vec<String>, Vec<String>) = bytes.iter().map(|(x, y)| (b64(x), b64(y))).unzip();
        let v = json!({
            "outputs": [{"name": manifest.output.name, "shape": out.shape(), "data": data, "quantized": qy}],
            "inputs": [{"name": manifest.input.name, "quantized": qx}],
        });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        for (i, y) in ys.iter().enumerate() {
            let row: Vec<String> = y.iter().map(|v| format!("{v:.4}")).collect();
            println!("{i}: [{}]", row.join(", "));
        }
    }
    if let Some(labels) = labels {
        let right = ys
            .iter()
            .zip(&labels)
            .filter(|(y, &l)| import::argmax(y.iter().copied()) as i64 == l)
            .count();
        eprintln!(
            "top-1: {right}/{} = {:.2} %",
            ys.len(),
            100.0 * right as f64 / ys.len().max(1) as f64
        );
    }
    Ok(())
}

fn train_onchain(args: cwnn_importer::train::TrainArgs) -> Result<()> {
    cwnn_importer::train::run(&args, &mut std::io::stdout())?;
    Ok(())
}

fn verify(dir: PathBuf, events: PathBuf) -> Result<()> {
    let package = Package::read(&dir)?;
    let text = std::fs::read(&events).with_context(|| format!("reading {}", events.display()))?;
    let tx: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", events.display()))?;
    let (steps, _) = cwnn_importer::verify::replay(&package, &tx)?;
    for s in &steps {
        match s.matches {
            true => println!("training step to version {}: replayed bit for bit", s.version),
            false => println!("training step to version {}: MISMATCH: {}", s.version, s.reason),
        }
    }
    if steps.iter().any(|s| !s.matches) {
        bail!("a training step does not replay: later versions are unverified");
    }
    let verdicts = match cwnn_importer::verify::verify(&package, &tx) {
        Err(cwnn_importer::Error::Events(_)) if !steps.is_empty() => Vec::new(),
        other => other?,
    };
    for v in &verdicts {
        match v.matches {
            true => println!("job {}: matches bit for bit", v.job_id),
            false => println!("job {}: MISMATCH: {}", v.job_id, v.reason),
        }
    }
    if verdicts.iter().any(|v| !v.matches) {
        bail!(
            "{} of {} inferences do not match",
            verdicts.iter().filter(|v| !v.matches).count(),
            verdicts.len()
        );
    }
    Ok(())
}

fn demo(
    model: cwnn_importer::demo::DemoModel,
    limit: Option<usize>,
    precision: cwnn_importer::quantize::Precision,
    weights: cwnn_layers::WeightFormat,
) -> Result<()> {
    let started = std::time::Instant::now();
    cwnn_importer::demo::run(model, limit, precision, weights, &mut std::io::stdout())?;
    println!(
        "
done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The model contract's Wasm at `path`, or the one built here.
fn model_wasm(path: Option<PathBuf>) -> Result<Vec<u8>> {
    match path {
        Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display())),
        None => cwnn_vm::artifacts::read_wasm("cwnn_model_contract"),
    }
}

fn bake_cmd(dir: PathBuf, out: Option<PathBuf>, rust: Option<PathBuf>, runtime: Option<PathBuf>) -> Result<()> {
    let package = Package::read(&dir)?;
    if let Some(rust) = rust {
        bake::write_rust(&package, &rust)?;
        println!(
            "wrote {} and {}",
            rust.join(bake::RUST_FILE).display(),
            rust.join(bake::RUST_WEIGHTS_FILE).display()
        );
    }
    let Some(out) = out else { return Ok(()) };
    let (runtime_name, runtime) = match runtime {
        Some(path) => (path.display().to_string(), model_wasm(Some(path))?),
        None => {
            let (name, wasm) = cwnn_vm::artifacts::runtime_for(&package.instantiate.model)?;
            (name.to_string(), wasm)
        }
    };
    let baked = bake::bake(&package, &runtime).with_context(|| format!("baking {}", dir.display()))?;
    bake::write(&package, &baked, &out)?;
    let weights: usize = package.weights.iter().map(Vec::len).sum();
    println!(
        "baked {}: {} bytes ({} of weights on the {}-byte runtime {runtime_name}; wasmd stores up to {}), code checksum {}",
        out.join(bake::WASM_FILE).display(),
        baked.wasm.len(),
        weights,
        runtime.len(),
        cwnn_bake::MAX_WASM_BYTES,
        baked.checksum()
    );
    println!(
        "collections accept it with {} in their baked_runtimes",
        out.join(bake::RUNTIME_FILE).display()
    );
    Ok(())
}

fn gas(dir: PathBuf, json: bool, block_gas: u64, wasm: Option<PathBuf>) -> Result<()> {
    let package = Package::read(&dir)?;
    let baked = bake::read(&dir)?;
    let wasm = match &baked {
        Some(b) => b.wasm.clone(),
        None => model_wasm(wasm)?,
    };
    let report = measure(
        &wasm,
        &package.instantiate,
        &package.weights,
        &package.input(),
        block_gas,
    )?;
    let collection = cwnn_vm::artifacts::read_wasm("cwnn_collection")?;
    let code = match &baked {
        Some(b) => Code::Baked {
            wasm: &b.wasm,
            runtime: &b.runtime,
        },
        None => Code::Stored {
            wasm: &wasm,
            weights: &package.weights,
        },
    };
    let deploy = cwnn_vm::deploy::deploy_cost(code, &collection, &package.instantiate)?;
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["deploy"] = serde_json::to_value(&deploy)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}\n{}", report.table(), deploy.table());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Import {
            model,
            out,
            calibration,
            eval,
            precision,
            weights,
            consts,
            output,
            name,
            no_batch,
            collection,
            collection_code_ids,
            token_uri,
            trainable,
            train_layers,
        } => import_cmd(ImportFlags {
            model,
            out,
            calibration,
            eval,
            consts,
            output,
            name,
            no_batch,
            precision: precision.into(),
            weights: weights.into(),
            collection_code_ids,
            mint: import::MintArgs {
                collection,
                token_uri,
                accuracy: None,
            },
            trainable,
            train_layers,
        }),
        Command::Inspect { dir } => inspect(dir),
        Command::Run { dir, input, json } => run(dir, input, json),
        Command::Verify { dir, events } => verify(dir, events),
        Command::TrainOnchain {
            dir,
            data,
            test,
            limit,
            epochs,
            batch,
            lr,
            reinit,
            layers,
        } => train_onchain(cwnn_importer::train::TrainArgs {
            package: dir,
            data,
            test,
            limit,
            epochs,
            batch,
            lr,
            reinit,
            layers: layers.into(),
        }),
        Command::Demo {
            limit,
            precision,
            weights,
            model,
        } => demo(model.into(), limit, precision.into(), weights.into()),
        Command::Bake {
            dir,
            out,
            rust,
            runtime,
        } => bake_cmd(dir, out, rust, runtime),
        Command::Gas {
            dir,
            json,
            block_gas,
            wasm,
        } => gas(dir, json, block_gas, wasm),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
