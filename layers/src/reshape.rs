//! Reshape and Flatten (ONNX Reshape, Flatten, Squeeze, Unsqueeze; Keras Flatten): same data
//! in the same order under a new shape. **Exact**. One unit; no weights.
//!
//! **Work**: `|x|·ELEM` (a copy); see `work.rs`.

use alloc::vec::Vec;
use core::ops::Range;

use cwnn_tensor::{numel, QTensor};

use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Reshape {
    /// The output shape (the importer resolves `-1` and `0` before this point).
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub shape: Vec<usize>,
}

impl Op for Reshape {
    const NAME: &'static str = "reshape";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        if numel(&self.shape).ok() != x.numel() {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "element count of the new shape differs from the input's",
            });
        }
        Ok(TensorSpec::new(self.shape.clone(), x.dtype, x.quant))
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        work::sum(&[(work::numel(inputs[0]), work::ELEM)])
    }
    fn units(&self, _: &[&TensorSpec]) -> Option<usize> {
        Some(1)
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        _: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        if !units.is_empty() {
            out.data = inputs[0].data.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::{DType, QuantParams};

    #[test]
    fn flatten_keeps_data_and_checks_counts() {
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let x = int8_tensor(vec![2, 3, 4], qp);
        let y = Layer::Reshape(Reshape { shape: vec![24] }).run(&[&x], &[]).unwrap();
        assert_eq!(
            (y.shape.clone(), y.data.clone(), y.quant),
            (vec![24], x.data.clone(), x.quant)
        );
        assert_segments_match(&Layer::Reshape(Reshape { shape: vec![4, 6] }), &[&x], &[], &[0, 1, 3]);
        assert!(matches!(
            Layer::Reshape(Reshape { shape: vec![25] }).run(&[&x], &[]),
            Err(LayerError::Config { .. })
        ));
    }
}
