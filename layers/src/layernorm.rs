//! Layer normalization over the last axis (ONNX LayerNormalization, axis = −1; Keras
//! LayerNormalization): `y = γ·(x − μ)/√(σ² + ε) + β` per row, `γ`, `β` per channel.
//!
//! Integer form, on a row of `n` centred inputs `q = x − zp_x` (scale `s_x`): with `S = Σq`,
//! `d = n·q − S` and `V = n·Σq² − S²` (exact, `= Σd²/n`), the normalized value is
//! `z = d/√(V + n²ε/s_x²) = 16·d/√W`, `W = 256·V + E`, `E = round(256·n²·ε/s_x²)` (so ε keeps 8
//! fractional bits). `1/√W ≈ i/2^k` comes from an exact integer root (`kernels::inv_sqrt`,
//! relative error < 2^-29), then `z24 = round(d·i/2^(k−28))` is `z` in Q24 and each channel
//! applies Affine's unit: `y = clamp(zp_y + (z24·m_c + o_c + 2^(s_c−1)) >> s_c)`,
//! `m_c/2^s_c = γ_c/(s_y·2^24)`, `o_c = β_c/s_y·2^s_c`: one rounding.
//!
//! Weights: `[E: u64][n × (m_c: i32, s_c: u8, o_c: i64)]` (`8 + 13·n` bytes); every segment
//! reads them all. Units: rows. `n ≤ 1,024`, so `W < 2^61` in int16 and every product fits
//! i64. `int16` precision: the same on int16.
//!
//! **Bound** against f64 on the dequantized input (the layer's own error; like softmax's, the
//! input's quantization is the model's): `s_y/2 + |γ_c|·(|z|·(2^-28 + 1/(4W)) + 2^-24)` plus
//! `|γ_c·z|·2^-30` (the scale's rounding); a channel with `|γ_c|/s_y < 2^-8` has its scale
//! flushed to 0 (`affine::push_unit`), at most `s_y/8` more.
//!
//! **Work**: `|x|·(2·ELEM + REQUANT) + rows·2·LOOKUP` (sums, `d`, `z24`, the channel's affine
//! map; the root and division per row), elements doubled in int16, plus `n·ELEM` per segment
//! (decoding the channels); see `work.rs`.

use core::ops::Range;

use alloc::vec::Vec;
use cwnn_tensor::kernels::inv_sqrt;
use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, Act};
use crate::affine::UNIT;
use crate::weights::WeightReader;
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LayerNorm {
    pub output: QuantParams,
}

/// The longest normalized axis: keeps `W = 256·V + E` below 2^61 in int16.
pub const LAYER_NORM_MAX: usize = 1024;

/// `E`'s largest value (so `W < 2^61`).
const MAX_EPS: u64 = 1 << 60;

/// A channel's affine map on `z24`: the multiplier, its shift and the offset with the
/// rounding half folded in.
struct Channel {
    m: i64,
    s: u32,
    round: i64,
}

impl LayerNorm {
    /// Reads `E` and the channels, every shift checked.
    fn channels(weights: &[u8], n: usize) -> Result<(u64, Vec<Channel>)> {
        let mut r = WeightReader::new(Self::NAME, weights);
        let e = r.i64()? as u64;
        if e > MAX_EPS {
            return Err(LayerError::Weights {
                layer: Self::NAME,
                reason: "ε term above 2^60",
            });
        }
        let mut cs = Vec::with_capacity(n);
        for _ in 0..n {
            let m = r.dyadic()?;
            let s = m.shift as u32;
            let round = r.i64()?.wrapping_add(1i64 << (s - 1));
            cs.push(Channel {
                m: m.mantissa as i64,
                s,
                round,
            });
        }
        Ok((e, cs))
    }

    fn normalize<T: Act>(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let n = x.shape.last().copied().unwrap_or(1);
        let (e, cs) = Self::channels(weights, n)?;
        let zx = x.quant.zero_point as i64;
        let (xs, zy) = (act_data::<T>(Self::NAME, x)?, self.output.zero_point as i64);
        let y = act_data_mut::<T>(Self::NAME, out)?;
        let nn = n as i64;
        for row in units {
            let (xr, yr) = (&xs[row * n..(row + 1) * n], &mut y[row * n..(row + 1) * n]);
            // Wrapping throughout: exact for any valid zero point (n ≤ 1,024, see the module
            // docs), and a zero point from outside cannot trap a debug build.
            let (s, q2) = xr.iter().fold((0i64, 0i64), |(s, q2), &v| {
                let q = (v.to_i32() as i64).wrapping_sub(zx);
                (s.wrapping_add(q), q2.wrapping_add(q.wrapping_mul(q)))
            });
            let v = nn.wrapping_mul(q2).wrapping_sub(s.wrapping_mul(s)) as u64;
            let (inv, k) = inv_sqrt((v << 8).wrapping_add(e));
            let (sh, half) = (k - 28, 1i64 << (k - 29));
            for ((o, &xv), c) in yr.iter_mut().zip(xr).zip(&cs) {
                let d = nn.wrapping_mul((xv.to_i32() as i64).wrapping_sub(zx)).wrapping_sub(s);
                let z24 = d.wrapping_mul(inv as i64).wrapping_add(half) >> sh;
                *o = T::saturate(zy + (z24.wrapping_mul(c.m).wrapping_add(c.round) >> c.s));
            }
        }
        Ok(())
    }
}

impl Op for LayerNorm {
    const NAME: &'static str = "layer_norm";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Attn);

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
        if x.shape.last().is_some_and(|&n| n > LAYER_NORM_MAX) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "normalized axis longer than 1,024",
            });
        }
        Ok(TensorSpec::new(x.shape.clone(), dtype, self.output))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        inputs[0].shape.last()?.checked_mul(UNIT)?.checked_add(8)
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let rows = self.units(inputs).unwrap_or(usize::MAX) as u64;
        work::sum(&[
            (work::numel(x), work::elem(x, 2 * work::ELEM + work::REQUANT)),
            (rows, 2 * work::LOOKUP),
        ])
    }
    fn segment_work(&self, inputs: &[&TensorSpec]) -> u64 {
        let n = inputs[0].shape.last().copied().unwrap_or(0);
        work::sum(&[(n as u64, work::ELEM)])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        let x = inputs[0];
        Some(x.numel()? / x.shape.last().copied()?.max(1))
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        match inputs[0].dtype() {
            DType::I16 => self.normalize::<i16>(inputs[0], weights, units, out),
            _ => self.normalize::<i8>(inputs[0], weights, units, out),
        }
    }
}

#[cfg(feature = "std")]
mod host {
    use ndarray::{ArrayD, Axis};

    use super::{LayerNorm, MAX_EPS};
    use crate::affine::push_unit;
    use crate::{LayerError, QuantSpec, Quantize, Result};

    /// LayerNorm over the last axis in f64.
    #[derive(Clone, Debug)]
    pub struct LayerNormF64 {
        pub gamma: Vec<f64>,
        pub beta: Vec<f64>,
        pub eps: f64,
    }

    impl LayerNormF64 {
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let mut y = x.as_standard_layout().into_owned();
            let last = Axis(y.ndim() - 1);
            for mut row in y.lanes_mut(last) {
                let n = row.len() as f64;
                let mean = row.sum() / n;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                // A constant row with ε = 0 is 0/0: β, as the integer layer gives.
                let inv = if var + self.eps > 0.0 {
                    1.0 / (var + self.eps).sqrt()
                } else {
                    0.0
                };
                for (c, v) in row.iter_mut().enumerate() {
                    *v = self.gamma[c] * (*v - mean) * inv + self.beta[c];
                }
            }
            y
        }
    }

    impl Quantize for LayerNormF64 {
        type Layer = LayerNorm;

        /// `E = round(256·n²·ε/s_x²)` and one affine unit per channel on `z` in Q24.
        fn quantize(&self, q: &QuantSpec) -> Result<(LayerNorm, Vec<u8>)> {
            let (sx, sy, n) = (q.input.scale_f64(), q.output.scale_f64(), self.gamma.len());
            if self.beta.len() != n || self.eps.is_nan() || self.eps < 0.0 {
                return Err(LayerError::Config {
                    layer: "layer_norm",
                    reason: "γ and β differ in length, or ε is negative",
                });
            }
            let e = (256.0 * (n * n) as f64 * self.eps / (sx * sx)).round();
            let mut bytes = (e.min(MAX_EPS as f64) as u64).to_le_bytes().to_vec();
            for (&g, &b) in self.gamma.iter().zip(&self.beta) {
                push_unit(&mut bytes, g / (sy * 2f64.powi(24)), b / sy)?;
            }
            Ok((LayerNorm { output: q.output }, bytes))
        }
    }
}

#[cfg(feature = "std")]
pub use host::LayerNormF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::Dyadic;
    use ndarray::ArrayD;
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (LayerNormF64, ArrayD<f64>)> {
        (1usize..4, 1usize..40, 0u8..3).prop_flat_map(|(rows, n, eps)| {
            (
                proptest::collection::vec((0.2f64..2.0, -1f64..1.0), n),
                proptest::collection::vec(-3f64..4.0, rows * n),
                any::<bool>(),
            )
                .prop_map(move |(gb, x, neg)| {
                    let f = LayerNormF64 {
                        gamma: gb.iter().map(|p| if neg { -p.0 } else { p.0 }).collect(),
                        beta: gb.iter().map(|p| p.1).collect(),
                        eps: [0.0, 1e-5, 0.1][eps as usize],
                    };
                    (f, ArrayD::from_shape_vec(vec![rows, n], x).unwrap())
                })
        })
    }

    fn quantized(f: &LayerNormF64, x: &ArrayD<f64>, int16: bool) -> (Layer, Vec<u8>, QTensor, QuantParams) {
        let dtype = precision(int16);
        let (xq, x_qp) = quantize_input_as(x, dtype);
        // The output range covers the result on the quantized input, so nothing clamps.
        let xd = ArrayD::from_shape_vec(x.shape(), dequant(&xq)).unwrap();
        let y_qp = output_params_as(&f.forward(&xd), dtype);
        let (layer, w) = f.quantize(&QuantSpec::new(x_qp, y_qp, dtype)).unwrap();
        (Layer::LayerNorm(layer), w, xq, y_qp)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64((f, x) in case(), int16 in any::<bool>()) {
            let (layer, w, xq, y_qp) = quantized(&f, &x, int16);
            let xd = ArrayD::from_shape_vec(x.shape(), dequant(&xq)).unwrap();
            let reference = f.forward(&xd);
            let y = layer.run(&[&xq], &w).unwrap();
            let n = f.gamma.len();
            let (sx, sy) = (xq.quant.scale_f64(), y_qp.scale_f64());
            let z = LayerNormF64 { gamma: vec![1.0; n], beta: vec![0.0; n], eps: f.eps }.forward(&xd);
            for (i, (&got, &want)) in dequant(&y).iter().zip(reference.iter()).enumerate() {
                let row = &xq.data.to_i32s()[i / n * n..][..n];
                let qs: Vec<f64> = row.iter().map(|&v| (v - xq.quant.zero_point) as f64).collect();
                let (s, q2): (f64, f64) = (qs.iter().sum(), qs.iter().map(|q| q * q).sum());
                let big_w = 256.0 * (n as f64 * q2 - s * s) + 256.0 * (n * n) as f64 * f.eps / (sx * sx);
                let (g, zi) = (f.gamma[i % n].abs(), z.as_slice().unwrap()[i].abs());
                let bound = sy / 2.0 + g * (zi * (2f64.powi(-28) + 0.25 / big_w.max(1.0)) + 2f64.powi(-24)) + g * zi * 2f64.powi(-30) + 1e-9;
                prop_assert!((got - want).abs() <= bound, "y[{}] = {} vs {} (bound {})", i, got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass((f, x) in case(), cuts in proptest::collection::vec(any::<u16>(), 0..5), int16 in any::<bool>()) {
            let (layer, w, xq, _) = quantized(&f, &x, int16);
            assert_segments_match(&layer, &[&xq], &w, &cuts);
        }
    }

    /// A constant row has no deviation: its output is β, with ε = 0 too (no division by zero).
    #[test]
    fn constant_rows_give_beta() {
        let f = LayerNormF64 {
            gamma: vec![1.5, -2.0, 0.5],
            beta: vec![0.25, -0.5, 1.0],
            eps: 0.0,
        };
        let x = ArrayD::from_shape_vec(vec![2, 3], vec![2.0, 2.0, 2.0, -1.0, -1.0, -1.0]).unwrap();
        let x_qp = QuantParams::asymmetric(-2.0, 2.0, DType::I8).unwrap();
        let y_qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let (layer, w) = f.quantize(&QuantSpec::int8(x_qp, y_qp)).unwrap();
        let y = dequant(&Layer::LayerNorm(layer).run(&[&quantize_with(&x, &x_qp)], &w).unwrap());
        for (i, got) in y.iter().enumerate() {
            assert!((got - f.beta[i % 3]).abs() <= y_qp.scale_f64() / 2.0 + 1e-9, "{y:?}");
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let f = LayerNormF64 {
            gamma: vec![1.0; 4],
            beta: vec![0.0; 4],
            eps: 1e-5,
        };
        let qp = QuantParams {
            scale: Dyadic {
                mantissa: 1 << 30,
                shift: 36,
            },
            zero_point: 0,
        };
        let (layer, w) = f.quantize(&QuantSpec::int8(qp, qp)).unwrap();
        assert_eq!(w.len(), 8 + 13 * 4);
        let layer = Layer::LayerNorm(layer);
        let x = int8_tensor(vec![2, 4], qp);
        assert!(layer.run(&[&x], &w).is_ok());
        // A zero point from outside the type's range computes (wrapping), it does not trap.
        let mut odd = x.clone();
        odd.quant.zero_point = i32::MIN;
        assert!(layer.run(&[&odd], &w).is_ok());
        // Weights for another width, a torn shift, an ε term out of range.
        assert!(matches!(
            layer.run(&[&int8_tensor(vec![2, 5], qp)], &w),
            Err(LayerError::WeightLength { .. })
        ));
        let mut bad = w.clone();
        bad[8 + 4] = 0;
        assert!(matches!(layer.run(&[&x], &bad), Err(LayerError::Weights { .. })));
        let mut bad = w.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(layer.run(&[&x], &bad), Err(LayerError::Weights { .. })));
        // Too wide, empty, two inputs; γ and β of different lengths.
        let wide = TensorSpec::new(vec![LAYER_NORM_MAX + 1], DType::I8, qp);
        assert!(matches!(layer.output_spec(&[&wide]), Err(LayerError::Config { .. })));
        let empty = TensorSpec::new(vec![3, 0], DType::I8, qp);
        assert!(matches!(
            layer.output_spec(&[&empty]),
            Err(LayerError::InputShape { .. })
        ));
        assert!(matches!(layer.run(&[&x, &x], &w), Err(LayerError::InputCount { .. })));
        let uneven = LayerNormF64 {
            beta: vec![0.0; 3],
            ..f
        };
        assert!(uneven.quantize(&QuantSpec::int8(qp, qp)).is_err());
    }
}
