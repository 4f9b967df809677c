//! Dense (ONNX Gemm / MatMul + Add, Keras Dense): `y = clamp(W·x + b)`.
//!
//! Input: int8 `[..., in]` (leading axes are rows of a batch, e.g. time steps). Output: int8
//! `[..., out]`. Units: output features; unit `r` reads the weight bytes
//! `[W[r, 0..in]: i8 × in][bias: i32][multiplier: i32 + u8]` (`in + 9` bytes), so a block of
//! rows is one contiguous read. Weights are symmetric per output channel.
//!
//! `int16` precision (int16 input): int16 output, unit `r` reads
//! `[W[r, 0..in]: i16 LE × in][bias: i64][multiplier]` (`2·in + 13` bytes), sums in i64.
//!
//! Int4 weights (`weights: int4`, int8 input): unit `r` reads `[W[r]: nibbles × ⌈in/2⌉]
//! [bias: i24][M: u8][e: u8]` (`⌈in/2⌉ + 5` bytes; `WeightFormat`), summed as
//! `Σ (u − 8)·x = Σ u·x − 8·Σ x` over the unsigned nibbles `u` (`dot2_nibbles`).
//!
//! **Bound** against f64 on the real inputs (per output, before the clamp):
//! `s_out/2 + s_x·s_w/2 + Σ_c (|w_c|·s_x/2 + |x_c|·s_w/2 + s_x·s_w/4)` (output rounding, bias
//! rounding, input and weight quantization), plus the multiplier's 2^-31 relative error.
//!
//! **Work**: `macs·MAC + rows·out·REQUANT` (`MAC` = 5 and `REQUANT` doubled in int16), plus
//! `|x|·ELEM` per segment (each segment centres all of `x`); see `work.rs`.

use core::ops::Range;

use alloc::vec::Vec;
use cwnn_tensor::kernels::{
    accumulator_fits, centered, dot2_i8, dot2_nibbles, dot_i16_le, pack_activations, requantize_i64, requantize_one,
    Clamp,
};
use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::{WeightReader, INT4_OFFSET};
use crate::{work, LayerError, Op, Result, TensorSpec, WeightFormat};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Dense {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub in_features: usize,
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub out_features: usize,
    /// Output clamp in the quantized domain: a fused ReLU or ReLU6.
    pub clamp: Clamp,
    pub output: QuantParams,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "WeightFormat::is_native"))]
    pub weights: WeightFormat,
}

impl Dense {
    fn unit_bytes(&self, x: &TensorSpec) -> Option<usize> {
        self.weights.unit_bytes(self.in_features, is_int16(x))
    }

    /// `int16` precision: int16 weights and activations, i64 sums.
    fn forward_i16(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let (n_in, n_out, zp) = (self.in_features, self.out_features, self.output.zero_point);
        let zx = i64::from(x.quant.zero_point);
        let xs: Vec<i64> = act_data::<i16>(Self::NAME, x)?
            .iter()
            .map(|&v| i64::from(v) - zx)
            .collect();
        let y = act_data_mut::<i16>(Self::NAME, out)?;
        for (xi, yi) in xs.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
            let mut w = WeightReader::new(Self::NAME, weights);
            for yv in yi.get_mut(units.clone()).unwrap_or_default() {
                let (wr, b, m) = w.unit_i16(n_in)?;
                *yv = requantize_i64(b.wrapping_add(dot_i16_le(wr, xi)), m, zp, self.clamp);
            }
        }
        Ok(())
    }

    /// Int4 weights: rows two at a time (`dot2_nibbles`) against the centred input packed in
    /// pairs, less `8·Σ x` for the offset nibbles.
    fn forward_int4(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let xs = centered(i8_data(Self::NAME, x)?, x.quant.zero_point);
        let (n_in, n_out, zp) = (self.in_features, self.out_features, self.output.zero_point);
        let y = i8_data_mut(Self::NAME, out)?;
        let rq = |acc: i32, b: i32, m, offset: i32| {
            requantize_one(b.wrapping_add(acc).wrapping_sub(offset), m, zp, self.clamp)
        };
        for (xi, yi) in xs.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
            let packed = pack_activations(xi);
            let offset = xi
                .iter()
                .fold(0i32, |a, &v| a.wrapping_add(v))
                .wrapping_mul(INT4_OFFSET);
            let mut w = WeightReader::new(Self::NAME, weights);
            let mut ys = yi.get_mut(units.clone()).unwrap_or_default().iter_mut();
            while let Some(y0) = ys.next() {
                let (w0, b0, m0) = w.unit_int4(n_in)?;
                match ys.next() {
                    Some(y1) => {
                        let (w1, b1, m1) = w.unit_int4(n_in)?;
                        let (a0, a1) = dot2_nibbles(w0, w1, &packed);
                        (*y0, *y1) = (rq(a0, b0, m0, offset), rq(a1, b1, m1, offset));
                    }
                    None => *y0 = rq(dot2_nibbles(w0, w0, &packed).0, b0, m0, offset),
                }
            }
        }
        Ok(())
    }
}

impl Op for Dense {
    const NAME: &'static str = "dense";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        let dtype = expect_act(Self::NAME, x)?;
        if self.in_features == 0 || self.out_features == 0 {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "features must be ≥ 1",
            });
        }
        if x.shape.last() != Some(&self.in_features) {
            let mut expected = x.shape.clone();
            match expected.last_mut() {
                Some(l) => *l = self.in_features,
                None => expected.push(self.in_features),
            }
            return Err(LayerError::InputShape {
                layer: Self::NAME,
                expected,
                actual: x.shape.clone(),
            });
        }
        self.clamp.check()?;
        self.weights.check(Self::NAME, dtype == DType::I16)?;
        if dtype == DType::I8 && !accumulator_fits(self.in_features, 128, 255, 0) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "too many inputs per output for an exact i32 sum",
            });
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().unwrap_or(&mut 0) = self.out_features;
        Ok(TensorSpec::new(shape, dtype, self.output))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        self.out_features.checked_mul(self.unit_bytes(inputs[0])?)
    }
    fn macs(&self, inputs: &[&TensorSpec]) -> Option<u64> {
        (inputs[0].numel()? as u64).checked_mul(self.out_features as u64)
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let (n, out) = (work::numel(x), self.out_features as u64);
        let rows = n / self.in_features.max(1) as u64;
        work::sum(&[
            (n.saturating_mul(out), work::mac(x)),
            (rows.saturating_mul(out), work::elem(x, work::REQUANT)),
        ])
    }
    fn segment_work(&self, inputs: &[&TensorSpec]) -> u64 {
        work::sum(&[(work::numel(inputs[0]), work::ELEM)])
    }
    fn units(&self, _: &[&TensorSpec]) -> Option<usize> {
        Some(self.out_features)
    }
    fn weight_range(&self, inputs: &[&TensorSpec], units: Range<usize>) -> Option<Range<usize>> {
        let u = self.unit_bytes(inputs[0])?;
        Some(units.start.checked_mul(u)?..units.end.checked_mul(u)?)
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
        if self.weights == WeightFormat::Int4 {
            return self.forward_int4(inputs[0], weights, units, out);
        }
        let x = i8_data(Self::NAME, inputs[0])?;
        let (n_in, n_out, zp) = (self.in_features, self.out_features, self.output.zero_point);
        // Centered and widened once, for all rows; rows go two at a time (dot2_i8).
        let xs: Vec<i64> = centered(x, inputs[0].quant.zero_point)
            .into_iter()
            .map(i64::from)
            .collect();
        let y = i8_data_mut(Self::NAME, out)?;
        let rq = |acc: i32, m| requantize_one(acc, m, zp, self.clamp);
        for (xi, yi) in xs.chunks_exact(n_in).zip(y.chunks_exact_mut(n_out)) {
            let mut w = WeightReader::new(Self::NAME, weights);
            let mut ys = yi.get_mut(units.clone()).unwrap_or_default().iter_mut();
            while let Some(y0) = ys.next() {
                let (w0, b0, m0) = w.unit(n_in)?;
                match ys.next() {
                    Some(y1) => {
                        let (w1, b1, m1) = w.unit(n_in)?;
                        let (a0, a1) = dot2_i8(w0, w1, xi);
                        (*y0, *y1) = (rq(b0.wrapping_add(a0), m0), rq(b1.wrapping_add(a1), m1));
                    }
                    None => *y0 = rq(b0.wrapping_add(dot2_i8(w0, w0, xi).0), m0),
                }
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn};

    use super::Dense;
    use crate::weights::{push_channel, real_clamp};
    use crate::{QuantSpec, Quantize, Result};

    /// Dense in f64: the reference, and the source of the quantized layer.
    #[derive(Clone, Debug)]
    pub struct DenseF64 {
        /// `out × in` (ONNX Gemm with `transB = 1`).
        pub w: Array2<f64>,
        pub b: Array1<f64>,
        /// Real-valued output clamp (ReLU: `(0, ∞)`, ReLU6: `(0, 6)`).
        pub clamp: Option<(f64, f64)>,
    }

    impl DenseF64 {
        /// `y = clamp(x·Wᵀ + b)` over the last axis of `x`.
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let n_in = self.w.ncols();
            let rows = x.len() / n_in.max(1);
            let x2 = x.to_shape((rows, n_in)).expect("input's last axis is in_features");
            let mut y = x2.dot(&self.w.t()) + self.b.view().insert_axis(Axis(0));
            if let Some((lo, hi)) = self.clamp {
                y.mapv_inplace(|v| v.clamp(lo, hi));
            }
            let mut shape = x.shape().to_vec();
            *shape.last_mut().unwrap() = self.w.nrows();
            y.to_shape(IxDyn(&shape)).unwrap().into_owned()
        }

        /// Folds a BatchNorm (as the affine map `a·y + b` per output) that follows this layer
        /// into its weights: `W' = diag(a)·W`, `b' = a·b + b_bn`. The pair then costs one layer.
        pub fn fold_batch_norm(&self, bn: &crate::AffineF64) -> DenseF64 {
            let a = Array1::from(bn.a.clone());
            DenseF64 {
                w: &self.w * &a.view().insert_axis(Axis(1)),
                b: &a * &self.b + Array1::from(bn.b.clone()),
                clamp: self.clamp,
            }
        }
    }

    impl Quantize for DenseF64 {
        type Layer = Dense;

        /// Per-row symmetric weights (int8, int4, or int16 with i64 biases), the bias at scale
        /// `s_x·s_w`, one multiplier per row.
        fn quantize(&self, q: &QuantSpec) -> Result<(Dense, Vec<u8>)> {
            let (x_qp, y_qp, dtype) = (&q.input, &q.output, q.dtype);
            let (n_out, n_in) = self.w.dim();
            let scales = (x_qp.scale_f64(), y_qp.scale_f64());
            let mut bytes = Vec::with_capacity(n_out * (n_in + 9));
            for r in 0..n_out {
                push_channel(&mut bytes, self.w.row(r), self.b[r], scales, (dtype, q.weights))?;
            }
            let clamp = real_clamp(self.clamp, y_qp, dtype);
            Ok((
                Dense {
                    in_features: n_in,
                    out_features: n_out,
                    clamp,
                    output: *y_qp,
                    weights: q.weights,
                },
                bytes,
            ))
        }
    }
}

#[cfg(feature = "std")]
#[cfg(feature = "std")]
pub use host::DenseF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use ndarray::{Array1, Array2};
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (DenseF64, Vec<f64>, usize, bool)> {
        (1usize..24, 1usize..48, 1usize..3, any::<bool>()).prop_flat_map(|(n_out, n_in, rows, relu)| {
            (
                proptest::collection::vec(-1f64..1.0, n_out * n_in),
                proptest::collection::vec(-0.5f64..0.5, n_out),
                proptest::collection::vec(-2f64..3.0, rows * n_in),
            )
                .prop_map(move |(w, b, x)| {
                    let d = DenseF64 {
                        w: Array2::from_shape_vec((n_out, n_in), w).unwrap(),
                        b: Array1::from(b),
                        clamp: relu.then_some((0.0, f64::INFINITY)),
                    };
                    (d, x, rows, relu)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64((d, x, rows, _) in case(), (dtype, format) in weight_forms()) {
            let n_in = d.w.ncols();
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, n_in], x).unwrap();
            let reference = d.forward(&xf);
            let (xq, x_qp) = quantize_input_as(&xf, dtype);
            let y_qp = output_params_as(&reference, dtype);
            let q = QuantSpec::new(x_qp, y_qp, dtype).with_weights(format);
            let (layer, weights) = d.quantize(&q).unwrap();
            let unit = weights.len() / d.w.nrows();
            if format == WeightFormat::Int4 {
                prop_assert_eq!(unit, n_in.div_ceil(2) + crate::INT4_TAIL);
            }
            let y = Layer::Dense(layer).run(&[&xq], &weights).unwrap();
            prop_assert_eq!(y.dtype(), dtype);
            let (sx, sy) = (x_qp.scale_f64(), y_qp.scale_f64());
            for (i, (&got, &want)) in dequant(&y).iter().zip(reference.iter()).enumerate() {
                let (r, row) = (i / d.w.nrows(), i % d.w.nrows());
                let max_w = d.w.row(row).iter().fold(0f64, |a, v| a.max(v.abs()));
                let sw = weight_scale(max_w, d.b[row], (sx, sy), (dtype, format), &weights[row * unit..][..unit]);
                let xs = xf.as_slice().unwrap();
                let input: f64 = (0..n_in).map(|c| d.w[[row, c]].abs() * sx / 2.0 + xs[r * n_in + c].abs() * sw / 2.0 + sx * sw / 4.0).sum();
                let bound = sy / 2.0 + sx * sw / 2.0 + input + 1e-9;
                prop_assert!((got - want).abs() <= bound, "y[{}] = {} vs {} (bound {})", i, got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass((d, x, rows, _) in case(), cuts in proptest::collection::vec(any::<u16>(), 0..6), (dtype, format) in weight_forms()) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, d.w.ncols()], x).unwrap();
            let (xq, x_qp) = quantize_input_as(&xf, dtype);
            let q = QuantSpec::new(x_qp, output_params_as(&d.forward(&xf), dtype), dtype).with_weights(format);
            let (layer, weights) = d.quantize(&q).unwrap();
            assert_segments_match(&Layer::Dense(layer), &[&xq], &weights, &cuts);
        }
    }

    #[test]
    fn near_zero_rows_quantize() {
        // A unit that training left with ~1e-12 weights (and one with a large bias) still
        // gets representable multipliers; its output is its bias.
        let d = DenseF64 {
            w: ndarray::arr2(&[[1e-12, -1e-12], [0.5, -0.25], [0.0, 0.0]]),
            b: ndarray::arr1(&[0.1, 0.0, 3.0]),
            clamp: None,
        };
        let x_qp = QuantParams::asymmetric(0.0, 16.0, DType::I8).unwrap();
        let y_qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
        let (layer, w) = d.quantize(&QuantSpec::int8(x_qp, y_qp)).unwrap();
        let x = quantize_with(&ndarray::arr1(&[16.0, 8.0]).into_dyn(), &x_qp);
        let y = dequant(&Layer::Dense(layer).run(&[&x], &w).unwrap());
        for (got, want) in y.iter().zip([0.1f64, 6.0, 3.0]) {
            assert!((got - want.min(4.0)).abs() <= y_qp.scale_f64(), "{y:?}");
        }
        // Weight decay's dead units: denormal weights into a narrow output range.
        let d = DenseF64 {
            w: ndarray::arr2(&[[4e-43, -4e-43], [0.05, 0.01]]),
            b: ndarray::arr1(&[0.0, 0.1]),
            clamp: None,
        };
        let y_qp = QuantParams::asymmetric(0.0, 0.5, DType::I8).unwrap();
        let (layer, w) = d.quantize(&QuantSpec::int8(x_qp, y_qp)).unwrap();
        let y = dequant(&Layer::Dense(layer).run(&[&x], &w).unwrap());
        for (got, want) in y.iter().zip([0.0f64, 0.5]) {
            assert!((got - want).abs() <= y_qp.scale_f64(), "{y:?}");
        }
    }

    #[test]
    fn batch_norm_folds_into_dense() {
        let d = DenseF64 {
            w: Array2::from_shape_fn((2, 3), |(r, c)| (r * 3 + c) as f64 * 0.1),
            b: Array1::from(vec![0.5, -0.5]),
            clamp: None,
        };
        let bn = crate::AffineF64::batch_norm(&[2.0, 0.5], &[0.1, 0.2], &[0.3, -0.4], &[1.0, 0.25], 0.0);
        let x = ndarray::ArrayD::from_shape_vec(vec![3], vec![1.0, -2.0, 0.5]).unwrap();
        let separate = bn.forward(&d.forward(&x));
        let folded = d.fold_batch_norm(&bn).forward(&x);
        assert!(folded.iter().zip(separate.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let d = DenseF64 {
            w: Array2::ones((3, 4)),
            b: Array1::zeros(3),
            clamp: None,
        };
        let qp = QuantParams {
            scale: cwnn_tensor::Dyadic::ONE,
            zero_point: 0,
        };
        let (layer, weights) = d.quantize(&QuantSpec::int8(qp, qp)).unwrap();
        let layer = Layer::Dense(layer);
        let x = int8_tensor(vec![5], qp);
        assert!(matches!(layer.run(&[&x], &weights), Err(LayerError::InputShape { .. })));
        let x = int8_tensor(vec![4], qp);
        assert!(matches!(
            layer.run(&[&x], &weights[1..]),
            Err(LayerError::WeightLength { .. })
        ));
        assert!(matches!(
            layer.run(&[&x, &x], &weights),
            Err(LayerError::InputCount { .. })
        ));
        let mut out = layer.output_spec(&[&TensorSpec::of(&x)]).unwrap().zeros().unwrap();
        assert!(matches!(
            layer.forward(&[&x], &weights, 2..4, &mut out, &mut []),
            Err(LayerError::Units { .. })
        ));
        let wide = Layer::Dense(Dense {
            in_features: 70_000,
            out_features: 1,
            clamp: Clamp::full::<i8>(),
            output: qp,
            weights: WeightFormat::Native,
        });
        let wide_x = TensorSpec::new(vec![70_000], DType::I8, qp);
        assert!(
            matches!(wide.output_spec(&[&wide_x]), Err(LayerError::Config { .. })),
            "i32 sum could overflow"
        );
        let mut torn = x.clone();
        torn.shape = vec![2, 4]; // data of 4 under a shape of 8: refused, not a panic
        assert!(matches!(
            layer.run(&[&torn], &weights),
            Err(LayerError::InputShape { .. })
        ));
        // An int16 input needs the int16 weight layout: int8 weights are refused.
        let (wide_x, _) = quantize_input_as(&ndarray::ArrayD::zeros(vec![4]), DType::I16);
        assert!(matches!(
            layer.run(&[&wide_x], &weights),
            Err(LayerError::WeightLength { .. })
        ));
        let mut bad = weights.clone();
        bad[4 + 4 + 4] = 0; // shift of row 0
        assert!(matches!(layer.run(&[&x], &bad), Err(LayerError::Weights { .. })));
        // Int4: its own length, its own shift check, and no int16 activations.
        let (int4, w4) = d
            .quantize(&QuantSpec::int8(qp, qp).with_weights(WeightFormat::Int4))
            .unwrap();
        assert_eq!(w4.len(), 3 * (2 + crate::INT4_TAIL));
        let int4 = Layer::Dense(int4);
        assert!(matches!(
            int4.run(&[&x], &weights),
            Err(LayerError::WeightLength { .. })
        ));
        let mut bad = w4.clone();
        bad[2 + 4] = 63; // shift of row 0
        assert!(matches!(int4.run(&[&x], &bad), Err(LayerError::Weights { .. })));
        assert!(matches!(int4.run(&[&wide_x], &w4), Err(LayerError::Config { .. })));
    }

    /// Int4 packs two weights per byte with a 5-byte channel tail: a 256→256 layer stores
    /// at most 0.52 bytes per parameter (weights and biases), all constants included.
    #[test]
    fn int4_stores_under_0_52_bytes_per_parameter() {
        let d = DenseF64 {
            w: Array2::from_shape_fn((256, 256), |(r, c)| ((r * 31 + c * 7) % 15) as f64 / 7.0 - 1.0),
            b: Array1::from_shape_fn(256, |r| r as f64 / 256.0 - 0.5),
            clamp: None,
        };
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let (_, w) = d
            .quantize(&QuantSpec::int8(qp, qp).with_weights(WeightFormat::Int4))
            .unwrap();
        let params = 256 * 256 + 256;
        assert_eq!(w.len(), 256 * (128 + 5));
        assert!(
            w.len() as f64 / params as f64 <= 0.52,
            "{} bytes per parameter",
            w.len() as f64 / params as f64
        );
    }
}
