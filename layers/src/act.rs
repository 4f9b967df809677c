//! The two activation types, int8 (`int8` precision) and int16 (`int16` precision): typed
//! access to a tensor's data, with named errors for the wrong type.

use alloc::vec;

use cwnn_tensor::{DType, QTensor, TensorData};

use crate::weights::as_i8;
use crate::{LayerError, Result, TensorSpec};

/// An activation element type: int8 (`int8` precision) or int16. A layer
/// computes in the type of its input and gives its output in the same type.
pub(crate) trait Act: cwnn_tensor::Quantized + Ord {
    fn slice(d: &TensorData) -> Option<&[Self]>;
    fn slice_mut(d: &mut TensorData) -> Option<&mut [Self]>;
    /// Values stored as weights (LE bytes): borrowed for int8, decoded for int16.
    fn from_weights(b: &[u8]) -> alloc::borrow::Cow<'_, [Self]>;
}

impl Act for i8 {
    fn from_weights(b: &[u8]) -> alloc::borrow::Cow<'_, [i8]> {
        alloc::borrow::Cow::Borrowed(as_i8(b))
    }
    fn slice(d: &TensorData) -> Option<&[i8]> {
        if let TensorData::I8(v) = d {
            return Some(v);
        }
        None
    }
    fn slice_mut(d: &mut TensorData) -> Option<&mut [i8]> {
        if let TensorData::I8(v) = d {
            return Some(v);
        }
        None
    }
}

impl Act for i16 {
    fn from_weights(b: &[u8]) -> alloc::borrow::Cow<'_, [i16]> {
        alloc::borrow::Cow::Owned(b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())
    }
    fn slice(d: &TensorData) -> Option<&[i16]> {
        if let TensorData::I16(v) = d {
            return Some(v);
        }
        None
    }
    fn slice_mut(d: &mut TensorData) -> Option<&mut [i16]> {
        if let TensorData::I16(v) = d {
            return Some(v);
        }
        None
    }
}

/// The data of an activation tensor of type `T`, or a named error.
pub(crate) fn act_data<'a, T: Act>(layer: &'static str, t: &'a QTensor) -> Result<&'a [T]> {
    T::slice(&t.data).ok_or(LayerError::InputDType {
        layer,
        expected: T::DTYPE.name(),
        actual: t.dtype().name(),
    })
}

pub(crate) fn act_data_mut<'a, T: Act>(layer: &'static str, t: &'a mut QTensor) -> Result<&'a mut [T]> {
    T::slice_mut(&mut t.data).ok_or(LayerError::OutputSpec { layer })
}

/// Requires int8 or int16 activations (the two precisions), giving which.
pub(crate) fn expect_act(layer: &'static str, s: &TensorSpec) -> Result<DType> {
    match s.dtype {
        DType::I8 | DType::I16 => Ok(s.dtype),
        other => Err(LayerError::InputDType {
            layer,
            expected: "i8 or i16",
            actual: other.name(),
        }),
    }
}

/// Whether a spec is `int16` precision (int16 activations, int16 weights, i64 sums).
pub(crate) fn is_int16(s: &TensorSpec) -> bool {
    s.dtype == DType::I16
}

/// The int8 data of a tensor, or a named error.
pub(crate) fn i8_data<'a>(layer: &'static str, t: &'a QTensor) -> Result<&'a [i8]> {
    match &t.data {
        TensorData::I8(v) => Ok(v),
        other => Err(LayerError::InputDType {
            layer,
            expected: "i8",
            actual: other.dtype().name(),
        }),
    }
}

pub(crate) fn i8_data_mut<'a>(layer: &'static str, t: &'a mut QTensor) -> Result<&'a mut [i8]> {
    match &mut t.data {
        TensorData::I8(v) => Ok(v),
        _ => Err(LayerError::OutputSpec { layer }),
    }
}

/// Requires a CHW input, returning `(c, h, w)`.
pub(crate) fn chw(layer: &'static str, s: &TensorSpec) -> Result<(usize, usize, usize)> {
    match s.shape[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        _ => Err(LayerError::InputShape {
            layer,
            expected: vec![0, 0, 0],
            actual: s.shape.clone(),
        }),
    }
}
