//! Average pooling (ONNX AveragePool, Keras AveragePooling2D) over `[C, H, W]` int8 (or int16).
//!
//! `y = zp + round_half_up(Σ(x − zp) / n)` with `n` the taps inside the image, or the whole
//! window when `count_include_pad` (padding counts as real 0). The output keeps the input's
//! quantization. **Bound**: ½ LSB from the mean of the quantized inputs (exact integer rule),
//! so ≤ 1 LSB from the mean of the real inputs. Units: channels; no weights.
//!
//! **Work**: `|y|·(KH·KW·ELEM + REQUANT)`: a sum per tap of the window, a division per output
//! (`REQUANT` doubled in int16); see `work.rs`.

use core::ops::Range;

use cwnn_tensor::{DType, QTensor};

use crate::act::Act;
use crate::{Op, Result, TensorSpec, Window2d};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AvgPool2d {
    pub window: Window2d,
    pub count_include_pad: bool,
}

/// `round_half_up(sum / n)` for `n ≥ 1`, in integers (i64: no window or plane overflows it).
pub(crate) fn mean_round(sum: i64, n: i64) -> i64 {
    (2 * sum + n).div_euclid(2 * n)
}

impl Op for AvgPool2d {
    const NAME: &'static str = "avg_pool2d";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Conv);

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        self.window.pool_spec(Self::NAME, inputs[0])
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        self.window.pool_work(Self::NAME, inputs[0])
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        Some(inputs[0].shape[0])
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
            DType::I16 => self.average::<i16>(inputs[0], units, out),
            _ => self.average::<i8>(inputs[0], units, out),
        }
    }
}

impl AvgPool2d {
    fn average<T: Act>(&self, x: &QTensor, units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let zp = x.quant.zero_point as i64;
        let full = self.window.kernel[0] * self.window.kernel[1];
        let count_pad = self.count_include_pad;
        let step = |s: i64, v: T| s + v.to_i32() as i64 - zp;
        let finish = |s: i64, taps: usize| {
            let n = if count_pad { full } else { taps };
            T::saturate(zp + mean_round(s, n.max(1) as i64))
        };
        self.window.pool(Self::NAME, x, units, out, 0i64, step, finish)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maxpool2d::tests::window;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::QuantParams;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Exact integer rule, and within ½ LSB of the real mean of the quantized inputs.
        #[test]
        fn exact_and_half_lsb((window, c, h, w, pad_counts) in (window(), 1usize..4, 4usize..9, 4usize..9, any::<bool>()),
                              zp in -20i32..20, cuts in proptest::collection::vec(any::<u16>(), 0..4), int16 in any::<bool>()) {
            let qp = QuantParams { zero_point: zp, ..QuantParams::asymmetric(-1.0, 1.0, precision(int16)).unwrap() };
            let x = pattern_tensor(vec![c, h, w], qp, precision(int16));
            let layer = Layer::AvgPool2d(AvgPool2d { window: window.clone(), count_include_pad: pad_counts });
            prop_assume!(layer.output_spec(&[&TensorSpec::of(&x)]).is_ok(), "window larger than the input");
            let y = layer.run(&[&x], &[]).unwrap();
            let (oh, ow) = (y.shape[1], y.shape[2]);
            for ch in 0..c { for oy in 0..oh { for ox in 0..ow {
                let (mut s, mut n) = (0i64, 0i64);
                for ky in 0..window.kernel[0] { for kx in 0..window.kernel[1] {
                    let iy = (oy * window.strides[0] + ky * window.dilations[0]) as isize - window.pads[0] as isize;
                    let ix = (ox * window.strides[1] + kx * window.dilations[1]) as isize - window.pads[1] as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        s += (x.data.get((ch * h + iy as usize) * w + ix as usize).unwrap() - zp) as i64;
                        n += 1;
                    }
                }}
                if pad_counts { n = (window.kernel[0] * window.kernel[1]) as i64; }
                let got = (y.data.get((ch * oh + oy) * ow + ox).unwrap() - zp) as f64;
                let mean = s as f64 / n as f64;
                prop_assert!(got - mean <= 0.5 && mean - got < 0.5, "{} vs {}", got, mean);
            }}}
            assert_segments_match(&layer, &[&x], &[], &cuts);
        }
    }
}
