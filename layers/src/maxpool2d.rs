//! Max pooling (ONNX MaxPool, Keras MaxPooling2D) over `[C, H, W]` int8 (or int16). Padding never wins
//! (taps outside the image are skipped). The output keeps the input's quantization, so the
//! result is **exact**. Units: channels; no weights.
//!
//! **Work**: `|y|·(KH·KW·ELEM + REQUANT)`: a compare per tap of the window, a finish per output
//! (`REQUANT` doubled in int16); see `work.rs`.

use core::ops::Range;

use cwnn_tensor::{DType, QTensor};

use crate::{Op, Result, TensorSpec, Window2d};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MaxPool2d {
    pub window: Window2d,
}

impl Op for MaxPool2d {
    const NAME: &'static str = "max_pool2d";
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
            DType::I16 => self
                .window
                .pool(Self::NAME, inputs[0], units, out, i16::MIN, i16::max, |m, _| m),
            _ => self
                .window
                .pool(Self::NAME, inputs[0], units, out, i8::MIN, i8::max, |m, _| m),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::{DType, QuantParams};
    use proptest::prelude::*;

    /// Random windows, a quarter of them the 2×2 / stride 2 window `pool` has a fast path for.
    pub(crate) fn window() -> impl Strategy<Value = Window2d> {
        let halving = Window2d {
            kernel: [2, 2],
            strides: [2, 2],
            dilations: [1, 1],
            pads: [0; 4],
        };
        prop_oneof![3 => any_window(), 1 => Just(halving)]
    }

    fn any_window() -> impl Strategy<Value = Window2d> {
        (
            1usize..4,
            1usize..4,
            1usize..3,
            1usize..3,
            1usize..3,
            0usize..2,
            0usize..2,
        )
            .prop_map(|(kh, kw, sh, sw, d, ph, pw)| Window2d {
                kernel: [kh, kw],
                strides: [sh, sw],
                dilations: [d, 1],
                pads: [
                    ph.min((kh - 1) * d),
                    pw.min(kw - 1),
                    ph.min((kh - 1) * d),
                    pw.min(kw - 1),
                ],
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Exact: equal to the maximum over the window's taps inside the image.
        #[test]
        fn exact((window, c, h, w) in (window(), 1usize..4, 4usize..9, 4usize..9), cuts in proptest::collection::vec(any::<u16>(), 0..4), int16 in any::<bool>()) {
            let qp = QuantParams::asymmetric(-1.0, 1.0, precision(int16)).unwrap();
            let x = pattern_tensor(vec![c, h, w], qp, precision(int16));
            let layer = Layer::MaxPool2d(MaxPool2d { window: window.clone() });
            prop_assume!(layer.output_spec(&[&TensorSpec::of(&x)]).is_ok(), "window larger than the input");
            let y = layer.run(&[&x], &[]).unwrap();
            let (oh, ow) = (y.shape[1], y.shape[2]);
            for ch in 0..c { for oy in 0..oh { for ox in 0..ow {
                let mut m = i32::MIN;
                for ky in 0..window.kernel[0] { for kx in 0..window.kernel[1] {
                    let iy = (oy * window.strides[0] + ky * window.dilations[0]) as isize - window.pads[0] as isize;
                    let ix = (ox * window.strides[1] + kx * window.dilations[1]) as isize - window.pads[1] as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        m = m.max(x.data.get((ch * h + iy as usize) * w + ix as usize).unwrap());
                    }
                }}
                prop_assert_eq!(y.data.get((ch * oh + oy) * ow + ox).unwrap(), m);
            }}}
            assert_segments_match(&layer, &[&x], &[], &cuts);
        }
    }

    #[test]
    fn padding_as_large_as_the_window_is_refused() {
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let layer = Layer::MaxPool2d(MaxPool2d {
            window: Window2d {
                kernel: [2, 2],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [2, 0, 0, 0],
            },
        });
        assert!(layer
            .output_spec(&[&TensorSpec::new(vec![1, 4, 4], DType::I8, qp)])
            .is_err());
    }
}
