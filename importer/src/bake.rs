//! `cwnn bake`: a model package as a contract of its own, its config and weights in the
//! Wasm's data section (`cwnn_bake`). The output directory is the package plus the baked
//! Wasm and the entry a collection needs to accept the runtime it was baked on.
//!
//! ```text
//! DIR/model.wasm     the baked contract: store it, instantiate it with DIR/instantiate.json
//! DIR/runtime.json   the runtime's `BakedRuntime`, for a collection's `baked_runtimes`
//! ```
//!
//! For dApp builders who write their own contract, [`write_rust`] writes the model as a Rust
//! module instead (`cwnn bake --rust DIR`): `DIR/model.rs` and `DIR/weights.bin`, which
//! `ModelConfig::run_concatenated` runs (examples/inline-model).

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

pub const RUST_FILE: &str = "model.rs";
pub const RUST_WEIGHTS_FILE: &str = "weights.bin";

/// The model as a Rust module: its config's JSON and hashes as constants, its weights
/// (every layer's, in layer order) included from a file beside it.
pub fn rust_module(package: &Package) -> Result<String> {
    let config = String::from_utf8(cosmwasm_std::to_json_vec(&package.instantiate.model)?)?;
    anyhow::ensure!(
        !config.contains("\"####"),
        "the config's JSON holds the raw-string delimiter"
    );
    let weights = &package.instantiate.weights_sha256;
    let model = cwnn_model_contract::msg::model_sha256(&package.instantiate.model, weights)?;
    let name = &package.instantiate.model.name;
    Ok(format!(
        "//! The cwnn model `{name}` as a Rust module, written by `cwnn bake --rust` (do not edit).\n\
         //! `ModelConfig::run_concatenated(WEIGHTS, input)` computes what the model contract does.\n\n\
         /// The model's config, as the model contract serializes it (`cwnn_layers::ModelConfig`).\n\
         pub const CONFIG_JSON: &str = r####\"{config}\"####;\n\n\
         /// Every layer's weights, concatenated in layer order.\n\
         pub static WEIGHTS: &[u8] = include_bytes!(\"{RUST_WEIGHTS_FILE}\");\n\n\
         /// sha256 of [`WEIGHTS`], and the model's identity as the model contract shows it.\n\
         pub const WEIGHTS_SHA256: &str = \"{weights}\";\n\
         pub const MODEL_SHA256: &str = \"{model}\";\n"
    ))
}

/// Writes [`rust_module`] and the weights to `dir`.
pub fn write_rust(package: &Package, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(RUST_FILE);
    std::fs::write(&path, rust_module(package)?).with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join(RUST_WEIGHTS_FILE);
    std::fs::write(&path, package.weights.concat()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
