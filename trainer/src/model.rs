//! The MLP, CNN and LSTM, and what every model shares (LeNet is in `lenet.rs`). Parameters
//! are kept in ONNX's layouts (Dense `[out, in]`, Conv `[out, in, kh, kw]`, LSTM gates in
//! i, o, f, c order) so export is a copy, not a remap.
//! Each model takes pixels scaled to [0, 1]; the exported ONNX takes raw pixels, with
//! `1 / pixel_max` folded into the first layer's input weights (exact: that layer is linear).

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, sigmoid, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};
use onnx_protobuf::ModelProto;

use crate::data::{Dataset, DatasetKind};
use crate::export::{Attr, Graph};
use crate::qat::{self, Qat};
use crate::rng::SplitMix64;

/// Classes of both datasets.
pub const CLASSES: usize = 10;

/// Which architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// Dense(hidden)-ReLU-Dense(10)-Softmax.
    Mlp,
    /// Conv(hidden channels, 3×3, same)-ReLU-MaxPool(2×2)-Flatten-Dense(10)-Softmax.
    Cnn,
    /// LSTM(hidden) over image rows, last hidden state, Dense(10)-Softmax.
    Lstm,
    /// LeNet-5's shape for 28×28 images: Conv(6, 5×5, pad 2)-ReLU-MaxPool(2×2)-Conv(16, 5×5)-
    /// ReLU-MaxPool(2×2)-Flatten-Dense(120)-ReLU-Dense(84)-ReLU-Dense(10)-Softmax.
    Lenet,
    /// A 2-block encoder over image rows as tokens: Dense(d) + learned positions, 2-head
    /// attention and Dense(2d)-ReLU-Dense(d), each with residual and LayerNorm, mean pooling,
    /// Dense(10)-Softmax (`transformer.rs`).
    Transformer,
}

impl Arch {
    /// The width used when none is given: the smallest that reaches the README's digits
    /// accuracy for every seed tried, as inference gas grows with it.
    pub fn default_hidden(self) -> usize {
        match self {
            Arch::Mlp => 64,
            Arch::Cnn => 16,
            Arch::Lstm => 32,
            Arch::Lenet => crate::lenet::C1,
            Arch::Transformer => 32,
        }
    }

    /// The dataset it trains on when none is given: LeNet is shaped for MNIST's 28×28.
    pub fn default_dataset(self) -> DatasetKind {
        match self {
            Arch::Lenet => DatasetKind::Mnist5k,
            _ => DatasetKind::Digits,
        }
    }
}

/// A digit classifier the trainer can fit and export.
pub trait Classifier<B: Backend>: Module<B> {
    /// Logits `[N, 10]` from pixels scaled to [0, 1], `[N, side²]`.
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;
    /// The same model with fake quantization on or off.
    fn with_qat(self, qat: Qat) -> Self;
    /// The float model as ONNX, taking raw pixels and ending in Softmax.
    fn to_onnx(&self, data: &Dataset) -> ModelProto;
}

pub(crate) fn param<B: Backend, const D: usize>(
    shape: [usize; D],
    values: Vec<f32>,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// He-uniform weights for a layer with `fan_in` inputs.
pub(crate) fn weights<B: Backend, const D: usize>(
    rng: &mut SplitMix64,
    shape: [usize; D],
    fan_in: usize,
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    let n = shape.iter().product();
    param(shape, rng.uniform(n, (6.0 / fan_in as f32).sqrt()), device)
}

pub(crate) fn zeros<B: Backend>(n: usize, device: &B::Device) -> Param<Tensor<B, 1>> {
    param([n], vec![0.0; n], device)
}

/// A parameter's values on the host.
pub(crate) fn host<B: Backend, const D: usize>(p: &Param<Tensor<B, D>>) -> Vec<f32> {
    p.val().into_data().convert::<f32>().to_vec::<f32>().expect("f32 data")
}

pub(crate) fn dense<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>, b: Tensor<B, 1>, fq: Qat) -> Tensor<B, 2> {
    let w = if fq.on() { qat::weights(w, fq) } else { w };
    x.matmul(w.transpose()) + b.unsqueeze()
}

pub(crate) fn maybe_fq<B: Backend, const D: usize>(x: Tensor<B, D>, fq: Qat) -> Tensor<B, D> {
    if fq.on() {
        qat::activations(x)
    } else {
        x
    }
}

pub(crate) fn scaled(v: Vec<f32>, by: f32) -> Vec<f32> {
    v.into_iter().map(|x| x * by).collect()
}

/// Gemm (transB) named `name` + Softmax, the head every model ends in.
pub(crate) fn head(g: &mut Graph, name: &str, input: &str, w: &[f32], b: &[f32], width: usize) {
    let (wn, bn) = (format!("{name}.weight"), format!("{name}.bias"));
    g.floats(&wn, &[CLASSES, width], w);
    g.floats(&bn, &[CLASSES], b);
    g.node(
        "Gemm",
        name,
        &[input, &wn, &bn],
        &["logits"],
        vec![Attr::Int("transB", 1)],
    );
    g.node(
        "Softmax",
        "softmax",
        &["logits"],
        &["probabilities"],
        vec![Attr::Int("axis", 1)],
    );
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
    b2: Param<Tensor<B, 1>>,
    qat: Qat,
}

impl<B: Backend> Mlp<B> {
    pub fn new(features: usize, hidden: usize, seed: u64, device: &B::Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        Mlp {
            w1: weights(&mut rng, [hidden, features], features, device),
            b1: zeros(hidden, device),
            w2: weights(&mut rng, [CLASSES, hidden], hidden, device),
            b2: zeros(CLASSES, device),
            qat: Qat::Off,
        }
    }
}

impl<B: Backend> Classifier<B> for Mlp<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = maybe_fq(x, self.qat);
        let h = maybe_fq(relu(dense(x, self.w1.val(), self.b1.val(), self.qat)), self.qat);
        maybe_fq(dense(h, self.w2.val(), self.b2.val(), self.qat), self.qat)
    }

    fn with_qat(self, qat: Qat) -> Self {
        Mlp { qat, ..self }
    }

    fn to_onnx(&self, data: &Dataset) -> ModelProto {
        let [hidden, features] = self.w1.dims();
        let mut g = Graph::default();
        g.floats(
            "dense1.weight",
            &[hidden, features],
            &scaled(host(&self.w1), 1.0 / data.pixel_max),
        );
        g.floats("dense1.bias", &[hidden], &host(&self.b1));
        g.node(
            "Gemm",
            "dense1",
            &["pixels", "dense1.weight", "dense1.bias"],
            &["h"],
            vec![Attr::Int("transB", 1)],
        );
        g.node("Relu", "relu1", &["h"], &["a"], vec![]);
        head(&mut g, "dense2", "a", &host(&self.w2), &host(&self.b2), hidden);
        g.finish("digits_mlp", ("pixels", &[features]), ("probabilities", &[CLASSES]))
    }
}

#[derive(Module, Debug)]
pub struct Cnn<B: Backend> {
    conv_w: Param<Tensor<B, 4>>,
    conv_b: Param<Tensor<B, 1>>,
    fc_w: Param<Tensor<B, 2>>,
    fc_b: Param<Tensor<B, 1>>,
    side: usize,
    qat: Qat,
}

impl<B: Backend> Cnn<B> {
    pub fn new(side: usize, channels: usize, seed: u64, device: &B::Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let flat = channels * (side / 2) * (side / 2);
        Cnn {
            conv_w: weights(&mut rng, [channels, 1, 3, 3], 9, device),
            conv_b: zeros(channels, device),
            fc_w: weights(&mut rng, [CLASSES, flat], flat, device),
            fc_b: zeros(CLASSES, device),
            side,
            qat: Qat::Off,
        }
    }
}

impl<B: Backend> Classifier<B> for Cnn<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let s = self.side;
        let x = maybe_fq(x.reshape([n, 1, s, s]), self.qat);
        let w = self.conv_w.val();
        let w = if self.qat.on() { qat::weights(w, self.qat) } else { w };
        let c = conv2d(
            x,
            w,
            Some(self.conv_b.val()),
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let c = maybe_fq(relu(c), self.qat);
        let p = max_pool2d(c, [2, 2], [2, 2], [0, 0], [1, 1], false);
        let flat = p.reshape([n as i32, -1]);
        maybe_fq(dense(flat, self.fc_w.val(), self.fc_b.val(), self.qat), self.qat)
    }

    fn with_qat(self, qat: Qat) -> Self {
        Cnn { qat, ..self }
    }

    fn to_onnx(&self, data: &Dataset) -> ModelProto {
        let [channels, ..] = self.conv_w.dims();
        let s = self.side;
        let flat = channels * (s / 2) * (s / 2);
        let mut g = Graph::default();
        g.floats(
            "conv.weight",
            &[channels, 1, 3, 3],
            &scaled(host(&self.conv_w), 1.0 / data.pixel_max),
        );
        g.floats("conv.bias", &[channels], &host(&self.conv_b));
        g.node(
            "Conv",
            "conv",
            &["pixels", "conv.weight", "conv.bias"],
            &["c"],
            vec![
                Attr::Ints("kernel_shape", vec![3, 3]),
                Attr::Ints("pads", vec![1, 1, 1, 1]),
            ],
        );
        g.node("Relu", "relu", &["c"], &["r"], vec![]);
        g.node(
            "MaxPool",
            "pool",
            &["r"],
            &["p"],
            vec![
                Attr::Ints("kernel_shape", vec![2, 2]),
                Attr::Ints("strides", vec![2, 2]),
            ],
        );
        g.node("Flatten", "flatten", &["p"], &["flat"], vec![Attr::Int("axis", 1)]);
        head(&mut g, "fc", "flat", &host(&self.fc_w), &host(&self.fc_b), flat);
        g.finish("digits_cnn", ("pixels", &[1, s, s]), ("probabilities", &[CLASSES]))
    }
}

#[derive(Module, Debug)]
pub struct Lstm<B: Backend> {
    /// `[4H, input]`, gates i, o, f, c (ONNX's order).
    w: Param<Tensor<B, 2>>,
    /// `[4H, H]`.
    r: Param<Tensor<B, 2>>,
    wb: Param<Tensor<B, 1>>,
    rb: Param<Tensor<B, 1>>,
    fc_w: Param<Tensor<B, 2>>,
    fc_b: Param<Tensor<B, 1>>,
    side: usize,
    qat: Qat,
}

impl<B: Backend> Lstm<B> {
    pub fn new(side: usize, hidden: usize, seed: u64, device: &B::Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let k = 1.0 / (hidden as f32).sqrt();
        // Forget-gate bias 1: remember by default, the usual start for LSTMs.
        let mut wb = vec![0.0; 4 * hidden];
        wb[2 * hidden..3 * hidden].fill(1.0);
        Lstm {
            w: param([4 * hidden, side], rng.uniform(4 * hidden * side, k), device),
            r: param([4 * hidden, hidden], rng.uniform(4 * hidden * hidden, k), device),
            wb: param([4 * hidden], wb, device),
            rb: zeros(4 * hidden, device),
            fc_w: weights(&mut rng, [CLASSES, hidden], hidden, device),
            fc_b: zeros(CLASSES, device),
            side,
            qat: Qat::Off,
        }
    }
}

impl<B: Backend> Classifier<B> for Lstm<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0];
        let (steps, width) = (self.side, self.side);
        let hidden = self.r.dims()[1];
        let x = maybe_fq(x, self.qat);
        let (mut w, mut r) = (self.w.val(), self.r.val());
        if self.qat.on() {
            w = qat::weights(w, self.qat);
            r = qat::weights(r, self.qat);
        }
        let (wt, rt) = (w.transpose(), r.transpose());
        let bias = (self.wb.val() + self.rb.val()).unsqueeze::<2>();
        let device = x.device();
        let mut h = Tensor::<B, 2>::zeros([n, hidden], &device);
        let mut c = Tensor::<B, 2>::zeros([n, hidden], &device);
        for t in 0..steps {
            let xt = x.clone().narrow(1, t * width, width);
            let g = xt.matmul(wt.clone()) + h.matmul(rt.clone()) + bias.clone();
            let gate = |k: usize| g.clone().narrow(1, k * hidden, hidden);
            let (i, o, f, cc) = (sigmoid(gate(0)), sigmoid(gate(1)), sigmoid(gate(2)), tanh(gate(3)));
            c = f * c + i * cc;
            h = o * tanh(c.clone());
            if self.qat.on() {
                h = qat::fixed(h, 128.0);
            }
        }
        maybe_fq(dense(h, self.fc_w.val(), self.fc_b.val(), self.qat), self.qat)
    }

    fn with_qat(self, qat: Qat) -> Self {
        Lstm { qat, ..self }
    }

    fn to_onnx(&self, data: &Dataset) -> ModelProto {
        let hidden = self.r.dims()[1];
        let s = self.side;
        let mut g = Graph::default();
        g.floats(
            "lstm.W",
            &[1, 4 * hidden, s],
            &scaled(host(&self.w), 1.0 / data.pixel_max),
        );
        g.floats("lstm.R", &[1, 4 * hidden, hidden], &host(&self.r));
        let b: Vec<f32> = host(&self.wb).into_iter().chain(host(&self.rb)).collect();
        g.floats("lstm.B", &[1, 8 * hidden], &b);
        g.ints("axes0", &[0]);
        // [N, rows, width] → [rows, N, width]: ONNX's LSTM reads time first.
        g.node(
            "Transpose",
            "time_major",
            &["pixels"],
            &["t"],
            vec![Attr::Ints("perm", vec![1, 0, 2])],
        );
        g.node(
            "LSTM",
            "lstm",
            &["t", "lstm.W", "lstm.R", "lstm.B"],
            &["", "h_last"],
            vec![Attr::Int("hidden_size", hidden as i64)],
        );
        g.node("Squeeze", "squeeze", &["h_last", "axes0"], &["h"], vec![]);
        head(&mut g, "fc", "h", &host(&self.fc_w), &host(&self.fc_b), hidden);
        g.finish("digits_lstm", ("pixels", &[s, s]), ("probabilities", &[CLASSES]))
    }
}
