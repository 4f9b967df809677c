use alloc::vec::Vec;

use crate::{DType, QuantParams, Result, TensorError};

/// Element storage of a [`QTensor`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TensorData {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::I8(_) => DType::I8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            TensorData::I8(v) => v.len(),
            TensorData::I16(v) => v.len(),
            TensorData::I32(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i` widened to i32.
    pub fn get(&self, i: usize) -> Option<i32> {
        match self {
            TensorData::I8(v) => v.get(i).map(|&x| x as i32),
            TensorData::I16(v) => v.get(i).map(|&x| x as i32),
            TensorData::I32(v) => v.get(i).copied(),
        }
    }
    /// Every element widened to i32: how messages carry tensors.
    pub fn to_i32s(&self) -> Vec<i32> {
        match self {
            TensorData::I8(v) => v.iter().map(|&x| x as i32).collect(),
            TensorData::I16(v) => v.iter().map(|&x| x as i32).collect(),
            TensorData::I32(v) => v.clone(),
        }
    }
    /// Little-endian bytes, the layout activations and weights are stored in.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            TensorData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
    /// Inverse of [`TensorData::to_le_bytes`].
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> Result<Self> {
        let w = dtype.bytes();
        if !bytes.len().is_multiple_of(w) {
            return Err(TensorError::LengthMismatch {
                what: "byte length (multiple of element size)",
                expected: bytes.len() / w * w,
                actual: bytes.len(),
            });
        }
        Ok(match dtype {
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::I16 => TensorData::I16(
                bytes
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            DType::I32 => TensorData::I32(
                bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        })
    }
}

/// A quantized tensor: row-major shape, integer data and its quantization parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QTensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
    pub quant: QuantParams,
}

impl QTensor {
    /// Builds a tensor, checking that the shape's element count matches the data.
    pub fn new(shape: Vec<usize>, data: TensorData, quant: QuantParams) -> Result<Self> {
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(TensorError::LengthMismatch {
                what: "tensor data",
                expected: n,
                actual: data.len(),
            });
        }
        quant.scale.validate()?;
        let dt = data.dtype();
        if quant.zero_point < dt.min() || quant.zero_point > dt.max() {
            return Err(TensorError::InvalidQuantization(
                "zero point outside the element type's range",
            ));
        }
        Ok(QTensor { shape, data, quant })
    }
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Element count of a shape, refusing overflow. The empty shape is a scalar (1 element).
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(TensorError::ShapeOverflow)
}
