//! Example dApp: a contract with a cwnn model compiled in. `cwnn bake --rust` wrote
//! `src/model.rs` and `src/weights.bin` from the bundled digits model's package:
//!
//! ```sh
//! cargo run -p cwnn-importer --bin cwnn -- bake clients/ts/fixtures/digits-mlp --rust examples/inline-model/src
//! ```
//!
//! Its `Classify` query runs the model in this contract: no model contract to call or pay, and
//! no weights read from storage (they are in the Wasm's data). The outputs are the model
//! contract's, bit for bit (tests/inline.rs, and vm/tests/bake.rs on the Wasm).

pub mod contract;
pub mod model;
pub mod msg;
