//! Inputs shared by the benches: deterministic pseudo-random tensors, so every run measures
//! the same work.

/// `n` pseudo-random int8 values from `seed` (xorshift64).
pub fn i8s(seed: u64, n: usize) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as i8
        })
        .collect()
}

/// `n` pseudo-random i32 accumulators in ±2^20.
pub fn accs(seed: u64, n: usize) -> Vec<i32> {
    i8s(seed, n * 3)
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
    i8s(seed, n).into_iter().map(|v| v as f64 / 128.0).collect()
}

fn arr(seed: u64, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(shape.to_vec(), f64s(seed, shape.iter().product())).unwrap()
}

/// One representative configuration of every layer kind (the sizes of a small vision or
/// sequence model), quantized through the layers' own f64 → int8 path.
pub fn layer_cases() -> Vec<LayerCase> {
    let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
    let mut cases = Vec::new();
    let mut push = |name, layer: Layer, inputs: Vec<QTensor>, weights: Vec<u8>| {
        cases.push(LayerCase {
            name,
            layer,
            inputs,
            weights,
        })
    };

    let (x, x_qp) = quantize_input(&arr(1, &[256]));
    let d = DenseF64 {
        w: Array2::from_shape_vec((256, 256), f64s(2, 65536)).unwrap(),
        b: Array1::zeros(256),
        clamp: Some((0.0, f64::INFINITY)),
    };
    let (l, w) = d.quantize(&QuantSpec::int8(x_qp, qp)).unwrap();
    push("dense_256x256", Layer::Dense(l), vec![x], w);

    let (x, x_qp) = quantize_input(&arr(3, &[16, 16, 16]));
    let c = Conv2dF64 {
        w: Array4::from_shape_vec((16, 16, 3, 3), f64s(4, 16 * 16 * 9)).unwrap(),
        b: Array1::zeros(16),
        strides: [1, 1],
        dilations: [1, 1],
        pads: [1; 4],
        groups: 1,
        clamp: None,
    };
    let (l, w) = c.quantize(&QuantSpec::int8(x_qp, qp)).unwrap();
    push("conv2d_16to16_16x16_k3", Layer::Conv2d(l), vec![x.clone()], w);

    let (l, w) = ActivationF64::Sigmoid.quantize(&QuantSpec::int8(x_qp, qp)).unwrap();
    push("activation_sigmoid_4096", Layer::Activation(l), vec![x.clone()], w);
    let window = Window2d {
        kernel: [2, 2],
        strides: [2, 2],
        dilations: [1, 1],
        pads: [0; 4],
    };
    push(
        "max_pool2d_16x16x16",
        Layer::MaxPool2d(MaxPool2d { window: window.clone() }),
        vec![x.clone()],
        vec![],
    );
    push(
        "avg_pool2d_16x16x16",
        Layer::AvgPool2d(AvgPool2d {
            window,
            count_include_pad: false,
        }),
        vec![x.clone()],
        vec![],
    );
    push(
        "global_avg_pool_16x16x16",
        Layer::GlobalAvgPool(GlobalAvgPool {}),
        vec![x.clone()],
        vec![],
    );
    push(
        "reshape_4096",
        Layer::Reshape(Reshape { shape: vec![4096] }),
        vec![x.clone()],
        vec![],
    );
    let af = AffineF64 {
        a: f64s(5, 16),
        b: f64s(6, 16),
    };
    let (l, w) = af.quantize(&QuantSpec::int8(x_qp, qp)).unwrap();
    push("affine_16ch_16x16", Layer::Affine(l), vec![x.clone()], w);
    let (l, w) = AddF64::default()
        .quantize(&QuantSpec::int8(x_qp, qp).with_second(Some(x_qp)))
        .unwrap();
    push("add_4096", Layer::Add(l), vec![x.clone(), x.clone()], w);
    let (l, w) = MulF64::default()
        .quantize(&QuantSpec::int8(x_qp, qp).with_second(Some(x_qp)))
        .unwrap();
    push("mul_4096", Layer::Mul(l), vec![x.clone(), x], w);

    let (x, x_qp) = quantize_input(&arr(7, &[10]));
    let (l, w) = SoftmaxF64.quantize(&QuantSpec::int8(x_qp, x_qp)).unwrap();
    push("softmax_10", Layer::Softmax(l), vec![x], w);

    let e = EmbeddingF64 {
        table: Array2::from_shape_vec((1000, 32), f64s(8, 32000)).unwrap(),
    };
    let (l, w) = e.quantize(&QuantSpec::int8(INDEX_QUANT, INDEX_QUANT)).unwrap();
    let idx = QTensor::new(
        vec![16],
        TensorData::I32((0..16).map(|i| i * 61).collect()),
        INDEX_QUANT,
    )
    .unwrap();
    push("embedding_1000x32_16", Layer::Embedding(l), vec![idx], w);

    let (x, x_qp) = quantize_input(&arr(9, &[28, 28]));
    for (name, cell, g) in [
        ("simple_rnn_28x28_h64", CellF64::Rnn, 1),
        (
            "gru_28x28_h64",
            CellF64::Gru {
                linear_before_reset: false,
            },
            3,
        ),
        ("lstm_28x28_h64", CellF64::Lstm, 4),
    ] {
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
        let (l, w) = f.quantize(&QuantSpec::int8(x_qp, x_qp)).unwrap();
        push(name, l, vec![x.clone()], w);
    }
    cases
}
