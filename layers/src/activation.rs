//! Element-wise activations on int8 through a 256-entry table: ReLU, Clip/ReLU6, LeakyReLU,
//! Sigmoid, Tanh, Identity (and a requantize between two scales, which is Identity).
//!
//! The table is the layer's weights (256 bytes: entry `i` is `f(x)` for `x = i − 128`), built
//! on the host from the function and both scales. Units: elements; every segment reads the
//! whole table. **Bound**: exact on the input grid, so ½ output LSB from `f` of the
//! dequantized input, within the output range.

use core::ops::Range;

use cwnn_tensor::kernels::lut;
use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::spec::{as_i8, expect_i8, i8_data, i8_data_mut};
use crate::{LayerError, Op, Result, TensorSpec};

/// Which function the table holds (informative: the table defines the layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ActivationKind {
    Identity,
    Relu,
    Clip,
    LeakyRelu,
    Sigmoid,
    Tanh,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Activation {
    pub kind: ActivationKind,
    pub output: QuantParams,
}

const TABLE: usize = 256;

impl Op for Activation {
    const NAME: &'static str = "activation";

    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        expect_i8(Self::NAME, inputs[0])?;
        Ok(TensorSpec::new(inputs[0].shape.clone(), DType::I8, self.output))
    }
    fn weight_len(&self, _: &[&TensorSpec]) -> usize {
        TABLE
    }
    fn units(&self, inputs: &[&TensorSpec]) -> usize {
        inputs[0].numel().unwrap_or(0)
    }
    fn forward(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
        _: &mut [i32],
    ) -> Result<()> {
        let table: &[i8; TABLE] = as_i8(weights).try_into().map_err(|_| LayerError::WeightLength {
            layer: Self::NAME,
            expected: TABLE,
            actual: weights.len(),
        })?;
        let x = &i8_data(Self::NAME, inputs[0])?[units.clone()];
        lut(x, table, &mut i8_data_mut(Self::NAME, out)?[units])?;
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use cwnn_tensor::host::lut_i8;
    use cwnn_tensor::QuantParams;
    use ndarray::ArrayD;

    use super::{Activation, ActivationKind};

    /// An activation in f64, with its parameters.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum ActivationF64 {
        Identity,
        Relu,
        /// ONNX Clip; ReLU6 is `Clip { min: 0, max: 6 }`.
        Clip {
            min: f64,
            max: f64,
        },
        LeakyRelu {
            alpha: f64,
        },
        Sigmoid,
        Tanh,
    }

    impl ActivationF64 {
        pub fn apply(self, x: f64) -> f64 {
            match self {
                ActivationF64::Identity => x,
                ActivationF64::Relu => x.max(0.0),
                ActivationF64::Clip { min, max } => x.clamp(min, max),
                ActivationF64::LeakyRelu { alpha } => {
                    if x >= 0.0 {
                        x
                    } else {
                        alpha * x
                    }
                }
                ActivationF64::Sigmoid => 1.0 / (1.0 + (-x).exp()),
                ActivationF64::Tanh => x.tanh(),
            }
        }
        pub fn forward(self, x: &ArrayD<f64>) -> ArrayD<f64> {
            x.mapv(|v| self.apply(v))
        }
        pub fn kind(self) -> ActivationKind {
            match self {
                ActivationF64::Identity => ActivationKind::Identity,
                ActivationF64::Relu => ActivationKind::Relu,
                ActivationF64::Clip { .. } => ActivationKind::Clip,
                ActivationF64::LeakyRelu { .. } => ActivationKind::LeakyRelu,
                ActivationF64::Sigmoid => ActivationKind::Sigmoid,
                ActivationF64::Tanh => ActivationKind::Tanh,
            }
        }
        /// The layer and its table for an input at `x_qp` and an output at `y_qp`.
        pub fn quantize(self, x_qp: &QuantParams, y_qp: &QuantParams) -> (Activation, Vec<u8>) {
            let table = lut_i8(|v| self.apply(v), x_qp, y_qp);
            (
                Activation {
                    kind: self.kind(),
                    output: *y_qp,
                },
                table.iter().map(|&v| v as u8).collect(),
            )
        }
    }
}

#[cfg(feature = "std")]
pub use host::ActivationF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use cwnn_tensor::host::dequantize;
    use proptest::prelude::*;

    fn function() -> impl Strategy<Value = ActivationF64> {
        prop_oneof![
            Just(ActivationF64::Identity),
            Just(ActivationF64::Relu),
            Just(ActivationF64::Clip { min: 0.0, max: 6.0 }),
            (0.01f64..0.3).prop_map(|alpha| ActivationF64::LeakyRelu { alpha }),
            Just(ActivationF64::Sigmoid),
            Just(ActivationF64::Tanh),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(f in function(), x in proptest::collection::vec(-8f64..8.0, 1..64)) {
            let xf = ndarray::ArrayD::from_shape_vec(vec![x.len()], x).unwrap();
            let (xq, x_qp) = quantize_input(&xf);
            let y_qp = output_params(&f.forward(&xf));
            let (layer, table) = f.quantize(&x_qp, &y_qp);
            let y = Layer::Activation(layer).run(&[&xq], &table).unwrap();
            let lo = dequantize(-128, &y_qp);
            let hi = dequantize(127, &y_qp);
            for (i, got) in dequant(&y).into_iter().enumerate() {
                // Exact on the grid: f of the dequantized input, to ½ output LSB.
                let want = f.apply(dequantize(xq.data.get(i).unwrap(), &x_qp)).clamp(lo, hi);
                prop_assert!((got - want).abs() <= y_qp.scale_f64() / 2.0 + 1e-12, "{} vs {}", got, want);
            }
        }

        #[test]
        fn segments_match_one_pass(f in function(), n in 1usize..100, cuts in proptest::collection::vec(any::<u16>(), 0..6)) {
            let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
            let (layer, table) = f.quantize(&qp, &qp);
            assert_segments_match(&Layer::Activation(layer), &[&int8_tensor(vec![n], qp)], &table, &cuts);
        }
    }
}
