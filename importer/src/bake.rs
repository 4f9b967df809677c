//! `cwnn bake`: a model package as a contract of its own, its config and weights in the
//! Wasm's data section (`cwnn_bake`). The output directory is the package plus the baked
//! Wasm and the entry a collection needs to accept the runtime it was baked on.
//!
//! ```text
//! DIR/model.wasm     the baked contract: store it, instantiate it with DIR/instantiate.json
//! DIR/runtime.json   the runtime's `BakedRuntime`, for a collection's `baked_runtimes`
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use cosmwasm_std::Checksum;
use cwnn_bake::RuntimeId;
use cwnn_collection::msg::BakedRuntime;

use crate::package::Package;

pub const WASM_FILE: &str = "model.wasm";
pub const RUNTIME_FILE: &str = "runtime.json";

/// A bake's outcome.
pub struct Baked {
    pub wasm: Vec<u8>,
    pub runtime: RuntimeId,
}

impl Baked {
    /// The code checksum wasmd will give it.
    pub fn checksum(&self) -> Checksum {
        Checksum::generate(&self.wasm)
    }
}

/// Bakes `package` on `runtime` (the model contract's Wasm).
pub fn bake(package: &Package, runtime: &[u8]) -> Result<Baked> {
    let wasm = cwnn_model_contract::state::bake(runtime, &package.instantiate.model, &package.weights)?;
    Ok(Baked {
        wasm,
        runtime: RuntimeId::of(runtime)?,
    })
}

/// Writes the package, its baked Wasm and the runtime's entry to `out`.
pub fn write(package: &Package, baked: &Baked, out: &Path) -> Result<()> {
    package.write(out)?;
    let path = out.join(WASM_FILE);
    std::fs::write(&path, &baked.wasm).with_context(|| format!("writing {}", path.display()))?;
    let path = out.join(RUNTIME_FILE);
    let json = serde_json::to_vec_pretty(&BakedRuntime::from(&baked.runtime))?;
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The baked Wasm and runtime of a directory `cwnn bake` wrote, or None for a plain package.
pub fn read(dir: &Path) -> Result<Option<Baked>> {
    let path = dir.join(WASM_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let path = dir.join(RUNTIME_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let entry: BakedRuntime =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not a BakedRuntime", path.display()))?;
    let runtime = RuntimeId::try_from(&entry).map_err(anyhow::Error::msg)?;
    Ok(Some(Baked { wasm, runtime }))
}
