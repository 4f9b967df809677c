//! Element-wise activations on int8 through a 256-entry table: ReLU, Clip/ReLU6, LeakyReLU,
//! Sigmoid, Tanh, GELU (exact, with erf, and its tanh form), Erf (what GELU decomposes into),
//! Identity (and a requantize between two scales, which is Identity).
//!
//! The table is the layer's weights (256 bytes: entry `i` is `f(x)` for `x = i − 128`), built
//! on the host from the function and both scales. Units: elements; every segment reads the
//! whole table. **Bound**: exact on the input grid, so ½ output LSB from `f` of the
//! dequantized input, within the output range.
//!
//! `int16` precision (int16 input and output): the piecewise-linear kinds (Identity, ReLU, Clip,
//! LeakyReLU) are exact rescales, weights `[m_pos][m_neg][lo: i32][hi: i32]` (18 bytes):
//! `y = clamp(zp_y + m·(x − zp_x), lo, hi)` with `m = m_pos` for `x ≥ zp_x`, else `m_neg`.
//! Sigmoid, Tanh, GELU and Erf interpolate linearly between 1,025 knots (i16 LE, 2,050 bytes),
//! knot `k` at `x = −32768 + 64·k`: error ≤ `(64·s_x)²/8 · max|f''|` plus 1 output LSB
//! (`max|f''|`: Sigmoid 0.0963, Tanh 0.7699, both GELUs 0.7979 = `2φ(0)`, Erf 0.9679 =
//! `4/√π·e^(−½)/√2`) where `f` stays inside the output range over the knot interval. Knots are
//! stored clamped to that range, so where `f` leaves it within an interval the error is
//! bounded instead by the clamped `f`'s variation over the interval, plus 1 LSB (a
//! calibration that saw a narrower range than `f` takes between two knots).
//!
//! **Work**: `|x|·ELEM` (a lookup per element); int16: `|x|·2·REQUANT` (rescales) or
//! `|x|·2·LOOKUP` (interpolation); see `work.rs`.

use core::ops::Range;

use cwnn_tensor::kernels::{lut, requantize_i64, Clamp};
use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::{as_i8, WeightReader};
use crate::{work, LayerError, Op, Result, TensorSpec};

/// Which function the table holds (informative: the table defines the layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ActivationKind {
    Identity,
    Relu,
    Clip,
    LeakyRelu,
    Sigmoid,
    Tanh,
    /// `x·Φ(x)` (ONNX Gelu, `approximate = "none"`).
    Gelu,
    /// `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (ONNX Gelu, `approximate = "tanh"`).
    GeluTanh,
    /// The error function (ONNX Erf: exporters write GELU as `x/2·(1 + erf(x/√2))`).
    Erf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Activation {
    pub kind: ActivationKind,
    pub output: QuantParams,
}

const TABLE: usize = 256;
/// `int16` precision: bytes of a piecewise-linear rescale, and knots of a smooth function.
const LINEAR_BYTES: usize = 18;
const KNOTS: usize = 1025;
/// Input steps between two knots, as a shift.
const KNOT_SHIFT: u32 = 6;

impl Activation {
    /// Whether `int16` precision computes this kind as a rescale (else by interpolation).
    fn is_linear(&self) -> bool {
        matches!(
            self.kind,
            ActivationKind::Identity | ActivationKind::Relu | ActivationKind::Clip | ActivationKind::LeakyRelu
        )
    }

    fn forward_i16(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let xs = &act_data::<i16>(Self::NAME, x)?[units.clone()];
        let y = &mut act_data_mut::<i16>(Self::NAME, out)?[units];
        let mut r = WeightReader::new(Self::NAME, weights);
        if self.is_linear() {
            let (m_pos, m_neg) = (r.dyadic()?, r.dyadic()?);
            let clamp = Clamp {
                lo: r.i32()?,
                hi: r.i32()?,
            };
            let (zx, zy) = (i64::from(x.quant.zero_point), self.output.zero_point);
            for (o, &v) in y.iter_mut().zip(xs) {
                let d = i64::from(v) - zx;
                *o = requantize_i64(d, if d >= 0 { m_pos } else { m_neg }, zy, clamp);
            }
            return Ok(());
        }
        // Read in place, not decoded up front: a segment's cost stays in proportion to its
        // elements (see the work formula).
        let kb = r.take(2 * KNOTS)?;
        let knot = |k: usize| i32::from(i16::from_le_bytes([kb[2 * k], kb[2 * k + 1]]));
        for (o, &v) in y.iter_mut().zip(xs) {
            let u = (i32::from(v) + 32768) as usize;
            let (k, f) = (u >> KNOT_SHIFT, (u & ((1 << KNOT_SHIFT) - 1)) as i32);
            let (a, b) = (knot(k), knot(k + 1));
            let step = ((b - a) * f + (1 << (KNOT_SHIFT - 1))) >> KNOT_SHIFT;
            *o = (a + step).clamp(-32768, 32767) as i16;
        }
        Ok(())
    }
}

impl Op for Activation {
    const NAME: &'static str = "activation";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let dtype = expect_act(Self::NAME, inputs[0])?;
        Ok(TensorSpec::new(inputs[0].shape.clone(), dtype, self.output))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        Some(match (is_int16(inputs[0]), self.is_linear()) {
            (false, _) => TABLE,
            (true, true) => LINEAR_BYTES,
            (true, false) => 2 * KNOTS,
        })
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let per = match (is_int16(x), self.is_linear()) {
            (false, _) => work::ELEM,
            (true, true) => work::elem(x, work::REQUANT),
            (true, false) => work::elem(x, work::LOOKUP),
        };
        work::sum(&[(work::numel(x), per)])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        inputs[0].numel()
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        if inputs[0].dtype() == DType::I16 {
            return self.forward_i16(inputs[0], weights, units, out);
        }
        let table: &[i8; TABLE] = as_i8(weights).try_into().map_err(|_| LayerError::WeightLength {
            layer: Self::NAME,
            expected: TABLE,
            actual: weights.len(),
        })?;
        let x = &i8_data(Self::NAME, inputs[0])?[units.clone()];
        lut(x, table, &mut i8_data_mut(Self::NAME, out)?[units])?;
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::{dequantize, lut_i8, quantize, requant_multiplier};
    use cwnn_tensor::{DType, Dyadic, QuantParams};
    use ndarray::ArrayD;

    use super::{Activation, ActivationKind, KNOTS, KNOT_SHIFT};
    use crate::weights::push_dyadic;
    use crate::Result;

    /// An activation in f64, with its parameters.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum ActivationF64 {
        Identity,
        Relu,
        /// ONNX Clip; ReLU6 is `Clip { min: 0, max: 6 }`.
        Clip {
            min: f64,
            max: f64,
        },
        LeakyRelu {
            alpha: f64,
        },
        Sigmoid,
        Tanh,
        Gelu,
        GeluTanh,
        Erf,
    }

    impl ActivationF64 {
        pub fn apply(self, x: f64) -> f64 {
            match self {
                ActivationF64::Identity => x,
                ActivationF64::Relu => x.max(0.0),
                ActivationF64::Clip { min, max } => x.clamp(min, max),
                ActivationF64::LeakyRelu { alpha } => {
                    if x >= 0.0 {
                        x
                    } else {
                        alpha * x
                    }
                }
                ActivationF64::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                ActivationF64::Tanh => x.tanh(),
                ActivationF64::Gelu => 0.5 * x * (1.0 + libm::erf(x * core::f64::consts::FRAC_1_SQRT_2)),
                ActivationF64::GeluTanh => {
                    let c = (2.0 / core::f64::consts::PI).sqrt();
                    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
                }
                ActivationF64::Erf => libm::erf(x),
            }
        }
        pub fn forward(self, x: &ArrayD<f64>) -> ArrayD<f64> {
            x.mapv(|v| self.apply(v))
        }
        pub fn kind(self) -> ActivationKind {
            match self {
                ActivationF64::Identity => ActivationKind::Identity,
                ActivationF64::Relu => ActivationKind::Relu,
                ActivationF64::Clip { .. } => ActivationKind::Clip,
                ActivationF64::LeakyRelu { .. } => ActivationKind::LeakyRelu,
                ActivationF64::Sigmoid => ActivationKind::Sigmoid,
                ActivationF64::Tanh => ActivationKind::Tanh,
                ActivationF64::Gelu => ActivationKind::Gelu,
                ActivationF64::GeluTanh => ActivationKind::GeluTanh,
                ActivationF64::Erf => ActivationKind::Erf,
            }
        }
        /// The layer and its table for an input at `x_qp` and an output at `y_qp`.
        fn quantize_i8(self, x_qp: &QuantParams, y_qp: &QuantParams) -> (Activation, Vec<u8>) {
            let table = lut_i8(|v| self.apply(v), x_qp, y_qp);
            (
                Activation {
                    kind: self.kind(),
                    output: *y_qp,
                },
                table.iter().map(|&v| v as u8).collect(),
            )
        }
    }

    impl Quantize for ActivationF64 {
        type Layer = Activation;

        /// int8: a 256-entry table from `x_qp` to `y_qp`. int16: the piecewise-linear kinds as an
        /// exact rescale and clamp, the smooth ones as 1,025 interpolated knots.
        fn quantize(&self, q: &QuantSpec) -> Result<(Activation, Vec<u8>)> {
            let (x_qp, y_qp, dtype) = (&q.input, &q.output, q.dtype);
            if dtype != DType::I16 {
                return Ok(self.quantize_i8(x_qp, y_qp));
            }
            let layer = Activation {
                kind: self.kind(),
                output: *y_qp,
            };
            let mut w = Vec::new();
            let q = |v: f64| quantize(v, y_qp, dtype);
            let slope = |a: f64| -> Result<Dyadic> { Ok(requant_multiplier(x_qp.scale_f64(), a, y_qp.scale_f64())?) };
            let (m_pos, m_neg, lo, hi) = match *self {
                ActivationF64::Identity => (slope(1.0)?, slope(1.0)?, dtype.min(), dtype.max()),
                ActivationF64::Relu => (slope(1.0)?, slope(1.0)?, q(0.0), dtype.max()),
                ActivationF64::Clip { min, max } => (slope(1.0)?, slope(1.0)?, q(min), q(max)),
                ActivationF64::LeakyRelu { alpha } => (
                    slope(1.0)?,
                    Dyadic::from_f64(alpha * x_qp.scale_f64() / y_qp.scale_f64())?,
                    dtype.min(),
                    dtype.max(),
                ),
                ActivationF64::Sigmoid
                | ActivationF64::Tanh
                | ActivationF64::Gelu
                | ActivationF64::GeluTanh
                | ActivationF64::Erf => {
                    for k in 0..KNOTS {
                        let x = dequantize(-32768 + ((k as i32) << KNOT_SHIFT), x_qp);
                        w.extend_from_slice(&(q(self.apply(x)) as i16).to_le_bytes());
                    }
                    return Ok((layer, w));
                }
            };
            push_dyadic(&mut w, m_pos);
            push_dyadic(&mut w, m_neg);
            w.extend_from_slice(&lo.to_le_bytes());
            w.extend_from_slice(&hi.to_le_bytes());
            Ok((layer, w))
        }
    }
}

#[cfg(feature = "std")]
pub use host::ActivationF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::dequantize;
    use proptest::prelude::*;

    fn function() -> impl Strategy<Value = ActivationF64> {
        prop_oneof![
            Just(ActivationF64::Identity),
            Just(ActivationF64::Relu),
            Just(ActivationF64::Clip { min: 0.0, max: 6.0 }),
            (0.01f64..0.3).prop_map(|alpha| ActivationF64::LeakyRelu { alpha }),
            Just(ActivationF64::Sigmoid),
            Just(ActivationF64::Tanh),
            Just(ActivationF64::Gelu),
            Just(ActivationF64::GeluTanh),
            Just(ActivationF64::Erf),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(f in function(), x in proptest::collection::vec(-8f64..8.0, 1..64)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![x.len()], x).unwrap();
            let (xq, x_qp) = quantize_input(&xf);
            let y_qp = output_params(&f.forward(&xf));
            let (layer, table) = f.quantize(&QuantSpec::int8(x_qp, y_qp)).unwrap();
            let y = Layer::Activation(layer).run(&[&xq], &table).unwrap();
            let lo = dequantize(-128, &y_qp);
            let hi = dequantize(127, &y_qp);
            for (i, got) in dequant(&y).into_iter().enumerate() {
                // Exact on the grid: f of the dequantized input, to ½ output LSB.
                let want = f.apply(dequantize(xq.data.get(i).unwrap(), &x_qp)).clamp(lo, hi);
                prop_assert!((got - want).abs() <= y_qp.scale_f64() / 2.0 + 1e-12, "{} vs {}", got, want);
            }
        }

        /// `int16`: piecewise-linear kinds to ½ output LSB of `f` of the dequantized input;
        /// the smooth kinds within the interpolation error `(64·s_x)²/8·max|f''|` plus 1 LSB.
        #[test]
        fn bound_against_f64_high(f in function(), x in proptest::collection::vec(-8f64..8.0, 1..64)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![x.len()], x).unwrap();
            let (xq, x_qp) = quantize_input_as(&xf, DType::I16);
            let y_qp = output_params_as(&f.forward(&xf), DType::I16);
            let (layer, w) = f.quantize(&QuantSpec::new(x_qp, y_qp, DType::I16)).unwrap();
            let y = Layer::Activation(layer).run(&[&xq], &w).unwrap();
            let (lo, hi) = (dequantize(-32768, &y_qp), dequantize(32767, &y_qp));
            let curvature = match f {
                ActivationF64::Sigmoid => 0.0963,
                ActivationF64::Tanh => 0.7699,
                ActivationF64::Gelu | ActivationF64::GeluTanh => 0.7979,
                ActivationF64::Erf => 0.9679,
                _ => 0.0,
            };
            let sy = y_qp.scale_f64();
            let smooth = if curvature > 0.0 { (64.0 * x_qp.scale_f64()).powi(2) / 8.0 * curvature + sy / 2.0 } else { 0.0 };
            for (i, got) in dequant(&y).into_iter().enumerate() {
                let q = xq.data.get(i).unwrap();
                let want = f.apply(dequantize(q, &x_qp)).clamp(lo, hi);
                // The knot interval around q, every input step: where f leaves [lo, hi] there,
                // the clamped knots bound the error by the clamped f's variation instead.
                let k0 = (q + 32768) / 64 * 64 - 32768;
                let inside: Vec<f64> = (k0..=k0 + 64).map(|k| f.apply(dequantize(k, &x_qp))).collect();
                let leaves = curvature > 0.0 && inside.iter().any(|&v| v < lo || v > hi);
                let clamped = inside.iter().map(|v| v.clamp(lo, hi));
                let variation = clamped.clone().fold(f64::MIN, f64::max) - clamped.fold(f64::MAX, f64::min);
                let bound = sy / 2.0 + if leaves { variation + sy / 2.0 } else { smooth } + 1e-9;
                prop_assert!((got - want).abs() <= bound, "{:?}: {} vs {} (bound {})", f, got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass(f in function(), n in 1usize..100, cuts in proptest::collection::vec(any::<u16>(), 0..6), int16 in any::<bool>()) {
            let x = ndarray::ArrayD::from_shape_fn(vec![n], |i| (i[0] * 37 % 17) as f64 / 2.0 - 4.0);
            let (xq, qp) = quantize_input_as(&x, precision(int16));
            let (layer, table) = f.quantize(&QuantSpec::new(qp, qp, precision(int16))).unwrap();
            assert_segments_match(&Layer::Activation(layer), &[&xq], &table, &cuts);
        }
    }
}
