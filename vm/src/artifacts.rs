use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Result};
use cwnn_layers::{Family, ModelConfig};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Directory of the Wasm builds: `$CWNN_WASM_DIR`, else `wasm32-unknown-unknown/release` in
/// the target directory (`$CARGO_TARGET_DIR` or the workspace's `target`), where
/// `scripts/build-wasm.sh` writes them.
pub fn wasm_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CWNN_WASM_DIR") {
        return PathBuf::from(d);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("wasm32-unknown-unknown/release")
}

/// Brings the Wasm builds up to date with the sources (`scripts/build-wasm.sh --no-check`, a
/// no-op when nothing changed), once per process, so a test never compares native code with a
/// stale module. Skipped when `$CWNN_WASM_DIR` points at prebuilt artifacts.
pub fn ensure_built() -> Result<()> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if std::env::var_os("CWNN_WASM_DIR").is_some() {
        return Ok(());
    }
    BUILT
        .get_or_init(|| {
            let status = Command::new("bash")
                .arg(workspace().join("scripts/build-wasm.sh"))
                .arg("--no-check")
                .current_dir(workspace())
                .status()
                .map_err(|e| format!("cannot run scripts/build-wasm.sh: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("scripts/build-wasm.sh --no-check failed ({status})"))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Reads the built Wasm of crate `name` (e.g. `cwnn_wasm_kernels`), building it first if needed.
pub fn read_wasm(name: &str) -> Result<Vec<u8>> {
    ensure_built()?;
    let path = wasm_dir().join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(b) => Ok(b),
        Err(e) => bail!(
            "cannot read {} ({e}); build the Wasm with scripts/build-wasm.sh",
            path.display()
        ),
    }
}

/// The runtimes of baked models (`scripts/build-wasm.sh`), smallest first, with the layer
/// families each carries ([`Family`]): the model contract itself carries all.
pub const RUNTIMES: [(&str, &[Family]); 5] = [
    ("cwnn_runtime_core", &[]),
    ("cwnn_runtime_conv", &[Family::Conv]),
    ("cwnn_runtime_seq", &[Family::Seq]),
    ("cwnn_runtime_attn", &[Family::Attn]),
    ("cwnn_model_contract", &[Family::Conv, Family::Seq, Family::Attn]),
];

/// The smallest runtime that carries every layer of `config`: its name and Wasm.
pub fn runtime_for(config: &ModelConfig) -> Result<(&'static str, Vec<u8>)> {
    let needs: Vec<Family> = config.layers.iter().filter_map(|l| l.layer.family()).collect();
    let (name, _) = RUNTIMES
        .iter()
        .find(|(_, has)| needs.iter().all(|f| has.contains(f)))
        .expect("the last runtime carries every family");
    Ok((name, read_wasm(name)?))
}
