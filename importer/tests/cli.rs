//! `cwnn gas` on a package written from a test model.

use std::process::Command;

use cwnn_importer::{Package, PackageError};
use cwnn_model_contract::testing::mlp;
use serde_json::Value;

fn package_dir() -> (tempfile::TempDir, Package) {
    let m = mlp(784, 128, 10);
    let package = Package {
        instantiate: m.instantiate_msg(),
        weights: m.weights.clone(),
        sample: Some(m.sample_values()),
    };
    let dir = tempfile::tempdir().unwrap();
    package.write(dir.path()).unwrap();
    (dir, package)
}

fn cwnn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cwnn")).args(args).output().unwrap()
}

#[test]
fn packages_round_trip_and_are_checked() {
    let (dir, package) = package_dir();
    assert_eq!(Package::read(dir.path()).unwrap(), package);
    std::fs::write(dir.path().join("weights/layer-001.bin"), [1u8, 2, 3]).unwrap();
    assert!(matches!(
        Package::read(dir.path()),
        Err(PackageError::HashMismatch { .. })
    ));
    std::fs::remove_file(dir.path().join("weights/layer-001.bin")).unwrap();
    let err = Package::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("layer-001.bin"), "{err}");
}

#[test]
fn gas_reports_layers_and_plans_calls() {
    let (dir, _) = package_dir();
    let path = dir.path().to_str().unwrap();
    let out = cwnn(&["gas", path, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for key in [
        "index",
        "kind",
        "macs",
        "weight_bytes",
        "vm_gas",
        "storage_sdk_gas",
        "sdk_gas",
    ] {
        assert!(layers[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(layers[0]["macs"], 784 * 128);
    assert_eq!(r["fits_query"], true);
    assert_eq!(r["calls"], 1);
    let total = r["total_sdk_gas"].as_u64().unwrap();
    assert!(total > 300_000 && total < 420_000, "{total}");

    // A small per-call limit splits the first layer's ~306k SDK gas over several calls.
    let out = cwnn(&["gas", path, "--json", "--block-gas", "200000"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["calls"].as_u64().unwrap() >= 3, "{r}");

    let table = cwnn(&["gas", path]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("dense") && text.contains("fits the 3000000"), "{text}");

    let missing = cwnn(&["gas", "/nonexistent-package"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("instantiate.json"));
}
