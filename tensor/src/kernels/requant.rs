use super::expect_len;
use crate::{Dyadic, Quantized, Result, TensorError};

/// Output clamp in the quantized domain; a fused ReLU is `lo = zero_point`, ReLU6 also sets `hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Clamp {
    pub lo: i32,
    pub hi: i32,
}

impl Clamp {
    /// The whole range of the output type.
    pub const fn full<T: Quantized>() -> Clamp {
        Clamp {
            lo: T::DTYPE.min(),
            hi: T::DTYPE.max(),
        }
    }
    /// Refuses `lo > hi`.
    pub fn check(self) -> Result<()> {
        if self.lo > self.hi {
            return Err(TensorError::InvalidQuantization("clamp lower bound above upper bound"));
        }
        Ok(())
    }
}

/// One value: `saturate(clamp(zp + round_half_up(acc · m), lo, hi))`. `m` must be valid
/// (checked once by the caller; an unchecked one still cannot trap, see [`Dyadic::apply`]).
#[inline(always)]
pub fn requantize_one<T: Quantized>(acc: i32, m: Dyadic, zp: i32, c: Clamp) -> T {
    // max/min rather than `clamp`, whose lo ≤ hi assertion would be a metered branch per value.
    T::saturate((zp as i64 + m.apply(acc)).max(c.lo as i64).min(c.hi as i64))
}

/// [`requantize_one`] of an i64 accumulator (`int16` precision), via [`Dyadic::apply_i64`].
#[inline(always)]
pub fn requantize_i64<T: Quantized>(acc: i64, m: Dyadic, zp: i32, c: Clamp) -> T {
    T::saturate(
        (zp as i64)
            .saturating_add(m.apply_i64(acc))
            .max(c.lo as i64)
            .min(c.hi as i64),
    )
}

/// `out[i] = saturate(clamp(zp + round_half_up(acc[i] · m), lo, hi))`: one multiplier for the
/// whole tensor. Error against the real rescale: ≤ ½ LSB before the clamp.
pub fn requantize<T: Quantized>(acc: &[i32], m: Dyadic, zp: i32, clamp: Clamp, out: &mut [T]) -> Result<()> {
    expect_len("requantize output", acc.len(), out.len())?;
    m.validate()?;
    clamp.check()?;
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = requantize_one(a, m, zp, clamp);
    }
    Ok(())
}

/// Per-channel requantization: channel `c` covers `acc[c·inner .. (c+1)·inner]` and uses
/// `ms[c]`, with `inner = acc.len() / ms.len()` (CHW output of a conv, or 1 for Dense).
pub fn requantize_per_channel<T: Quantized>(
    acc: &[i32],
    ms: &[Dyadic],
    zp: i32,
    clamp: Clamp,
    out: &mut [T],
) -> Result<()> {
    expect_len("requantize output", acc.len(), out.len())?;
    clamp.check()?;
    if ms.is_empty() || !acc.len().is_multiple_of(ms.len()) {
        return Err(TensorError::InvalidShape(
            "per-channel multipliers do not divide the accumulator",
        ));
    }
    let inner = acc.len() / ms.len();
    if inner == 0 {
        return Ok(());
    }
    for ((oc, ac), &m) in out.chunks_exact_mut(inner).zip(acc.chunks_exact(inner)).zip(ms) {
        m.validate()?;
        for (o, &a) in oc.iter_mut().zip(ac) {
            *o = requantize_one(a, m, zp, clamp);
        }
    }
    Ok(())
}
