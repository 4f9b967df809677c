//! Element-wise sum with broadcasting (ONNX Add; a residual connection, or a constant).
//!
//! `y = clamp(zp_y + ((a − zp_a)·m_a + (b − zp_b)·m_b + 2^(s−1)) >> s)`: both rescales share one
//! shift, so there is a single rounding. Units: output elements; weights: the constant operand's
//! int8 data, if any. **Bound**: `s_y/2 + s_a/2 + s_b/2` (output and input rounding) plus
//! 2^-31 relative. `int16` precision: the same on int16 (`(a − zp_a)·m_a` < 2^48).
//!
//! **Work**: `|y|·(REQUANT + 2·rank·ELEM)` (rescale, two broadcast index maps; `REQUANT`
//! doubled in int16), plus `|y|·|constant|·ELEM` for an int16 constant, which every segment
//! decodes; see `work.rs`.

use core::ops::Range;

use cwnn_tensor::{DType, QTensor, QuantParams};

use crate::act::{act_data_mut, Act};
use crate::broadcast::{arity, binary_shape, binary_units, binary_work, constant_len, operand_b, operands, Constant};
use crate::{work, LayerError, Op, Result, TensorSpec};

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Add {
    /// `[m_a, m_b]`: `s_a/s_y` and `s_b/s_y` as mantissas over the shared `shift`.
    pub multipliers: [i32; 2],
    pub shift: u8,
    /// The second operand when it is a constant (else the layer takes two inputs).
    pub constant: Option<Constant>,
    pub output: QuantParams,
}

impl Op for Add {
    const NAME: &'static str = "add";

    fn arity(&self) -> usize {
        arity(&self.constant)
    }
    fn output_spec(&self, inputs: &[&TensorSpec]) -> Result<TensorSpec> {
        let b = operand_b(Self::NAME, &self.constant, inputs)?;
        if !(1..=62).contains(&self.shift) {
            return Err(LayerError::Config {
                layer: Self::NAME,
                reason: "shift must be in 1..=62",
            });
        }
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
            DType::I16 => self.sum::<i16>(inputs, weights, units, out),
            _ => self.sum::<i8>(inputs, weights, units, out),
        }
    }
}

impl Add {
    fn sum<T: Act>(&self, inputs: &[&QTensor], weights: &[u8], units: Range<usize>, out: &mut QTensor) -> Result<()> {
        let shape = out.shape.clone();
        let o = operands::<T>(Self::NAME, &self.constant, inputs, weights, &shape)?;
        let [ma, mb] = self.multipliers.map(|m| m as i64);
        let s = self.shift as u32;
        let zy = self.output.zero_point as i64;
        let y = act_data_mut::<T>(Self::NAME, out)?;
        let half = 1i64 << (s - 1);
        o.each(units, y, |a, b| T::saturate(zy + ((a * ma + b * mb + half) >> s)));
        Ok(())
    }
}

#[cfg(feature = "std")]
mod host {
    use crate::{QuantSpec, Quantize};

    use cwnn_tensor::Dyadic;
    use ndarray::ArrayD;

    use super::Add;
    use crate::broadcast::second_operand;
    use crate::Result;

    /// `s_a/s_y` and `s_b/s_y` over one shift: the larger normalised, the other rounded to it.
    pub(crate) fn shared_shift(ra: f64, rb: f64) -> Result<([i32; 2], u8)> {
        let d = Dyadic::from_f64(ra.abs().max(rb.abs()))?;
        let m = |r: f64| {
            (r * 2f64.powi(d.shift as i32))
                .round()
                .clamp(-(2f64.powi(31) - 1.0), 2f64.powi(31) - 1.0) as i32
        };
        Ok(([m(ra), m(rb)], d.shift))
    }

    /// Add in f64, with an optional constant second operand.
    #[derive(Clone, Debug, Default)]
    pub struct AddF64 {
        pub constant: Option<ArrayD<f64>>,
    }

    impl AddF64 {
        pub fn forward(&self, a: &ArrayD<f64>, b: Option<&ArrayD<f64>>) -> ArrayD<f64> {
            let b = b.or(self.constant.as_ref()).expect("second operand");
            a + b
        }
    }

    impl Quantize for AddF64 {
        type Layer = Add;

        /// Two multipliers on a shared shift; a constant second operand is quantized over its
        /// own range and stored as the weights.
        fn quantize(&self, q: &QuantSpec) -> Result<(Add, Vec<u8>)> {
            let (a_qp, b_qp, y_qp, dtype) = (&q.input, q.second.as_ref(), &q.output, q.dtype);
            let (constant, b_qp, bytes) = second_operand(&self.constant, b_qp, dtype)?;
            let sy = y_qp.scale_f64();
            let (multipliers, shift) = shared_shift(a_qp.scale_f64() / sy, b_qp.scale_f64() / sy)?;
            Ok((
                Add {
                    multipliers,
                    shift,
                    constant,
                    output: *y_qp,
                },
                bytes,
            ))
        }
    }
}

#[cfg(feature = "std")]
pub use host::AddF64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use crate::Layer;
    use crate::{QuantSpec, Quantize};
    use proptest::prelude::*;

    fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        prop_oneof![
            Just((vec![3, 4], vec![3, 4])),
            Just((vec![3, 4], vec![4])),
            Just((vec![2, 3, 1], vec![1, 5])),
            Just((vec![6], vec![1])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn bound_against_f64((sa, sb) in shapes(), constant in any::<bool>(), vals in proptest::collection::vec(-5f64..5.0, 60),
                             cuts in proptest::collection::vec(any::<u16>(), 0..4), int16 in any::<bool>()) {
            let a = ndarray::ArrayD::from_shape_vec(sa.clone(), vals[..sa.iter().product()].to_vec()).unwrap();
            let b = ndarray::ArrayD::from_shape_vec(sb.clone(), vals[30..30 + sb.iter().product::<usize>()].iter().map(|v| v * 0.3).collect()).unwrap();
            let f = AddF64 { constant: constant.then(|| b.clone()) };
            let reference = f.forward(&a, Some(&b));
            let dtype = precision(int16);
            let (aq, a_qp) = quantize_input_as(&a, dtype);
            let (bq, b_qp) = quantize_input_as(&b, dtype);
            let y_qp = output_params_as(&reference, dtype);
            let (layer, weights) = f.quantize(&QuantSpec::new(a_qp, y_qp, dtype).with_second(Some(b_qp))).unwrap();
            let s_b = layer.constant.as_ref().map_or(b_qp.scale_f64(), |c| c.quant.scale_f64());
            let layer = Layer::Add(layer);
            let inputs: Vec<&cwnn_tensor::QTensor> = if constant { vec![&aq] } else { vec![&aq, &bq] };
            let y = layer.run(&inputs, &weights).unwrap();
            let bound = (y_qp.scale_f64() + a_qp.scale_f64() + s_b) / 2.0 + 1e-6;
            for (&got, &want) in dequant(&y).iter().zip(reference.iter()) {
                prop_assert!((got - want).abs() <= bound, "{} vs {} (bound {})", got, want, bound);
            }
            assert_segments_match(&layer, &inputs, &weights, &cuts);
        }
    }

    #[test]
    fn incompatible_shapes_are_refused() {
        let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let add = Layer::Add(Add {
            multipliers: [1 << 30, 1 << 30],
            shift: 30,
            constant: None,
            output: qp,
        });
        let (a, b) = (int8_tensor(vec![2, 3], qp), int8_tensor(vec![4], qp));
        assert!(matches!(add.run(&[&a, &b], &[]), Err(LayerError::InputShape { .. })));
        assert!(matches!(add.run(&[&a], &[]), Err(LayerError::InputCount { .. })));
    }
}
