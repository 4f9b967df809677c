//! Tests shared by the recurrent layers: random cells against the f64 reference, and
//! segmentation by time step.

use crate::{QuantSpec, Quantize, WeightFormat};
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

/// Segments match one pass (int8 cases with int8 and with int4 weights).
pub(crate) fn segments(f: &RecurrentF64, x: &ArrayD<f64>, cuts: &[u16], int16: bool) {
    let (xq, x_qp) = quantize_input_as(x, precision(int16));
    let formats: &[WeightFormat] = if int16 {
        &[WeightFormat::Native]
    } else {
        &[WeightFormat::Native, WeightFormat::Int4]
    };
    for &format in formats {
        let q = QuantSpec::new(x_qp, x_qp, precision(int16)).with_weights(format);
        let (layer, weights) = f.quantize(&q).unwrap();
        assert_segments_match(&layer, &[&xq], &weights, cuts);
    }
}

/// Each row of `m` rounded to int4 as the quantizer does (symmetric, scale `max/7`).
fn int4_rows(m: &Array2<f64>) -> Array2<f64> {
    let mut out = m.clone();
    for mut row in out.rows_mut() {
        let max = row.iter().fold(0f64, |a, v| a.max(v.abs()));
        let qp = cwnn_tensor::QuantParams::symmetric(max * 127.0 / 7.0, cwnn_tensor::DType::I8).unwrap();
        row.mapv_inplace(|v| {
            let q = cwnn_tensor::host::quantize(v, &qp, cwnn_tensor::DType::I8);
            assert!((-7..=7).contains(&q));
            cwnn_tensor::host::dequantize(q, &qp)
        });
    }
    out
}

/// Largest |h − h_ref| with int4 weights, against the f64 cell whose W and R are the int4
/// values: the integer arithmetic then errs as in int8 (the weights' own rounding is the
/// model's, shown by the import report).
pub(crate) fn max_error_int4(f: &RecurrentF64, x: &ArrayD<f64>) -> f64 {
    let (xq, x_qp) = quantize_input(x);
    let q = QuantSpec::int8(x_qp, x_qp).with_weights(WeightFormat::Int4);
    let (layer, weights) = f.quantize(&q).unwrap();
    let y = layer.run(&[&xq], &weights).unwrap();
    let rounded = RecurrentF64 {
        w: int4_rows(&f.w),
        r: int4_rows(&f.r),
        ..f.clone()
    };
    dequant(&y)
        .iter()
        .zip(rounded.forward(x).iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Int4 W and R: the int8 bounds of each cell (RNN, GRU, LSTM) over 32 steps, against the
    /// f64 cell with the int4 weights.
    #[test]
    fn int4_weights_keep_the_int8_bound(
        (f, x) in prop_oneof![
            Just(CellF64::Rnn),
            Just(CellF64::Gru { linear_before_reset: false }),
            Just(CellF64::Gru { linear_before_reset: true }),
            Just(CellF64::Lstm),
        ]
        .prop_flat_map(|cell| case(cell, 32..41))
    ) {
        let e = max_error_int4(&f, &x);
        prop_assert!(e <= 3.0 / 128.0, "{:?}: max |h − h_ref| = {}", f.cell, e);
    }
}
