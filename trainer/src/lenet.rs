//! LeNet-5's shape on 28×28 MNIST (LeCun et al., 1998, with ReLU and max pooling for its
//! tanh and subsampling): Conv(6, 5×5, pad 2)-ReLU-MaxPool(2×2) → 6×14×14,
//! Conv(16, 5×5)-ReLU-MaxPool(2×2) → 16×5×5, Flatten, Dense(120)-ReLU, Dense(84)-ReLU,
//! Dense(10)-Softmax: 61,706 parameters, 416,520 MACs.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use onnx_protobuf::ModelProto;

use crate::data::Dataset;
use crate::export::{Attr, Graph};
use crate::model::{dense, head, host, maybe_fq, scaled, weights, zeros, Classifier, CLASSES};
use crate::qat::{self, Qat};
use crate::rng::SplitMix64;

/// Channels of the first convolution.
pub const C1: usize = 6;
const C2: usize = 16;
const K: usize = 5;
const F1: usize = 120;
const F2: usize = 84;

#[derive(Module, Debug)]
pub struct LeNet<B: Backend> {
    c1_w: Param<Tensor<B, 4>>,
    c1_b: Param<Tensor<B, 1>>,
    c2_w: Param<Tensor<B, 4>>,
    c2_b: Param<Tensor<B, 1>>,
    f1_w: Param<Tensor<B, 2>>,
    f1_b: Param<Tensor<B, 1>>,
    f2_w: Param<Tensor<B, 2>>,
    f2_b: Param<Tensor<B, 1>>,
    f3_w: Param<Tensor<B, 2>>,
    f3_b: Param<Tensor<B, 1>>,
    side: usize,
    qat: Qat,
}

/// Side of the second pooling's output for `side`×`side` images (5 for 28), if positive.
pub fn pooled_side(side: usize) -> Option<usize> {
    (side / 2).checked_sub(K - 1).map(|s| s / 2).filter(|&s| s > 0)
}

impl<B: Backend> LeNet<B> {
    /// `None` when the images are too small for two 5×5 convolutions and two poolings.
    pub fn new(side: usize, seed: u64, device: &B::Device) -> Option<Self> {
        let flat = C2 * pooled_side(side)?.pow(2);
        let mut rng = SplitMix64::new(seed);
        Some(LeNet {
            c1_w: weights(&mut rng, [C1, 1, K, K], K * K, device),
            c1_b: zeros(C1, device),
            c2_w: weights(&mut rng, [C2, C1, K, K], C1 * K * K, device),
            c2_b: zeros(C2, device),
            f1_w: weights(&mut rng, [F1, flat], flat, device),
            f1_b: zeros(F1, device),
            f2_w: weights(&mut rng, [F2, F1], F1, device),
            f2_b: zeros(F2, device),
            f3_w: weights(&mut rng, [CLASSES, F2], F2, device),
            f3_b: zeros(CLASSES, device),
            side,
            qat: Qat::Off,
        })
    }
}

/// Conv (stride 1, `pad` on each side)-ReLU-MaxPool(2×2), fake-quantized like the importer.
fn conv_block<B: Backend>(x: Tensor<B, 4>, w: Tensor<B, 4>, b: Tensor<B, 1>, pad: usize, fq: Qat) -> Tensor<B, 4> {
    let w = if fq.on() { qat::weights(w, fq) } else { w };
    let c = conv2d(x, w, Some(b), ConvOptions::new([1, 1], [pad, pad], [1, 1], 1));
    max_pool2d(maybe_fq(relu(c), fq), [2, 2], [2, 2], [0, 0], [1, 1], false)
}

impl<B: Backend> Classifier<B> for LeNet<B> {
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let (n, s, fq) = (x.dims()[0], self.side, self.qat);
        let x = maybe_fq(x.reshape([n, 1, s, s]), fq);
        let p1 = conv_block(x, self.c1_w.val(), self.c1_b.val(), 2, fq);
        let p2 = conv_block(p1, self.c2_w.val(), self.c2_b.val(), 0, fq);
        let flat = p2.reshape([n as i32, -1]);
        let h1 = maybe_fq(relu(dense(flat, self.f1_w.val(), self.f1_b.val(), fq)), fq);
        let h2 = maybe_fq(relu(dense(h1, self.f2_w.val(), self.f2_b.val(), fq)), fq);
        maybe_fq(dense(h2, self.f3_w.val(), self.f3_b.val(), fq), fq)
    }

    fn with_qat(self, qat: Qat) -> Self {
        LeNet { qat, ..self }
    }

    fn to_onnx(&self, data: &Dataset) -> ModelProto {
        let s = self.side;
        let flat = self.f1_w.dims()[1];
        let mut g = Graph::default();
        let c1 = scaled(host(&self.c1_w), 1.0 / data.pixel_max);
        conv_nodes(&mut g, "1", "pixels", "p1", [C1, 1], &c1, &host(&self.c1_b), 2);
        conv_nodes(
            &mut g,
            "2",
            "p1",
            "p2",
            [C2, C1],
            &host(&self.c2_w),
            &host(&self.c2_b),
            0,
        );
        g.node("Flatten", "flatten", &["p2"], &["flat"], vec![Attr::Int("axis", 1)]);
        gemm_relu(
            &mut g,
            "fc1",
            "flat",
            "h1",
            [F1, flat],
            &host(&self.f1_w),
            &host(&self.f1_b),
        );
        gemm_relu(
            &mut g,
            "fc2",
            "h1",
            "h2",
            [F2, F1],
            &host(&self.f2_w),
            &host(&self.f2_b),
        );
        head(&mut g, "fc3", "h2", &host(&self.f3_w), &host(&self.f3_b), F2);
        g.finish("mnist_lenet", ("pixels", &[1, s, s]), ("probabilities", &[CLASSES]))
    }
}

/// `conv{i}` (5×5, `pad`) → `relu{i}` → `pool{i}` (2×2, stride 2).
#[allow(clippy::too_many_arguments)]
fn conv_nodes(g: &mut Graph, i: &str, input: &str, out: &str, [o, c]: [usize; 2], w: &[f32], b: &[f32], pad: i64) {
    let (name, wn, bn) = (format!("conv{i}"), format!("conv{i}.weight"), format!("conv{i}.bias"));
    let (c_out, r_out) = (format!("c{i}"), format!("r{i}"));
    g.floats(&wn, &[o, c, K, K], w);
    g.floats(&bn, &[o], b);
    let attrs = vec![
        Attr::Ints("kernel_shape", vec![K as i64, K as i64]),
        Attr::Ints("pads", vec![pad; 4]),
    ];
    g.node("Conv", &name, &[input, &wn, &bn], &[&c_out], attrs);
    g.node("Relu", &format!("relu{i}"), &[&c_out], &[&r_out], vec![]);
    let pool = vec![
        Attr::Ints("kernel_shape", vec![2, 2]),
        Attr::Ints("strides", vec![2, 2]),
    ];
    g.node("MaxPool", &format!("pool{i}"), &[&r_out], &[out], pool);
}

/// Gemm `name` (transB) → Relu, writing `out`.
fn gemm_relu(g: &mut Graph, name: &str, input: &str, out: &str, [o, i]: [usize; 2], w: &[f32], b: &[f32]) {
    let (wn, bn, y) = (format!("{name}.weight"), format!("{name}.bias"), format!("{name}.y"));
    g.floats(&wn, &[o, i], w);
    g.floats(&bn, &[o], b);
    g.node("Gemm", name, &[input, &wn, &bn], &[&y], vec![Attr::Int("transB", 1)]);
    g.node("Relu", &format!("{name}.relu"), &[&y], &[out], vec![]);
}
