//! `cwnn train-onchain`: trains a package's head on chain. Deploys the model contract's Wasm in
//! an in-process cosmwasm-vm with the chain's gas schedule, sends one `Train` transaction per
//! batch, and prints the accuracy before and after, the gas per step, the same layers trained
//! in f64 on the same schedule, and whether `cwnn verify` replays every version from the events.

use std::io::Write;
use std::path::{Path, PathBuf};

use cwnn_layers::train::{model_head, weight_scales, Head};
use cwnn_layers::Layer;
use cwnn_model_contract::msg::{
    weights_sha256, ExecuteMsg, PredictResponse, QueryMsg, TrainExample, TrainPolicy, Training, TrainingRules,
};
use cwnn_tensor::{Dyadic, QTensor};
use cwnn_vm::runner::ChainVm;
use serde::Serialize;
use serde_json::Value;

use crate::error::{chain, Error, Result};
use crate::import::argmax;
use crate::package::Package;

/// What to train on and how.
#[derive(Clone, Debug)]
pub struct TrainArgs {
    pub package: PathBuf,
    /// Labelled training examples (CSV with a `label` column).
    pub data: PathBuf,
    /// Labelled test examples; the training examples by default.
    pub test: Option<PathBuf>,
    /// Trains on the first this many training examples only.
    pub limit: Option<usize>,
    pub epochs: usize,
    pub batch: usize,
    /// The learning rate (made a dyadic number).
    pub lr: f64,
    /// Re-initializes the head first (uniform in ±1/√in, zero biases), with this seed; the
    /// seed also shuffles the examples each epoch.
    pub reinit: Option<u64>,
    /// Layers that train when the package is not trainable yet: 1 (the head) or 2 (the
    /// Dense before it too).
    pub layers: usize,
}

impl Default for TrainArgs {
    fn default() -> Self {
        TrainArgs {
            package: PathBuf::new(),
            data: PathBuf::new(),
            test: None,
            limit: None,
            epochs: 3,
            batch: 8,
            lr: 0.25,
            reinit: None,
            layers: 1,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub examples: usize,
    pub test_examples: usize,
    pub steps: usize,
    pub chain_before: f64,
    pub chain_after: f64,
    /// The same layers trained in f64 on the same features and schedule.
    pub float_after: f64,
    /// SDK gas of one `Train` transaction: mean and max, and the mean without the 60,000
    /// instance cost every call pays.
    pub mean_step_gas: u64,
    pub max_step_gas: u64,
    pub mean_step_gas_less_instance: u64,
    /// Versions `cwnn verify` replayed bit for bit from the events.
    pub replayed: usize,
}

/// Makes `package` trainable under `rules` (its head from its weights, and the Dense before it
/// when `layers` is 2), unless it already is.
pub fn make_trainable(package: &mut Package, rules: TrainingRules, layers: usize) -> Result<()> {
    if package.instantiate.training.is_none() {
        let head = model_head(&package.instantiate.model, &package.weights, layers)?;
        package.instantiate.training = Some(Training { head, rules });
    }
    Ok(())
}

/// Owner-only rules at learning rate `lr` with batches of up to `batch`.
pub fn owner_rules(lr: f64, batch: usize) -> Result<TrainingRules> {
    let lr = Dyadic::from_f64(lr).map_err(|e| Error::Training(format!("learning rate {lr}: {e}")))?;
    Ok(TrainingRules {
        lr,
        max_batch: batch as u32,
        policy: TrainPolicy::Owner {},
        max_per_block: None,
        max_per_address: None,
        frozen: false,
        max_reward: None,
    })
}

/// A seeded generator (SplitMix64) for the re-initialization and the shuffles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            v.swap(i, (self.next() % (i as u64 + 1)) as usize);
        }
    }
}

/// The weight scales of trained layer `index` (a Dense whose input has scale `s_x`), from its
/// multipliers.
fn scales(package: &Package, index: usize, s_x: f64) -> Result<Vec<f64>> {
    match &package.instantiate.model.layers[index].layer {
        Layer::Dense(d) => Ok(weight_scales(d, &package.weights[index], s_x)?),
        _ => Err(Error::Training("a trained layer is a Dense".into())),
    }
}

/// The head's weights drawn uniform in ±1/√in (rounded to each channel's grid `s_w`), biases
/// zero; the multipliers kept.
fn reinit(head: &Head, bytes: &mut [u8], s_w: &[f64], seed: u64) {
    let n = head.in_features as usize;
    let bound = 1.0 / (n as f64).sqrt();
    let mut rng = Rng(seed);
    for (unit, &s_w) in bytes.chunks_exact_mut(n + 9).zip(s_w) {
        for w in &mut unit[..n] {
            *w = (rng.uniform() * bound / s_w).round().clamp(-127.0, 127.0) as i8 as u8;
        }
        unit[n..n + 4].copy_from_slice(&0i32.to_le_bytes());
    }
}

/// Quantized labelled examples from a CSV.
fn labelled(package: &Package, path: &Path) -> Result<(Vec<QTensor>, Vec<u32>)> {
    let spec = &package.instantiate.model.input;
    let s = crate::samples::read(path, &spec.shape, None)?;
    let labels = s
        .labels
        .ok_or_else(|| Error::Training(format!("{} has no label column", path.display())))?;
    let xs = s
        .inputs
        .iter()
        .map(|x| spec.quantize(x))
        .collect::<Result<Vec<_>, _>>()?;
    let ys = labels.iter().map(|&l| l as u32).collect();
    Ok((xs, ys))
}

/// Top-1 accuracy of the deployed model, by `Predict` queries.
fn chain_accuracy(vm: &mut ChainVm, xs: &[QTensor], ys: &[u32]) -> Result<f64> {
    let mut right = 0;
    for (x, &y) in xs.iter().zip(ys) {
        let msg = QueryMsg::Predict {
            input: x.data.to_i32s(),
            input_bytes: None,
        };
        let bin = vm.query(&msg).map_err(chain)?.result.map_err(Error::Chain)?;
        let out: PredictResponse = serde_json::from_slice(&bin).map_err(|e| Error::Chain(e.to_string()))?;
        right += usize::from(argmax(out.data.iter().map(|&v| v as f64)) as u32 == y);
    }
    Ok(right as f64 / xs.len().max(1) as f64)
}

/// One Dense in f64: `units × n` weights, biases, and its output clamp (real).
struct FloatDense {
    w: Vec<f64>,
    b: Vec<f64>,
    n: usize,
    clamp: (f64, f64),
}

impl FloatDense {
    /// A trained layer's int8 weights and biases dequantized: channel `c`'s weight scale is
    /// `scale(c)`, its input's `s_x`.
    fn of(bytes: &[u8], n: usize, s_x: f64, scale: impl Fn(usize) -> f64, clamp: (f64, f64)) -> Self {
        let (mut w, mut b) = (Vec::new(), Vec::new());
        for (c, unit) in bytes.chunks_exact(n + 9).enumerate() {
            w.extend(unit[..n].iter().map(|&v| v as i8 as f64 * scale(c)));
            let bias = i32::from_le_bytes([unit[n], unit[n + 1], unit[n + 2], unit[n + 3]]);
            b.push(bias as f64 * scale(c) * s_x);
        }
        FloatDense { w, b, n, clamp }
    }
    fn forward(&self, x: &[f64]) -> Vec<f64> {
        let row = |c: usize| &self.w[c * self.n..(c + 1) * self.n];
        (0..self.b.len())
            .map(|c| self.b[c] + row(c).iter().zip(x).map(|(w, x)| w * x).sum::<f64>())
            .map(|v| v.clamp(self.clamp.0, self.clamp.1))
            .collect()
    }
    /// Adds `g·xᵀ` and `g` to the gradient sums.
    fn accumulate(&self, (gw, gb): (&mut [f64], &mut [f64]), g: &[f64], x: &[f64]) {
        for (c, &gc) in g.iter().enumerate() {
            gb[c] += gc;
            gw[c * self.n..(c + 1) * self.n]
                .iter_mut()
                .zip(x)
                .for_each(|(a, x)| *a += gc * x);
        }
    }
    fn apply(&mut self, (gw, gb): (&[f64], &[f64]), s: f64) {
        self.w.iter_mut().zip(gw).for_each(|(w, g)| *w -= s * g);
        self.b.iter_mut().zip(gb).for_each(|(b, g)| *b -= s * g);
    }
}

/// The trained layers in f64 (the head, and the Dense before it when it trains), trained by
/// plain SGD with the same schedule on the dequantized inputs of the first trained layer.
struct FloatNet {
    hidden: Option<FloatDense>,
    head: FloatDense,
}

impl FloatNet {
    /// The trained layers' current int8 weights, dequantized (the head is layer `index`).
    fn of(head: &Head, package: &Package, index: usize) -> Result<Self> {
        let all = (f64::NEG_INFINITY, f64::INFINITY);
        let s_h = head.input.scale_f64();
        let n = head.in_features as usize;
        let s_w = scales(package, index, s_h)?;
        let net_head = FloatDense::of(&package.weights[index], n, s_h, |c| s_w[c], all);
        let hidden = match &head.hidden {
            Some(h) => {
                let s_x = h.input.scale_f64();
                let s_w = scales(package, index - 1, s_x)?;
                let real = |q: i32| s_h * (q - head.input.zero_point) as f64;
                let clamp = (real(h.clamp.0), real(h.clamp.1));
                let bytes = &package.weights[index - 1];
                Some(FloatDense::of(bytes, h.in_features as usize, s_x, |j| s_w[j], clamp))
            }
            None => None,
        };
        Ok(FloatNet { hidden, head: net_head })
    }
    fn logits(&self, x: &[f64]) -> Vec<f64> {
        match &self.hidden {
            Some(h) => self.head.forward(&h.forward(x)),
            None => self.head.forward(x),
        }
    }
    fn step(&mut self, batch: &[(&[f64], u32)], lr: f64) {
        let sums = |d: &FloatDense| (vec![0.0; d.w.len()], vec![0.0; d.b.len()]);
        let (mut head_w, mut head_b) = sums(&self.head);
        let (mut hid_w, mut hid_b) = self.hidden.as_ref().map(sums).unwrap_or_default();
        for &(x, y) in batch {
            let h = self.hidden.as_ref().map(|d| d.forward(x));
            let z = self.head.forward(h.as_deref().unwrap_or(x));
            let top = z.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - top).exp()).collect();
            let total: f64 = e.iter().sum();
            let g: Vec<f64> = (0..e.len())
                .map(|c| e[c] / total - f64::from(u8::from(c as u32 == y)))
                .collect();
            self.head
                .accumulate((&mut head_w, &mut head_b), &g, h.as_deref().unwrap_or(x));
            if let (Some(d), Some(h)) = (&self.hidden, &h) {
                let n = self.head.n;
                let delta: Vec<f64> = (0..n)
                    .map(|j| match h[j] > d.clamp.0 && h[j] < d.clamp.1 {
                        true => (0..g.len()).map(|c| g[c] * self.head.w[c * n + j]).sum(),
                        false => 0.0,
                    })
                    .collect();
                d.accumulate((&mut hid_w, &mut hid_b), &delta, x);
            }
        }
        let s = lr / batch.len() as f64;
        self.head.apply((&head_w, &head_b), s);
        if let Some(d) = self.hidden.as_mut() {
            d.apply((&hid_w, &hid_b), s);
        }
    }
    fn accuracy(&self, xs: &[Vec<f64>], ys: &[u32]) -> f64 {
        let right = xs
            .iter()
            .zip(ys)
            .filter(|(x, &y)| argmax(self.logits(x)) as u32 == y)
            .count();
        right as f64 / xs.len().max(1) as f64
    }
}

/// The first trained layer's input for each example (the model's tensor before layer
/// `index`), dequantized.
fn features(package: &Package, index: usize, xs: &[QTensor]) -> Result<Vec<Vec<f64>>> {
    let config = &package.instantiate.model;
    let id = config.layers[index].input_ids(index)[0] as usize;
    xs.iter()
        .map(|x| {
            let t = config.run_all(&package.weights, x.clone())?.swap_remove(id);
            let q = t.quant;
            Ok(t.data
                .to_i32s()
                .iter()
                .map(|&v| cwnn_tensor::host::dequantize(v, &q))
                .collect())
        })
        .collect()
}

/// Runs `cwnn train-onchain`, printing to `out`.
pub fn run(args: &TrainArgs, out: &mut impl Write) -> Result<TrainSummary> {
    let mut package = Package::read(&args.package)?;
    let rules = owner_rules(args.lr, args.batch)?;
    make_trainable(&mut package, rules.clone(), args.layers)?;
    let training = package.instantiate.training.as_mut().expect("made trainable");
    training.rules = rules.clone();
    let (head, lr) = (training.head.clone(), rules.lr);
    let index = head.locate(&package.instantiate.model)?;
    if let Some(seed) = args.reinit {
        let s_w = scales(&package, index, head.input.scale_f64())?;
        reinit(&head, &mut package.weights[index], &s_w, seed);
        package.instantiate.weights_sha256 = weights_sha256(&package.weights);
    }
    let (mut train_x, mut train_y) = labelled(&package, &args.data)?;
    let (test_x, test_y) = match &args.test {
        Some(p) => labelled(&package, p)?,
        None => (train_x.clone(), train_y.clone()),
    };
    if let Some(n) = args.limit {
        train_x.truncate(n);
        train_y.truncate(n);
    }
    writeln!(
        out,
        "train-onchain: {} examples, {} epoch(s) of batches of {}, learning rate {} ({}/2^{}){}",
        train_x.len(),
        args.epochs,
        args.batch,
        lr.mantissa as f64 / 2f64.powi(lr.shift as i32),
        lr.mantissa,
        lr.shift,
        args.reinit
            .map_or(String::new(), |s| format!(", head re-initialized (seed {s})"))
    )?;
    let wasm = cwnn_vm::artifacts::read_wasm("cwnn_model_contract").map_err(chain)?;
    let mut vm = crate::demo::deploy(&wasm, &package, out)?;
    let owner = vm.addr("author");
    let chain_before = chain_accuracy(&mut vm, &test_x, &test_y)?;

    let first = index - usize::from(head.hidden.is_some());
    let (train_f, test_f) = (
        features(&package, first, &train_x)?,
        features(&package, first, &test_x)?,
    );
    let mut float = FloatNet::of(&head, &package, index)?;
    let real_lr = lr.mantissa as f64 / 2f64.powi(lr.shift as i32);
    let mut rng = Rng(args.reinit.unwrap_or(0) ^ 0x5EED);
    let mut order: Vec<usize> = (0..train_x.len()).collect();
    let (mut gas, mut max_gas, mut events) = (Vec::new(), 0, Vec::new());
    let bar = crate::progress::bar(
        (args.epochs * train_x.len().div_ceil(args.batch.max(1))) as u64,
        "training",
    );
    for _ in 0..args.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(args.batch.max(1)) {
            let examples = chunk
                .iter()
                .map(|&i| TrainExample {
                    input: train_x[i].data.to_i32s(),
                    input_bytes: None,
                    label: train_y[i],
                })
                .collect();
            let call = vm
                .execute(&owner, &ExecuteMsg::Train { examples }, &[])
                .map_err(chain)?;
            let res = call.result.map_err(|e| Error::Chain(format!("train: {e}")))?;
            events.extend(res.events.iter().map(crate::demo::event_json));
            gas.push(call.gas.total_sdk_gas);
            max_gas = max_gas.max(call.gas.total_sdk_gas);
            let batch: Vec<(&[f64], u32)> = chunk.iter().map(|&i| (&train_f[i][..], train_y[i])).collect();
            float.step(&batch, real_lr);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let chain_after = chain_accuracy(&mut vm, &test_x, &test_y)?;
    let (steps, versions) = crate::verify::replay(&package, &Value::Array(events))?;
    let info: cwnn_model_contract::msg::ModelInfoResponse = serde_json::from_slice(
        &vm.query(&QueryMsg::ModelInfo {})
            .map_err(chain)?
            .result
            .map_err(Error::Chain)?,
    )
    .map_err(|e| Error::Chain(e.to_string()))?;
    let replayed = steps.iter().filter(|s| s.matches).count();
    if replayed != gas.len() || !versions.contains_key(&info.model_sha256.to_hex()) {
        return Err(Error::Training(format!(
            "{replayed} of {} versions replay from the events: {:?}",
            gas.len(),
            steps.iter().find(|s| !s.matches)
        )));
    }
    let mean = gas.iter().sum::<u64>() / gas.len().max(1) as u64;
    let summary = TrainSummary {
        examples: train_x.len(),
        test_examples: test_x.len(),
        steps: gas.len(),
        chain_before,
        chain_after,
        float_after: float.accuracy(&test_f, &test_y),
        mean_step_gas: mean,
        max_step_gas: max_gas,
        mean_step_gas_less_instance: mean.saturating_sub(cwnn_vm::chain::INSTANCE_COST),
        replayed,
    };
    print_summary(&summary, out)?;
    Ok(summary)
}

fn print_summary(s: &TrainSummary, out: &mut impl Write) -> Result<()> {
    writeln!(out, "   top-1 accuracy on {} test examples:", s.test_examples)?;
    writeln!(
        out,
        "     on chain, before training        {:6.2} %",
        s.chain_before * 100.0
    )?;
    writeln!(
        out,
        "     on chain, after training         {:6.2} %",
        s.chain_after * 100.0
    )?;
    writeln!(
        out,
        "     the same in f64, same schedule   {:6.2} %",
        s.float_after * 100.0
    )?;
    writeln!(
        out,
        "   {} Train transactions: {} SDK gas per step on average ({} without the 60,000 instance cost), {} at most",
        s.steps, s.mean_step_gas, s.mean_step_gas_less_instance, s.max_step_gas
    )?;
    writeln!(
        out,
        "   {}/{} versions replayed bit for bit from the cwnn_train events (cwnn verify)",
        s.replayed, s.steps
    )?;
    Ok(())
}
