//! What a layer knows of a tensor before its data arrives.

use alloc::vec;
use alloc::vec::Vec;

use cwnn_tensor::{numel, DType, QTensor, QuantParams, TensorData};

use crate::Result;

/// Shape, element type and quantization of a tensor: what a layer needs to know of its
/// input before any data arrives. Shapes have no batch axis (the chain runs one sample).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TensorSpec {
    #[cfg_attr(feature = "serde", serde(with = "crate::dims::list"))]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<u32>"))]
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub quant: QuantParams,
}

impl TensorSpec {
    pub fn new(shape: Vec<usize>, dtype: DType, quant: QuantParams) -> Self {
        TensorSpec { shape, dtype, quant }
    }
    /// The spec a tensor has.
    pub fn of(t: &QTensor) -> Self {
        TensorSpec {
            shape: t.shape.clone(),
            dtype: t.dtype(),
            quant: t.quant,
        }
    }
    /// Element count (`None` on overflow).
    pub fn numel(&self) -> Option<usize> {
        numel(&self.shape).ok()
    }
    /// Bytes of data at this spec.
    pub fn bytes(&self) -> Option<usize> {
        self.numel()?.checked_mul(self.dtype.bytes())
    }
    /// A zero-filled tensor of this spec (an output buffer).
    pub fn zeros(&self) -> Result<QTensor> {
        let n = self.numel().ok_or(cwnn_tensor::TensorError::ShapeOverflow)?;
        let data = match self.dtype {
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::I16 => TensorData::I16(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
        };
        Ok(QTensor::new(self.shape.clone(), data, self.quant)?)
    }
}

#[cfg(feature = "std")]
impl TensorSpec {
    /// Real values as a tensor of this spec: quantized at its parameters, or for an i32 spec
    /// taken as indices (truncated). How a sample becomes a model input; the values must be as
    /// many as the shape holds.
    pub fn quantize(&self, x: &ndarray::ArrayD<f64>) -> Result<QTensor> {
        let q = |v: f64| cwnn_tensor::host::quantize(v, &self.quant, self.dtype);
        let data = match self.dtype {
            DType::I32 => TensorData::I32(x.iter().map(|&v| v as i32).collect()),
            DType::I16 => TensorData::I16(x.iter().map(|&v| q(v) as i16).collect()),
            DType::I8 => TensorData::I8(x.iter().map(|&v| q(v) as i8).collect()),
        };
        Ok(QTensor::new(self.shape.clone(), data, self.quant)?)
    }
}
