//! A model package: everything needed to deploy a quantized model on chain, as files.
//!
//! ```text
//! DIR/instantiate.json          the model contract's InstantiateMsg (config, weights hash, ...)
//! DIR/weights/layer-000.bin     each layer's weight bytes, in the layer's layout
//! DIR/sample.json               optional: {"input": [...]}, one quantized input
//! ```
//!
//! `cwnn import` writes packages (with the wasmd messages and the quantization report beside
//! these files); `cwnn gas` reads them.

use std::fs;
use std::path::{Path, PathBuf};

use cwnn_model_contract::msg::{weights_sha256, InstantiateMsg};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PackageError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: not valid JSON for this file: {error}")]
    Json { path: PathBuf, error: serde_json::Error },
    #[error("weights hash mismatch: instantiate.json says {expected}, the weight files hash to {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("sample input has {actual} values, the model input has {expected}")]
    SampleLength { expected: usize, actual: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    pub instantiate: InstantiateMsg,
    /// One byte string per layer, in layer order.
    pub weights: Vec<Vec<u8>>,
    /// A quantized input, if the package carries one.
    pub sample: Option<Vec<i32>>,
}

#[derive(Serialize, Deserialize)]
struct Sample {
    input: Vec<i32>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |error| PackageError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn layer_file(dir: &Path, layer: usize) -> PathBuf {
    dir.join("weights").join(format!("layer-{layer:03}.bin"))
}

impl Package {
    pub fn write(&self, dir: &Path) -> Result<(), PackageError> {
        fs::create_dir_all(dir.join("weights")).map_err(io(dir))?;
        let path = dir.join("instantiate.json");
        let json = serde_json::to_vec_pretty(&self.instantiate).map_err(|error| PackageError::Json {
            path: path.clone(),
            error,
        })?;
        fs::write(&path, json).map_err(io(&path))?;
        for (i, w) in self.weights.iter().enumerate() {
            let path = layer_file(dir, i);
            fs::write(&path, w).map_err(io(&path))?;
        }
        if let Some(input) = &self.sample {
            let path = dir.join("sample.json");
            let json = serde_json::to_vec(&Sample { input: input.clone() }).map_err(|error| PackageError::Json {
                path: path.clone(),
                error,
            })?;
            fs::write(&path, json).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Reads a package and checks its weights against the hash in its instantiate message.
    pub fn read(dir: &Path) -> Result<Self, PackageError> {
        let path = dir.join("instantiate.json");
        let bytes = fs::read(&path).map_err(io(&path))?;
        let instantiate: InstantiateMsg =
            serde_json::from_slice(&bytes).map_err(|error| PackageError::Json { path, error })?;
        let weights = (0..instantiate.model.layers.len())
            .map(|i| {
                let path = layer_file(dir, i);
                fs::read(&path).map_err(io(&path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (expected, actual) = (instantiate.weights_sha256.to_hex(), weights_sha256(&weights).to_hex());
        if expected != actual {
            return Err(PackageError::HashMismatch { expected, actual });
        }
        let path = dir.join("sample.json");
        let sample = match fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<Sample>(&bytes)
                    .map_err(|error| PackageError::Json { path, error })?
                    .input,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&path)(e)),
        };
        let expected = instantiate.model.input.numel().unwrap_or(0);
        if let Some(s) = sample.as_ref().filter(|s| s.len() != expected) {
            return Err(PackageError::SampleLength {
                expected,
                actual: s.len(),
            });
        }
        Ok(Package {
            instantiate,
            weights,
            sample,
        })
    }

    /// The sample input, or the input's zero point everywhere (gas does not depend on values).
    pub fn input(&self) -> Vec<i32> {
        let spec = &self.instantiate.model.input;
        self.sample
            .clone()
            .unwrap_or_else(|| vec![spec.quant.zero_point; spec.numel().unwrap_or(0)])
    }
}
