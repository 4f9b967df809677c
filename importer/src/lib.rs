//! cwnn's importer: ONNX models to quantized model packages for the cwnn model contract, and
//! the commands of the `cwnn` CLI.

pub mod bake;
pub mod demo;
mod error;
pub mod float;
pub mod import;
pub mod onnx;
pub mod package;
pub mod progress;
pub mod quantize;
pub mod samples;
pub mod train;
pub mod verify;

pub use error::{Error, Result};
pub use package::{Package, PackageError};
