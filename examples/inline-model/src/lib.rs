//! Example dApp: a contract with a cwnn model compiled in. `cwnn bake --rust` wrote
//! `src/model.rs` and `src/weights.bin` from the bundled digits model's package (tests/inline.rs
//! checks they are current; `CWNN_UPDATE_MODULE=1 cargo test -p cwnn-inline-model` rewrites
//! them):
//!
//! ```sh
//! cwnn import models/digits-mlp/model.onnx --out digits --calibration models/digits-mlp/calibration.csv
//! cwnn bake digits --rust examples/inline-model/src
//! ```
//!
//! Its `Classify` query runs the model in this contract: no model contract to call or pay, and
//! no weights read from storage (they are in the Wasm's data). The outputs are the model
//! contract's, bit for bit (tests/inline.rs, natively and on the Wasm).

pub mod contract;
pub mod model;
pub mod msg;
