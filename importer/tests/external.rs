//! ONNX external data: initializers in a file beside the model import exactly as inline ones,
//! and a location that leaves the model's folder is refused by name.

use std::path::{Path, PathBuf};

use cwnn_importer::import;
use cwnn_importer::onnx::{self, Options};
use ndarray::{ArrayD, IxDyn};
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{Message, ModelProto, StringStringEntryProto};

const FLOAT: i32 = 1;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graphs/cnn_bn/model.onnx")
}

fn entry(key: &str, value: String) -> StringStringEntryProto {
    let mut e = StringStringEntryProto::new();
    e.key = key.into();
    e.value = value;
    e
}

/// The fixture with every float initializer moved to `data` in `dir` (as the dynamo exporter
/// writes it), each at `location` with its offset and length; gives the model's path.
fn externalize(dir: &Path, location: &str, data: &str, pad: u64) -> PathBuf {
    let mut model = ModelProto::parse_from_bytes(&std::fs::read(fixture()).unwrap()).unwrap();
    let mut bytes = Vec::new();
    for t in &mut model.graph.as_mut().unwrap().initializer {
        if t.data_type != FLOAT {
            continue;
        }
        let raw: Vec<u8> = match t.raw_data.is_empty() {
            true => t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            false => std::mem::take(&mut t.raw_data),
        };
        t.float_data.clear();
        t.data_location = DataLocation::EXTERNAL.into();
        let offset = bytes.len() as u64;
        t.external_data = vec![
            entry("location", location.into()),
            entry("offset", offset.to_string()),
            entry("length", (raw.len() as u64 + pad).to_string()),
        ];
        bytes.extend(raw);
    }
    std::fs::write(dir.join(data), bytes).unwrap();
    let path = dir.join("model.onnx");
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    path
}

fn err(path: &Path) -> String {
    match import::load(path, &Options::default()) {
        Ok(_) => panic!("imported"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn external_initializers_import_as_inline_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = externalize(dir.path(), "model.onnx.data", "model.onnx.data", 0);
    let inline = import::load(&fixture(), &Options::default()).unwrap();
    let external = import::load(&path, &Options::default()).unwrap();
    let n: usize = inline.input_shape.iter().product();
    let x = ArrayD::from_shape_vec(
        IxDyn(&inline.input_shape),
        (0..n).map(|i| (i % 7) as f64 / 7.0).collect(),
    )
    .unwrap();
    assert_eq!(inline.forward(&x), external.forward(&x));
    // Bytes alone have no folder to read from.
    let bytes = std::fs::read(&path).unwrap();
    let e = onnx::import(&bytes, &Options::default()).unwrap_err().to_string();
    assert!(e.contains("was not read from a file"), "{e}");
}

#[test]
fn locations_outside_the_models_folder_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let climbs = externalize(&dir, "../w.bin", "w.bin", 0);
    assert!(
        err(&climbs).contains("is not a plain path inside the model's folder"),
        "{}",
        err(&climbs)
    );
    let absolute = externalize(&dir, "/etc/hostname", "w.bin", 0);
    assert!(err(&absolute).contains("is not a plain path"), "{}", err(&absolute));
    // A link inside the folder that points out of it.
    std::fs::write(outer.path().join("secret.bin"), vec![0u8; 1 << 16]).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.bin"), dir.join("link.bin")).unwrap();
    let linked = externalize(&dir, "link.bin", "w.bin", 0);
    assert!(
        err(&linked).contains("leads out of the model's folder"),
        "{}",
        err(&linked)
    );
}

#[test]
fn ranges_past_the_file_and_missing_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let long = externalize(dir.path(), "w.bin", "w.bin", 1 << 40);
    assert!(err(&long).contains("past the end of w.bin"), "{}", err(&long));
    let missing = externalize(dir.path(), "nowhere.bin", "w.bin", 0);
    assert!(err(&missing).contains("nowhere.bin"), "{}", err(&missing));
}
