//! The imported model in f64: one node per contract layer, on single samples (no batch axis).
//!
//! This is what the ONNX front end produces and what calibration, the accuracy report and
//! `cwnn run --float` evaluate. Every op's math lives in the layers crate (`DenseF64`, ...);
//! only pooling and reshape, which have no weights to quantize, are evaluated here.

use cwnn_layers::{
    permute_weights, Activation, ActivationF64, Add, AddF64, Affine, AffineF64, AvgPool2d, CellF64, Conv2d, Conv2dF64,
    Dense, DenseF64, Embedding, EmbeddingF64, GlobalAvgPool, Gru, Layer, LayerError, LayerNorm, LayerNormF64, Lstm,
    MatMul, MatMulF64, MaxPool2d, Mul, MulF64, Op, Permute, QuantSpec, Quantize, RecurrentF64, Reshape, SimpleRnn,
    Softmax, SoftmaxF64, Window2d,
};
use ndarray::{Array3, ArrayD, Axis, IxDyn};

/// What the model's input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Real values, quantized to int8 by calibration.
    Real,
    /// Integer indices (an Embedding reads them), passed as i32.
    Indices,
}

/// One node's computation.
#[derive(Clone, Debug)]
pub enum FloatOp {
    Dense(DenseF64),
    Conv2d(Conv2dF64),
    Activation(ActivationF64),
    Softmax(SoftmaxF64),
    MaxPool(Window2d),
    AvgPool {
        window: Window2d,
        count_include_pad: bool,
    },
    GlobalAvgPool,
    Reshape(Vec<usize>),
    /// Element `index[k]` of the input (flat) at position `k` of `shape`: a Transpose that
    /// reorders a sample's data and no Dense absorbed.
    Permute {
        index: Vec<usize>,
        shape: Vec<usize>,
    },
    Affine(AffineF64),
    /// Sum with a constant, or of two inputs when the constant is `None`.
    Add(AddF64),
    Mul(MulF64),
    Embedding(EmbeddingF64),
    Recurrent(RecurrentF64),
    /// Product of the two inputs (no constant operand).
    MatMul(MatMulF64),
    LayerNorm(LayerNormF64),
}

impl FloatOp {
    /// The layer kind this op becomes (the contract's name for it).
    pub fn kind(&self) -> &'static str {
        match self {
            FloatOp::Dense(_) => Dense::NAME,
            FloatOp::Conv2d(_) => Conv2d::NAME,
            FloatOp::Activation(_) => Activation::NAME,
            FloatOp::Softmax(_) => Softmax::NAME,
            FloatOp::MaxPool(_) => MaxPool2d::NAME,
            FloatOp::AvgPool { .. } => AvgPool2d::NAME,
            FloatOp::GlobalAvgPool => GlobalAvgPool::NAME,
            FloatOp::Reshape(_) => Reshape::NAME,
            FloatOp::Permute { .. } => Permute::NAME,
            FloatOp::Affine(_) => Affine::NAME,
            FloatOp::Add(_) => Add::NAME,
            FloatOp::Mul(_) => Mul::NAME,
            FloatOp::Embedding(_) => Embedding::NAME,
            FloatOp::MatMul(_) => MatMul::NAME,
            FloatOp::LayerNorm(_) => LayerNorm::NAME,
            FloatOp::Recurrent(r) => match r.cell {
                CellF64::Rnn => SimpleRnn::NAME,
                CellF64::Gru { .. } => Gru::NAME,
                CellF64::Lstm => Lstm::NAME,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct FloatNode {
    /// The ONNX node(s) it came from, for reports and errors.
    pub name: String,
    pub op: FloatOp,
    /// Tensor ids: 0 is the model input, `i + 1` the output of node `i`.
    pub inputs: Vec<usize>,
    /// Output shape of one sample.
    pub shape: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct FloatModel {
    /// The ONNX graph's name (may be empty).
    pub name: String,
    pub input_name: String,
    pub input_kind: InputKind,
    /// Shape of one sample of the input.
    pub input_shape: Vec<usize>,
    /// Where the batch axis sits in the ONNX input and output (samples are stacked along it).
    pub input_batch_axis: Option<usize>,
    pub output_name: String,
    pub output_batch_axis: Option<usize>,
    pub nodes: Vec<FloatNode>,
}

impl FloatModel {
    /// Every tensor of one evaluation: the input, then each node's output.
    pub fn forward_all(&self, x: &ArrayD<f64>) -> Vec<ArrayD<f64>> {
        let mut tensors = vec![x.clone()];
        for node in &self.nodes {
            let y = node
                .op
                .forward(&tensors[node.inputs[0]], node.inputs.get(1).map(|&i| &tensors[i]));
            tensors.push(y);
        }
        tensors
    }

    /// The model's output for one sample.
    pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
        self.forward_all(x).pop().expect("input")
    }

    /// Parameters (weights and biases) of each node.
    pub fn params(&self) -> usize {
        self.nodes.iter().map(|n| n.op.params()).sum()
    }
}

impl FloatOp {
    /// The contract layer and weight bytes this op becomes, its tensors quantized as `q`.
    pub fn quantize(&self, q: &QuantSpec) -> Result<(Layer, Vec<u8>), LayerError> {
        let no_weights = |layer: Layer| Ok((layer, Vec::new()));
        match self {
            FloatOp::Dense(d) => d.quantize_layer(q),
            FloatOp::Conv2d(c) => c.quantize_layer(q),
            FloatOp::Activation(a) => a.quantize_layer(q),
            FloatOp::Softmax(s) => s.quantize_layer(q),
            FloatOp::MaxPool(window) => no_weights(MaxPool2d { window: window.clone() }.into()),
            FloatOp::AvgPool {
                window,
                count_include_pad,
            } => no_weights(
                AvgPool2d {
                    window: window.clone(),
                    count_include_pad: *count_include_pad,
                }
                .into(),
            ),
            FloatOp::GlobalAvgPool => no_weights(GlobalAvgPool {}.into()),
            FloatOp::Reshape(shape) => no_weights(Reshape { shape: shape.clone() }.into()),
            FloatOp::Permute { index, shape } => Ok((Permute { shape: shape.clone() }.into(), permute_weights(index))),
            FloatOp::Affine(a) => a.quantize_layer(q),
            FloatOp::Add(a) => a.quantize_layer(q),
            FloatOp::Mul(m) => m.quantize_layer(q),
            FloatOp::Embedding(e) => e.quantize_layer(q),
            FloatOp::Recurrent(r) => r.quantize_layer(q),
            FloatOp::MatMul(m) => m.quantize_layer(q),
            FloatOp::LayerNorm(l) => l.quantize_layer(q),
        }
    }

    /// Weights and biases (what the f64 model holds).
    pub fn params(&self) -> usize {
        match self {
            FloatOp::Dense(d) => d.w.len() + d.b.len(),
            FloatOp::Conv2d(c) => c.w.len() + c.b.len(),
            FloatOp::Affine(a) => a.a.len() + a.b.len(),
            FloatOp::Add(AddF64 { constant }) | FloatOp::Mul(MulF64 { constant }) => {
                constant.as_ref().map_or(0, |c| c.len())
            }
            FloatOp::Embedding(e) => e.table.len(),
            FloatOp::LayerNorm(l) => l.gamma.len() + l.beta.len(),
            FloatOp::Recurrent(r) => {
                r.w.len() + r.r.len() + r.bw.len() + r.br.len() + r.peepholes.as_ref().map_or(0, |p| p.len())
            }
            _ => 0,
        }
    }

    /// Evaluates the op on one sample.
    pub fn forward(&self, x: &ArrayD<f64>, b: Option<&ArrayD<f64>>) -> ArrayD<f64> {
        match self {
            FloatOp::Dense(d) => d.forward(x),
            FloatOp::Conv2d(c) => c.forward(x),
            FloatOp::Activation(a) => a.forward(x),
            FloatOp::Softmax(s) => s.forward(x),
            FloatOp::MaxPool(w) => pool(x, w, f64::NEG_INFINITY, f64::max, |acc, _, _| acc),
            FloatOp::AvgPool {
                window,
                count_include_pad,
            } => pool(
                x,
                window,
                0.0,
                |a, v| a + v,
                |acc, taps, full| acc / if *count_include_pad { full } else { taps } as f64,
            ),
            FloatOp::GlobalAvgPool => {
                let c = x.shape()[0];
                let means: Vec<f64> = x.axis_iter(Axis(0)).map(|lane| lane.mean().unwrap_or(0.0)).collect();
                ArrayD::from_shape_vec(IxDyn(&[c, 1, 1]), means).expect("C values")
            }
            FloatOp::Reshape(shape) => x
                .as_standard_layout()
                .to_owned()
                .into_shape_with_order(IxDyn(shape))
                .expect("same element count"),
            FloatOp::Permute { index, shape } => {
                let flat: Vec<f64> = x.iter().copied().collect();
                ArrayD::from_shape_vec(IxDyn(shape), index.iter().map(|&i| flat[i]).collect())
                    .expect("index per element")
            }
            FloatOp::Affine(a) => a.forward(x),
            FloatOp::Add(a) => a.forward(x, b),
            FloatOp::Mul(m) => m.forward(x, b),
            FloatOp::Embedding(e) => e.forward(&x.mapv(|v| v as i64)),
            FloatOp::Recurrent(r) => r.forward(x),
            FloatOp::MatMul(m) => m.forward(x, b.expect("MatMul has two inputs")),
            FloatOp::LayerNorm(l) => l.forward(x),
        }
    }
}

/// 2-D pooling over a `[C, H, W]` sample: `step` folds the taps inside the image, `finish`
/// gets the fold, the number of taps inside and the full window size.
fn pool(
    x: &ArrayD<f64>,
    w: &Window2d,
    init: f64,
    step: impl Fn(f64, f64) -> f64,
    finish: impl Fn(f64, usize, usize) -> f64,
) -> ArrayD<f64> {
    let (c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let [kh, kw] = w.kernel;
    let [sh, sw] = w.strides;
    let [dh, dw] = w.dilations;
    let [pt, pl, pb, pr] = w.pads;
    let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
    let ow = (wd + pl + pr - dw * (kw - 1) - 1) / sw + 1;
    Array3::from_shape_fn((c, oh, ow), |(ch, oy, ox)| {
        let (mut acc, mut taps) = (init, 0);
        for ky in 0..kh {
            for kx in 0..kw {
                let iy = (oy * sh + ky * dh) as isize - pt as isize;
                let ix = (ox * sw + kx * dw) as isize - pl as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                    acc = step(acc, x[[ch, iy as usize, ix as usize]]);
                    taps += 1;
                }
            }
        }
        finish(acc, taps, kh * kw)
    })
    .into_dyn()
}
