use super::expect_len;
use crate::Result;

/// Element-wise lookup: `out[i] = table[x[i] + 128]`.
///
/// Any function of one int8 value (sigmoid, tanh, exp, GELU, a requantize) is exact on the
/// grid this way: one load per element. The index is `(x as u8) ^ 0x80`, which equals
/// `x + 128` and is provably < 256, so the lookup has no bounds check.
pub fn lut<T: Copy>(x: &[i8], table: &[T; 256], out: &mut [T]) -> Result<()> {
    expect_len("lut output", x.len(), out.len())?;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = table[((v as u8) ^ 0x80) as usize];
    }
    Ok(())
}
