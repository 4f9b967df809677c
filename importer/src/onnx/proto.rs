//! Reading ONNX protobuf values: tensors (typed fields and `raw_data`) and node attributes.
//! `TensorProto::as_value()` of onnx-protobuf is not used: it ignores `raw_data`.

use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};

use super::ImportError;

/// ONNX `TensorProto.DataType` codes this importer reads.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const UINT16: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const DOUBLE: i32 = 11;
    pub const UINT32: i32 = 12;
    pub const UINT64: i32 = 13;

    /// Whether values of this type are integers (indices) rather than reals.
    pub fn is_integer(t: i32) -> bool {
        matches!(
            t,
            UINT8 | INT8 | UINT16 | INT16 | INT32 | INT64 | BOOL | UINT32 | UINT64
        )
    }
}

fn bad_tensor(name: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Tensor {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Converts a TensorProto to f64 (integers up to 2^53 exactly), checking that the data fills
/// its dims.
pub fn to_array(t: &TensorProto) -> Result<ArrayD<f64>, ImportError> {
    let name = t.name.as_str();
    if !t.external_data.is_empty() {
        return Err(bad_tensor(
            name,
            "external data is read for initializers only; save this tensor inside the model",
        ));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        dims.push(usize::try_from(d).map_err(|_| bad_tensor(name, format!("negative dimension {d}")))?);
    }
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 28)
        .ok_or_else(|| bad_tensor(name, "too many elements"))?;
    let raw = &t.raw_data;
    fn le<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect()
    }
    let values: Vec<f64> = if !raw.is_empty() {
        let width = match t.data_type {
            dtype::FLOAT | dtype::INT32 | dtype::UINT32 => 4,
            dtype::DOUBLE | dtype::INT64 | dtype::UINT64 => 8,
            dtype::INT16 | dtype::UINT16 => 2,
            dtype::INT8 | dtype::UINT8 | dtype::BOOL => 1,
            other => return Err(bad_tensor(name, format!("data type {other} is not supported"))),
        };
        if raw.len() != n * width {
            return Err(bad_tensor(
                name,
                format!("raw_data has {} bytes, dims need {}", raw.len(), n * width),
            ));
        }
        match t.data_type {
            dtype::FLOAT => le(raw, |b| f32::from_le_bytes(b) as f64),
            dtype::DOUBLE => le(raw, f64::from_le_bytes),
            dtype::INT32 => le(raw, |b| i32::from_le_bytes(b) as f64),
            dtype::UINT32 => le(raw, |b| u32::from_le_bytes(b) as f64),
            dtype::INT64 => le(raw, |b| i64::from_le_bytes(b) as f64),
            dtype::UINT64 => le(raw, |b| u64::from_le_bytes(b) as f64),
            dtype::INT16 => le(raw, |b| i16::from_le_bytes(b) as f64),
            dtype::UINT16 => le(raw, |b| u16::from_le_bytes(b) as f64),
            dtype::INT8 => raw.iter().map(|&b| b as i8 as f64).collect(),
            _ => raw.iter().map(|&b| b as f64).collect(),
        }
    } else {
        match t.data_type {
            dtype::FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
            dtype::DOUBLE => t.double_data.clone(),
            dtype::INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
            dtype::UINT32 | dtype::UINT64 => t.uint64_data.iter().map(|&v| v as f64).collect(),
            dtype::INT32 | dtype::INT16 | dtype::INT8 | dtype::UINT16 | dtype::UINT8 | dtype::BOOL => {
                t.int32_data.iter().map(|&v| v as f64).collect()
            }
            other => return Err(bad_tensor(name, format!("data type {other} is not supported"))),
        }
    };
    if values.len() != n {
        return Err(bad_tensor(
            name,
            format!("holds {} values, dims {:?} need {n}", values.len(), dims),
        ));
    }
    ArrayD::from_shape_vec(IxDyn(&dims), values).map_err(|e| bad_tensor(name, e.to_string()))
}

/// A node's attributes, read with defaults and named errors.
pub struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn new(node: &'a NodeProto) -> Self {
        Attrs { node }
    }
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }
    fn kind(a: &AttributeProto) -> Option<AttributeType> {
        a.type_.enum_value().ok()
    }
    fn wrong(&self, name: &str, expected: &str) -> ImportError {
        ImportError::node(self.node, format!("attribute {name} should be {expected}"))
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) if matches!(Self::kind(a), Some(AttributeType::INT) | Some(AttributeType::UNDEFINED)) => Ok(a.i),
            Some(_) => Err(self.wrong(name, "an int")),
        }
    }
    pub fn float(&self, name: &str, default: f64) -> Result<f64, ImportError> {
        match self.get(name) {
            None => Ok(default),
            Some(a)
                if matches!(
                    Self::kind(a),
                    Some(AttributeType::FLOAT) | Some(AttributeType::UNDEFINED)
                ) =>
            {
                Ok(a.f as f64)
            }
            Some(_) => Err(self.wrong(name, "a float")),
        }
    }
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        match self.get(name) {
            None => Ok(None),
            Some(a)
                if matches!(
                    Self::kind(a),
                    Some(AttributeType::INTS) | Some(AttributeType::UNDEFINED)
                ) =>
            {
                Ok(Some(a.ints.clone()))
            }
            Some(_) => Err(self.wrong(name, "a list of ints")),
        }
    }
    pub fn string(&self, name: &str, default: &str) -> Result<String, ImportError> {
        match self.get(name) {
            None => Ok(default.to_string()),
            Some(a)
                if matches!(
                    Self::kind(a),
                    Some(AttributeType::STRING) | Some(AttributeType::UNDEFINED)
                ) =>
            {
                String::from_utf8(a.s.clone()).map_err(|_| self.wrong(name, "UTF-8"))
            }
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ImportError> {
        match self.get(name) {
            None => Ok(None),
            Some(a)
                if matches!(
                    Self::kind(a),
                    Some(AttributeType::STRINGS) | Some(AttributeType::UNDEFINED)
                ) =>
            {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8(s.clone()).map_err(|_| self.wrong(name, "UTF-8")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(_) => Err(self.wrong(name, "a list of strings")),
        }
    }
    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ImportError> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.t.is_some() => Ok(a.t.as_ref()),
            Some(_) => Err(self.wrong(name, "a tensor")),
        }
    }
}
