//! The contract Wasm's initial memory: 3 MiB, room for a baked payload at 2 MiB
//! (`cwnn_bake::BASE`, `cwnn_bake::MEMORY_BYTES`; `cwnn bake` checks both).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--initial-memory={}", 3 << 20);
    }
}
