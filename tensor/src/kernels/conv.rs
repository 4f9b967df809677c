use alloc::vec::Vec;
use core::ops::Range;

use super::{centered, expect_len};
use crate::{Quantized, Result, TensorError};

/// Shape of a 2-D convolution over one CHW image with OIHW weights (the ONNX layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Conv2dGeometry {
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    pub groups: usize,
}

impl Conv2dGeometry {
    /// Checks every dimension; all other methods assume a validated geometry.
    pub fn validate(&self) -> Result<()> {
        let dims = [
            self.in_channels,
            self.in_h,
            self.in_w,
            self.out_channels,
            self.kernel_h,
            self.kernel_w,
            self.stride_h,
            self.stride_w,
            self.dilation_h,
            self.dilation_w,
            self.groups,
        ];
        if dims.contains(&0) {
            return Err(TensorError::InvalidShape(
                "conv2d: every dimension, stride, dilation and groups must be ≥ 1",
            ));
        }
        if !self.in_channels.is_multiple_of(self.groups) || !self.out_channels.is_multiple_of(self.groups) {
            return Err(TensorError::InvalidShape(
                "conv2d: groups must divide in and out channels",
            ));
        }
        let span = |k: usize, d: usize| (k - 1).checked_mul(d).and_then(|v| v.checked_add(1));
        let ph = self
            .in_h
            .checked_add(self.pad_top)
            .and_then(|v| v.checked_add(self.pad_bottom));
        let pw = self
            .in_w
            .checked_add(self.pad_left)
            .and_then(|v| v.checked_add(self.pad_right));
        match (
            ph,
            pw,
            span(self.kernel_h, self.dilation_h),
            span(self.kernel_w, self.dilation_w),
        ) {
            (Some(ph), Some(pw), Some(kh), Some(kw)) if kh <= ph && kw <= pw => {}
            (Some(_), Some(_), Some(_), Some(_)) => {
                return Err(TensorError::InvalidShape("conv2d: kernel larger than padded input"))
            }
            _ => return Err(TensorError::ShapeOverflow),
        }
        [self.input_len(), self.weight_len(), self.output_len()]
            .iter()
            .all(|n| n.is_some())
            .then_some(())
            .ok_or(TensorError::ShapeOverflow)
    }
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pad_top + self.pad_bottom - self.dilation_h * (self.kernel_h - 1) - 1) / self.stride_h + 1
    }
    pub fn out_w(&self) -> usize {
        (self.in_w + self.pad_left + self.pad_right - self.dilation_w * (self.kernel_w - 1) - 1) / self.stride_w + 1
    }
    /// Weights of one output channel: `in_channels / groups × kernel_h × kernel_w`.
    pub fn weights_per_channel(&self) -> usize {
        self.in_channels / self.groups * self.kernel_h * self.kernel_w
    }
    pub fn input_len(&self) -> Option<usize> {
        self.in_channels.checked_mul(self.in_h)?.checked_mul(self.in_w)
    }
    pub fn weight_len(&self) -> Option<usize> {
        self.out_channels
            .checked_mul(self.in_channels / self.groups)?
            .checked_mul(self.kernel_h)?
            .checked_mul(self.kernel_w)
    }
    pub fn output_len(&self) -> Option<usize> {
        self.out_channels.checked_mul(self.out_h())?.checked_mul(self.out_w())
    }
    /// Multiply-adds per output channel (padding taps included).
    pub fn macs_per_channel(&self) -> usize {
        self.weights_per_channel() * self.out_h() * self.out_w()
    }
}

/// Direct 2-D convolution of output channels `channels`:
/// `out[j, oy, ox] = bias[j] + Σ w[j, ic, ky, kx] · (x[ic, iy, ix] − x_zp)` over taps inside the
/// image, `iy = oy·stride_h + ky·dilation_h − pad_top` (same for x). Padding stands for the zero
/// point (real 0), so padded taps add nothing.
///
/// `w` and `bias` hold only the requested channels (`channels.len()` × weights per channel), and
/// `out` is `channels.len() × out_h × out_w`: one layer can be split across calls by channel.
/// Loop order is weight-stationary: for each weight, one branch-free row update over the valid
/// output columns, computed up front.
pub fn conv2d<W: Quantized, X: Quantized>(
    g: &Conv2dGeometry,
    x: &[X],
    x_zp: i32,
    w: &[W],
    bias: Option<&[i32]>,
    channels: Range<usize>,
    out: &mut [i32],
) -> Result<()> {
    expect_len("conv2d input", g.input_len().unwrap_or(0), x.len())?;
    conv2d_centered(g, &centered(x, x_zp), w, bias, channels, out)
}

/// An accumulator: i32 for int8 operands (exact within [`accumulator_fits`](super::accumulator_fits)),
/// i64 for int16 ones (`int16` precision). Wrapping, so every platform gets the same bits.
pub trait Accumulator: Copy + From<i32> + 'static {
    fn wrapping_add(self, o: Self) -> Self;
    fn wrapping_mul(self, o: Self) -> Self;
}

macro_rules! accumulator {
    ($t:ty) => {
        impl Accumulator for $t {
            #[inline(always)]
            fn wrapping_add(self, o: Self) -> Self {
                <$t>::wrapping_add(self, o)
            }
            #[inline(always)]
            fn wrapping_mul(self, o: Self) -> Self {
                <$t>::wrapping_mul(self, o)
            }
        }
    };
}
accumulator!(i32);
accumulator!(i64);

/// [`conv2d`] on an input whose zero point is already subtracted (`x − x_zp`), so a layer
/// that computes channel by channel centres its input once. Sums in `A` (i32, or i64 for
/// int16 operands).
pub fn conv2d_centered<W: Quantized, A: Accumulator>(
    g: &Conv2dGeometry,
    xs: &[A],
    w: &[W],
    bias: Option<&[A]>,
    channels: Range<usize>,
    out: &mut [A],
) -> Result<()> {
    g.validate()?;
    if channels.start > channels.end || channels.end > g.out_channels {
        return Err(TensorError::InvalidShape(
            "conv2d: channel range outside the output channels",
        ));
    }
    let nc = channels.end - channels.start;
    let (oh, ow) = (g.out_h(), g.out_w());
    let plane = oh * ow;
    let per_oc = g.weights_per_channel();
    expect_len("conv2d input", g.input_len().unwrap_or(0), xs.len())?;
    expect_len("conv2d weights", nc * per_oc, w.len())?;
    expect_len("conv2d output", nc * plane, out.len())?;
    if let Some(b) = bias {
        expect_len("conv2d bias", nc, b.len())?;
    }
    let (cin_g, cout_g) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let in_plane = g.in_h * g.in_w;
    for (j, oc) in channels.enumerate() {
        let acc = &mut out[j * plane..(j + 1) * plane];
        acc.fill(bias.map_or(A::from(0), |b| b[j]));
        let wk = &w[j * per_oc..(j + 1) * per_oc];
        let group = oc / cout_g;
        for icg in 0..cin_g {
            let ic = group * cin_g + icg;
            let xp = &xs[ic * in_plane..(ic + 1) * in_plane];
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    let wv = A::from(wk[(icg * g.kernel_h + ky) * g.kernel_w + kx].to_i32());
                    let Some((lo, hi, x0)) = col_range(g, kx, ow) else {
                        continue;
                    };
                    for oy in 0..oh {
                        let iy = (oy * g.stride_h + ky * g.dilation_h) as isize - g.pad_top as isize;
                        if iy < 0 || iy as usize >= g.in_h {
                            continue;
                        }
                        let row = &xp[iy as usize * g.in_w..(iy as usize + 1) * g.in_w];
                        let a = &mut acc[oy * ow + lo..oy * ow + hi];
                        if g.stride_w == 1 {
                            axpy(a, wv, &row[x0..x0 + (hi - lo)]);
                        } else {
                            for (o, &v) in a.iter_mut().zip(row[x0..].iter().step_by(g.stride_w)) {
                                *o = o.wrapping_add(wv.wrapping_mul(v));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A convolution's input prepared for dot products over packed pairs (see `pairs.rs`):
/// centered, zero-padded (0 is the zero point once centered), with the offset of every tap
/// from a window's origin. Each output row's patches are then gathered without any bounds
/// test on the padding, and each patch is reused by every output channel of its group.
pub struct Im2col {
    g: Conv2dGeometry,
    padded: Vec<i32>,
    /// Padded width, and the padded size of one channel.
    wp: usize,
    plane: usize,
    /// Offsets of taps `(ic, ky, kx)` of one group (the weights' order), even count.
    offsets: Vec<usize>,
    /// The largest offset: every read stays below `origin + span`.
    span: usize,
}

impl Im2col {
    pub fn new(g: &Conv2dGeometry, xs: &[i32]) -> Result<Self> {
        g.validate()?;
        expect_len("conv2d input", g.input_len().unwrap_or(0), xs.len())?;
        let (hp, wp) = (g.in_h + g.pad_top + g.pad_bottom, g.in_w + g.pad_left + g.pad_right);
        let plane = hp.checked_mul(wp).ok_or(TensorError::ShapeOverflow)?;
        let len = plane.checked_mul(g.in_channels).ok_or(TensorError::ShapeOverflow)?;
        let mut padded = alloc::vec![0i32; len];
        for (c, xc) in xs.chunks_exact(g.in_h * g.in_w).enumerate() {
            for (y, row) in xc.chunks_exact(g.in_w).enumerate() {
                let at = c * plane + (y + g.pad_top) * wp + g.pad_left;
                padded[at..at + g.in_w].copy_from_slice(row);
            }
        }
        let cin_g = g.in_channels / g.groups;
        let mut offsets = Vec::with_capacity(g.weights_per_channel() + 1);
        for icg in 0..cin_g {
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    offsets.push(icg * plane + ky * g.dilation_h * wp + kx * g.dilation_w);
                }
            }
        }
        let span = offsets.iter().max().map_or(0, |m| m + 1);
        if offsets.len() % 2 == 1 {
            // The odd tail pairs with any in-window value: its weight pair's upper half is 0.
            offsets.push(0);
        }
        Ok(Im2col {
            g: *g,
            padded,
            wp,
            plane,
            offsets,
            span,
        })
    }

    /// Packed pairs per patch: `ceil(weights_per_channel / 2)`.
    pub fn pairs(&self) -> usize {
        self.offsets.len() / 2
    }

    /// The patches of output row `oy`: `out[(group · out_w + ox) · pairs + j]` holds taps
    /// `2j` and `2j + 1` of the window at `(oy, ox)`. `out` holds `groups · out_w · pairs`.
    pub fn row(&self, oy: usize, out: &mut [i64]) -> Result<()> {
        let g = &self.g;
        let (ow, pairs) = (g.out_w(), self.pairs());
        expect_len("im2col row", g.groups * ow * pairs, out.len())?;
        if oy >= g.out_h() {
            return Err(TensorError::InvalidShape("im2col: output row outside the output"));
        }
        let cin_g = g.in_channels / g.groups;
        let mut cells = out.chunks_exact_mut(pairs);
        for group in 0..g.groups {
            for ox in 0..ow {
                let origin = group * cin_g * self.plane + oy * g.stride_h * self.wp + ox * g.stride_w;
                let Some(cell) = cells.next() else { break };
                let window = &self.padded[origin..origin + self.span];
                // SAFETY: `Im2col::new` built every offset below `span`, and `window` is `span`
                // long. Unchecked, because a bounds test is a metered Wasm branch and this is
                // the innermost gather of a convolution.
                let at = |i: usize| unsafe { *window.get_unchecked(i) as i64 };
                let (cell2, cell1) = cell.as_chunks_mut::<2>();
                let (offsets4, offsets2) = self.offsets.as_chunks::<4>();
                for (d, o) in cell2.iter_mut().zip(offsets4) {
                    d[0] = (at(o[0]) << 32).wrapping_add(at(o[1]));
                    d[1] = (at(o[2]) << 32).wrapping_add(at(o[3]));
                }
                if let (Some(d), Some(o)) = (cell1.first_mut(), offsets2.get(..2)) {
                    *d = (at(o[0]) << 32).wrapping_add(at(o[1]));
                }
            }
        }
        Ok(())
    }
}

/// Output columns `[lo, hi)` whose tap `kx` lands inside the input, and the input column of `lo`.
fn col_range(g: &Conv2dGeometry, kx: usize, ow: usize) -> Option<(usize, usize, usize)> {
    let off = (kx * g.dilation_w) as isize - g.pad_left as isize; // ix = ox·stride + off
    let s = g.stride_w as isize;
    let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
    let last = g.in_w as isize - 1 - off; // ox·s ≤ last
    if last < 0 {
        return None;
    }
    let hi = ((last / s) + 1).min(ow as isize);
    (lo < hi).then(|| (lo as usize, hi as usize, (lo * s + off) as usize))
}

/// `a[i] += w · x[i]`, unrolled ×8.
#[inline(always)]
fn axpy<A: Accumulator>(a: &mut [A], w: A, x: &[A]) {
    let n = a.len().min(x.len());
    let (a8, ar) = a[..n].as_chunks_mut::<8>();
    let (x8, xr) = x[..n].as_chunks::<8>();
    for (o, v) in a8.iter_mut().zip(x8) {
        for k in 0..8 {
            o[k] = o[k].wrapping_add(w.wrapping_mul(v[k]));
        }
    }
    for (o, &v) in ar.iter_mut().zip(xr) {
        *o = o.wrapping_add(w.wrapping_mul(v));
    }
}
