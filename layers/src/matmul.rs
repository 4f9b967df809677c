//! Product of two activations, batched (ONNX MatMul with no constant operand: attention's
//! `Q·Kᵀ` and `softmax(·)·V`).
//!
//! `y[h, i, j] = clamp(zp_y + round_half_up(Σ_k (a[h, i, k] − zp_a)·(b[h, k, j] − zp_b) · m))`
//! with `m = s_a·s_b/s_y`. `a` is `[..., M, K]` (`[..., K, M]` with `transpose_a`), `b` is
//! `[..., K, N]` (`[..., N, K]` with `transpose_b`); the leading axes are equal, or one operand
//! has none and is shared by every batch. Output `[..., M, N]`. No weights. Units: output rows
//! (`batch·M`, so a job splits attention by head and query row); a segment packs the columns
//! of `b` for the batches it touches.
//!
//! int8: both operands centred (`|·| ≤ 255`) and packed in pairs along K (`kernels::pairs`,
//! two products per multiply), four columns per pass: exact while `K·255² < 2^31`. `int16`
//! precision: plain i64 sums (exact for `K < 2^30`). **Bound** against f64 on the real inputs, per output:
//! `s_y/2 + |α|·Σ_k (|a_k|·s_b/2 + |b_k|·s_a/2 + s_a·s_b/4)` plus the multiplier's 2^-31
//! relative (`α` the folded scale, 1 for a plain product).
//!
//! **Work**: `macs·MAC + rows·N·REQUANT + rows·K·ELEM` (each row of `a` packed) plus `|b|·ELEM`
//! per segment (the columns); `MAC` = 5 and `REQUANT` doubled in int16; see
//! `work.rs`.

use core::ops::Range;

use alloc::vec::Vec;
use cwnn_tensor::kernels::{
    accumulator_fits, activation_pair, dot_i64, dot_packed4, requantize_i64, requantize_one, weight_pair, Clamp,
};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, expect_act, Act};
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MatMul {
    /// `a` is stored `[..., K, M]`.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "core::ops::Not::not"))]
    pub transpose_a: bool,
    /// `b` is stored `[..., N, K]` (attention's `Q·Kᵀ` reads `K` so, with no data moved).
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "core::ops::Not::not"))]
    pub transpose_b: bool,
    /// `s_a·s_b/s_y` (times a constant scale folded in: attention's `1/√d`).
    pub multiplier: Dyadic,
    pub output: QuantParams,
}

/// The product's sizes: `batch` products of `[M, K] × [K, N]`; a shared operand has one.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a_shared: bool,
    b_shared: bool,
}

impl MatMul {
    /// Checks the operands and gives the output's leading axes and the sizes.
    fn dims(&self, a: &TensorSpec, b: &TensorSpec) -> Result<(Vec<usize>, Dims)> {
        let shape_err = |expected: Vec<usize>, actual: &[usize]| LayerError::InputShape {
            layer: Self::NAME,
            expected,
            actual: actual.to_vec(),
        };
        let (ra, rb) = (a.shape.len(), b.shape.len());
        if ra < 2 || rb < 2 {
            let short = if ra < 2 { &a.shape } else { &b.shape };
            return Err(shape_err(alloc::vec![0, 0], short));
        }
        let ((la, ta), (lb, tb)) = (a.shape.split_at(ra - 2), b.shape.split_at(rb - 2));
        let (m, k) = if self.transpose_a {
            (ta[1], ta[0])
        } else {
            (ta[0], ta[1])
        };
        let (kb, n) = if self.transpose_b {
            (tb[1], tb[0])
        } else {
            (tb[0], tb[1])
        };
        if kb != k {
            let mut expected = b.shape.clone();
            expected[rb - 2 + self.transpose_b as usize] = k;
            return Err(shape_err(expected, &b.shape));
        }
        let (a_shared, b_shared) = (la.is_empty() && !lb.is_empty(), lb.is_empty());
        if !(la == lb || a_shared || b_shared) {
            let mut expected = la.to_vec();
            expected.extend_from_slice(tb);
            return Err(shape_err(expected, &b.shape));
        }
        if m == 0 || k == 0 || n == 0 {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "M, K and N must be ≥ 1",
            });
        }
        let lead = if a_shared { lb } else { la };
        let batch = lead.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
        let batch = batch.ok_or(LayerError::SizeOverflow { layer: Self::NAME })?;
        let dims = Dims {
            batch,
            m,
            k,
            n,
            a_shared,
            b_shared,
        };
        Ok((lead.to_vec(), dims))
    }

    /// One body for both precisions. int8: the columns of `b` packed as weight pairs and each
    /// row of `a` as activation pairs (`kernels::pairs`), four columns per pass; int16: one i64
    /// per value, plain sums.
    fn product<T: Act>(&self, inputs: &[&QTensor], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let (a, b) = (inputs[0], inputs[1]);
        let (_, d) = self.dims(&TensorSpec::of(a), &TensorSpec::of(b))?;
        let (xa, xb) = (act_data::<T>(Self::NAME, a)?, act_data::<T>(Self::NAME, b)?);
        let (za, zb) = (a.quant.zero_point, b.quant.zero_point);
        let int8 = T::DTYPE == DType::I8;
        let kp = if int8 { d.k.div_ceil(2) } else { d.k };
        let (m, zp, full) = (self.multiplier, self.output.zero_point, Clamp::full::<T>());
        let rq = |s: i32| requantize_one::<T>(s, m, zp, full);
        let y = act_data_mut::<T>(Self::NAME, out)?;
        // int8: `b`'s columns in groups of four, interleaved pair by pair (`dot_packed4`),
        // a short last group padded with zero columns; int16: one column after another.
        let groups = d.n.div_ceil(4);
        let (mut line, mut cols, mut row, mut cur) = (Vec::new(), Vec::new(), Vec::new(), usize::MAX);
        for u in units {
            let (h, i) = (u / d.m, u % d.m);
            let (ha, hb) = (if d.a_shared { 0 } else { h }, if d.b_shared { 0 } else { h });
            if hb != cur {
                line.clear();
                for j in 0..d.n {
                    let (start, stride) = match self.transpose_b {
                        true => (hb * d.k * d.n + j * d.k, 1),
                        false => (hb * d.k * d.n + j, d.n),
                    };
                    push_line(&mut line, xb, zb, (start, stride, d.k), weight_pair);
                }
                cols.clear();
                match int8 {
                    true => cols.extend((0..groups * kp * 4).map(|x| {
                        let (g, t, q) = (x / (4 * kp), x / 4 % kp, x % 4);
                        line.get((4 * g + q) * kp + t).copied().unwrap_or(0)
                    })),
                    false => cols.extend_from_slice(&line),
                }
                cur = hb;
            }
            let (start, stride) = match self.transpose_a {
                true => (ha * d.m * d.k + i, d.m),
                false => (ha * d.m * d.k + i * d.k, 1),
            };
            row.clear();
            push_line(&mut row, xa, za, (start, stride, d.k), activation_pair);
            let yr = &mut y[u * d.n..(u + 1) * d.n];
            if !int8 {
                for (c, yv) in cols.chunks_exact(kp).zip(yr.iter_mut()) {
                    *yv = requantize_i64(dot_i64(c, &row), m, zp, full);
                }
                continue;
            }
            for (w, ys) in cols.chunks_exact(4 * kp).zip(yr.chunks_mut(4)) {
                let p = dot_packed4(w, &row);
                match ys {
                    [y0, y1, y2, y3] => (*y0, *y1, *y2, *y3) = (rq(p[0]), rq(p[1]), rq(p[2]), rq(p[3])),
                    short => short.iter_mut().zip(p).for_each(|(yv, s)| *yv = rq(s)),
                }
            }
        }
        Ok(())
    }
}

/// Appends `len` values of `x` from `start`, `stride` apart, centred on `zp`: as pairs (`pair`)
/// in int8, one i64 each in int16. A contiguous line goes through a slice's chunks, with no
/// bounds test per value (a metered branch in Wasm).
fn push_line<T: Act>(
    out: &mut Vec<i64>,
    x: &[T],
    zp: i32,
    (start, stride, len): (usize, usize, usize),
    pair: impl Fn(i32, i32) -> i64,
) {
    // Wrapping, as every kernel centres: a zero point from outside cannot trap a debug build.
    let c = |v: &T| v.to_i32().wrapping_sub(zp);
    let int8 = T::DTYPE == DType::I8;
    if stride == 1 {
        let line = x.get(start..start + len).unwrap_or_default();
        if !int8 {
            return out.extend(line.iter().map(|v| i64::from(c(v))));
        }
        let (pairs, tail) = line.as_chunks::<2>();
        out.extend(pairs.iter().map(|[p, q]| pair(c(p), c(q))));
        if let [v] = tail {
            out.push(pair(c(v), 0));
        }
        return;
    }
    let mut vals = x
        .get(start..)
        .unwrap_or_default()
        .iter()
        .step_by(stride.max(1))
        .take(len)
        .map(c);
    match int8 {
        true => {
            while let Some(v) = vals.next() {
                out.push(pair(v, vals.next().unwrap_or(0)));
            }
        }
        false => out.extend(vals.map(i64::from)),
    }
}

impl Op for MatMul {
    const NAME: &'static str = "matmul";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Attn);

    fn arity(&self) -> usize {
        2
    }
    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let (a, b) = (inputs[0], inputs[1]);
        let dtype = expect_act(Self::NAME, a)?;
        if b.dtype != dtype {
            return Err(LayerError::InputDType {
                layer: Self::NAME,
                expected: dtype.name(),
                actual: b.dtype.name(),
            });
        }
        let (mut shape, d) = self.dims(a, b)?;
        let fits = match dtype {
            DType::I8 => accumulator_fits(d.k, 255, 255, 0),
            _ => d.k < 1 << 30,
        };
        if !fits {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "K too large for an exact sum",
            });
        }
        self.multiplier.validate()?;
        shape.extend([d.m, d.n]);
        Ok(TensorSpec::new(shape, dtype, self.output))
    }
    fn macs(&self, inputs: &[&TensorSpec]) -> Option<u64> {
        let (_, d) = self.dims(inputs[0], inputs[1]).ok()?;
        Some(work::count(&[d.batch, d.m, d.n, d.k]))
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let (a, b) = (inputs[0], inputs[1]);
        let Ok((_, d)) = self.dims(a, b) else {
            return u64::MAX;
        };
        let outputs = work::count(&[d.batch, d.m, d.n]);
        let a_rows = work::count(&[d.batch, d.m, d.k]);
        work::sum(&[
            (outputs.saturating_mul(d.k as u64), work::mac(a)),
            (outputs, work::elem(a, work::REQUANT)),
            (a_rows, work::ELEM),
        ])
    }
    fn segment_work(&self, inputs: &[&TensorSpec]) -> u64 {
        work::sum(&[(work::numel(inputs[1]), work::ELEM)])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        let (_, d) = self.dims(inputs[0], inputs[1]).ok()?;
        d.batch.checked_mul(d.m)
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        _: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        match inputs[0].dtype() {
            DType::I16 => self.product::<i16>(inputs, units, out),
            _ => self.product::<i8>(inputs, units, out),
        }
    }
}

#[cfg(feature = "std")]
mod host {
    use cwnn_tensor::host::requant_multiplier;
    use ndarray::{Array2, ArrayD, Axis, IxDyn};

    use super::MatMul;
    use crate::{LayerError, QuantSpec, Quantize, Result};

    /// `alpha·(a·b)` in f64 (leading axes equal, or one operand 2-D and shared). `alpha` is a
    /// constant scale folded in (attention's `1/√d`): it costs nothing, being part of the
    /// layer's multiplier.
    #[derive(Clone, Debug)]
    pub struct MatMulF64 {
        pub transpose_a: bool,
        pub transpose_b: bool,
        pub alpha: f64,
    }

    impl MatMulF64 {
        /// `a·b`, either operand read transposed.
        pub fn new(transpose_a: bool, transpose_b: bool) -> Self {
            MatMulF64 {
                transpose_a,
                transpose_b,
                alpha: 1.0,
            }
        }
    }

    /// The 2-D matrices of `x` (its last two axes), transposed when `t`.
    fn matrices(x: &ArrayD<f64>, t: bool) -> Vec<Array2<f64>> {
        let r = x.ndim();
        let (p, q) = (x.shape()[r - 2], x.shape()[r - 1]);
        let flat = x.as_standard_layout().into_owned();
        let flat = flat.to_shape(IxDyn(&[x.len() / (p * q).max(1), p, q])).unwrap();
        flat.axis_iter(Axis(0))
            .map(|m| {
                let m = m.into_dimensionality::<ndarray::Ix2>().unwrap();
                if t {
                    m.t().to_owned()
                } else {
                    m.to_owned()
                }
            })
            .collect()
    }

    impl MatMulF64 {
        pub fn forward(&self, a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
            let (ma, mb) = (matrices(a, self.transpose_a), matrices(b, self.transpose_b));
            let batch = ma.len().max(mb.len());
            let ys: Vec<Array2<f64>> = (0..batch).map(|h| ma[h % ma.len()].dot(&mb[h % mb.len()])).collect();
            let lead = if a.ndim() >= b.ndim() { a.shape() } else { b.shape() };
            let mut shape = lead[..lead.len() - 2].to_vec();
            shape.extend([ys[0].nrows(), ys[0].ncols()]);
            let data: Vec<f64> = ys.iter().flat_map(|y| y.iter().map(|v| self.alpha * v)).collect();
            ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
        }
    }

    impl Quantize for MatMulF64 {
        type Layer = MatMul;

        /// No weights: the multiplier `alpha·s_a·s_b/s_y`.
        fn quantize(&self, q: &QuantSpec) -> Result<(MatMul, Vec<u8>)> {
            let b = q.second.ok_or(LayerError::Config {
                layer: "matmul",
                reason: "needs its second input's quantization",
            })?;
            let multiplier = requant_multiplier(self.alpha * q.input.scale_f64(), b.scale_f64(), q.output.scale_f64())?;
            let layer = MatMul {
                transpose_a: self.transpose_a,
                transpose_b: self.transpose_b,
                multiplier,
                output: q.output,
            };
            Ok((layer, Vec::new()))
        }
    }
}

#[cfg(feature = "std")]
pub use host::MatMulF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use ndarray::ArrayD;
    use proptest::prelude::*;

    /// Random operands: a batch of heads (or a shared 2-D operand), either one transposed.
    fn case() -> impl Strategy<Value = (MatMulF64, ArrayD<f64>, ArrayD<f64>, u8)> {
        (
            1usize..4,
            1usize..7,
            1usize..40,
            1usize..9,
            any::<(bool, bool)>(),
            0u8..3,
        )
            .prop_flat_map(|(h, m, k, n, (ta, tb), shared)| {
                let sa = if shared == 1 { vec![] } else { vec![h] };
                let sb = if shared == 2 { vec![] } else { vec![h] };
                let dims = |mut lead: Vec<usize>, r: usize, c: usize, t: bool| {
                    lead.extend(if t { [c, r] } else { [r, c] });
                    lead
                };
                let (sa, sb) = (dims(sa, m, k, ta), dims(sb, k, n, tb));
                let (na, nb) = (sa.iter().product::<usize>(), sb.iter().product::<usize>());
                (
                    proptest::collection::vec(-2f64..3.0, na),
                    proptest::collection::vec(-1.5f64..1.0, nb),
                )
                    .prop_map(move |(a, b)| {
                        let f = MatMulF64 {
                            alpha: [1.0, 0.35, -2.0][shared as usize],
                            ..MatMulF64::new(ta, tb)
                        };
                        let a = ArrayD::from_shape_vec(sa.clone(), a).unwrap();
                        let b = ArrayD::from_shape_vec(sb.clone(), b).unwrap();
                        (f, a, b, shared)
                    })
            })
    }

    fn quantized(f: &MatMulF64, a: &ArrayD<f64>, b: &ArrayD<f64>, int16: bool) -> (Layer, QTensor, QTensor, [f64; 3]) {
        let dtype = precision(int16);
        let (aq, a_qp) = quantize_input_as(a, dtype);
        let (bq, b_qp) = quantize_input_as(b, dtype);
        let y_qp = output_params_as(&f.forward(a, b), dtype);
        let q = QuantSpec::new(a_qp, y_qp, dtype).with_second(Some(b_qp));
        let (layer, w) = f.quantize(&q).unwrap();
        assert!(w.is_empty());
        let scales = [a_qp.scale_f64(), b_qp.scale_f64(), y_qp.scale_f64()];
        (Layer::MatMul(layer), aq, bq, scales)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64((f, a, b, _) in case(), int16 in any::<bool>()) {
            let reference = f.forward(&a, &b);
            let (layer, aq, bq, [sa, sb, sy]) = quantized(&f, &a, &b, int16);
            let y = layer.run(&[&aq, &bq], &[]).unwrap();
            prop_assert_eq!(&y.shape, &reference.shape().to_vec());
            // The bound of each output from |a| and |b| along its dot product.
            let abs = MatMulF64 { alpha: f.alpha.abs(), ..f.clone() };
            let (aa, ba) = (a.mapv(f64::abs), b.mapv(f64::abs));
            let terms = abs.forward(&aa, &ndarray::ArrayD::ones(b.shape())).mapv(|v| v * sb / 2.0)
                + abs.forward(&ndarray::ArrayD::ones(a.shape()), &ba).mapv(|v| v * sa / 2.0)
                + abs.forward(&ndarray::ArrayD::ones(a.shape()), &ndarray::ArrayD::ones(b.shape())).mapv(|v| v * sa * sb / 4.0);
            for ((&got, &want), &t) in dequant(&y).iter().zip(reference.iter()).zip(terms.iter()) {
                let bound = sy / 2.0 + t + want.abs() * 2f64.powi(-30) + 1e-9;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass((f, a, b, _) in case(), cuts in proptest::collection::vec(any::<u16>(), 0..6), int16 in any::<bool>()) {
            let (layer, aq, bq, _) = quantized(&f, &a, &b, int16);
            assert_segments_match(&layer, &[&aq, &bq], &[], &cuts);
        }
    }

    /// Odd K (an unpaired tail), odd N (a lone last column), full int8 ranges at both ends:
    /// the packed sums stay exact against a plain integer product.
    #[test]
    fn packed_product_is_exact_at_the_extremes() {
        let qp = |zp| QuantParams {
            scale: Dyadic::ONE,
            zero_point: zp,
        };
        for (k, n, va, vb, za, zb) in [
            (33, 5, 127i8, -128i8, -128, 127),
            (1, 1, -128, -128, 127, 127),
            (64, 3, 127, 127, -128, -128),
        ] {
            let a = QTensor {
                shape: vec![2, k],
                data: cwnn_tensor::TensorData::I8(vec![va; 2 * k]),
                quant: qp(za),
            };
            let b = QTensor {
                shape: vec![k, n],
                data: cwnn_tensor::TensorData::I8(vec![vb; k * n]),
                quant: qp(zb),
            };
            // m = 2^-16: the exact product (k·255²) lands inside int8.
            let layer = Layer::MatMul(MatMul {
                transpose_a: false,
                transpose_b: false,
                multiplier: Dyadic { mantissa: 1, shift: 16 },
                output: qp(0),
            });
            let y = layer.run(&[&a, &b], &[]).unwrap();
            let exact = k as i64 * (va as i64 - za as i64) * (vb as i64 - zb as i64);
            let want = ((exact + (1 << 15)) >> 16).clamp(-128, 127) as i32;
            assert!(
                y.data.to_i32s().iter().all(|&v| v == want),
                "{k}×{n}: {:?} vs {want}",
                y.data
            );
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let qp = QuantParams {
            scale: Dyadic::ONE,
            zero_point: 0,
        };
        let layer = |ta, tb| {
            Layer::MatMul(MatMul {
                transpose_a: ta,
                transpose_b: tb,
                multiplier: Dyadic::ONE,
                output: qp,
            })
        };
        let t = |shape: Vec<usize>| int8_tensor(shape, qp);
        let l = layer(false, false);
        // K disagrees; transposing b makes it agree.
        assert!(matches!(
            l.run(&[&t(vec![2, 3]), &t(vec![4, 3])], &[]),
            Err(LayerError::InputShape { .. })
        ));
        assert!(layer(false, true).run(&[&t(vec![2, 3]), &t(vec![4, 3])], &[]).is_ok());
        // Rank 1, unequal heads, one input, a wrong type.
        assert!(matches!(
            l.run(&[&t(vec![3]), &t(vec![3, 2])], &[]),
            Err(LayerError::InputShape { .. })
        ));
        assert!(matches!(
            l.run(&[&t(vec![2, 2, 3]), &t(vec![3, 3, 2])], &[]),
            Err(LayerError::InputShape { .. })
        ));
        assert!(matches!(
            l.run(&[&t(vec![2, 3])], &[]),
            Err(LayerError::InputCount { .. })
        ));
        let (wide, _) = quantize_input_as(&ndarray::ArrayD::zeros(vec![3, 2]), DType::I16);
        assert!(matches!(
            l.run(&[&t(vec![2, 3]), &wide], &[]),
            Err(LayerError::InputDType { .. })
        ));
        // No weights; an i32 sum that could overflow; an invalid multiplier; bad units.
        assert!(matches!(
            l.run(&[&t(vec![2, 3]), &t(vec![3, 2])], &[0]),
            Err(LayerError::WeightLength { .. })
        ));
        let long = TensorSpec::new(vec![1, 40_000], DType::I8, qp);
        let tall = TensorSpec::new(vec![40_000, 1], DType::I8, qp);
        assert!(matches!(l.output_spec(&[&long, &tall]), Err(LayerError::Config { .. })));
        let bad = Layer::MatMul(MatMul {
            multiplier: Dyadic { mantissa: 1, shift: 0 },
            ..MatMul {
                transpose_a: false,
                transpose_b: false,
                multiplier: Dyadic::ONE,
                output: qp,
            }
        });
        assert!(bad.run(&[&t(vec![2, 3]), &t(vec![3, 2])], &[]).is_err());
        // A zero point from outside the type's range computes (wrapping), it does not trap.
        let mut odd = t(vec![2, 3]);
        odd.quant.zero_point = i32::MIN;
        assert!(l.run(&[&odd, &t(vec![3, 2])], &[]).is_ok());
        let (a, b) = (t(vec![2, 3]), t(vec![3, 2]));
        let mut out = l
            .output_spec(&[&TensorSpec::of(&a), &TensorSpec::of(&b)])
            .unwrap()
            .zeros()
            .unwrap();
        assert!(matches!(
            l.forward(&[&a, &b], &[], 1..3, &mut out, &mut []),
            Err(LayerError::Units { .. })
        ));
    }
}
