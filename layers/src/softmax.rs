//! Softmax over the last axis, max-subtracted (ONNX Softmax, axis = −1).
//!
//! Weights: the exp table for the input scale, 256 × i32 LE (`table[d] = round(2^16·exp(−s·d))`).
//! Output: int8 at scale 1/256, zero point −128. Units: rows (all axes but the last); every
//! segment reads the whole table. **Bound** against f64 on the real inputs, per element:
//! `s_x/4` (input rounding; softmax is ½-Lipschitz per coordinate in sum) plus
//! `(½ + 2^-17 + 256·(n+1)/2^17)/256`, and 1/256 more where a probability of 1 clamps.

use core::ops::Range;

use cwnn_tensor::kernels::{softmax_i8, validate_exp_table};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::spec::{expect_i8, i8_data, i8_data_mut, WeightReader};
use crate::{LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Softmax {}

/// Softmax's output quantization: scale 1/256, zero point −128.
pub const SOFTMAX_OUTPUT: QuantParams = QuantParams {
    scale: Dyadic {
        mantissa: 1 << 30,
        shift: 38,
    },
    zero_point: -128,
};

const TABLE_BYTES: usize = 256 * 4;

impl Op for Softmax {
    const NAME: &'static str = "softmax";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let x = inputs[0];
        expect_i8(Self::NAME, x)?;
        if x.shape.last().is_none_or(|&n| n == 0) {
            return Err(LayerError::InputShape {
                layer: Self::NAME,
                expected: alloc::vec![1],
                actual: x.shape.clone(),
            });
        }
        Ok(TensorSpec::new(x.shape.clone(), DType::I8, SOFTMAX_OUTPUT))
    }
    fn weight_len(&self, _: &[&TensorSpec]) -> usize {
        TABLE_BYTES
    }
    fn units(&self, inputs: &[&TensorSpec]) -> usize {
        let n = inputs[0].shape.last().copied().unwrap_or(1);
        inputs[0].numel().unwrap_or(0) / n
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        let mut table = [0i32; 256];
        let mut r = WeightReader::new(Self::NAME, weights);
        for t in table.iter_mut() {
            *t = r.i32()?;
        }
        validate_exp_table(&table).map_err(|_| LayerError::Weights {
            layer: Self::NAME,
            reason: "exp table entries must lie in [0, 2^16] with table[0] > 0",
        })?;
        let n = inputs[0].shape.last().copied().unwrap_or(1);
        let x = i8_data(Self::NAME, inputs[0])?;
        let y = i8_data_mut(Self::NAME, out)?;
        for row in units {
            softmax_i8(&x[row * n..(row + 1) * n], &table, &mut y[row * n..(row + 1) * n])?;
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use cwnn_tensor::host::exp_table;
    use cwnn_tensor::QuantParams;
    use ndarray::{ArrayD, Axis};

    use super::Softmax;

    /// Softmax in f64 over the last axis.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct SoftmaxF64;

    impl SoftmaxF64 {
        pub fn forward(self, x: &ArrayD<f64>) -> ArrayD<f64> {
            let mut y = x.clone();
            let last = Axis(x.ndim() - 1);
            for mut row in y.lanes_mut(last) {
                let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                row.mapv_inplace(|v| (v - m).exp());
                let s = row.sum();
                row.mapv_inplace(|v| v / s);
            }
            y
        }
        /// The layer and its exp table for an input at `x_qp`.
        pub fn quantize(self, x_qp: &QuantParams) -> (Softmax, Vec<u8>) {
            let t = exp_table(x_qp.scale_f64());
            (Softmax {}, t.iter().flat_map(|e| e.to_le_bytes()).collect())
        }
    }
}

#[cfg(feature = "std")]
pub use host::SoftmaxF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(rows in 1usize..4, n in 1usize..40, x in proptest::collection::vec(-6f64..6.0, 160)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![rows, n], x[..rows * n].to_vec()).unwrap();
            let (xq, x_qp) = quantize_input(&xf);
            let (layer, table) = SoftmaxF64.quantize(&x_qp);
            let y = Layer::Softmax(layer).run(&[&xq], &table).unwrap();
            let reference = SoftmaxF64.forward(&xf);
            let lsb = (0.5 + 2f64.powi(-17) + 256.0 * (n as f64 + 1.0) / 131072.0) / 256.0;
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                let clamp = if want > 255.0 / 256.0 { 1.0 / 256.0 } else { 0.0 };
                let bound = x_qp.scale_f64() / 4.0 + lsb + clamp + 1e-12;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
        }

        #[test]
        fn segments_match_one_pass(rows in 1usize..12, n in 1usize..20, cuts in proptest::collection::vec(any::<u16>(), 0..6)) {
            let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
            let (layer, table) = SoftmaxF64.quantize(&qp);
            assert_segments_match(&Layer::Softmax(layer), &[&int8_tensor(vec![rows, n], qp)], &table, &cuts);
        }
    }

    #[test]
    fn corrupt_exp_table_is_a_named_error() {
        let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
        let x = int8_tensor(vec![5], qp);
        assert!(matches!(
            Layer::Softmax(Softmax {}).run(&[&x], &[0u8; 1024]),
            Err(LayerError::Weights { .. })
        ));
    }
}
