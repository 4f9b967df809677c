use super::expect_len;
use crate::{Result, TensorError};

/// `exp(0)` in the exp table's fixed point (Q15.16): table entries lie in `[0, EXP_ONE]`.
pub const EXP_ONE: i32 = 1 << 16;

/// Checks an exp table: `table[d] ≈ EXP_ONE · exp(−scale · d)`, entries in `[0, EXP_ONE]`,
/// `table[0] > 0`. Done once when a layer is configured, not per call.
pub fn validate_exp_table(table: &[i32; 256]) -> Result<()> {
    if table[0] <= 0 || table.iter().any(|&e| !(0..=EXP_ONE).contains(&e)) {
        return Err(TensorError::InvalidExpTable);
    }
    Ok(())
}

/// Integer reciprocal `round(2^40 / s)` for `s ≥ 1` (`None` for 0): softmax multiplies by it
/// instead of dividing per element. Since `s ≥ 1`, the result is ≤ 2^40.
pub fn reciprocal(s: u64) -> Option<u64> {
    if s == 0 {
        return None;
    }
    Some(((1u64 << 40) + s / 2) / s)
}

/// Max-subtracted softmax over int8 logits.
///
/// `exp_table[d] = round(EXP_ONE · exp(−s_in · d))` for `d = max(x) − x[i] ∈ [0, 255]`, built on
/// the host for the input scale `s_in`. Output scale is 1/256 with zero point −128 (the TFLite
/// convention): `out[i] = clamp(round(256 · e_i / Σe) − 128, −128, 127)`, computed as
/// `(e_i · R + 2^31) >> 32` with `R = reciprocal(Σe)`.
/// Error against the exact softmax of the table values: ≤ ½ + 2^−17 LSB, plus one LSB where a
/// probability of 1 clamps to 255/256. Entries outside `[0, EXP_ONE]` void the bound but cannot
/// panic (wrapping arithmetic); an all-zero sum is refused.
pub fn softmax_i8(x: &[i8], exp_table: &[i32; 256], out: &mut [i8]) -> Result<()> {
    expect_len("softmax output", x.len(), out.len())?;
    let Some(m) = x.iter().copied().max() else {
        return Ok(());
    };
    let e = |v: i8| exp_table[(m as i32 - v as i32) as u8 as usize] as u32 as u64;
    let sum = x.iter().fold(0u64, |s, &v| s.wrapping_add(e(v)));
    let r = reciprocal(sum).ok_or(TensorError::InvalidExpTable)?;
    for (o, &v) in out.iter_mut().zip(x) {
        let p = (e(v).wrapping_mul(r).wrapping_add(1 << 31) >> 32) as i64;
        *o = (p - 128).clamp(-128, 127) as i8;
    }
    Ok(())
}
