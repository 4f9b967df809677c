//! NumPy/ONNX multidirectional broadcasting for the binary element-wise layers.

use alloc::vec;
use alloc::vec::Vec;

/// The broadcast shape of `a` and `b` (right-aligned; sizes equal or 1), or `None`.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Maps flat output indices to flat indices of one broadcast input.
pub(crate) struct Broadcast {
    out: Vec<usize>,
    strides: Vec<usize>,
    /// The input has the output's shape: index `i` is `i` (a residual connection's Add).
    pub(crate) identity: bool,
}

impl Broadcast {
    /// For an input of shape `shape` broadcast to `out` (already checked compatible).
    pub(crate) fn new(shape: &[usize], out: &[usize]) -> Self {
        let pad = out.len() - shape.len();
        let mut strides = vec![0; out.len()];
        let mut s = 1;
        for i in (0..shape.len()).rev() {
            strides[pad + i] = if shape[i] == 1 { 0 } else { s };
            s *= shape[i];
        }
        Broadcast {
            out: out.to_vec(),
            strides,
            identity: shape == out,
        }
    }
    /// Input index of output index `i`.
    pub(crate) fn index(&self, mut i: usize) -> usize {
        let mut j = 0;
        for (d, st) in self.out.iter().zip(&self.strides).rev() {
            j += (i % d) * st;
            i /= d;
        }
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_indices() {
        assert_eq!(broadcast_shape(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shape(&[2, 3], &[3, 3]), None);
        let b = Broadcast::new(&[3, 1], &[3, 4]);
        assert_eq!(
            (0..12).map(|i| b.index(i)).collect::<Vec<_>>(),
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
        );
        let b = Broadcast::new(&[4], &[3, 4]);
        assert_eq!(b.index(9), 1);
        assert!(!b.identity && Broadcast::new(&[3, 4], &[3, 4]).identity);
    }
}

/// The second operand of Add/Mul when it is a constant: its data (int8, or int16 LE in `int16`
/// precision: the input's type) is the layer's weights.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Constant {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub shape: Vec<usize>,
    pub quant: cwnn_tensor::QuantParams,
}

use crate::act::{act_data, Act};
use crate::{work, LayerError, Result, TensorSpec};
use alloc::borrow::Cow;
use core::ops::Range;
use cwnn_tensor::QTensor;

/// The second operand of a quantized Add/Mul: a constant (quantized over its own range, its
/// bytes the layer's weights) or the second input at `b_qp`.
#[cfg(feature = "std")]
pub(crate) fn second_operand(
    constant: &Option<ndarray::ArrayD<f64>>,
    b_qp: Option<&cwnn_tensor::QuantParams>,
    dtype: cwnn_tensor::DType,
) -> Result<(Option<Constant>, cwnn_tensor::QuantParams, Vec<u8>)> {
    Ok(match constant {
        Some(c) => {
            let (lo, hi) = c.iter().fold((0f64, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
            let qp = cwnn_tensor::QuantParams::asymmetric(lo, hi, dtype)?;
            let q = |v: &f64| cwnn_tensor::host::quantize(*v, &qp, dtype);
            let bytes = match dtype {
                cwnn_tensor::DType::I16 => c.iter().flat_map(|v| (q(v) as i16).to_le_bytes()).collect(),
                _ => c.iter().map(|v| q(v) as i8 as u8).collect(),
            };
            (
                Some(Constant {
                    shape: c.shape().to_vec(),
                    quant: qp,
                }),
                qp,
                bytes,
            )
        }
        None => {
            let qp = b_qp.ok_or(LayerError::Config {
                layer: "add/mul",
                reason: "quantization of the second input is missing",
            })?;
            (None, *qp, Vec::new())
        }
    })
}

/// Spec of the second operand: the second input, or the constant.
pub(crate) fn operand_b(
    layer: &'static str,
    constant: &Option<Constant>,
    inputs: &[&TensorSpec],
) -> Result<TensorSpec> {
    let dtype = crate::act::expect_act(layer, inputs[0])?;
    let b = match constant {
        Some(c) => TensorSpec::new(c.shape.clone(), dtype, c.quant),
        None => inputs[1].clone(),
    };
    if b.dtype != dtype {
        return Err(LayerError::InputDType {
            layer,
            expected: dtype.name(),
            actual: b.dtype.name(),
        });
    }
    Ok(b)
}

/// Inputs a binary layer takes: 1 with a constant operand, else 2.
pub(crate) fn arity(constant: &Option<Constant>) -> usize {
    if constant.is_some() {
        1
    } else {
        2
    }
}

/// Weight bytes of a binary layer: the constant's data, in the type of input `a`.
pub(crate) fn constant_len(constant: &Option<Constant>, a: &TensorSpec) -> Option<usize> {
    constant.as_ref().map_or(Some(0), |c| {
        cwnn_tensor::numel(&c.shape).ok()?.checked_mul(a.dtype.bytes())
    })
}

/// Units of a binary layer: elements of the broadcast output.
pub(crate) fn binary_units(layer: &'static str, constant: &Option<Constant>, inputs: &[&TensorSpec]) -> Option<usize> {
    let b = operand_b(layer, constant, inputs).ok()?;
    cwnn_tensor::numel(&broadcast_shape(&inputs[0].shape, &b.shape)?).ok()
}

/// Work of a binary layer whose element costs `per` (int8): per output element, that and
/// the two index maps (`rank` steps each); an int16 constant is decoded by every segment.
pub(crate) fn binary_work(layer: &'static str, constant: &Option<Constant>, inputs: &[&TensorSpec], per: u64) -> u64 {
    let (a, b) = (
        inputs[0],
        operand_b(layer, constant, inputs).map(|b| b.shape).unwrap_or_default(),
    );
    let Some(shape) = broadcast_shape(&a.shape, &b) else {
        return u64::MAX;
    };
    let n = work::count(&shape);
    let decode = match constant {
        Some(c) if crate::act::is_int16(a) => work::count(&c.shape),
        _ => 0,
    };
    work::sum(&[
        (n, work::elem(a, per) + 2 * shape.len() as u64 * work::ELEM),
        (n.saturating_mul(decode), work::ELEM),
    ])
}

/// Output shape of a binary layer.
pub(crate) fn binary_shape(layer: &'static str, a: &TensorSpec, b: &TensorSpec) -> Result<Vec<usize>> {
    broadcast_shape(&a.shape, &b.shape).ok_or(LayerError::InputShape {
        layer,
        expected: a.shape.clone(),
        actual: b.shape.clone(),
    })
}

/// Both operands of a binary layer: `(a, zp_a, b, zp_b)` with index maps into the output.
/// [`Operands::each`] visits output elements with their centred operands.
pub(crate) struct Operands<'a, T: Clone> {
    pub a: &'a [T],
    pub zp_a: i32,
    /// Borrowed, except an int16 constant (decoded from its LE bytes).
    pub b: Cow<'a, [T]>,
    pub zp_b: i32,
    pub ia: Broadcast,
    pub ib: Broadcast,
}

impl<T: Act> Operands<'_, T> {
    /// Sets each output element of `units` to `f(a − zp_a, b − zp_b)` of its operands. Operands of the
    /// output's shape (a residual Add) go straight through zipped slices: no index maps, no
    /// bounds test per element (each a metered branch in Wasm).
    pub(crate) fn each(&self, units: Range<usize>, y: &mut [T], mut f: impl FnMut(i64, i64) -> T) {
        let (za, zb) = (self.zp_a as i64, self.zp_b as i64);
        let c = |v: &T, z: i64| v.to_i32() as i64 - z;
        if self.ia.identity && self.ib.identity {
            let (a, b) = (&self.a[units.clone()], &self.b[units.clone()]);
            for ((o, x), w) in y[units].iter_mut().zip(a).zip(b.iter()) {
                *o = f(c(x, za), c(w, zb));
            }
            return;
        }
        for i in units {
            y[i] = f(c(&self.a[self.ia.index(i)], za), c(&self.b[self.ib.index(i)], zb));
        }
    }
}

pub(crate) fn operands<'a, T: Act>(
    layer: &'static str,
    constant: &'a Option<Constant>,
    inputs: &[&'a QTensor],
    weights: &'a [u8],
    out_shape: &[usize],
) -> Result<Operands<'a, T>> {
    let a = inputs[0];
    let (b, zp_b, b_shape) = match constant {
        Some(c) => (T::from_weights(weights), c.quant.zero_point, &c.shape[..]),
        None => (
            Cow::Borrowed(act_data::<T>(layer, inputs[1])?),
            inputs[1].quant.zero_point,
            &inputs[1].shape[..],
        ),
    };
    Ok(Operands {
        a: act_data::<T>(layer, a)?,
        zp_a: a.quant.zero_point,
        b,
        zp_b,
        ia: Broadcast::new(&a.shape, out_shape),
        ib: Broadcast::new(b_shape, out_shape),
    })
}
