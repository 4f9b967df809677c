//! The training loop: Adam on softmax cross-entropy, mini-batches in a seeded order, a cosine
//! learning-rate decay; then float (and, with QAT, fake-quantized) test accuracy.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::{ndarray::NdArrayDevice, Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{decay::WeightDecayConfig, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use onnx_protobuf::{Message, ModelProto};

use crate::data::{Dataset, DatasetKind};
use crate::device::{self, Device, DeviceChoice};
use crate::lenet::LeNet;
use crate::model::{Arch, Classifier, Cnn, Lstm, Mlp, CLASSES};
use crate::qat::Qat;
use crate::rng::SplitMix64;
use crate::transformer::{Transformer, HEADS};

/// What to train (the command line's options).
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub arch: Arch,
    pub dataset: DatasetKind,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// L2 penalty added to every gradient (Adam's weight decay); 0 for none.
    pub weight_decay: f32,
    /// Width of the hidden layer (MLP, LSTM) or conv channels (CNN); `None`: the default.
    pub hidden: Option<usize>,
    /// Quantization-aware training (off by default), for int8 or int4 weights.
    pub qat: Qat,
    pub device: DeviceChoice,
    pub seed: u64,
    /// Train on only the first N training images (quick runs).
    pub train_limit: Option<usize>,
    /// Shift each training image by up to one pixel in each direction (seeded). Off by
    /// default: on 8×8 digits it helps the LSTM but costs the MLP 4–7 points.
    pub augment: bool,
    /// Per-epoch log lines and a progress bar on stderr.
    pub verbose: bool,
}

impl TrainConfig {
    pub fn new(arch: Arch, dataset: DatasetKind) -> Self {
        TrainConfig {
            arch,
            dataset,
            epochs: default_epochs(arch),
            batch_size: 32,
            learning_rate: 1e-2,
            weight_decay: 1e-3,
            hidden: None,
            qat: Qat::Off,
            device: DeviceChoice::Auto,
            seed: 1,
            train_limit: None,
            augment: false,
            verbose: false,
        }
    }
}

/// Epochs that reach the accuracy targets on digits (README).
pub fn default_epochs(arch: Arch) -> usize {
    match arch {
        Arch::Mlp => 100,
        Arch::Cnn => 60,
        Arch::Lstm => 80,
        Arch::Lenet => 4,
        Arch::Transformer => 60,
    }
}

/// One epoch's record.
#[derive(Clone, Debug)]
pub struct Epoch {
    pub loss: f64,
    pub train_accuracy: f64,
    pub seconds: f64,
}

/// A trained model and what was measured on it.
pub struct Trained {
    pub onnx: ModelProto,
    pub device: Device,
    /// How the device was chosen, for the log.
    pub device_note: String,
    pub epochs: Vec<Epoch>,
    /// Float top-1 on the held-out split.
    pub test_accuracy: f64,
    /// Top-1 with fake quantization on (QAT runs only).
    pub fake_quant_accuracy: Option<f64>,
    /// Logits of the float model on the test split, `[len × 10]` (for round-trip checks).
    pub test_logits: Vec<f32>,
    pub train: Dataset,
    pub test: Dataset,
}

impl Trained {
    /// Writes the model, and beside it `test.csv` (held-out images with `label`) and
    /// `calibration.csv` (200 training images) for `cwnn import --calibration … --eval …`.
    pub fn write(&self, model: &Path) -> Result<()> {
        let dir = model
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let bytes = self.onnx.write_to_bytes().context("encoding ONNX")?;
        std::fs::write(model, bytes).with_context(|| format!("writing {}", model.display()))?;
        self.test.write_csv(&dir.join("test.csv"), true)?;
        let n = self.train.len().min(200);
        self.train
            .subset(&(0..n).collect::<Vec<_>>())
            .write_csv(&dir.join("calibration.csv"), false)
    }
}

/// Loads the data, picks the device, trains and evaluates.
pub fn train(cfg: &TrainConfig) -> Result<Trained> {
    let (device, device_note) = device::choose(cfg.device)?;
    let data = Dataset::load(cfg.dataset)?;
    let (mut train, test) = data.split();
    if let Some(n) = cfg.train_limit {
        train = train.subset(&(0..n.min(train.len())).collect::<Vec<_>>());
    }
    let run = Run {
        cfg,
        train,
        test,
        device_note,
    };
    match device {
        Device::Cpu => run.with_backend::<Autodiff<NdArray>>(&NdArrayDevice::Cpu, device),
        #[cfg(feature = "cuda")]
        Device::Cuda => run.with_backend::<Autodiff<burn::backend::Cuda>>(&Default::default(), device),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => unreachable!("probe_cuda refuses without the feature"),
    }
}

struct Run<'a> {
    cfg: &'a TrainConfig,
    train: Dataset,
    test: Dataset,
    device_note: String,
}

impl Run<'_> {
    fn with_backend<B: AutodiffBackend>(self, dev: &B::Device, device: Device) -> Result<Trained> {
        let cfg = self.cfg;
        let side = self.train.side;
        let hidden = cfg.hidden.unwrap_or(cfg.arch.default_hidden());
        match cfg.arch {
            Arch::Mlp => self.fit(Mlp::<B>::new(side * side, hidden, cfg.seed, dev), dev, device),
            Arch::Cnn => self.fit(Cnn::<B>::new(side, hidden, cfg.seed, dev), dev, device),
            Arch::Lstm => self.fit(Lstm::<B>::new(side, hidden, cfg.seed, dev), dev, device),
            Arch::Transformer => {
                let model = Transformer::<B>::new(side, hidden, cfg.seed, dev).with_context(|| {
                    format!("the transformer's width must be a positive multiple of {HEADS} heads, not {hidden}")
                })?;
                self.fit(model, dev, device)
            }
            Arch::Lenet => {
                if cfg.hidden.is_some() {
                    bail!("lenet has LeNet-5's fixed widths: --hidden does not apply");
                }
                let model = LeNet::<B>::new(side, cfg.seed, dev).with_context(|| {
                    format!("lenet needs images of at least 12×12, not {side}×{side}: use --dataset mnist5k")
                })?;
                self.fit(model, dev, device)
            }
        }
    }

    fn fit<B, M>(self, model: M, dev: &B::Device, device: Device) -> Result<Trained>
    where
        B: AutodiffBackend,
        M: Classifier<B> + AutodiffModule<B>,
        M::InnerModule: Classifier<B::InnerBackend>,
    {
        let cfg = self.cfg;
        let mut model = model.with_qat(cfg.qat);
        let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay));
        let mut optim = AdamConfig::new().with_weight_decay(decay).init::<B, M>();
        let mut rng = SplitMix64::new(cfg.seed.wrapping_add(0xB47C));
        let n = self.train.len();
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        let total = (steps_per_epoch * cfg.epochs) as u64;
        let bar = progress(total, cfg.verbose);
        let mut epochs = Vec::new();
        let mut step = 0usize;
        for epoch in 0..cfg.epochs {
            let started = Instant::now();
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let (mut loss_sum, mut correct) = (0.0, 0usize);
            for batch in order.chunks(cfg.batch_size) {
                let shifts = cfg.augment.then(|| random_shifts(&mut rng, batch.len()));
                let (x, onehot) = tensors::<B>(&self.train, batch, shifts.as_deref(), dev);
                let logits = model.forward(x);
                correct += hits(&logits, &self.train.labels, batch);
                let loss = (log_softmax(logits, 1) * onehot)
                    .sum()
                    .neg()
                    .div_scalar(batch.len() as f32);
                loss_sum += loss.clone().into_scalar().elem::<f64>() * batch.len() as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                let lr = cosine(cfg.learning_rate, step, total as usize);
                model = optim.step(lr, model, grads);
                step += 1;
                bar.inc(1);
            }
            let e = Epoch {
                loss: loss_sum / n as f64,
                train_accuracy: correct as f64 / n as f64,
                seconds: started.elapsed().as_secs_f64(),
            };
            if cfg.verbose {
                bar.suspend(|| {
                    eprintln!(
                        "epoch {:>3}/{}  loss {:.4}  train {:.2}%  {:.2} s",
                        epoch + 1,
                        cfg.epochs,
                        e.loss,
                        e.train_accuracy * 100.0,
                        e.seconds
                    )
                });
            }
            epochs.push(e);
        }
        bar.finish_and_clear();
        let inner = model.valid();
        let fake_quant_accuracy = cfg.qat.on().then(|| evaluate(&inner, &self.test, dev).1);
        let float = inner.with_qat(Qat::Off);
        let (test_logits, test_accuracy) = evaluate(&float, &self.test, dev);
        Ok(Trained {
            onnx: float.to_onnx(&self.train),
            device,
            device_note: self.device_note,
            epochs,
            test_accuracy,
            fake_quant_accuracy,
            test_logits,
            train: self.train,
            test: self.test,
        })
    }
}

/// Cosine decay from `lr` to 5 % of it.
fn cosine(lr: f64, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// A (dy, dx) in {−1, 0, 1}² per image.
fn random_shifts(rng: &mut SplitMix64, n: usize) -> Vec<(isize, isize)> {
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            ((r % 3) as isize - 1, ((r / 3) % 3) as isize - 1)
        })
        .collect()
}

/// Scaled pixels `[B, side²]` and one-hot labels `[B, 10]` of the images at `idx`, each moved
/// by its shift (pixels moved in from outside are 0).
fn tensors<B: Backend>(
    data: &Dataset,
    idx: &[usize],
    shifts: Option<&[(isize, isize)]>,
    dev: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let (f, side) = (data.features(), data.side as isize);
    let mut x = Vec::with_capacity(idx.len() * f);
    for (row, &i) in idx.iter().enumerate() {
        let img = &data.pixels[i * f..(i + 1) * f];
        let (dy, dx) = shifts.map_or((0, 0), |s| s[row]);
        for y in 0..side {
            for xx in 0..side {
                let (sy, sx) = (y - dy, xx - dx);
                let inside = (0..side).contains(&sy) && (0..side).contains(&sx);
                x.push(if inside {
                    img[(sy * side + sx) as usize] / data.pixel_max
                } else {
                    0.0
                });
            }
        }
    }
    let mut y = vec![0.0f32; idx.len() * CLASSES];
    for (row, &i) in idx.iter().enumerate() {
        y[row * CLASSES + data.labels[i] as usize] = 1.0;
    }
    (
        Tensor::from_data(TensorData::new(x, [idx.len(), f]), dev),
        Tensor::from_data(TensorData::new(y, [idx.len(), CLASSES]), dev),
    )
}

fn host_logits<B: Backend>(logits: &Tensor<B, 2>) -> Vec<f32> {
    logits
        .clone()
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 logits")
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// How many rows of `logits` pick the label of the image at the same place in `idx`.
fn hits<B: Backend>(logits: &Tensor<B, 2>, labels: &[u8], idx: &[usize]) -> usize {
    let v = host_logits(logits);
    idx.iter()
        .enumerate()
        .filter(|&(row, &i)| argmax(&v[row * CLASSES..(row + 1) * CLASSES]) == labels[i] as usize)
        .count()
}

/// Logits and top-1 accuracy on a whole dataset, in batches of 500.
fn evaluate<B: Backend, M: Classifier<B>>(model: &M, data: &Dataset, dev: &B::Device) -> (Vec<f32>, f64) {
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut logits = Vec::with_capacity(data.len() * CLASSES);
    let mut correct = 0;
    for batch in idx.chunks(500) {
        let (x, _) = tensors::<B>(data, batch, None, dev);
        let y = model.forward(x);
        correct += hits(&y, &data.labels, batch);
        logits.extend(host_logits(&y));
    }
    (logits, correct as f64 / data.len().max(1) as f64)
}

fn progress(total: u64, verbose: bool) -> ProgressBar {
    if !verbose {
        return ProgressBar::hidden();
    }
    // Drawn only when stderr is a terminal; the epoch lines are printed either way.
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("training [{bar:30}] {pos}/{len} steps {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
