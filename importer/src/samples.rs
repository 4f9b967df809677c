//! Sample inputs from files: NumPy `.npy`, ONNX TensorProto `.pb`, CSV (rows, with or without
//! a header, an optional `label` column) and JSON (nested arrays). A file holds one sample or
//! N samples stacked along the model's batch axis (CSV: one per row).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, IxDyn};
use onnx_protobuf::{Message, TensorProto};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SampleError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: shape {actual:?} is neither one sample {sample:?} nor samples stacked on axis {axis:?}")]
    Shape {
        path: PathBuf,
        actual: Vec<usize>,
        sample: Vec<usize>,
        axis: Option<usize>,
    },
}

/// Samples read from a file, with labels where the file has a `label` column.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub inputs: Vec<ArrayD<f64>>,
    pub labels: Option<Vec<i64>>,
}

fn format_err(path: &Path, reason: impl Into<String>) -> SampleError {
    SampleError::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a whole file as one tensor (a constant bound with `--const`).
pub fn read_tensor(path: &Path) -> Result<ArrayD<f64>, SampleError> {
    let bytes = std::fs::read(path).map_err(|error| SampleError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "npy" => npy(path, &bytes),
        "json" => json(path, &bytes),
        "pb" => {
            let t = TensorProto::parse_from_bytes(&bytes).map_err(|e| format_err(path, e.to_string()))?;
            crate::onnx::proto::to_array(&t).map_err(|e| format_err(path, e.to_string()))
        }
        other => Err(format_err(
            path,
            format!("unknown extension '{other}' (use .npy, .pb or .json)"),
        )),
    }
}

/// Reads samples of shape `sample` from `path`; `batch_axis` is where a stacked file has N.
pub fn read(path: &Path, sample: &[usize], batch_axis: Option<usize>) -> Result<Samples, SampleError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let bytes = std::fs::read(path).map_err(|error| SampleError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        return csv(path, &bytes, sample);
    }
    let array = read_tensor(path)?;
    Ok(Samples {
        inputs: split(path, array, sample, batch_axis)?,
        labels: None,
    })
}

/// One sample, or the samples stacked along `batch_axis`.
pub fn split(
    path: &Path,
    a: ArrayD<f64>,
    sample: &[usize],
    batch_axis: Option<usize>,
) -> Result<Vec<ArrayD<f64>>, SampleError> {
    if a.shape() == sample {
        return Ok(vec![a]);
    }
    if let Some(ax) = batch_axis {
        let mut rest = a.shape().to_vec();
        if ax < rest.len() {
            rest.remove(ax);
            if rest == sample {
                return Ok(a.axis_iter(Axis(ax)).map(|s| s.to_owned()).collect());
            }
        }
    }
    Err(SampleError::Shape {
        path: path.to_path_buf(),
        actual: a.shape().to_vec(),
        sample: sample.to_vec(),
        axis: batch_axis,
    })
}

fn csv(path: &Path, bytes: &[u8], sample: &[usize]) -> Result<Samples, SampleError> {
    let text = std::str::from_utf8(bytes).map_err(|_| format_err(path, "not UTF-8 text"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    let numeric = |l: &str| l.split(',').all(|f| f.trim().parse::<f64>().is_ok());
    let mut label_col = None;
    if let Some(first) = lines.peek() {
        if !numeric(first) {
            label_col = first.split(',').position(|f| f.trim().trim_matches('"') == "label");
            lines.next();
        }
    }
    let n: usize = sample.iter().product();
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    for (row, line) in lines.enumerate() {
        let mut values = Vec::with_capacity(n);
        for (col, field) in line.split(',').enumerate() {
            let v: f64 = field
                .trim()
                .parse()
                .map_err(|_| format_err(path, format!("row {}: '{field}' is not a number", row + 1)))?;
            if Some(col) == label_col {
                labels.push(v as i64);
            } else {
                values.push(v);
            }
        }
        if values.len() != n {
            return Err(format_err(
                path,
                format!(
                    "row {} has {} values, a sample {sample:?} has {n}",
                    row + 1,
                    values.len()
                ),
            ));
        }
        inputs.push(ArrayD::from_shape_vec(IxDyn(sample), values).expect("n values"));
    }
    Ok(Samples {
        inputs,
        labels: label_col.map(|_| labels),
    })
}

fn json(path: &Path, bytes: &[u8]) -> Result<ArrayD<f64>, SampleError> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format_err(path, e.to_string()))?;
    let v = v.get("input").cloned().unwrap_or(v);
    let mut shape = Vec::new();
    let mut cur = &v;
    while let serde_json::Value::Array(a) = cur {
        shape.push(a.len());
        match a.first() {
            Some(x) => cur = x,
            None => break,
        }
    }
    let mut values = Vec::new();
    fn flatten(v: &serde_json::Value, out: &mut Vec<f64>) -> bool {
        match v {
            serde_json::Value::Array(a) => a.iter().all(|x| flatten(x, out)),
            serde_json::Value::Number(n) => n.as_f64().map(|f| out.push(f)).is_some(),
            _ => false,
        }
    }
    if !flatten(&v, &mut values) {
        return Err(format_err(path, "expected nested arrays of numbers"));
    }
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| format_err(path, "arrays of unequal lengths"))
}

/// NumPy `.npy` (version 1–3, C order, little-endian numbers).
fn npy(path: &Path, bytes: &[u8]) -> Result<ArrayD<f64>, SampleError> {
    let bad = |r: &str| format_err(path, format!("not a .npy file: {r}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    let header = bytes.get(start..start + len).ok_or_else(|| bad("short header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[i..].trim_start_matches([':', ' ']))
    };
    let descr = field("descr")
        .and_then(|d| d.split('\'').nth(1))
        .ok_or_else(|| bad("no descr"))?;
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(bad("Fortran order"));
    }
    let shape_text = field("shape")
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_text
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let data = &bytes[start + len..];
    fn le<const N: usize>(d: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        d.chunks_exact(N).map(|c| f(c.try_into().expect("N bytes"))).collect()
    }
    let values = match descr {
        "<f4" => le(data, |b| f32::from_le_bytes(b) as f64),
        "<f8" => le(data, f64::from_le_bytes),
        "<i4" => le(data, |b| i32::from_le_bytes(b) as f64),
        "<i8" => le(data, |b| i64::from_le_bytes(b) as f64),
        "<i2" => le(data, |b| i16::from_le_bytes(b) as f64),
        "<u2" => le(data, |b| u16::from_le_bytes(b) as f64),
        "|u1" => data.iter().map(|&b| b as f64).collect(),
        "|i1" => data.iter().map(|&b| b as i8 as f64).collect(),
        other => return Err(bad(&format!("dtype {other} is not supported"))),
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| bad("data does not fill the shape"))
}
