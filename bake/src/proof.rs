//! How a collection recognizes a genuine baked model from its code checksum alone.
//!
//! wasmd names code by `sha256(wasm)`. A baked Wasm is `P ‖ D` with `P` the runtime's, so its
//! checksum is SHA-256 resumed from the state after `P`'s whole 64-byte blocks, over `P`'s
//! last bytes and `D`. A [`RuntimeId`] holds that state, those bytes and the hash of the
//! runtime's own data segments `S`; the model sends `D` (it keeps a copy of `D`'s head). If
//! `D`'s header, `S` and the payload segment's header are as a bake writes them and the
//! resumed hash equals the checksum, the contract's code and static data are the runtime's:
//! only its payload differs, and the runtime validates that itself.

use alloc::vec::Vec;

#[allow(deprecated)]
use sha2::digest::generic_array::GenericArray;
use sha2::{compress256, Digest, Sha256};

use crate::payload::{Payload, HEADER};
use crate::wasm::layout;
use crate::{leb5, segment_header, BakeError, MAX_WASM_BYTES, SECTION_HEADER, SEGMENT_HEADER};

/// A runtime as a collection accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeId {
    /// SHA-256 state (8 big-endian words) after the first `hashed` bytes of `P`.
    pub state: [u8; 32],
    /// A multiple of 64.
    pub hashed: u64,
    /// `P`'s bytes after those (fewer than 64).
    pub tail: Vec<u8>,
    /// The runtime's data segments: count, bytes and sha256.
    pub segments: u32,
    pub data_len: u64,
    pub data_sha256: [u8; 32],
}

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One SHA-256 block. sha2 0.10 takes generic-array 0.14 blocks, which it marks deprecated.
#[allow(deprecated)]
fn compress(state: &mut [u32; 8], block: &[u8]) {
    compress256(state, &[*GenericArray::from_slice(block)]);
}

/// SHA-256 that can start from a midstate.
struct Resumed {
    state: [u32; 8],
    len: u64,
    buf: Vec<u8>,
}

impl Resumed {
    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.buf.is_empty() {
            let take = (64 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < 64 {
                return;
            }
            compress(&mut self.state, &self.buf);
            self.buf.clear();
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            compress(&mut self.state, b);
        }
        self.buf.extend_from_slice(blocks.remainder());
    }

    fn finish(mut self) -> [u8; 32] {
        let bits = self.len * 8;
        self.update(&[0x80]);
        while self.buf.len() != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

impl RuntimeId {
    /// The identity of `runtime` (a model contract Wasm that can be baked).
    pub fn of(runtime: &[u8]) -> Result<Self, BakeError> {
        let l = layout(runtime)?;
        let hashed = l.prefix.len() / 64 * 64;
        let mut h = Resumed {
            state: H0,
            len: 0,
            buf: Vec::new(),
        };
        h.update(&l.prefix[..hashed]);
        let mut state = [0u8; 32];
        for (o, w) in state.chunks_exact_mut(4).zip(h.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Ok(RuntimeId {
            state,
            hashed: hashed as u64,
            tail: l.prefix[hashed..].to_vec(),
            segments: l.segments,
            data_len: l.data.len() as u64,
            data_sha256: Sha256::digest(l.data).into(),
        })
    }

    /// `sha256(P ‖ d)`.
    fn checksum_with(&self, d: &[u8]) -> [u8; 32] {
        let mut state = [0u32; 8];
        for (w, b) in state.iter_mut().zip(self.state.chunks_exact(4)) {
            *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut h = Resumed {
            state,
            len: self.hashed,
            buf: Vec::new(),
        };
        h.update(&self.tail);
        h.update(d);
        h.finish()
    }
}

/// Checks that a contract whose code checksum is `checksum` is `runtime` baked with the data
/// section `d` (module doc).
pub fn verify(runtime: &RuntimeId, d: &[u8], checksum: &[u8]) -> Result<(), BakeError> {
    let forged = BakeError::Forged;
    if runtime.data_len > MAX_WASM_BYTES as u64 || runtime.segments == u32::MAX {
        return Err(forged("runtime entry out of range"));
    }
    let s_end = SECTION_HEADER + runtime.data_len as usize;
    let p_start = s_end + SEGMENT_HEADER;
    if d.len() < p_start + HEADER || d.len() > MAX_WASM_BYTES {
        return Err(forged("data section length"));
    }
    if d[0] != 0x0b || d[1..6] != leb5(d.len() as u32 - 6) || d[6..11] != leb5(runtime.segments + 1) {
        return Err(forged("data section header"));
    }
    if Sha256::digest(&d[SECTION_HEADER..s_end])[..] != runtime.data_sha256 {
        return Err(forged("the runtime's data segments differ"));
    }
    if d[s_end..p_start] != segment_header((d.len() - p_start) as u32) {
        return Err(forged("payload segment header"));
    }
    let payload = Payload::parse(&d[p_start..]).map_err(|_| forged("payload"))?;
    // The copy a baked contract sends its section from: a wrong one could never mint.
    if payload.head != &d[..p_start] {
        return Err(forged("the payload's copy of the section head differs"));
    }
    if runtime.checksum_with(d)[..] != *checksum {
        return Err(forged("code checksum differs from the runtime baked with this data"));
    }
    Ok(())
}
