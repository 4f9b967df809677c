//! ONNX external data (`data_location = EXTERNAL`): PyTorch's dynamo exporter and
//! `onnx.save(..., save_as_external_data=True)` write initializers to a file beside the model
//! and record `location`, `offset` and `length`. The file must lie inside the model's folder:
//! a location that is absolute, climbs out with `..` or resolves (through links) elsewhere is
//! refused, so a model file cannot make the importer read arbitrary files.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::TensorProto;

use super::ImportError;

/// The most bytes one external tensor may have (2^28 eight-byte values, as inline tensors).
const MAX_BYTES: u64 = 8 << 28;

fn refuse(t: &TensorProto, reason: impl Into<String>) -> ImportError {
    ImportError::Tensor {
        name: t.name.clone(),
        reason: format!("external data: {}", reason.into()),
    }
}

/// `t` with its data in `raw_data`: itself when inline, else read from `dir` (the model's
/// folder; None when the model came as bytes, which refuses external data).
pub fn resolve<'a>(t: &'a TensorProto, dir: Option<&Path>) -> Result<Cow<'a, TensorProto>, ImportError> {
    let external = t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) || !t.external_data.is_empty();
    if !external {
        return Ok(Cow::Borrowed(t));
    }
    let dir = dir.ok_or_else(|| {
        refuse(
            t,
            "the model was not read from a file, so there is no folder to read it from",
        )
    })?;
    let entry = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
    let number = |key: &str| -> Result<Option<u64>, ImportError> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| refuse(t, format!("{key} '{v}' is not a number")))
            })
            .transpose()
    };
    let location = entry("location").ok_or_else(|| refuse(t, "no location"))?;
    let path = inside(t, dir, location)?;
    let mut file = File::open(&path).map_err(|e| refuse(t, format!("{}: {e}", path.display())))?;
    let size = file.metadata().map_err(|e| refuse(t, e.to_string()))?.len();
    let offset = number("offset")?.unwrap_or(0);
    let length = match number("length")? {
        Some(n) => n,
        None => size.saturating_sub(offset),
    };
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(refuse(
            t,
            format!("bytes {offset}..+{length} lie past the end of {location} ({size} bytes)"),
        ));
    }
    if length > MAX_BYTES {
        return Err(refuse(t, format!("{length} bytes is more than a tensor may have")));
    }
    let mut raw = vec![0u8; length as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut raw))
        .map_err(|e| refuse(t, format!("{location}: {e}")))?;
    let mut inline = t.clone();
    inline.external_data.clear();
    inline.data_location = DataLocation::DEFAULT.into();
    inline.raw_data = raw;
    Ok(Cow::Owned(inline))
}

/// `location` as a path inside `dir`, or a named refusal.
fn inside(t: &TensorProto, dir: &Path, location: &str) -> Result<std::path::PathBuf, ImportError> {
    let rel = Path::new(location);
    if location.is_empty()
        || !rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refuse(
            t,
            format!("location '{location}' is not a plain path inside the model's folder"),
        ));
    }
    let resolve = |p: &Path| p.canonicalize().map_err(|e| refuse(t, format!("{}: {e}", p.display())));
    let (root, path) = (resolve(dir)?, resolve(&dir.join(rel))?);
    if !path.starts_with(&root) {
        return Err(refuse(
            t,
            format!("location '{location}' leads out of the model's folder"),
        ));
    }
    Ok(path)
}
