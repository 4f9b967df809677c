//! Inputs shared by the benches: deterministic pseudo-random tensors, so every run measures
//! the same work.

pub use cwnn_tensor::host::pseudo_i8s;

/// `n` pseudo-random i32 accumulators in ±2^20.
pub fn accs(seed: u64, n: usize) -> Vec<i32> {
    pseudo_i8s(seed, n * 3)
        .chunks(3)
        .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8 & 0x1f, 0]) - (1 << 20))
        .collect()
}

use cwnn_layers::testing::quantize_input;
use cwnn_layers::{
    ActivationF64, AddF64, AffineF64, CellF64, Conv2dF64, DenseF64, EmbeddingF64, Layer, MulF64, RecurrentF64,
    SoftmaxF64,
};
use cwnn_layers::{AvgPool2d, GlobalAvgPool, MaxPool2d, QuantSpec, Quantize, Reshape, Window2d, INDEX_QUANT};
use cwnn_tensor::{DType, QTensor, QuantParams, TensorData};
use ndarray::{Array1, Array2, Array4, ArrayD};

/// A benchmark case: a quantized layer, its inputs and weights.
pub struct LayerCase {
    pub name: &'static str,
    pub layer: Layer,
    pub inputs: Vec<QTensor>,
    pub weights: Vec<u8>,
}

fn f64s(seed: u64, n: usize) -> Vec<f64> {
    pseudo_i8s(seed, n).into_iter().map(|v| v as f64 / 128.0).collect()
}

fn arr(seed: u64, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(shape.to_vec(), f64s(seed, shape.iter().product())).unwrap()
}

/// One representative configuration of every layer kind (the sizes of a small vision or
/// sequence model), quantized through the layers' own f64 → int8 path.
pub fn layer_cases() -> Vec<LayerCase> {
    let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
    let (x, x_qp) = quantize_input(&arr(1, &[256]));
    let d = DenseF64 {
        w: Array2::from_shape_vec((256, 256), f64s(2, 65536)).unwrap(),
        b: Array1::zeros(256),
        clamp: Some((0.0, f64::INFINITY)),
    };
    let mut cases = vec![quantized("dense_256x256", &d, QuantSpec::int8(x_qp, qp), vec![x])];
    cases.extend(image_cases(qp));
    let (x, x_qp) = quantize_input(&arr(7, &[10]));
    cases.push(quantized(
        "softmax_10",
        &SoftmaxF64::default(),
        QuantSpec::int8(x_qp, x_qp),
        vec![x],
    ));
    let e = EmbeddingF64 {
        table: Array2::from_shape_vec((1000, 32), f64s(8, 32000)).unwrap(),
    };
    let idx = QTensor::new(
        vec![16],
        TensorData::I32((0..16).map(|i| i * 61).collect()),
        INDEX_QUANT,
    )
    .unwrap();
    let q = QuantSpec::int8(INDEX_QUANT, INDEX_QUANT);
    cases.push(quantized("embedding_1000x32_16", &e, q, vec![idx]));
    cases.extend(recurrent_cases());
    cases
}

/// A case quantized from its f64 layer.
fn quantized(name: &'static str, f: &impl Quantize, q: QuantSpec, inputs: Vec<QTensor>) -> LayerCase {
    let (layer, weights) = f.quantize_layer(&q).unwrap();
    LayerCase {
        name,
        layer,
        inputs,
        weights,
    }
}

/// A case of a layer without weights.
fn plain(name: &'static str, layer: impl Into<Layer>, inputs: Vec<QTensor>) -> LayerCase {
    LayerCase {
        name,
        layer: layer.into(),
        inputs,
        weights: vec![],
    }
}

/// The layers that read a 16×16×16 image (outputs at `qp`).
fn image_cases(qp: QuantParams) -> Vec<LayerCase> {
    let (x, x_qp) = quantize_input(&arr(3, &[16, 16, 16]));
    let q = QuantSpec::int8(x_qp, qp);
    let c = Conv2dF64 {
        w: Array4::from_shape_vec((16, 16, 3, 3), f64s(4, 16 * 16 * 9)).unwrap(),
        b: Array1::zeros(16),
        strides: [1, 1],
        dilations: [1, 1],
        pads: [1; 4],
        groups: 1,
        clamp: None,
    };
    let window = Window2d {
        kernel: [2, 2],
        strides: [2, 2],
        dilations: [1, 1],
        pads: [0; 4],
    };
    let avg = AvgPool2d {
        window: window.clone(),
        count_include_pad: false,
    };
    let af = AffineF64 {
        a: f64s(5, 16),
        b: f64s(6, 16),
    };
    let two = q.with_second(Some(x_qp));
    let one = || vec![x.clone()];
    vec![
        quantized("conv2d_16to16_16x16_k3", &c, q, one()),
        quantized("activation_sigmoid_4096", &ActivationF64::Sigmoid, q, one()),
        plain("max_pool2d_16x16x16", MaxPool2d { window }, one()),
        plain("avg_pool2d_16x16x16", avg, one()),
        plain("global_avg_pool_16x16x16", GlobalAvgPool {}, one()),
        plain("reshape_4096", Reshape { shape: vec![4096] }, one()),
        quantized("affine_16ch_16x16", &af, q, one()),
        quantized("add_4096", &AddF64::default(), two, vec![x.clone(), x.clone()]),
        quantized("mul_4096", &MulF64::default(), two, vec![x.clone(), x.clone()]),
    ]
}

/// SimpleRnn, GRU and LSTM over 28 steps of 28 features, 64 hidden.
fn recurrent_cases() -> Vec<LayerCase> {
    let (x, x_qp) = quantize_input(&arr(9, &[28, 28]));
    let gru = CellF64::Gru {
        linear_before_reset: false,
    };
    let cells = [
        ("simple_rnn_28x28_h64", CellF64::Rnn, 1),
        ("gru_28x28_h64", gru, 3),
        ("lstm_28x28_h64", CellF64::Lstm, 4),
    ];
    cells
        .into_iter()
        .map(|(name, cell, g)| {
            let f = RecurrentF64 {
                cell,
                w: Array2::from_shape_vec((g * 64, 28), f64s(10, g * 64 * 28)).unwrap() * 0.2,
                r: Array2::from_shape_vec((g * 64, 64), f64s(11, g * 64 * 64)).unwrap() * 0.2,
                bw: Array1::zeros(g * 64),
                br: Array1::zeros(g * 64),
                peepholes: None,
                h0: None,
                c0: None,
                reverse: false,
                sequence_output: false,
            };
            quantized(name, &f, QuantSpec::int8(x_qp, x_qp), vec![x.clone()])
        })
        .collect()
}
