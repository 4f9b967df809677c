//! Tests shared by the recurrent layers: random cells against the f64 reference, and
//! segmentation by time step.

use crate::{QuantSpec, Quantize};
use ndarray::{Array1, Array2, ArrayD};
use proptest::prelude::*;

use crate::recurrent::host::{CellF64, RecurrentF64};
use crate::testing::*;

/// A random cell of `cell` kind with weights ~ U(±1/√hidden), so the state neither explodes
/// nor vanishes, and a `[T, input]` sequence in ±2.
pub(crate) fn case(
    cell: CellF64,
    steps: core::ops::Range<usize>,
) -> impl Strategy<Value = (RecurrentF64, ArrayD<f64>)> {
    (
        1usize..6,
        1usize..9,
        steps,
        any::<(bool, bool, bool, bool)>(),
        any::<u64>(),
    )
        .prop_map(move |(i, h, t, (rev, seq, init, peep), seed)| {
            let g = match cell {
                CellF64::Rnn => 1,
                CellF64::Gru { .. } => 3,
                CellF64::Lstm => 4,
            };
            let mut st = seed | 1;
            let mut next = move || {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                (st % 20001) as f64 / 10000.0 - 1.0
            };
            let a = 1.0 / (h as f64).sqrt();
            let f = RecurrentF64 {
                cell,
                w: Array2::from_shape_simple_fn((g * h, i), || a * next()),
                r: Array2::from_shape_simple_fn((g * h, h), || a * next()),
                bw: Array1::from_shape_simple_fn(g * h, || 0.2 * next()),
                br: Array1::from_shape_simple_fn(g * h, || 0.2 * next()),
                peepholes: (peep && cell == CellF64::Lstm)
                    .then(|| Array1::from_shape_simple_fn(3 * h, || 0.3 * next())),
                h0: init.then(|| Array1::from_shape_simple_fn(h, || 0.5 * next())),
                c0: (init && cell == CellF64::Lstm).then(|| Array1::from_shape_simple_fn(h, &mut next)),
                reverse: rev,
                sequence_output: seq,
            };
            let x = ArrayD::from_shape_simple_fn(vec![t, i], || 2.0 * next());
            (f, x)
        })
}

/// Largest |h − h_ref| over all outputs.
pub(crate) fn max_error(f: &RecurrentF64, x: &ArrayD<f64>) -> f64 {
    max_error_as(f, x, cwnn_tensor::DType::I8)
}

/// [`max_error`] with an input of `dtype` (int16).
pub(crate) fn max_error_as(f: &RecurrentF64, x: &ArrayD<f64>, dtype: cwnn_tensor::DType) -> f64 {
    let (xq, x_qp) = quantize_input_as(x, dtype);
    let (layer, weights) = f.quantize(&QuantSpec::new(x_qp, x_qp, dtype)).unwrap();
    let y = layer.run(&[&xq], &weights).unwrap();
    assert_eq!(y.dtype(), dtype);
    let reference = f.forward(x);
    dequant(&y)
        .iter()
        .zip(reference.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

pub(crate) fn segments(f: &RecurrentF64, x: &ArrayD<f64>, cuts: &[u16], int16: bool) {
    let (xq, x_qp) = quantize_input_as(x, precision(int16));
    let (layer, weights) = f.quantize(&QuantSpec::new(x_qp, x_qp, precision(int16))).unwrap();
    assert_segments_match(&layer, &[&xq], &weights, cuts);
}
