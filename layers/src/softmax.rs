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
//! **Mask** (attention's causal or padding mask, constant): with `mask_rows = P > 0` the
//! weights end in `P` rows of `⌈n/8⌉` bytes, bit `j % 8` of byte `j / 8` set where position `j`
//! is left out; input row `r` uses mask row `r % P` (a `[T, T]` mask over `[H, T, T]` scores).
//! A row is then the softmax of its kept positions alone (exactly what adding −∞ there gives),
//! and a left-out position's probability is exactly 0; a row with none kept is all 0.
//!
//! **Work**: `|x|·(2·ELEM + REQUANT) + rows·(512·ELEM + REQUANT)` (max, exp lookup and sum,
//! scale per element; every segment reads and checks the table, counted per row); int16:
//! `|x|·(ELEM + 2·LOOKUP + 2·REQUANT)` per element, the same per row; a mask adds
//! `|x|·(ELEM + LOOKUP)`; see `work.rs`.

use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::kernels::{softmax_i8, validate_exp_table};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::{WeightReader, DYADIC_BYTES};
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Softmax {
    /// Rows of the constant mask after the exponent parameters in the weights; 0: no mask.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_zero"))]
    pub mask_rows: u32,
}

#[cfg(feature = "serde")]
fn is_zero(v: &u32) -> bool {
    *v == 0
}

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

/// Bytes of one mask row of `n` positions.
fn mask_row_bytes(n: usize) -> usize {
    n.div_ceil(8)
}

/// Runs `f` on the kept positions of `xr` (gathered into `kept`) and writes its results back
/// in place, `zero` (probability 0) where the mask leaves a position out.
fn masked_row<T: Copy>(
    xr: &[T],
    yr: &mut [T],
    mask: &[u8],
    zero: T,
    (kept, probs): (&mut Vec<T>, &mut Vec<T>),
    f: impl FnOnce(&[T], &mut [T]) -> Result<()>,
) -> Result<()> {
    let out = |j: usize| mask[j / 8] >> (j % 8) & 1 == 1;
    kept.clear();
    kept.extend(xr.iter().enumerate().filter(|&(j, _)| !out(j)).map(|(_, &v)| v));
    probs.clear();
    probs.resize(kept.len(), zero);
    if !kept.is_empty() {
        f(kept, probs)?;
    }
    let mut p = probs.iter();
    for (j, y) in yr.iter_mut().enumerate() {
        *y = if out(j) { zero } else { *p.next().unwrap_or(&zero) };
    }
    Ok(())
}

impl Softmax {
    /// The mask's bytes after the `head` bytes of exponent parameters (a named error when
    /// their length is not `mask_rows` rows of `n` positions).
    fn mask<'w>(&self, weights: &'w [u8], head: usize, n: usize) -> Result<&'w [u8]> {
        let len = (self.mask_rows as usize).checked_mul(mask_row_bytes(n));
        match (weights.get(head..), len) {
            (Some(m), Some(len)) if m.len() == len => Ok(m),
            _ => Err(LayerError::Weights {
                layer: Self::NAME,
                reason: "the mask is not mask_rows rows of the row's positions",
            }),
        }
    }

    /// Row `row` of the output from row `row` of the input, through the mask if there is one.
    fn row<T: Copy>(
        &self,
        (xr, yr): (&[T], &mut [T]),
        (mask, row): (&[u8], usize),
        zero: T,
        scratch: (&mut Vec<T>, &mut Vec<T>),
        f: impl FnOnce(&[T], &mut [T]) -> Result<()>,
    ) -> Result<()> {
        if self.mask_rows == 0 {
            return f(xr, yr);
        }
        let b = mask_row_bytes(xr.len());
        let at = row % self.mask_rows as usize * b;
        masked_row(xr, yr, &mask[at..at + b], zero, scratch, f)
    }

    fn forward_i16(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let n = x.shape.last().copied().unwrap_or(1);
        let mask = self.mask(weights, DYADIC_BYTES + 4 * POW2_KNOTS, n)?;
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
        let softmax = |xr: &[i16], yr: &mut [i16]| {
            let mx = xr.iter().copied().max().unwrap_or(0);
            let sum = xr.iter().fold(0u64, |s, &v| s + exp(i64::from(mx) - i64::from(v)));
            for (o, &v) in yr.iter_mut().zip(xr) {
                let p = ((exp(i64::from(mx) - i64::from(v)) << 16) + sum / 2) / sum.max(1);
                *o = (p as i64 - 32768).clamp(-32768, 32767) as i16;
            }
            Ok(())
        };
        let (mut kept, mut probs) = (Vec::new(), Vec::new());
        for row in units {
            let rows = (&xs[row * n..(row + 1) * n], &mut y[row * n..(row + 1) * n]);
            self.row(rows, (mask, row), i16::MIN, (&mut kept, &mut probs), softmax)?;
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
        let head = match is_int16(inputs[0]) {
            true => DYADIC_BYTES + 4 * POW2_KNOTS,
            false => TABLE_BYTES,
        };
        let n = inputs[0].shape.last().copied().unwrap_or(1);
        (self.mask_rows as usize)
            .checked_mul(mask_row_bytes(n))?
            .checked_add(head)
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let per = match is_int16(x) {
            true => work::ELEM + 2 * work::LOOKUP + 2 * work::REQUANT,
            false => 2 * work::ELEM + work::REQUANT,
        };
        let rows = self.units(inputs).unwrap_or(usize::MAX) as u64;
        let masked = if self.mask_rows > 0 {
            work::ELEM + work::LOOKUP
        } else {
            0
        };
        work::sum(&[
            (work::numel(x), per + masked),
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
        let mask = self.mask(weights, TABLE_BYTES, n)?;
        let x = i8_data(Self::NAME, inputs[0])?;
        let y = i8_data_mut(Self::NAME, out)?;
        let softmax = |xr: &[i8], yr: &mut [i8]| Ok(softmax_i8(xr, &table, yr)?);
        let (mut kept, mut probs) = (Vec::new(), Vec::new());
        for row in units {
            let rows = (&x[row * n..(row + 1) * n], &mut y[row * n..(row + 1) * n]);
            self.row(rows, (mask, row), i8::MIN, (&mut kept, &mut probs), softmax)?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::exp_table;
    use cwnn_tensor::{DType, Dyadic};
    use ndarray::{Array2, ArrayD, Axis};

    use super::{mask_row_bytes, Softmax};

    /// Softmax in f64 over the last axis; with `mask` (`[P, n]`, true = left out; input row
    /// `r` uses mask row `r % P`) over each row's kept positions, 0 at the others.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct SoftmaxF64 {
        pub mask: Option<Array2<bool>>,
    }

    impl SoftmaxF64 {
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let mut y = x.clone();
            let last = Axis(x.ndim() - 1);
            for (r, mut row) in y.lanes_mut(last).into_iter().enumerate() {
                let out = |j: usize| self.mask.as_ref().is_some_and(|m| m[[r % m.nrows(), j]]);
                let m = (0..row.len())
                    .filter(|&j| !out(j))
                    .fold(f64::NEG_INFINITY, |a, j| a.max(row[j]));
                for (j, v) in row.iter_mut().enumerate() {
                    *v = if out(j) { 0.0 } else { (*v - m).exp() };
                }
                let s = row.sum();
                row.mapv_inplace(|v| if s > 0.0 { v / s } else { 0.0 });
            }
            y
        }

        /// The layer's mask field and the mask bytes that end its weights.
        fn mask_bytes(&self) -> (u32, Vec<u8>) {
            let Some(m) = &self.mask else {
                return (0, Vec::new());
            };
            let mut w = Vec::new();
            for row in m.rows() {
                let mut bytes = vec![0u8; mask_row_bytes(row.len())];
                row.iter()
                    .enumerate()
                    .filter(|&(_, &out)| out)
                    .for_each(|(j, _)| bytes[j / 8] |= 1 << (j % 8));
                w.extend(bytes);
            }
            (m.nrows() as u32, w)
        }
    }

    impl Quantize for SoftmaxF64 {
        type Layer = Softmax;

        /// int8: the exp table for `s_x` (the output scale is fixed). int16: the multiplier to
        /// base-2 exponents and 257 knots of `2^(−k/256)`.
        fn quantize(&self, q: &QuantSpec) -> crate::Result<(Softmax, Vec<u8>)> {
            let (x_qp, dtype) = (&q.input, q.dtype);
            let mut w = Vec::new();
            if dtype != DType::I16 {
                w.extend(exp_table(x_qp.scale_f64()).iter().flat_map(|e| e.to_le_bytes()));
            } else {
                let m = Dyadic::from_f64(x_qp.scale_f64() * std::f64::consts::LOG2_E * 65536.0)?;
                crate::weights::push_dyadic(&mut w, m);
                for k in 0..=256 {
                    let v = (f64::from(super::POW2_ONE) * 2f64.powf(-f64::from(k) / 256.0)).round() as u32;
                    w.extend_from_slice(&v.to_le_bytes());
                }
            }
            let (mask_rows, mask) = self.mask_bytes();
            w.extend(mask);
            Ok((Softmax { mask_rows }, w))
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
            let (layer, table) = SoftmaxF64::default().quantize(&QuantSpec::int8(x_qp, x_qp)).unwrap();
            let y = Layer::Softmax(layer).run(&[&xq], &table).unwrap();
            let reference = SoftmaxF64::default().forward(&xf);
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
            let (layer, w) = SoftmaxF64::default().quantize(&QuantSpec::new(x_qp, x_qp, DType::I16)).unwrap();
            let y = Layer::Softmax(layer).run(&[&xq], &w).unwrap();
            prop_assert_eq!(y.quant, SOFTMAX_OUTPUT_I16);
            let reference = SoftmaxF64::default().forward(&xf);
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                let bound = x_qp.scale_f64() / 4.0 + 2.0 / 65536.0 + 1e-12;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass(rows in 1usize..12, n in 1usize..20, cuts in proptest::collection::vec(any::<u16>(), 0..6), int16 in any::<bool>()) {
            let x = ndarray::ArrayD::from_shape_fn(vec![rows, n], |i| (i[0] * 7 + i[1] * 13) as f64 % 9.0 - 4.0);
            let (xq, qp) = quantize_input_as(&x, precision(int16));
            let (layer, table) = SoftmaxF64::default().quantize(&QuantSpec::new(qp, qp, precision(int16))).unwrap();
            assert_segments_match(&Layer::Softmax(layer), &[&xq], &table, &cuts);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// A masked row is, bit for bit, the unmasked layer on its kept positions, with
        /// probability 0 (the dtype's minimum) where the mask leaves a position out (all of a
        /// row with none kept); within the f64 bound of the masked softmax; segments agree.
        #[test]
        fn masked_rows_are_the_softmax_of_their_kept_positions(
            rows in 1usize..7, n in 1usize..20, period in 1usize..4, int16 in any::<bool>(),
            bits in proptest::collection::vec(any::<bool>(), 60),
            x in proptest::collection::vec(-6f64..6.0, 140),
            cuts in proptest::collection::vec(any::<u16>(), 0..4),
        ) {
            let dtype = precision(int16);
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, n], x[..rows * n].to_vec()).unwrap();
            let (xq, qp) = quantize_input_as(&xf, dtype);
            let mask = ndarray::Array2::from_shape_fn((period, n), |(p, j)| bits[(p * n + j) % bits.len()]);
            let f = SoftmaxF64 { mask: Some(mask.clone()) };
            let (layer, w) = f.quantize(&QuantSpec::new(qp, qp, dtype)).unwrap();
            prop_assert_eq!(layer.mask_rows as usize, period);
            let (plain, pw) = SoftmaxF64::default().quantize(&QuantSpec::new(qp, qp, dtype)).unwrap();
            let layer = Layer::Softmax(layer);
            let y = layer.run(&[&xq], &w).unwrap();
            let reference = f.forward(&xf);
            let (zero, lsb) = if int16 { (-32768, 2.0 / 65536.0) } else { (-128, 1.0 / 256.0 + 256.0 * (n as f64 + 1.0) / 131072.0 / 256.0) };
            for r in 0..rows {
                let kept: Vec<usize> = (0..n).filter(|&j| !mask[[r % period, j]]).collect();
                let got: Vec<i32> = (0..n).map(|j| y.data.get(r * n + j).unwrap()).collect();
                if !kept.is_empty() {
                    let xs = ndarray::ArrayD::from_shape_fn(vec![kept.len()], |i| xf[[r, kept[i[0]]]]);
                    let xk = crate::testing::quantize_with_as(&xs, &qp, dtype);
                    let yk = Layer::Softmax(plain.clone()).run(&[&xk], &pw).unwrap();
                    for (i, &j) in kept.iter().enumerate() {
                        prop_assert_eq!(got[j], yk.data.get(i).unwrap(), "row {} position {}", r, j);
                    }
                }
                for j in (0..n).filter(|j| !kept.contains(j)) {
                    prop_assert_eq!(got[j], zero, "row {} position {} is left out", r, j);
                }
                for j in 0..n {
                    let (g, want) = (dequant(&y)[r * n + j], reference[[r, j]]);
                    let clamp = if !int16 && want > 255.0 / 256.0 { 1.0 / 256.0 } else { 0.0 };
                    prop_assert!((g - want).abs() <= qp.scale_f64() / 4.0 + lsb + clamp + 1e-12, "{} vs {}", g, want);
                }
            }
            assert_segments_match(&layer, &[&xq], &w, &cuts);
        }
    }

    #[test]
    fn a_mask_of_the_wrong_length_is_a_named_error() {
        let (x, qp) = quantize_input_as(&ndarray::ArrayD::zeros(vec![2, 9]), DType::I8);
        let mask = ndarray::Array2::from_elem((2, 9), false);
        let (layer, w) = SoftmaxF64 { mask: Some(mask) }
            .quantize(&QuantSpec::int8(qp, qp))
            .unwrap();
        assert_eq!(w.len(), TABLE_BYTES + 2 * 2);
        let layer = Layer::Softmax(layer);
        for bad in [&w[..w.len() - 1], &[w.as_slice(), &[0]].concat()[..]] {
            let e = layer.run(&[&x], bad);
            assert!(matches!(e, Err(LayerError::WeightLength { .. })), "{e:?}");
        }
    }

    #[test]
    fn corrupt_exp_table_is_a_named_error() {
        let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
        let x = int8_tensor(vec![5], qp);
        assert!(matches!(
            Layer::Softmax(Softmax::default()).run(&[&x], &[0u8; 1024]),
            Err(LayerError::Weights { .. })
        ));
        // `int16`: knots that do not fall from 2^30 to 2^29 are refused too.
        let (x, qp) = quantize_input_as(&ndarray::ArrayD::zeros(vec![5]), DType::I16);
        let (layer, mut w) = SoftmaxF64::default()
            .quantize(&QuantSpec::new(qp, qp, DType::I16))
            .unwrap();
        w[DYADIC_BYTES + 4 * 100 + 3] ^= 0x40; // knot 100 leaves [2^29, 2^30]
        assert!(matches!(
            Layer::Softmax(layer).run(&[&x], &w),
            Err(LayerError::Weights { .. })
        ));
    }
}
