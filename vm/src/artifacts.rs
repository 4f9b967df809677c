use std::path::PathBuf;

use anyhow::{bail, Result};

/// Directory of the Wasm builds: `$CWNN_WASM_DIR`, else the workspace's
/// `target/wasm32-unknown-unknown/release` (where `scripts/build-wasm.sh` writes them).
pub fn wasm_dir() -> PathBuf {
    match std::env::var_os("CWNN_WASM_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-unknown-unknown/release"),
    }
}

/// Reads the built Wasm of crate `name` (e.g. `cwnn_wasm_kernels`), or says how to build it.
pub fn read_wasm(name: &str) -> Result<Vec<u8>> {
    let path = wasm_dir().join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(b) => Ok(b),
        Err(e) => bail!(
            "cannot read {} ({e}); build the Wasm first: scripts/build-wasm.sh",
            path.display()
        ),
    }
}
