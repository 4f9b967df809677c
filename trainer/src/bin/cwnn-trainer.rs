//! `cwnn-trainer --model mlp|cnn|lstm|lenet --dataset digits|mnist5k --out MODEL.onnx`: trains, writes
//! the ONNX model with `test.csv` and `calibration.csv` beside it, and prints
//! `test_accuracy=…` as its last line.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use cwnn_trainer::{train, Arch, DatasetKind, DeviceChoice, Qat, TrainConfig};

#[derive(Clone, Copy, ValueEnum)]
enum Weights {
    Int8,
    Int4,
}

#[derive(Parser)]
#[command(
    name = "cwnn-trainer",
    version,
    about = "Train a digit classifier and write ONNX for `cwnn import`"
)]
struct Args {
    #[arg(long, value_enum)]
    model: Arch,
    /// [default: mnist5k for lenet, digits for the others]
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Passes over the training split [default: mlp 100, cnn 60, lstm 80, lenet 4, transformer 60].
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate at the start (it decays to 5 % along a cosine).
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// L2 weight decay (Adam).
    #[arg(long, default_value_t = 1e-3)]
    weight_decay: f32,
    /// Hidden width (MLP, LSTM), conv channels (CNN) or model width d (transformer) [default: mlp 64, cnn 16, lstm 32, transformer 32].
    #[arg(long)]
    hidden: Option<usize>,
    /// Quantization-aware training: fake int8 weights and activations in the forward pass.
    #[arg(long)]
    qat: bool,
    /// The weights `cwnn import` will store: `int4` trains for `cwnn import --weights int4`
    /// (fake 4-bit weights; implies --qat).
    #[arg(long, value_enum, default_value = "int8")]
    weights: Weights,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Seeds the initial weights and the batch order (the train/test split is fixed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on only the first N training images (quick checks).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Augment: shift each training image by up to one pixel each way.
    #[arg(long)]
    augment: bool,
    /// Where to write the model; test.csv and calibration.csv go beside it.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let dataset = a.dataset.unwrap_or(a.model.default_dataset());
    let mut cfg = TrainConfig::new(a.model, dataset);
    cfg.epochs = a.epochs.unwrap_or(cfg.epochs);
    cfg.batch_size = a.batch_size.max(1);
    cfg.learning_rate = a.lr;
    cfg.hidden = a.hidden;
    cfg.weight_decay = a.weight_decay;
    cfg.qat = match (a.qat, a.weights) {
        (_, Weights::Int4) => Qat::Int4,
        (true, Weights::Int8) => Qat::Int8,
        (false, Weights::Int8) => Qat::Off,
    };
    cfg.device = a.device;
    cfg.seed = a.seed;
    cfg.train_limit = a.train_limit;
    cfg.augment = a.augment;
    cfg.verbose = true;
    eprintln!(
        "{:?} on {:?}, {} epochs{}",
        a.model,
        dataset,
        cfg.epochs,
        match cfg.qat {
            Qat::Off => "",
            Qat::Int8 => ", QAT",
            Qat::Int4 => ", QAT for int4 weights",
        }
    );
    let t = train(&cfg)?;
    eprintln!("device: {}", t.device_note);
    t.write(&a.out)?;
    let secs: Vec<f64> = t.epochs.iter().map(|e| e.seconds).collect();
    let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
    eprintln!("mean epoch time on {}: {mean:.3} s", t.device);
    let dir = a
        .out
        .parent()
        .map(|d| d.display().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or(".".into());
    eprintln!(
        "wrote {} ({} train / {} test images; {dir}/test.csv, {dir}/calibration.csv)",
        a.out.display(),
        t.train.len(),
        t.test.len()
    );
    if let Some(fq) = t.fake_quant_accuracy {
        println!("fake_quant_test_accuracy={fq:.4}");
    }
    println!("test_accuracy={:.4}", t.test_accuracy);
    Ok(())
}
