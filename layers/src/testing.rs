//! Helpers for layer tests (host side): quantize f64 tensors, pick output ranges, and check
//! that any split into segments reproduces one pass bit for bit.

use alloc::vec;
use alloc::vec::Vec;

use cwnn_tensor::host::dequantize;
use cwnn_tensor::{DType, QTensor, QuantParams, TensorData};
use ndarray::ArrayD;

use crate::{Layer, TensorSpec};

/// Quantizes `x` to int8 with asymmetric parameters over its own range.
pub fn quantize_input(x: &ArrayD<f64>) -> (QTensor, QuantParams) {
    quantize_input_as(x, DType::I8)
}

/// [`quantize_input`] to `dtype` (int16).
pub fn quantize_input_as(x: &ArrayD<f64>, dtype: DType) -> (QTensor, QuantParams) {
    let (lo, hi) = x.iter().fold((0f64, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let qp = QuantParams::asymmetric(lo, hi, dtype).unwrap();
    (quantize_with_as(x, &qp, dtype), qp)
}

/// Quantizes `x` to int8 at `qp`.
pub fn quantize_with(x: &ArrayD<f64>, qp: &QuantParams) -> QTensor {
    quantize_with_as(x, qp, DType::I8)
}

/// Quantizes `x` to `dtype` (int8 or int16) at `qp`.
pub fn quantize_with_as(x: &ArrayD<f64>, qp: &QuantParams, dtype: DType) -> QTensor {
    TensorSpec::new(x.shape().to_vec(), dtype, *qp).quantize(x).unwrap()
}

/// Int8 output parameters covering `y`'s range, so a bound test sees no saturation.
pub fn output_params(y: &ArrayD<f64>) -> QuantParams {
    output_params_as(y, DType::I8)
}

/// [`output_params`] in `dtype`.
pub fn output_params_as(y: &ArrayD<f64>, dtype: DType) -> QuantParams {
    let (lo, hi) = y.iter().fold((0f64, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let pad = (hi - lo).max(1e-3) * 0.01;
    QuantParams::asymmetric(lo - pad, hi + pad, dtype).unwrap()
}

/// The activation type of a test case: int8, or int16 when `int16`.
pub fn precision(int16: bool) -> DType {
    if int16 {
        DType::I16
    } else {
        DType::I8
    }
}

/// The weight forms of Dense and Conv2d: int8, int16, and int4 weights with int8 activations.
#[cfg(test)]
pub fn weight_forms() -> impl proptest::strategy::Strategy<Value = (DType, crate::WeightFormat)> {
    use proptest::prelude::Just;
    proptest::prop_oneof![
        Just((DType::I8, crate::WeightFormat::Native)),
        Just((DType::I16, crate::WeightFormat::Native)),
        Just((DType::I8, crate::WeightFormat::Int4)),
    ]
}

/// The weight scale the quantizer chose for one output channel of largest weight `max_w`,
/// given its bytes `unit`: `max_w / qmax` widened for a bias that needs it; for int4 read from
/// the channel's multiplier `M·2^23 / 2^e = s_x·s_w/s_y`, which must be at most 1/128 above the
/// int4 scale of `max_w` (or of the floors the quantizer applies).
pub fn weight_scale(
    max_w: f64,
    bias: f64,
    (sx, sy): (f64, f64),
    (dtype, format): (DType, crate::WeightFormat),
    unit: &[u8],
) -> f64 {
    if format == crate::WeightFormat::Int4 {
        let [m, e] = unit[unit.len() - 2..] else { unreachable!() };
        let sw = m as f64 * 2f64.powi(23 - e as i32) * sy / sx;
        let floor = (bias.abs() * 7.0 / (sx * 2f64.powi(22))).max(7.0 * 2f64.powi(-30) * sy / sx);
        let ideal = max_w.max(floor) / 7.0;
        assert!(
            sw >= ideal * (1.0 - 1e-12) && sw <= ideal * (1.0 + 1.0 / 128.0) * (1.0 + 1e-12),
            "int4 scale {sw} for {ideal}"
        );
        return sw;
    }
    let (qmax, bias_bits) = if dtype == DType::I16 {
        (32767.0, 62)
    } else {
        (127.0, 31)
    };
    max_w.max(bias.abs() * qmax / (sx * 2f64.powi(bias_bits - 1))) / qmax
}

/// The real values of an int8 tensor.
pub fn dequant(t: &QTensor) -> Vec<f64> {
    (0..t.len())
        .map(|i| dequantize(t.data.get(i).unwrap(), &t.quant))
        .collect()
}

/// An int8 tensor with a fixed pattern of values.
pub fn int8_tensor(shape: Vec<usize>, qp: QuantParams) -> QTensor {
    let n: usize = shape.iter().product();
    QTensor::new(
        shape,
        TensorData::I8((0..n).map(|i| (i * 37 % 255) as u8 as i8).collect()),
        qp,
    )
    .unwrap()
}

/// A tensor of `dtype` (int8, or int16 for `int16` precision) with a fixed pattern of values
/// spread over the type's range.
pub fn pattern_tensor(shape: Vec<usize>, qp: QuantParams, dtype: DType) -> QTensor {
    if dtype != DType::I16 {
        return int8_tensor(shape, qp);
    }
    let n: usize = shape.iter().product();
    let data = TensorData::I16((0..n).map(|i| (i * 7919 % 65535) as u16 as i16).collect());
    QTensor::new(shape, data, qp).unwrap()
}

/// Evaluates `layer` in the segments `cuts` defines (cut points reduced modulo the unit count)
/// and asserts the output equals one pass, bit for bit. Each segment sees only its own weight
/// slice, as in the contract.
pub fn assert_segments_match(layer: &Layer, inputs: &[&QTensor], weights: &[u8], cuts: &[u16]) {
    let specs: Vec<TensorSpec> = inputs.iter().map(|t| TensorSpec::of(t)).collect();
    let refs: Vec<&TensorSpec> = specs.iter().collect();
    let plan = layer.plan(&refs).unwrap();
    let whole = layer.run(inputs, weights).unwrap();
    let mut points: Vec<usize> = cuts.iter().map(|&c| c as usize % (plan.units + 1)).collect();
    points.extend([0, plan.units]);
    points.sort_unstable();
    points.dedup();
    let mut out = plan.output.zeros().unwrap();
    let mut state = vec![0; plan.state_len];
    for seg in points.windows(2) {
        let r = layer.weight_range(&refs, seg[0]..seg[1]).unwrap();
        layer
            .forward(inputs, &weights[r], seg[0]..seg[1], &mut out, &mut state)
            .unwrap();
    }
    assert_eq!(
        out,
        whole,
        "{} segments {:?} differ from one pass",
        layer.name(),
        points
    );
}
