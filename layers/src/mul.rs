//! Element-wise product with broadcasting (ONNX Mul; a gate, or a constant scale).
//!
//! `y = clamp(zp_y + round_half_up((a − zp_a)·(b − zp_b) · m))` with `m = s_a·s_b/s_y`. The
//! product is exact in i32 (|·| ≤ 255²). Units: output elements; weights: the constant
//! operand's int8 data, if any. **Bound**: `s_y/2 + |a|·s_b/2 + |b|·s_a/2 + s_a·s_b/4`.
//! `int16` precision: the same on int16, the product (< 2^32) in i64.
//!
//! **Work**: `|y|·(REQUANT + 2·rank·ELEM)` (rescale, two broadcast index maps; `REQUANT`
//! doubled in int16), plus `|y|·|constant|·ELEM` for an int16 constant, which every segment
//! decodes; see `work.rs`.

use core::ops::Range;

use cwnn_tensor::kernels::{requantize_i64, requantize_one, Clamp};
use cwnn_tensor::{DType, Dyadic, QTensor, QuantParams};

use crate::act::{act_data_mut, Act};
use crate::broadcast::{arity, binary_shape, binary_units, binary_work, constant_len, operand_b, operands, Constant};
use crate::{work, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Mul {
    /// `s_a·s_b/s_y`.
    pub multiplier: Dyadic,
    pub constant: Option<Constant>,
    pub output: QuantParams,
}

impl Op for Mul {
    const NAME: &'static str = "mul";

    fn arity(&self) -> usize {
        arity(&self.constant)
    }
    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let b = operand_b(Self::NAME, &self.constant, inputs)?;
        self.multiplier.validate()?;
        Ok(TensorSpec::new(
            binary_shape(Self::NAME, inputs[0], &b)?,
            b.dtype,
            self.output,
        ))
    }
    fn weight_len(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        constant_len(&self.constant, inputs[0])
    }
    fn work(&self, inputs: &[&TensorSpec]) -> u64 {
        binary_work(Self::NAME, &self.constant, inputs, work::REQUANT)
    }
    fn macs(&self, inputs: &[&TensorSpec]) -> Option<u64> {
        Some(self.units(inputs)? as u64)
    }
    fn units(&self, inputs: &[&TensorSpec]) -> Option<usize> {
        binary_units(Self::NAME, &self.constant, inputs)
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
            DType::I16 => self.product::<i16>(inputs, weights, units, out),
            _ => self.product::<i8>(inputs, weights, units, out),
        }
    }
}

impl Mul {
    fn product<T: Act>(
        &self,
        inputs: &[&QTensor],
        weights: &[u8],
        units: Range<usize>,
        out: &mut QTensor,
    ) -> Result<()> {
        let shape = out.shape.clone();
        let o = operands::<T>(Self::NAME, &self.constant, inputs, weights, &shape)?;
        let y = act_data_mut::<T>(Self::NAME, out)?;
        let (m, zp, full) = (self.multiplier, self.output.zero_point, Clamp::full::<T>());
        // int8 products fit i32 and keep the cheaper rescale; int16 ones need i64.
        o.each(units, y, |a, b| match T::DTYPE {
            DType::I8 => requantize_one((a * b) as i32, m, zp, full),
            _ => requantize_i64(a * b, m, zp, full),
        });
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};
    use cwnn_tensor::host::requant_multiplier;
    use ndarray::ArrayD;

    use super::Mul;
    use crate::broadcast::second_operand;
    use crate::Result;

    /// Mul in f64, with an optional constant second operand.
    #[derive(Clone, Debug, Default)]
    pub struct MulF64 {
        pub constant: Option<ArrayD<f64>>,
    }

    impl MulF64 {
        pub fn forward(&self, a: &ArrayD<f64>, b: Option<&ArrayD<f64>>) -> ArrayD<f64> {
            a * b.or(self.constant.as_ref()).expect("second operand")
        }
    }

    impl Quantize for MulF64 {
        type Layer = Mul;

        /// The multiplier `s_a·s_b/s_y`; a constant second operand is quantized over its own
        /// range and stored as the weights.
        fn quantize(&self, q: &QuantSpec) -> Result<(Mul, Vec<u8>)> {
            let (a_qp, b_qp, y_qp, dtype) = (&q.input, q.second.as_ref(), &q.output, q.dtype);
            let (constant, b_qp, bytes) = second_operand(&self.constant, b_qp, dtype)?;
            let multiplier = requant_multiplier(a_qp.scale_f64(), b_qp.scale_f64(), y_qp.scale_f64())?;
            Ok((
                Mul {
                    multiplier,
                    constant,
                    output: *y_qp,
                },
                bytes,
            ))
        }
    }
}

#[cfg(feature = "std")]
pub use host::MulF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64(constant in any::<bool>(), vals in proptest::collection::vec(-3f64..3.0, 16), cuts in proptest::collection::vec(any::<u16>(), 0..4), int16 in any::<bool>()) {
            let a = ndarray::ArrayD::from_shape_vec(vec![3, 4], vals[..12].to_vec()).unwrap();
            let b = ndarray::ArrayD::from_shape_vec(vec![4], vals[12..].to_vec()).unwrap();
            let f = MulF64 { constant: constant.then(|| b.clone()) };
            let reference = f.forward(&a, Some(&b));
            let dtype = precision(int16);
            let (aq, a_qp) = quantize_input_as(&a, dtype);
            let (bq, b_qp) = quantize_input_as(&b, dtype);
            let y_qp = output_params_as(&reference, dtype);
            let (layer, weights) = f.quantize(&QuantSpec::new(a_qp, y_qp, dtype).with_second(Some(b_qp))).unwrap();
            let s_b = layer.constant.as_ref().map_or(b_qp.scale_f64(), |c| c.quant.scale_f64());
            let layer = Layer::Mul(layer);
            let inputs: Vec<&cwnn_tensor::QTensor> = if constant { vec![&aq] } else { vec![&aq, &bq] };
            let y = layer.run(&inputs, &weights).unwrap();
            let sa = a_qp.scale_f64();
            for (i, (&got, &want)) in dequant(&y).iter().zip(reference.iter()).enumerate() {
                let (av, bv) = (a.as_slice().unwrap()[i].abs(), b.as_slice().unwrap()[i % 4].abs());
                let bound = y_qp.scale_f64() / 2.0 + av * s_b / 2.0 + bv * sa / 2.0 + sa * s_b / 4.0 + 1e-9;
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
            assert_segments_match(&layer, &inputs, &weights, &cuts);
        }
    }
}
