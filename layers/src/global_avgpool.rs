//! Global average pooling (ONNX GlobalAveragePool): `[C, H, W] → [C, 1, 1]`, the mean of each
//! channel: an [`AvgPool2d`](crate::AvgPool2d) whose window is the whole plane. **Bound**: ½ LSB from
//! the mean of the quantized inputs. Units: channels; no weights.
//!
//! **Work**: `|x|·ELEM + C·REQUANT` (`REQUANT` doubled in int16); see `work.rs`.

use alloc::vec;
use core::ops::Range;

use cwnn_tensor::QTensor;

use crate::act::{chw, expect_act};
use crate::{work, AvgPool2d, Op, Result, TensorSpec, Window2d};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GlobalAvgPool {}

impl Op for GlobalAvgPool {
    const NAME: &'static str = "global_avg_pool";
    const FAMILY: Option<crate::Family> = Some(crate::Family::Conv);

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        expect_act(Self::NAME, inputs[0])?;
        let (c, _, _) = chw(Self::NAME, inputs[0])?;
        Ok(TensorSpec::new(vec![c, 1, 1], inputs[0].dtype, inputs[0].quant))
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        let x = inputs[0];
        let c = x.shape.first().map_or(0, |&c| c as u64);
        work::sum(&[(work::numel(x), work::ELEM), (c, work::elem(x, work::REQUANT))])
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
        let (h, w) = (inputs[0].shape[1], inputs[0].shape[2]);
        let window = Window2d {
            kernel: [h, w],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [0; 4],
        };
        AvgPool2d {
            window,
            count_include_pad: false,
        }
        .forward(inputs, &[], units, out, &mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::QuantParams;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn half_lsb_of_the_mean(c in 1usize..6, h in 1usize..9, w in 1usize..9, zp in -30i32..30, cuts in proptest::collection::vec(any::<u16>(), 0..4), int16 in any::<bool>()) {
            let qp = QuantParams { zero_point: zp, ..QuantParams::asymmetric(-1.0, 1.0, precision(int16)).unwrap() };
            let x = pattern_tensor(vec![c, h, w], qp, precision(int16));
            let layer = Layer::GlobalAvgPool(GlobalAvgPool {});
            let y = layer.run(&[&x], &[]).unwrap();
            prop_assert_eq!(&y.shape, &vec![c, 1, 1]);
            for ch in 0..c {
                let mean = (0..h * w).map(|i| (x.data.get(ch * h * w + i).unwrap() - zp) as f64).sum::<f64>() / (h * w) as f64;
                let got = (y.data.get(ch).unwrap() - zp) as f64;
                prop_assert!(got - mean <= 0.5 && mean - got < 0.5);
            }
            assert_segments_match(&layer, &[&x], &[], &cuts);
        }
    }
}
