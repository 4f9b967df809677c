//! The importer library's one error type: every public function that can fail returns it,
//! and each variant says what failed and where. The `cwnn` binary only adds the exit code.

use std::path::{Path, PathBuf};

use cwnn_layers::{GraphError, LayerError};
use thiserror::Error;

use crate::onnx::ImportError;
use crate::quantize::QuantizeError;
use crate::samples::SampleError;
use crate::PackageError;

#[derive(Debug, Error)]
pub enum Error {
    // `error`, not `source`: the message already holds it, and a source would be printed twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: {error}", path.display())]
    Json { path: PathBuf, error: serde_json::Error },
    #[error("importing {}: {error}", path.display())]
    Onnx { path: PathBuf, error: ImportError },
    #[error(transparent)]
    Samples(#[from] SampleError),
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Std(#[from] cosmwasm_std::StdError),
    /// A transaction's events do not check out against a package.
    #[error("events: {0}")]
    Events(String),
    /// A training run's arguments or results (`cwnn train-onchain`).
    #[error("training: {0}")]
    Training(String),
    /// The in-process chain (cosmwasm-vm) failed or refused a call.
    #[error("chain: {0}")]
    Chain(String),
    /// Printing a command's output.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error at `path`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// A JSON error at `path`.
pub fn json(path: &Path) -> impl FnOnce(serde_json::Error) -> Error + '_ {
    move |error| Error::Json {
        path: path.to_path_buf(),
        error,
    }
}

/// A failure of the in-process chain (cwnn-vm reports with anyhow).
pub fn chain(e: anyhow::Error) -> Error {
    Error::Chain(format!("{e:#}"))
}
