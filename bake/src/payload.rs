//! The payload at [`crate::BASE`]: `MAGIC ‖ total ‖ config_len ‖ weights_len ‖ head_len`
//! (u32 little-endian), the weights' sha256 and the model's (32 bytes each; the contract
//! checks both at instantiation, then reads them here instead of from storage), then the
//! config's JSON (as the contract serializes it, so the model hash is unchanged), every
//! layer's weights concatenated in layer order, and `head`: the data section's bytes before
//! the payload (see the crate doc).

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::{BakeError, BASE, MAGIC, MEMORY_BYTES};

/// Bytes before the config: magic, four lengths, two hashes.
pub const HEADER: usize = 88;

/// A payload's parts, borrowed from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub weights_sha256: &'a [u8; 32],
    pub model_sha256: &'a [u8; 32],
    pub config: &'a [u8],
    pub weights: &'a [u8],
    /// The data section's bytes before the payload.
    pub head: &'a [u8],
    /// The whole payload.
    pub bytes: &'a [u8],
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

impl<'a> Payload<'a> {
    /// Splits `bytes` (exactly one payload) into its parts.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BakeError> {
        if bytes.len() < HEADER || bytes[..8] != MAGIC {
            return Err(BakeError::Payload("no cwnn payload header"));
        }
        let (total, c, w, h) = (
            u32_at(bytes, 8),
            u32_at(bytes, 12),
            u32_at(bytes, 16),
            u32_at(bytes, 20),
        );
        let sum = HEADER as u64 + c as u64 + w as u64 + h as u64;
        if total != bytes.len() || sum != total as u64 {
            return Err(BakeError::Payload("lengths disagree"));
        }
        let (config, rest) = bytes[HEADER..].split_at(c);
        let (weights, head) = rest.split_at(w);
        let hash = |at: usize| bytes[at..at + 32].try_into().map_err(|_| BakeError::Payload("hash"));
        Ok(Payload {
            weights_sha256: hash(24)?,
            model_sha256: hash(56)?,
            config,
            weights,
            head,
            bytes,
        })
    }

    /// The payload of `config`, `weights` and the model's hash, with `head_len` zero bytes at
    /// its end, where [`crate::wasm::bake`] then copies the head.
    pub(crate) fn build(
        config: &[u8],
        weights: &[u8],
        model_sha256: &[u8; 32],
        head_len: usize,
    ) -> Result<Vec<u8>, BakeError> {
        let total = HEADER + config.len() + weights.len() + head_len;
        let total32 = u32::try_from(total).map_err(|_| BakeError::Payload("over 4 GiB"))?;
        let mut b = Vec::with_capacity(total);
        b.extend_from_slice(&MAGIC);
        for n in [total32, config.len() as u32, weights.len() as u32, head_len as u32] {
            b.extend_from_slice(&n.to_le_bytes());
        }
        b.extend_from_slice(&Sha256::digest(weights));
        b.extend_from_slice(model_sha256);
        b.extend_from_slice(config);
        b.extend_from_slice(weights);
        b.resize(total, 0);
        Ok(b)
    }

    /// The data section as the chain stores it: `head ‖ payload` (what a collection hashes).
    pub fn data_section(&self) -> Vec<u8> {
        let mut d = Vec::with_capacity(self.head.len() + self.bytes.len());
        d.extend_from_slice(self.head);
        d.extend_from_slice(self.bytes);
        d
    }
}

/// The payload in this contract's own memory, if it is a baked one. Only a Wasm contract has
/// one; the first bytes are read volatile so the compiler assumes nothing about them.
#[cfg(target_arch = "wasm32")]
pub fn in_memory() -> Option<Payload<'static>> {
    let base = BASE as usize as *const u8;
    // SAFETY: the runtime's initial memory spans `BASE..MEMORY_BYTES` (crate doc); nothing
    // writes there, and a contract without a payload reads zeros.
    let head = unsafe { core::ptr::read_volatile(base as *const [u8; HEADER]) };
    if head[..8] != MAGIC {
        return None;
    }
    let total = u32_at(&head, 8);
    if total > (MEMORY_BYTES - BASE) as usize {
        return None;
    }
    // SAFETY: as above; `total` stays inside the initial memory.
    let bytes = unsafe { core::slice::from_raw_parts(base, total) };
    Payload::parse(bytes).ok()
}

/// Native code (tests, cw-multi-test) is never baked.
#[cfg(not(target_arch = "wasm32"))]
pub fn in_memory() -> Option<Payload<'static>> {
    let _ = (BASE, MEMORY_BYTES);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_back_what_build_wrote() {
        let mut b = Payload::build(b"{}", &[1, 2, 3], &[9; 32], 4).unwrap();
        let n = b.len();
        b[n - 4..].copy_from_slice(b"head");
        let p = Payload::parse(&b).unwrap();
        assert_eq!(
            (p.config, p.weights, p.head),
            (&b"{}"[..], &[1u8, 2, 3][..], &b"head"[..])
        );
        assert_eq!(p.weights_sha256[..], Sha256::digest([1u8, 2, 3])[..]);
        assert_eq!(p.model_sha256, &[9; 32]);
        assert_eq!(p.data_section(), [&b"head"[..], &b].concat());
    }

    #[test]
    fn bad_payloads_are_named_errors() {
        let b = Payload::build(b"{}", &[1, 2, 3], &[0; 32], 0).unwrap();
        assert_eq!(
            Payload::parse(&b[..10]),
            Err(BakeError::Payload("no cwnn payload header"))
        );
        assert_eq!(
            Payload::parse(&b[..b.len() - 1]),
            Err(BakeError::Payload("lengths disagree"))
        );
        let mut bad = b.clone();
        bad[12] = 200; // config length past the end
        assert_eq!(Payload::parse(&bad), Err(BakeError::Payload("lengths disagree")));
        let mut bad = b;
        bad[0] = b'x';
        assert_eq!(Payload::parse(&bad), Err(BakeError::Payload("no cwnn payload header")));
    }
}
