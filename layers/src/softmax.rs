//! Softmax over the last axis, max-subtracted (ONNX Softmax, axis = −1).
//!
//! Weights: the exp table for the input scale, 256 × i32 LE (`table[d] = round(2^16·exp(−s·d))`).
//! Output: int8 at scale 1/256, zero point −128. Units: rows (all axes but the last); every
//! segment reads the whole table. **Bound** against f64 on the real inputs, per element:
//! `s_x/4` (input rounding; softmax is ½-Lipschitz per coordinate in sum) plus
//! `(½ + 2^-17 + 256·(n+1)/2^17)/256`, and 1/256 more where a probability of 1 clamps.
//!
//! `int16` precision (int16 input): output int16 at scale 2^-16, zero point −32768. Weights:
//! a multiplier `m = s_x·log2(e)·2^16` then 257 × u32 LE knots `round(2^30·2^(−k/256))`.
//! `exp(−s_x·d) = 2^−(u/2^16)` with `u = m·d`: the integer part is a shift, the fraction is
//! interpolated between knots (relative error ≤ 2^-20), so probabilities are within ~2 output
//! LSB (3e-5) of the softmax of the quantized input.
//!
//! **Work**: `|x|·(2·ELEM + REQUANT) + rows·(512·ELEM + REQUANT)` (max, exp lookup and sum,
//! scale per element; every segment reads and checks the table, counted per row); int16:
//! `|x|·(ELEM + 2·LOOKUP + 2·REQUANT)` per element, the same per row; see `work.rs`.

use core::ops::Range;

use cwnn_tensor::kernels::{softmax_i8, validate_exp_table};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::{WeightReader, DYADIC_BYTES};
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Softmax {}

/// Softmax's output quantization: scale 1/256, zero point −128.
pub const SOFTMAX_OUTPUT: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 38,
    },
    zero_point: -128,
};

/// Softmax's output quantization in `int16` precision: scale 2^-16, zero point −32768.
pub const SOFTMAX_OUTPUT_I16: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 46,
    },
    zero_point: -32768,
};

const TABLE_BYTES: usize = 256 * 4;
/// `int16` precision: knots of `2^(−k/256)` in Q30, `k = 0..=256`.
const POW2_KNOTS: usize = 257;
const POW2_ONE: u32 = 1 << 30;

impl Softmax {
    fn forward_i16(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let mut r = WeightReader::new(Self::NAME, weights);
        let m = r.dyadic()?;
        let mut knots = [0u32; POW2_KNOTS];
        for k in knots.iter_mut() {
            *k = r.i32()? as u32;
        }
        // Decreasing from 2^30 to 2^29: the shift below then never overflows a u64 sum.
        if knots[0] != POW2_ONE || knots.windows(2).any(|w| w[1] > w[0]) || knots[POW2_KNOTS - 1] < POW2_ONE / 2 {
            return Err(LayerError::Weights {
                layer: Self::NAME,
                reason: "power-of-two knots must fall from 2^30 to 2^29",
            });
        }
        if m.mantissa < 0 {
            return Err(LayerError::Weights {
                layer: Self::NAME,
                reason: "negative exponent multiplier",
            });
        }
        let n = x.shape.last().copied().unwrap_or(1);
        let xs = act_data::<i16>(Self::NAME, x)?;
        let y = act_data_mut::<i16>(Self::NAME, out)?;
        let exp = |d: i64| -> u64 {
            let u = m.apply_i64(d);
            let (int, frac) = (u >> 16, (u & 0xffff) as u64);
            if int >= 40 {
                return 0;
            }
            let (k, f) = ((frac >> 8) as usize, frac & 0xff);
            let (a, b) = (u64::from(knots[k]), u64::from(knots[k + 1]));
            (a - (((a - b) * f + 128) >> 8)) >> int
        };
        for row in units {
            let (xr, yr) = (&xs[row * n..(row + 1) * n], &mut y[row * n..(row + 1) * n]);
            let mx = xr.iter().copied().max().unwrap_or(0);
            let sum = xr.iter().fold(0u64, |s, &v| s + exp(i64::from(mx) - i64::from(v)));
            for (o, &v) in yr.iter_mut().zip(xr) {
                let p = ((exp(i64::from(mx) - i64::from(v)) << 16) + sum / 2) / sum.max(1);
                *o = (p as i64 - 32768).clamp(-32768, 32767) as i16;
            }
        }
        Ok(())
    }
}

impl Op for Softmax {
    const NAME: &'static str = "softmax";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        let dtype = expect_act(Self::NAME, x)?;
        if x.shape.last().is_none_or(|&n| n == 0) {
            return Err(LayerError::InputShape {
                layer: Self::NAME,
                expected: alloc::vec![1],
                actual: x.shape.clone(),
            });
        }
        let quant = if dtype == DType::I16 {
            SOFTMAX_OUTPUT_I16
        } else {
            SOFTMAX_OUTPUT
        };
        Ok(TensorSpec::new(x.shape.clone(), dtype, quant))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        Some(match is_int16(inputs[0]) {
            true => DYADIC_BYTES + 4 * POW2_KNOTS,
            false => TABLE_BYTES,
        })
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let per = match is_int16(x) {
            true => work::ELEM + 2 * work::LOOKUP + 2 * work::REQUANT,
            false => 2 * work::ELEM + work::REQUANT,
        };
        let rows = self.units(inputs).unwrap_or(usize::MAX) as u64;
        work::sum(&[
            (work::numel(x), per),
            (rows, 2 * POW2_KNOTS as u64 * work::ELEM + work::REQUANT),
        ])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        let n = inputs[0].shape.last().copied().unwrap_or(1);
        Some(inputs[0].numel()? / n.max(1))
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
        let mut table = [0i32; 256];
        let mut r = WeightReader::new(Self::NAME, weights);
        for t in table.iter_mut() {
            *t = r.i32()?;
        }
        validate_exp_table(&table).map_err(|_| LayerError::Weights {
            layer: Self::NAME,
            reason: "exp table entries must lie in [0, 2^16] with table[0] > 0",
        })?;
        let n = inputs[0].shape.last().copied().unwrap_or(1);
        let x = i8_data(Self::NAME, inputs[0])?;
        let y = i8_data_mut(Self::NAME, out)?;
        for row in units {
            softmax_i8(&x[row * n..(row + 1) * n], &table, &mut y[row * n..(row + 1) * n])?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::exp_table;
    use cwnn_tensor::{DType, Dyadic, QuantParams};
    use ndarray::{ArrayD, Axis};

    use super::Softmax;

    /// Softmax in f64 over the last axis.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SoftmaxF64;

    impl SoftmaxF64 {
        pub fn forward(self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let mut y = x.clone();
            let last = Axis(x.ndim() - 1);
            for mut row in y.lanes_mut(last) {
                let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                row.mapv_inplace(|v| (v - m).exp());
                let s = row.sum();
                row.mapv_inplace(|v| v / s);
            }
            y
        }
        /// The layer and its exp table for an input at `x_qp`.
        fn quantize_i8(self, x_qp: &QuantParams) -> (Softmax, Vec<u8>) {
            let t = exp_table(x_qp.scale_f64());
            (Softmax {}, t.iter().flat_map(|e| e.to_le_bytes()).collect())
        }
    }

    impl Quantize for SoftmaxF64 {
        type Layer = Softmax;

        /// int8: the exp table for `s_x` (the output scale is fixed). int16: the multiplier to
        /// base-2 exponents and 257 knots of `2^(−k/256)`.
        fn quantize(&self, q: &QuantSpec) -> crate::Result<(Softmax, Vec<u8>)> {
            let (x_qp, dtype) = (&q.input, q.dtype);
            if dtype != DType::I16 {
                return Ok(self.quantize_i8(x_qp));
            }
            let mut w = Vec::new();
            let m = Dyadic::from_f64(x_qp.scale_f64() * std::f64::consts::LOG2_E * 65536.0)?;
            crate::weights::push_dyadic(&mut w, m);
            for k in 0..=256 {
                let v = (f64::from(super::POW2_ONE) * 2f64.powf(-f64::from(k) / 256.0)).round() as u32;
                w.extend_from_slice(&v.to_le_bytes());
            }
            Ok((Softmax {}, w))
        }
    }
}

#[cfg(feature = "std")]
pub use host::SoftmaxF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(rows in 1usize..4, n in 1usize..40, x in proptest::collection::vec(-6f64..6.0, 160)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, n], x[..rows * n].to_vec()).unwrap();
            let (xq, x_qp) = quantize_input(&xf);
            let (layer, table) = SoftmaxF64.quantize(&QuantSpec::int8(x_qp, x_qp)).unwrap();
            let y = Layer::Softmax(layer).run(&[&xq], &table).unwrap();
            let reference = SoftmaxF64.forward(&xf);
            let lsb = (0.5 + 2f64.powi(-17) + 256.0 * (n as f64 + 1.0) / 131072.0) / 256.0;
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                let clamp = if want > 255.0 / 256.0 { 1.0 / 256.0 } else { 0.0 };
                let bound = x_qp.scale_f64() / 4.0 + lsb + clamp + 1e-12;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
        }

        /// `int16`: within the input rounding plus 2 output LSB (2^-16) of the exact softmax.
        #[test]
        fn bound_against_f64_high(rows in 1usize..4, n in 1usize..40, x in proptest::collection::vec(-30f64..30.0, 160)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, n], x[..rows * n].to_vec()).unwrap();
            let (xq, x_qp) = quantize_input_as(&xf, DType::I16);
            let (layer, w) = SoftmaxF64.quantize(&QuantSpec::new(x_qp, x_qp, DType::I16)).unwrap();
            let y = Layer::Softmax(layer).run(&[&xq], &w).unwrap();
            prop_assert_eq!(y.quant, SOFTMAX_OUTPUT_I16);
            let reference = SoftmaxF64.forward(&xf);
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                let bound = x_qp.scale_f64() / 4.0 + 2.0 / 65536.0 + 1e-12;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass(rows in 1usize..12, n in 1usize..20, cuts in proptest::collection::vec(any::<u16>(), 0..6), int16 in any::<bool>()) {
            let x = ndarray::ArrayD::from_shape_fn(vec![rows, n], |i| (i[0] * 7 + i[1] * 13) as f64 % 9.0 - 4.0);
            let (xq, qp) = quantize_input_as(&x, precision(int16));
            let (layer, table) = SoftmaxF64.quantize(&QuantSpec::new(qp, qp, precision(int16))).unwrap();
            assert_segments_match(&Layer::Softmax(layer), &[&xq], &table, &cuts);
        }
    }

    #[test]
    fn corrupt_exp_table_is_a_named_error() {
        let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
        let x = int8_tensor(vec![5], qp);
        assert!(matches!(
            Layer::Softmax(Softmax {}).run(&[&x], &[0u8; 1024]),
            Err(LayerError::Weights { .. })
        ));
        // `int16`: knots that do not fall from 2^30 to 2^29 are refused too.
        let (x, qp) = quantize_input_as(&ndarray::ArrayD::zeros(vec![5]), DType::I16);
        let (layer, mut w) = SoftmaxF64.quantize(&QuantSpec::new(qp, qp, DType::I16)).unwrap();
        w[DYADIC_BYTES + 4 * 100 + 3] ^= 0x40; // knot 100 leaves [2^29, 2^30]
        assert!(matches!(
            Layer::Softmax(layer).run(&[&x], &w),
            Err(LayerError::Weights { .. })
        ));
    }
}
