use super::expect_len;
use crate::{Quantized, Result};

/// Element-wise saturating cast between integer types (e.g. i32 → i8 clamps to [−128, 127]).
pub fn saturating_cast<A: Quantized, B: Quantized>(x: &[A], out: &mut [B]) -> Result<()> {
    expect_len("cast output", x.len(), out.len())?;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = B::saturate(v.to_i32() as i64);
    }
    Ok(())
}
