//! The 2-D window shared by the pooling layers.

use core::ops::Range;

use cwnn_tensor::kernels::Conv2dGeometry;
use cwnn_tensor::{QTensor, TensorError};

use crate::act::{act_data, act_data_mut, chw, Act};
use crate::{work, LayerError, Result, TensorSpec};

/// A pooling window: kernel, strides, dilations and padding `[top, left, bottom, right]`
/// (ONNX `pads` order is `[top, left, bottom, right]` too). No ceil mode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Window2d {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub kernel: [usize; 2],
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub strides: [usize; 2],
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub dilations: [usize; 2],
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub pads: [usize; 4],
}

impl Window2d {
    /// The window over a `c × h × w` input, producing `out_channels` in `groups`: the
    /// convolution geometry Conv2d and the pooling layers share, validated.
    pub(crate) fn conv_geometry(
        &self,
        layer: &'static str,
        (c, h, w): (usize, usize, usize),
        out_channels: usize,
        groups: usize,
    ) -> Result<Conv2dGeometry> {
        let g = Conv2dGeometry {
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels,
            kernel_h: self.kernel[0],
            kernel_w: self.kernel[1],
            stride_h: self.strides[0],
            stride_w: self.strides[1],
            dilation_h: self.dilations[0],
            dilation_w: self.dilations[1],
            pad_top: self.pads[0],
            pad_left: self.pads[1],
            pad_bottom: self.pads[2],
            pad_right: self.pads[3],
            groups,
        };
        g.validate().map_err(|e| match e {
            TensorError::InvalidShape(reason) => LayerError::Config { layer, reason },
            TensorError::ShapeOverflow => LayerError::SizeOverflow { layer },
            other => other.into(),
        })?;
        Ok(g)
    }

    /// The window as a pooling (depthwise) geometry, after checking padding is smaller than
    /// the window, as ONNX requires.
    pub(crate) fn geometry(&self, layer: &'static str, chw: (usize, usize, usize)) -> Result<Conv2dGeometry> {
        let g = self.conv_geometry(layer, chw, chw.0, chw.0)?;
        let span = |k: usize, d: usize| (k - 1) * d + 1;
        let (sh, sw) = (span(g.kernel_h, g.dilation_h), span(g.kernel_w, g.dilation_w));
        if self.pads[0].max(self.pads[2]) >= sh || self.pads[1].max(self.pads[3]) >= sw {
            return Err(LayerError::Config {
                layer,
                reason: "padding must be smaller than the window",
            });
        }
        // AvgPool divides by the window's area.
        g.kernel_h
            .checked_mul(g.kernel_w)
            .ok_or(LayerError::SizeOverflow { layer })?;
        Ok(g)
    }

    /// Work of a pooling layer over `x` (accepted by [`Window2d::pool_spec`]): per output, a
    /// step per tap of the whole window and a finish.
    pub(crate) fn pool_work(&self, layer: &'static str, x: &crate::TensorSpec) -> u64 {
        let Ok(g) = crate::act::chw(layer, x).and_then(|chw| self.geometry(layer, chw)) else {
            return u64::MAX;
        };
        let (outs, taps) = (
            work::count(&[g.in_channels, g.out_h(), g.out_w()]),
            work::count(&self.kernel),
        );
        work::sum(&[
            (outs.saturating_mul(taps), work::ELEM),
            (outs, work::elem(x, work::REQUANT)),
        ])
    }

    /// Output spec of a pooling layer over `x`: `[C, OH, OW]`, keeping `x`'s quantization.
    pub(crate) fn pool_spec(&self, layer: &'static str, x: &crate::TensorSpec) -> Result<crate::TensorSpec> {
        crate::act::expect_act(layer, x)?;
        let g = self.geometry(layer, crate::act::chw(layer, x)?)?;
        Ok(crate::TensorSpec::new(
            alloc::vec![g.in_channels, g.out_h(), g.out_w()],
            x.dtype,
            x.quant,
        ))
    }

    /// Pools channels `units` of `x` into `out`: for each output, folds `step` over the taps
    /// inside the image starting from `init`, then `finish(acc, taps)` gives the value.
    /// Generic, so each pooling layer gets its own inlined loop (no indirect call per tap).
    #[allow(clippy::too_many_arguments)] // the Op::forward arguments plus the fold's three parts
    pub(crate) fn pool<T: Act, A: Copy>(
        &self,
        layer: &'static str,
        x: &QTensor,
        units: Range<usize>,
        out: &mut QTensor,
        init: A,
        step: impl Fn(A, T) -> A,
        finish: impl Fn(A, usize) -> T,
    ) -> Result<()> {
        let g = self.geometry(layer, chw(layer, &TensorSpec::of(x))?)?;
        let xd = act_data::<T>(layer, x)?;
        let y = act_data_mut::<T>(layer, out)?;
        let (oh, ow, hw) = (g.out_h(), g.out_w(), g.in_h * g.in_w);
        if self.is_halving() {
            // The common 2×2 / stride 2 window without padding: every output has its four
            // taps, read from two input rows; no tap ranges, one loop branch per output.
            for c in units {
                let (xc, yc) = (&xd[c * hw..(c + 1) * hw], &mut y[c * oh * ow..(c + 1) * oh * ow]);
                for (yr, rows) in yc.chunks_exact_mut(ow).zip(xc.chunks_exact(2 * g.in_w)) {
                    let (r0, r1) = rows.split_at(g.in_w);
                    for ((yo, a), b) in yr.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                        *yo = finish(step(step(step(step(init, a[0]), a[1]), b[0]), b[1]), 4);
                    }
                }
            }
            return Ok(());
        }
        for c in units {
            let xc = &xd[c * hw..(c + 1) * hw];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (ky, kx) = Window2d::taps(&g, oy, ox);
                    let taps = ky.len() * kx.len();
                    let mut acc = init;
                    for ky in ky {
                        let row = (oy * g.stride_h + ky * g.dilation_h - g.pad_top) * g.in_w;
                        for kx in kx.clone() {
                            acc = step(acc, xc[row + ox * g.stride_w + kx * g.dilation_w - g.pad_left]);
                        }
                    }
                    y[(c * oh + oy) * ow + ox] = finish(acc, taps);
                }
            }
        }
        Ok(())
    }

    /// A 2×2 window at stride 2 without dilation or padding (LeNet's and most CNNs' pooling).
    fn is_halving(&self) -> bool {
        self.kernel == [2, 2] && self.strides == [2, 2] && self.dilations == [1, 1] && self.pads == [0; 4]
    }

    /// Kernel offsets `(ky, kx)` of output `(oy, ox)` whose taps land inside the image: two
    /// ranges, since the input position grows with the offset. No allocation, no per-tap branch.
    pub(crate) fn taps(g: &Conv2dGeometry, oy: usize, ox: usize) -> (Range<usize>, Range<usize>) {
        (
            valid(oy * g.stride_h, g.pad_top, g.dilation_h, g.kernel_h, g.in_h),
            valid(ox * g.stride_w, g.pad_left, g.dilation_w, g.kernel_w, g.in_w),
        )
    }
}

/// Padding `[before, after]` of one axis for ONNX `auto_pad` / Keras `padding`: `valid` is
/// none; `same` pads so the output has `ceil(n / stride)` positions, the odd pixel going after
/// the input (`SAME_UPPER`, Keras) or before it (`SAME_LOWER`).
pub fn same_padding(n: usize, kernel: usize, stride: usize, dilation: usize, lower: bool) -> [usize; 2] {
    let out = n.div_ceil(stride.max(1));
    let span = (kernel.max(1) - 1) * dilation + 1;
    let total = ((out.max(1) - 1) * stride + span).saturating_sub(n);
    let (small, big) = (total / 2, total - total / 2);
    if lower {
        [big, small]
    } else {
        [small, big]
    }
}

/// `k` with `0 ≤ base + k·d − pad < n`, for `k < kernel`.
fn valid(base: usize, pad: usize, d: usize, kernel: usize, n: usize) -> Range<usize> {
    let lo = pad.saturating_sub(base).div_ceil(d);
    let hi = (n + pad).saturating_sub(base).div_ceil(d).min(kernel);
    lo.min(hi)..hi
}
