//! 2-D convolution (ONNX Conv, Keras Conv2D / DepthwiseConv2D): strides, explicit padding
//! (`same`/`valid` are explicit pads the importer computes), dilation, groups (depthwise when
//! `groups = channels`), bias, fused clamp.
//!
//! Input: int8 `[C, H, W]`. Output: int8 `[out_channels, OH, OW]`. Units: output channels;
//! unit `o` reads `[W[o]: i8 × (C/groups·KH·KW)][bias: i32][multiplier: i32 + u8]`.
//! **Bound**: as Dense, with the sum over the `C/groups·KH·KW` taps inside the image.
//!
//! `int16` precision (int16 input): int16 output, unit `o` reads int16 LE weights, an i64 bias
//! and the multiplier; sums in i64, weight-stationary over each tap's valid output columns.
//!
//! Int4 weights (`weights: int4`, int8 input): unit `o` reads the nibbles, an i24 bias and an
//! 8-bit multiplier (`WeightFormat`); each channel's nibbles become the int8 path's packed
//! weight pairs once (`pack_nibbles`), reused at every output position.
//!
//! **Work**: `macs·MAC + |y|·(REQUANT + ELEM) + out_channels·C/groups·KH·KW·ELEM`, plus per
//! segment `F·ELEM` with `F = |x| + C·(H+pads)·(W+pads) + groups·OH·OW·⌈C/groups·KH·KW / 2⌉`
//! (centring, padding and the patches of all groups, whatever channels the segment computes);
//! `MAC` = 5 and `REQUANT` doubled in int16.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::kernels::{
    accumulator_fits, centered, conv2d_centered, dot_packed, dot_packed2, pack_nibbles, pack_weights, requantize_i64,
    requantize_one, Clamp, Conv2dGeometry, Im2col,
};
use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data, act_data_mut, chw, expect_act, i8_data, i8_data_mut, is_int16};

use crate::weights::WeightReader;
use crate::{work, LayerError, Op, Result, TensorSpec, WeightFormat, Window2d};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Conv2d {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub out_channels: usize,
    /// Kernel, strides, dilations and padding `[top, left, bottom, right]`.
    pub window: Window2d,
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::dim"))]
    #[cfg_attr(feature = "schema", schemars(with = "u32"))]
    pub groups: usize,
    pub clamp: Clamp,
    pub output: QuantParams,
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "WeightFormat::is_native"))]
    pub weights: WeightFormat,
}

impl Conv2d {
    /// The geometry over an input spec, validated.
    pub fn geometry(&self, x: &TensorSpec) -> Result<Conv2dGeometry> {
        self.window
            .conv_geometry(Self::NAME, chw(Self::NAME, x)?, self.out_channels, self.groups)
    }
    fn unit_bytes(&self, g: &Conv2dGeometry, x: &TensorSpec) -> Option<usize> {
        self.weights.unit_bytes(g.weights_per_channel(), is_int16(x))
    }

    /// Elements every segment handles whatever its channels (int8 form): the input, its
    /// padded copy, and one output row of patches of every group per output row. `None` if
    /// the scratch buffers would not fit `usize`.
    fn segment_elems(g: &Conv2dGeometry) -> Option<(usize, usize, usize)> {
        let (hp, wp) = (g.in_h + g.pad_top + g.pad_bottom, g.in_w + g.pad_left + g.pad_right);
        let padded = hp.checked_mul(wp)?.checked_mul(g.in_channels)?;
        let row = g
            .groups
            .checked_mul(g.out_w())?
            .checked_mul(g.weights_per_channel().div_ceil(2))?;
        Some((g.input_len()?, padded, row))
    }

    /// `int16` precision: int16 weights and activations, i64 sums over the taps in the image.
    fn forward_i16(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let g = self.geometry(&TensorSpec::of(x))?;
        let zx = i64::from(x.quant.zero_point);
        let xs: Vec<i64> = act_data::<i16>(Self::NAME, x)?
            .iter()
            .map(|&v| i64::from(v) - zx)
            .collect();
        let (plane, per) = (g.out_h() * g.out_w(), g.weights_per_channel());
        let y = act_data_mut::<i16>(Self::NAME, out)?;
        let mut w = WeightReader::new(Self::NAME, weights);
        let mut acc = vec![0i64; plane];
        for o in units {
            let (wb, bias, m) = w.unit_i16(per)?;
            let wo: Vec<i16> = wb.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            // Weight-stationary over the valid output columns of each tap (long inner loops).
            conv2d_centered(&g, &xs, &wo, Some(&[bias]), o..o + 1, &mut acc)?;
            for (yi, &a) in y[o * plane..(o + 1) * plane].iter_mut().zip(&acc) {
                *yi = requantize_i64(a, m, self.output.zero_point, self.clamp);
            }
        }
        Ok(())
    }
}

impl Op for Conv2d {
    const NAME: &'static str = "conv2d";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Conv);

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let dtype = expect_act(Self::NAME, inputs[0])?;
        let g = self.geometry(inputs[0])?;
        self.clamp.check()?;
        self.weights.check(Self::NAME, dtype == DType::I16)?;
        if dtype == DType::I8 && !accumulator_fits(g.weights_per_channel(), 128, 255, 0) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "too many taps per output for an exact i32 sum",
            });
        }
        Self::segment_elems(&g).ok_or(LayerError::SizeOverflow { layer: Self::NAME })?;
        Ok(TensorSpec::new(
            vec![g.out_channels, g.out_h(), g.out_w()],
            dtype,
            self.output,
        ))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        let g = self.geometry(inputs[0]).ok()?;
        self.out_channels.checked_mul(self.unit_bytes(&g, inputs[0])?)
    }
    fn macs(&self, inputs: &[&TensorSpec]) -> Option<u64> {
        let g = self.geometry(inputs[0]).ok()?;
        let dims = [g.weights_per_channel(), g.out_h(), g.out_w(), g.out_channels];
        dims.iter().try_fold(1u64, |p, &d| p.checked_mul(d as u64))
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let Ok(g) = self.geometry(x) else { return u64::MAX };
        let (per, c, (oh, ow)) = (g.weights_per_channel(), g.out_channels, (g.out_h(), g.out_w()));
        work::sum(&[
            (work::count(&[per, oh, ow, c]), work::mac(x)),
            (work::count(&[c, oh, ow]), work::elem(x, work::REQUANT) + work::ELEM),
            (work::count(&[c, per]), work::ELEM),
        ])
    }
    fn segment_work(&self, inputs: &[&TensorSpec]) -> u64 {
        let Ok(g) = self.geometry(inputs[0]) else {
            return u64::MAX;
        };
        let Some((input, padded, row)) = Self::segment_elems(&g) else {
            return u64::MAX;
        };
        work::sum(&[
            (input as u64, work::ELEM),
            (padded as u64, work::ELEM),
            (work::count(&[row, g.out_h()]), work::ELEM),
        ])
    }
    fn units(&self, _: &[&TensorSpec]) -> Option<usize> {
        Some(self.out_channels)
    }
    fn weight_range(&self, inputs: &[&TensorSpec], units: Range<usize>) -> Option<Range<usize>> {
        let u = self.unit_bytes(&self.geometry(inputs[0]).ok()?, inputs[0])?;
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
        // As dot products over packed pairs (cwnn_tensor's pairs.rs): each channel's weights
        // are packed once and reused at every output position, each row of input patches
        // once and reused by every channel of its group.
        let g = self.geometry(&TensorSpec::of(inputs[0]))?;
        let xs = centered(i8_data(Self::NAME, inputs[0])?, inputs[0].quant.zero_point);
        let (oh, ow) = (g.out_h(), g.out_w());
        let (per, cout_g) = (g.weights_per_channel(), g.out_channels / g.groups);
        let im2col = Im2col::new(&g, &xs)?;
        let pairs = im2col.pairs();
        let mut w = WeightReader::new(Self::NAME, weights);
        let mut channels = Vec::with_capacity(units.len());
        for o in units {
            let (packed, bias, m) = match self.weights {
                WeightFormat::Int4 => w.unit_int4(per).map(|(wo, b, m)| (pack_nibbles(wo, per), b, m))?,
                WeightFormat::Native => w.unit(per).map(|(wo, b, m)| (pack_weights(wo), b, m))?,
            };
            channels.push((o, packed, bias, m));
        }
        let y = i8_data_mut(Self::NAME, out)?;
        let requant = |acc: i32, m| requantize_one(acc, m, self.output.zero_point, self.clamp);
        let mut patches = vec![0i64; g.groups * ow * pairs];
        for oy in 0..oh {
            im2col.row(oy, &mut patches)?;
            let row = |o: usize| (o * oh + oy) * ow;
            // Two channels of a group per pass over its patches (`dot_packed2`), else one.
            let mut rest = channels.as_slice();
            while let Some(((o, wo, bias, m), tail)) = rest.split_first() {
                let group = &patches[o / cout_g * ow * pairs..][..ow * pairs];
                match tail.first().filter(|c| c.0 / cout_g == o / cout_g) {
                    Some((o1, w1, b1, m1)) => {
                        let (lo, hi) = y.split_at_mut(row(*o1));
                        let pair = lo[row(*o)..][..ow].iter_mut().zip(&mut hi[..ow]);
                        for ((y0, y1), patch) in pair.zip(group.chunks_exact(pairs)) {
                            let (d0, d1) = dot_packed2(wo, w1, patch);
                            *y0 = requant(bias.wrapping_add(d0), *m);
                            *y1 = requant(b1.wrapping_add(d1), *m1);
                        }
                        rest = &tail[1..];
                    }
                    None => {
                        for (yi, patch) in y[row(*o)..][..ow].iter_mut().zip(group.chunks_exact(pairs)) {
                            *yi = requant(bias.wrapping_add(dot_packed(wo, patch)), *m);
                        }
                        rest = tail;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};

    use ndarray::{Array1, Array3, Array4, ArrayD};

    use super::Conv2d;
    use crate::weights::push_channel;
    use crate::weights::real_clamp;
    use crate::Result;

    /// Conv2D in f64: the reference, and the source of the quantized layer.
    #[derive(Clone, Debug)]
    pub struct Conv2dF64 {
        /// `[out_channels, in_channels / groups, KH, KW]` (ONNX layout).
        pub w: Array4<f64>,
        pub b: Array1<f64>,
        pub strides: [usize; 2],
        pub dilations: [usize; 2],
        pub pads: [usize; 4],
        pub groups: usize,
        pub clamp: Option<(f64, f64)>,
    }

    impl Conv2dF64 {
        /// Direct evaluation of the definition over a `[C, H, W]` input.
        pub fn forward(&self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let x = x.view().into_dimensionality::<ndarray::Ix3>().expect("CHW input");
            let (oc, cg, kh, kw) = self.w.dim();
            let (_, h, w) = x.dim();
            let [sh, sw] = self.strides;
            let [dh, dw] = self.dilations;
            let [pt, pl, pb, pr] = self.pads;
            let oh = (h + pt + pb - dh * (kh - 1) - 1) / sh + 1;
            let ow = (w + pl + pr - dw * (kw - 1) - 1) / sw + 1;
            let og = oc / self.groups;
            let y = Array3::from_shape_fn((oc, oh, ow), |(o, oy, ox)| {
                let mut s = self.b[o];
                for c in 0..cg {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky * dh) as isize - pt as isize;
                            let ix = (ox * sw + kx * dw) as isize - pl as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                s += self.w[[o, c, ky, kx]] * x[[o / og * cg + c, iy as usize, ix as usize]];
                            }
                        }
                    }
                }
                match self.clamp {
                    Some((lo, hi)) => s.clamp(lo, hi),
                    None => s,
                }
            });
            y.into_dyn()
        }

        /// Folds a following BatchNorm (`a·y + b` per output channel) into the convolution.
        pub fn fold_batch_norm(&self, bn: &crate::AffineF64) -> Conv2dF64 {
            let mut f = self.clone();
            for (o, mut wo) in f.w.outer_iter_mut().enumerate() {
                wo.mapv_inplace(|v| v * bn.a[o]);
                f.b[o] = bn.a[o] * self.b[o] + bn.b[o];
            }
            f
        }
    }

    impl Quantize for Conv2dF64 {
        type Layer = Conv2d;

        /// Per-output-channel symmetric weights (int8, int4, or int16 with i64 biases), the bias at
        /// scale `s_x·s_w`, one multiplier per channel.
        fn quantize(&self, q: &QuantSpec) -> Result<(Conv2d, Vec<u8>)> {
            let (x_qp, y_qp, dtype) = (&q.input, &q.output, q.dtype);
            let (oc, _, kh, kw) = self.w.dim();
            let scales = (x_qp.scale_f64(), y_qp.scale_f64());
            let mut bytes = Vec::new();
            for o in 0..oc {
                let w = self.w.index_axis(ndarray::Axis(0), o);
                push_channel(&mut bytes, w, self.b[o], scales, (dtype, q.weights))?;
            }
            let layer = Conv2d {
                out_channels: oc,
                window: crate::Window2d {
                    kernel: [kh, kw],
                    strides: self.strides,
                    dilations: self.dilations,
                    pads: self.pads,
                },
                groups: self.groups,
                clamp: real_clamp(self.clamp, y_qp, dtype),
                output: *y_qp,
                weights: q.weights,
            };
            Ok((layer, bytes))
        }
    }
}

#[cfg(feature = "std")]
pub use host::Conv2dF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use ndarray::{Array1, Array4};
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (Conv2dF64, ndarray::ArrayD<f64>)> {
        (
            (1usize..3, 1usize..3, 1usize..4, 3usize..9, 3usize..9),
            (1usize..4, 1usize..4, 1usize..3, 1usize..3, 1usize..3),
            (0usize..2, 0usize..2, any::<bool>(), any::<u64>()),
        )
            .prop_filter_map(
                "window larger than padded input",
                |((groups, cg, og, h, w), (kh, kw, s, d, _), (p0, p1, relu, seed))| {
                    if (kh - 1) * d + 1 > h + 2 * p0 || (kw - 1) * d + 1 > w + 2 * p1 {
                        return None;
                    }
                    let mut st = seed | 1;
                    let mut next = move || {
                        st ^= st << 13;
                        st ^= st >> 7;
                        st ^= st << 17;
                        (st % 2000) as f64 / 1000.0 - 1.0
                    };
                    let oc = groups * og;
                    let conv = Conv2dF64 {
                        w: Array4::from_shape_simple_fn((oc, cg, kh, kw), &mut next),
                        b: Array1::from_shape_simple_fn(oc, &mut next) * 0.2,
                        strides: [s, 1 + (s % 2)],
                        dilations: [d, 1],
                        pads: [p0, p1, p0, p1],
                        groups,
                        clamp: relu.then_some((0.0, f64::INFINITY)),
                    };
                    let x = ndarray::ArrayD::from_shape_simple_fn(vec![groups * cg, h, w], || 2.0 * next());
                    Some((conv, x))
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64((conv, xf) in case(), (dtype, format) in weight_forms()) {
            let reference = conv.forward(&xf);
            let (xq, x_qp) = quantize_input_as(&xf, dtype);
            let y_qp = output_params_as(&reference, dtype);
            let q = QuantSpec::new(x_qp, y_qp, dtype).with_weights(format);
            let (layer, weights) = conv.quantize(&q).unwrap();
            let y = Layer::Conv2d(layer).run(&[&xq], &weights).unwrap();
            prop_assert_eq!(y.dtype(), dtype);
            let (sx, sy) = (x_qp.scale_f64(), y_qp.scale_f64());
            let (oc, cg, kh, kw) = conv.w.dim();
            let unit = weights.len() / oc;
            let xmax = xf.iter().fold(0f64, |a, v| a.max(v.abs()));
            for (i, (&got, &want)) in dequant(&y).iter().zip(reference.iter()).enumerate() {
                let o = i / (reference.len() / oc);
                let wo = conv.w.index_axis(ndarray::Axis(0), o);
                let max_w = wo.iter().fold(0f64, |a, v| a.max(v.abs()));
                let sw = weight_scale(max_w, conv.b[o], (sx, sy), (dtype, format), &weights[o * unit..][..unit]);
                // Σ over at most cg·kh·kw taps, bounded with the largest |x|.
                let taps = (cg * kh * kw) as f64;
                let input = wo.iter().map(|w| w.abs() * sx / 2.0).sum::<f64>() + taps * (xmax * sw / 2.0 + sx * sw / 4.0);
                let bound = sy / 2.0 + sx * sw / 2.0 + input + 1e-9;
                prop_assert!((got - want).abs() <= bound, "y[{}] = {} vs {} (bound {})", i, got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass((conv, xf) in case(), cuts in proptest::collection::vec(any::<u16>(), 0..6), (dtype, format) in weight_forms()) {
            let (xq, x_qp) = quantize_input_as(&xf, dtype);
            let y_qp = output_params_as(&conv.forward(&xf), dtype);
            let (layer, weights) = conv.quantize(&QuantSpec::new(x_qp, y_qp, dtype).with_weights(format)).unwrap();
            assert_segments_match(&Layer::Conv2d(layer), &[&xq], &weights, &cuts);
        }
    }

    #[test]
    fn same_padding_keeps_the_size_and_batch_norm_folds() {
        use crate::{same_padding, AffineF64};
        let x = ndarray::ArrayD::from_shape_simple_fn(vec![2, 7, 5], {
            let mut i = 0.0f64;
            move || {
                i += 0.37;
                i.sin()
            }
        });
        let [pt, pb] = same_padding(7, 3, 2, 1, false);
        let [pl, pr] = same_padding(5, 3, 2, 1, false);
        let conv = Conv2dF64 {
            w: Array4::from_shape_simple_fn((3, 2, 3, 3), || 0.1),
            b: Array1::from(vec![0.1, -0.2, 0.3]),
            strides: [2, 2],
            dilations: [1, 1],
            pads: [pt, pl, pb, pr],
            groups: 1,
            clamp: None,
        };
        let y = conv.forward(&x);
        assert_eq!(y.shape(), &[3, 4, 3], "same: ceil(7/2) × ceil(5/2)");
        let bn = AffineF64::batch_norm(
            &[1.5, 0.5, -1.0],
            &[0.1, 0.2, 0.3],
            &[0.0, 0.1, -0.1],
            &[1.0, 4.0, 0.25],
            0.0,
        );
        let folded = conv.fold_batch_norm(&bn).forward(&x);
        let separate = bn.forward(&y);
        assert!(folded.iter().zip(separate.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(same_padding(6, 3, 1, 1, true), [1, 1]);
        assert_eq!(
            same_padding(6, 4, 1, 1, true),
            [2, 1],
            "SAME_LOWER puts the odd pixel first"
        );
    }

    #[test]
    fn bad_geometry_is_a_named_error() {
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let conv = Conv2d {
            out_channels: 3,
            window: Window2d {
                kernel: [3, 3],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [0; 4],
            },
            groups: 2,
            clamp: Clamp::full::<i8>(),
            output: qp,
            weights: WeightFormat::Native,
        };
        let x = TensorSpec::new(vec![4, 5, 5], DType::I8, qp);
        assert!(
            matches!(
                Layer::Conv2d(conv.clone()).output_spec(&[&x]),
                Err(LayerError::Config { .. })
            ),
            "groups ∤ out"
        );
        let x = TensorSpec::new(vec![4, 5], DType::I8, qp);
        assert!(matches!(
            Layer::Conv2d(conv).output_spec(&[&x]),
            Err(LayerError::InputShape { .. })
        ));
    }
}
