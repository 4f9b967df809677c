//! Per-channel affine map `y = a·x + b`: Keras Rescaling (one channel) and a standalone
//! BatchNormalization (`a = γ/√(σ²+ε)`, `b = β − a·μ`; where BatchNorm follows a Conv or
//! Dense the importer folds it into that layer instead).
//!
//! Input: int8, channel-first (`[C, ...]`) or one channel for the whole tensor. Units:
//! channels; unit `c` reads `[mantissa: i32][shift: u8][offset: i64]` (13 bytes) and computes
//! `y = clamp(zp_y + ((x − zp_x)·mantissa + offset + 2^(shift−1)) >> shift)`: one rounding.
//! **Bound**: `s_y/2 + |a|·s_x/2` (output rounding, input rounding) plus 2^-31 relative.
//! `int16` precision: the same weights and rule on int16 (`(x − zp)·mantissa` < 2^48).
//!
//! **Work**: `|x|·REQUANT + channels·REQUANT` (`REQUANT` per element doubled in int16); see
//! `work.rs`.

use core::ops::Range;

use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, Act};

use crate::weights::WeightReader;
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Affine {
    /// 1 for one `(a, b)` over the whole tensor, else the size of the first axis.
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub channels: usize,
    pub output: QuantParams,
}

/// Bytes of one channel: `[mantissa: i32][shift: u8][offset: i64]`.
pub(crate) const UNIT: usize = 13;

impl Op for Affine {
    const NAME: &'static str = "affine";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        let dtype = expect_act(Self::NAME, x)?;
        let per_tensor = self.channels == 1;
        if self.channels == 0 || !(per_tensor || x.shape.first() == Some(&self.channels)) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "channels must be 1 or the input's first axis",
            });
        }
        Ok(TensorSpec::new(x.shape.clone(), dtype, self.output))
    }
    fn weight_len(&self, _: &[&TensorSpec]) -> Option<usize> {
        self.channels.checked_mul(UNIT)
    }
    fn macs(&self, inputs: &[&TensorSpec]) -> Option<u64> {
        Some(inputs[0].numel()? as u64)
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        work::sum(&[
            (work::numel(x), work::elem(x, work::REQUANT)),
            (self.channels as u64, work::REQUANT),
        ])
    }
    fn units(&self, _: &[&TensorSpec]) -> Option<usize> {
        Some(self.channels)
    }
    fn weight_range(&self, _: &[&TensorSpec], units: Range<usize>) -> Option<Range<usize>> {
        Some(units.start.checked_mul(UNIT)?..units.end.checked_mul(UNIT)?)
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
            DType::I16 => self.map::<i16>(inputs[0], weights, units, out),
            _ => self.map::<i8>(inputs[0], weights, units, out),
        }
    }
}

impl Affine {
    fn map<T: Act>(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let zx = x.quant.zero_point as i64;
        let x = act_data::<T>(Self::NAME, x)?;
        let zy = self.output.zero_point as i64;
        let inner = x.len() / self.channels;
        let y = act_data_mut::<T>(Self::NAME, out)?;
        let mut w = WeightReader::new(Self::NAME, weights);
        for c in units {
            let m = w.dyadic()?;
            let offset = w.i64()?;
            let s = m.shift as u32;
            let round = offset.wrapping_add(1i64 << (s - 1));
            for (yi, &xi) in y[c * inner..(c + 1) * inner]
                .iter_mut()
                .zip(&x[c * inner..(c + 1) * inner])
            {
                let t = (xi.to_i32() as i64 - zx)
                    .wrapping_mul(m.mantissa as i64)
                    .wrapping_add(round)
                    >> s;
                *yi = T::saturate(zy + t);
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::Dyadic;
    use ndarray::{ArrayD, Axis};

    use super::Affine;
    use crate::Result;

    /// `y = a[c]·x + b[c]` per channel of the first axis (one entry: the whole tensor).
    #[derive(Clone, Debug)]
    pub struct AffineF64 {
        pub a: Vec<f64>,
        pub b: Vec<f64>,
    }

    impl AffineF64 {
        /// BatchNormalization in inference mode as an affine map.
        pub fn batch_norm(gamma: &[f64], beta: &[f64], mean: &[f64], var: &[f64], eps: f64) -> Self {
            let a: Vec<f64> = gamma.iter().zip(var).map(|(g, v)| g / (v + eps).sqrt()).collect();
            let b = beta.iter().zip(mean).zip(&a).map(|((be, mu), a)| be - a * mu).collect();
            AffineF64 { a, b }
        }
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let mut y = x.clone();
            if self.a.len() == 1 {
                y.mapv_inplace(|v| self.a[0] * v + self.b[0]);
            } else {
                for (c, mut lane) in y.axis_iter_mut(Axis(0)).enumerate() {
                    lane.mapv_inplace(|v| self.a[c] * v + self.b[c]);
                }
            }
            y
        }
    }

    /// Appends one unit `[mantissa][shift][offset]` computing `y ≈ a·t + b` (output LSBs) on an
    /// integer `t`. A scale below 2^-32 is flushed to zero (it moves `t ≤ 2^29` by under 1/8
    /// LSB); the offset stays well inside i64, trading a tiny scale's precision for range.
    pub(crate) fn push_unit(bytes: &mut Vec<u8>, a: f64, b: f64) -> Result<()> {
        let mut m = match a.abs() < 2f64.powi(-32) {
            true => Dyadic { mantissa: 0, shift: 31 },
            false => Dyadic::from_f64(a)?,
        };
        if m.mantissa == 0 {
            m.shift = 31;
        }
        let mut off = (b * 2f64.powi(m.shift as i32)).round();
        while off.abs() >= 2f64.powi(61) && m.shift > 1 {
            m = Dyadic {
                mantissa: ((m.mantissa as f64) / 2.0).round() as i32,
                shift: m.shift - 1,
            };
            off = (off / 2.0).round();
        }
        bytes.extend_from_slice(&m.mantissa.to_le_bytes());
        bytes.push(m.shift);
        bytes.extend_from_slice(&(off as i64).to_le_bytes());
        Ok(())
    }

    impl Quantize for AffineF64 {
        type Layer = Affine;

        fn quantize(&self, q: &QuantSpec) -> Result<(Affine, Vec<u8>)> {
            let (x_qp, y_qp) = (&q.input, &q.output);
            let (sx, sy) = (x_qp.scale_f64(), y_qp.scale_f64());
            let mut bytes = Vec::with_capacity(self.a.len() * super::UNIT);
            for (&a, &b) in self.a.iter().zip(&self.b) {
                push_unit(&mut bytes, a * sx / sy, b / sy)?;
            }
            Ok((
                Affine {
                    channels: self.a.len(),
                    output: *y_qp,
                },
                bytes,
            ))
        }
    }
}

#[cfg(feature = "std")]
pub(crate) use host::push_unit;
#[cfg(feature = "std")]
pub use host::AffineF64;

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
        fn bound_against_f64(
            c in 1usize..5, inner in 1usize..12,
            ab in proptest::collection::vec((-3f64..3.0, -2f64..2.0), 5),
            x in proptest::collection::vec(-4f64..4.0, 60),
            cuts in proptest::collection::vec(any::<u16>(), 0..4),
            int16 in any::<bool>(),
        ) {
            let f = AffineF64 { a: ab[..c].iter().map(|p| p.0).collect(), b: ab[..c].iter().map(|p| p.1).collect() };
            let xf = ndarray::ArrayD::from_shape_vec(vec![c, inner], x[..c * inner].to_vec()).unwrap();
            let reference = f.forward(&xf);
            let (xq, x_qp) = quantize_input_as(&xf, precision(int16));
            let y_qp = output_params_as(&reference, precision(int16));
            let (layer, weights) = f.quantize(&QuantSpec::int8(x_qp, y_qp)).unwrap();
            let layer = Layer::Affine(layer);
            let y = layer.run(&[&xq], &weights).unwrap();
            for (i, (&got, &want)) in dequant(&y).iter().zip(reference.iter()).enumerate() {
                let a = f.a[i / inner].abs();
                let bound = y_qp.scale_f64() / 2.0 + a * x_qp.scale_f64() / 2.0 + 1e-6 * (1.0 + want.abs());
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
            assert_segments_match(&layer, &[&xq], &weights, &cuts);
        }
    }

    #[test]
    fn batch_norm_is_the_affine_map() {
        let bn = AffineF64::batch_norm(&[2.0], &[1.0], &[0.5], &[3.0], 1.0);
        assert!((bn.a[0] - 1.0).abs() < 1e-12 && (bn.b[0] - 0.5).abs() < 1e-12);
    }
}
