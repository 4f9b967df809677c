//! Reading a runtime Wasm's sections and writing a baked one (the layout is in the crate doc).

use alloc::vec::Vec;

use crate::payload::Payload;
use crate::{leb5, segment_header, BakeError, BASE, MAX_WASM_BYTES, SECTION_HEADER, SEGMENT_HEADER};

/// What a bake needs from its runtime.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    /// `P`: every byte before the data section.
    pub prefix: &'a [u8],
    /// The runtime's data segments: how many, and their bytes (`S`).
    pub segments: u32,
    pub data: &'a [u8],
    /// Initial linear memory in bytes.
    pub memory_bytes: u64,
}

fn leb(b: &[u8], i: &mut usize) -> Result<u64, BakeError> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let &x = b.get(*i).ok_or(BakeError::Runtime("truncated"))?;
        *i += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return Ok(v);
        }
        shift += 7;
        if shift >= 35 {
            return Err(BakeError::Runtime("LEB128 too long"));
        }
    }
}

/// Signed LEB128 of an `i32.const`.
fn sleb(b: &[u8], i: &mut usize) -> Result<i64, BakeError> {
    let start = *i;
    let v = leb(b, i)?;
    let bits = 7 * (*i - start) as u32;
    Ok(if bits < 64 && v >> (bits - 1) & 1 == 1 {
        v as i64 - (1i64 << bits)
    } else {
        v as i64
    })
}

/// The memory section's initial size: one memory, declared (not imported), 32-bit and not
/// shared, with no maximum (so the allocator can grow past the payload).
fn memory(b: &[u8]) -> Result<u64, BakeError> {
    let mut i = 0;
    if leb(b, &mut i)? != 1 {
        return Err(BakeError::Runtime("expected exactly one memory"));
    }
    if leb(b, &mut i)? != 0 {
        return Err(BakeError::Runtime("a memory with a maximum, shared or 64-bit"));
    }
    Ok(leb(b, &mut i)? * 65_536)
}

/// Checks each data segment is active in memory 0 at a constant offset, and ends below
/// [`BASE`]: the payload's memory is the bake's alone.
fn segments(b: &[u8]) -> Result<(u32, usize), BakeError> {
    let mut i = 0;
    let n = leb(b, &mut i)?;
    let start = i;
    for _ in 0..n {
        let flags = leb(b, &mut i)?;
        if flags != 0 || b.get(i) != Some(&0x41) {
            return Err(BakeError::Runtime(
                "a data segment that is not active at an i32.const offset",
            ));
        }
        i += 1;
        let offset = sleb(b, &mut i)?;
        if b.get(i) != Some(&0x0b) {
            return Err(BakeError::Runtime("a data segment's offset is not a constant"));
        }
        i += 1;
        let len = leb(b, &mut i)?;
        if offset < 0 || offset as u64 + len > BASE as u64 {
            return Err(BakeError::Runtime(
                "a data segment reaches the payload's memory (already baked?)",
            ));
        }
        i += len as usize;
    }
    if i != b.len() {
        return Err(BakeError::Runtime("data section length disagrees with its segments"));
    }
    Ok((n as u32, start))
}

/// Finds the runtime's prefix, data segments and memory. Custom sections after the data
/// section (names, producers) are left out of a bake; any other section there is refused.
pub fn layout(runtime: &[u8]) -> Result<Layout<'_>, BakeError> {
    if runtime.len() < 8 || runtime[..8] != *b"\0asm\x01\0\0\0" {
        return Err(BakeError::Runtime("no Wasm 1.0 header"));
    }
    let (mut i, mut memory_bytes, mut data) = (8, None, None);
    while i < runtime.len() {
        let (id, start) = (runtime[i], i);
        i += 1;
        let size = leb(runtime, &mut i)? as usize;
        let body = runtime
            .get(i..i + size)
            .ok_or(BakeError::Runtime("a section runs past the end"))?;
        match (id, data) {
            (0, _) => {}
            (_, Some(_)) => return Err(BakeError::Runtime("a section follows the data section")),
            (5, None) => memory_bytes = Some(memory(body)?),
            (11, None) => data = Some((start, body)),
            // A data count would have to count the payload's segment too.
            (12, None) => return Err(BakeError::Runtime("a data count section (bulk memory)")),
            _ => {}
        }
        i += size;
    }
    let (start, body) = data.ok_or(BakeError::Runtime("no data section"))?;
    let (segments, s) = self::segments(body)?;
    Ok(Layout {
        prefix: &runtime[..start],
        segments,
        data: &body[s..],
        memory_bytes: memory_bytes.ok_or(BakeError::Runtime("no memory section"))?,
    })
}

/// The baked Wasm of `runtime` carrying `config` (the model config's JSON), `weights` (every
/// layer's, in layer order) and the model's hash. The same inputs give the same bytes.
pub fn bake(runtime: &[u8], config: &[u8], weights: &[u8], model_sha256: &[u8; 32]) -> Result<Vec<u8>, BakeError> {
    let l = layout(runtime)?;
    let head_len = SECTION_HEADER + l.data.len() + SEGMENT_HEADER;
    let mut payload = Payload::build(config, weights, model_sha256, head_len)?;
    let plen = payload.len();
    if BASE as u64 + plen as u64 > l.memory_bytes {
        return Err(BakeError::Memory {
            have: l.memory_bytes,
            payload: plen as u64,
        });
    }
    let bytes = l.prefix.len() + head_len + plen;
    if bytes > MAX_WASM_BYTES {
        return Err(BakeError::TooLarge {
            bytes,
            max: MAX_WASM_BYTES,
        });
    }
    let size = 5 + l.data.len() + SEGMENT_HEADER + plen;
    let mut head = Vec::with_capacity(head_len);
    head.push(0x0b);
    head.extend_from_slice(&leb5(size as u32));
    head.extend_from_slice(&leb5(l.segments + 1));
    head.extend_from_slice(l.data);
    head.extend_from_slice(&segment_header(plen as u32));
    payload[plen - head_len..].copy_from_slice(&head);
    Ok([l.prefix, &head, &payload].concat())
}
