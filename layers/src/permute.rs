//! Permute: elements of the input picked in any order, `y[k] = x[index[k]]` over the flat
//! (row-major) data, under a new shape. What an ONNX Transpose that reorders a sample's data
//! becomes when no Dense after it can absorb the order (tf2onnx's NHWC → NCHW Transpose of a
//! Keras model's input), and a Gather or Slice of a sample (BERT's and ViT's CLS token,
//! `x[:, 0]`): the output may hold fewer elements than the input, or repeat some.
//! **Exact**. Int8 or int16, the input's quantization kept.
//!
//! Weights: `index[k]` as u32 LE per output element (4 bytes each); an index outside the
//! input is a named error. Units: output elements; unit `k` reads bytes `4k..4k+4`, so a
//! segment reads only its own part of the table.
//!
//! **Work**: `|y|·(ELEM + LOOKUP)` (an index read and a copy per element); see `work.rs`.

use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::{numel, DType, QTensor};

use crate::act::{act_data, act_data_mut, expect_act, Act};
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Permute {
    /// The output shape.
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub shape: Vec<usize>,
}

impl Permute {
    fn gather<T: Act>(&self, x: &QTensor, weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let xs = act_data::<T>(Self::NAME, x)?;
        let ys = act_data_mut::<T>(Self::NAME, out)?;
        for (y, b) in ys[units].iter_mut().zip(weights.chunks_exact(4)) {
            let i = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            *y = *xs.get(i).ok_or(LayerError::Weights {
                layer: Self::NAME,
                reason: "an index lies outside the input",
            })?;
        }
        Ok(())
    }
}

impl Op for Permute {
    const NAME: &'static str = "permute";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        let dtype = expect_act(Self::NAME, x)?;
        let fits = |n: Option<usize>| n.is_some_and(|n| n > 0 && n as u64 <= u32::MAX as u64);
        if !fits(numel(&self.shape).ok()) || !fits(x.numel()) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "the input or the output is empty or holds more than 2^32 elements",
            });
        }
        Ok(TensorSpec::new(self.shape.clone(), dtype, x.quant))
    }
    fn weight_len(&self, _: &[&TensorSpec]) -> Option<usize> {
        numel(&self.shape).ok()?.checked_mul(4)
    }
    fn work(&self, _: &[&TensorSpec]) -> u64 {
        work::sum(&[(work::count(&self.shape), work::ELEM + work::LOOKUP)])
    }
    fn units(&self, _: &[&TensorSpec]) -> Option<usize> {
        numel(&self.shape).ok()
    }
    fn weight_range(&self, _: &[&TensorSpec], units: Range<usize>) -> Option<Range<usize>> {
        Some(units.start.checked_mul(4)?..units.end.checked_mul(4)?)
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
            DType::I16 => self.gather::<i16>(inputs[0], weights, units, out),
            _ => self.gather::<i8>(inputs[0], weights, units, out),
        }
    }
}

/// The weight bytes of a Permute taking element `index[k]` to position `k`.
#[cfg(feature = "std")]
pub fn permute_weights(index: &[usize]) -> Vec<u8> {
    index.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::QuantParams;

    /// NHWC [2, 3, 4] → NCHW [4, 2, 3].
    fn nhwc_to_nchw() -> (Layer, Vec<usize>) {
        let index = (0..24).map(|k| {
            let (c, h, w) = (k / 6, (k / 3) % 2, k % 3);
            (h * 3 + w) * 4 + c
        });
        (Layer::Permute(Permute { shape: vec![4, 2, 3] }), index.collect())
    }

    #[test]
    fn exact_in_both_precisions_and_segments_match_one_pass() {
        let (layer, index) = nhwc_to_nchw();
        let w = permute_weights(&index);
        for dtype in [DType::I8, DType::I16] {
            let qp = QuantParams::asymmetric(-1.0, 1.0, dtype).unwrap();
            let x = pattern_tensor(vec![2, 3, 4], qp, dtype);
            let y = layer.run(&[&x], &w).unwrap();
            let (xs, ys) = (x.data.to_i32s(), y.data.to_i32s());
            for (k, &i) in index.iter().enumerate() {
                assert_eq!(ys[k], xs[i]);
            }
            assert_eq!((y.shape.clone(), y.quant), (vec![4, 2, 3], x.quant));
            assert_segments_match(&layer, &[&x], &w, &[0, 5, 17, 24]);
        }
    }

    /// BERT's CLS token: row 0 of `[3, 4]`, and a row picked twice.
    #[test]
    fn a_selection_may_drop_or_repeat_elements() {
        for (index, shape) in [(vec![0, 1, 2, 3], vec![4]), (vec![8, 9, 8, 9], vec![2, 2])] {
            let layer = Layer::Permute(Permute { shape: shape.clone() });
            let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I16).unwrap();
            let x = pattern_tensor(vec![3, 4], qp, DType::I16);
            let y = layer.run(&[&x], &permute_weights(&index)).unwrap();
            let xs = x.data.to_i32s();
            assert_eq!(y.data.to_i32s(), index.iter().map(|&i| xs[i]).collect::<Vec<_>>());
            assert_eq!(y.shape, shape);
            assert_segments_match(&layer, &[&x], &permute_weights(&index), &[0, 1, 4]);
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let (layer, index) = nhwc_to_nchw();
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let x = pattern_tensor(vec![2, 3, 4], qp, DType::I8);
        let mut far = index.clone();
        far[7] = 24;
        assert!(matches!(
            layer.run(&[&x], &permute_weights(&far)),
            Err(LayerError::Weights { .. })
        ));
        assert!(matches!(
            layer.run(&[&x], &[0; 8]),
            Err(LayerError::WeightLength { .. })
        ));
        let empty = Layer::Permute(Permute { shape: vec![5, 0] });
        assert!(matches!(empty.run(&[&x], &[]), Err(LayerError::Config { .. })));
    }
}
