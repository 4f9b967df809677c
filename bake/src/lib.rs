//! Baked models: a model's config and weights carried in its contract's own Wasm, so a call
//! reads them from linear memory instead of paying 3 SDK gas per byte of storage.
//!
//! The runtime is the model contract's released Wasm. It is linked with [`MEMORY_BYTES`] of
//! initial memory and puts nothing at or above [`BASE`] (its stack and static data end below;
//! its allocator grows memory past the initial size). `cwnn bake` appends one data segment at
//! `BASE` holding the [`payload`]; at every call the contract looks for [`MAGIC`] there and,
//! when it finds it, serves the model it describes, finalized from the start.
//!
//! Layout of a baked Wasm, `P ‖ D`:
//! - `P`: the runtime's bytes before its data section, unchanged (types, imports, code ...).
//! - `D`: its data section rewritten as `0x0B ‖ size ‖ count ‖ S ‖ seg ‖ payload`, where `S`
//!   is the runtime's own segments unchanged, `seg` the new segment's header (active, memory
//!   0, offset `BASE`) and sizes are 5-byte LEB128, so `D`'s header has one length.
//!
//! The payload ends with a copy of `D`'s bytes before it, so a baked contract can show `D`
//! whole. A collection that knows the runtime's [`proof::RuntimeId`] (SHA-256 state after
//! `P`, and `S`'s hash) checks that `sha256(P ‖ D)` is the contract's code checksum: the code
//! is the runtime's and only the payload differs ([`proof::verify`], docs/SECURITY.md).
#![no_std]
extern crate alloc;

pub mod payload;
pub mod proof;
pub mod wasm;

pub use payload::Payload;
pub use proof::{verify, RuntimeId};
pub use wasm::{bake, Layout};

/// Address of the payload in a baked contract's linear memory (2 MiB).
pub const BASE: u32 = 0x20_0000;
/// The runtime's initial memory: `BASE` plus 1 MiB for the payload, more than a Wasm of
/// wasmd's [`MAX_WASM_BYTES`] can carry. (model-contract/build.rs passes it to the linker.)
pub const MEMORY_BYTES: u32 = 0x30_0000;
/// wasmd's `MaxWasmSize`: the largest code a chain stores.
pub const MAX_WASM_BYTES: usize = 800 * 1024;
/// First bytes of a payload; version 1 of the layout in [`payload`].
pub const MAGIC: [u8; 8] = *b"cwnnbak1";

/// Why a Wasm could not be baked, or a baked Wasm's proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BakeError {
    #[error("not a Wasm module the bake understands: {0}")]
    Runtime(&'static str),
    #[error("the runtime's memory ({have} bytes) cannot hold a payload of {payload} bytes at {BASE:#x}")]
    Memory { have: u64, payload: u64 },
    #[error("the baked Wasm would be {bytes} bytes, over wasmd's MaxWasmSize of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("baked payload: {0}")]
    Payload(&'static str),
    #[error("not a genuine baked model: {0}")]
    Forged(&'static str),
}

/// `v` as 5-byte LEB128 (unsigned; also a valid signed LEB for `v < 2^27`). Wasm accepts
/// padded LEB, and a fixed width keeps [`wasm`]'s header lengths independent of the sizes.
pub(crate) fn leb5(v: u32) -> [u8; 5] {
    [
        (v as u8 & 0x7f) | 0x80,
        ((v >> 7) as u8 & 0x7f) | 0x80,
        ((v >> 14) as u8 & 0x7f) | 0x80,
        ((v >> 21) as u8 & 0x7f) | 0x80,
        (v >> 28) as u8 & 0x0f,
    ]
}

/// The header of the payload's segment: active, memory 0, `i32.const BASE`, `len` bytes.
pub(crate) fn segment_header(len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[1] = 0x41;
    h[2..7].copy_from_slice(&leb5(BASE));
    h[7] = 0x0b;
    h[8..].copy_from_slice(&leb5(len));
    h
}

/// Bytes of `D`'s header (`0x0B`, size, count) and of [`segment_header`].
pub(crate) const SECTION_HEADER: usize = 11;
pub(crate) const SEGMENT_HEADER: usize = 13;
