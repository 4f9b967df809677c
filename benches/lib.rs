//! Inputs shared by the benches: deterministic pseudo-random tensors, so every run measures
//! the same work.

/// `n` pseudo-random int8 values from `seed` (xorshift64).
pub fn i8s(seed: u64, n: usize) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as i8
        })
        .collect()
}

/// `n` pseudo-random i32 accumulators in ±2^20.
pub fn accs(seed: u64, n: usize) -> Vec<i32> {
    i8s(seed, n * 3)
        .chunks(3)
        .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8 & 0x1f, 0]) - (1 << 20))
        .collect()
}
