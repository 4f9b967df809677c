//! Integer kernels. Shared rules (see docs/ARITHMETIC.md):
//! - inputs are checked and refused with a [`TensorError`](crate::TensorError), never a panic;
//! - accumulation is i32 with wrapping (two's complement) arithmetic: identical natively, in
//!   debug builds and in Wasm. Callers keep sums in range (the layers validate the bound);
//!   when they do, results are exact;
//! - hot loops run over `as_chunks::<8>()` with zipped iterators: unrolled ×8 and free of bounds
//!   checks, because a Wasm branch costs 14× an arithmetic op in CosmWasm gas.

mod cast;
mod conv;
mod lut;
mod matmul;
mod pairs;
mod reduce;
mod requant;
mod softmax;
mod sqrt;

pub use cast::saturating_cast;
pub use conv::{conv2d, conv2d_centered, Accumulator, Conv2dGeometry, Im2col};
pub use lut::lut;
pub use matmul::{dot, dot_i16_le, dot_i64, matmul, matvec};
pub use pairs::{
    activation_pair, dot2_i8, dot2_nibbles, dot_packed, dot_packed2, dot_packed4, pack_activations, pack_nibbles,
    pack_weights, weight_pair,
};
pub use reduce::{argmax, max};
pub use requant::{requantize, requantize_i64, requantize_one, requantize_per_channel, Clamp};
pub use softmax::{reciprocal, softmax_i8, validate_exp_table, EXP_ONE};
pub use sqrt::{inv_sqrt, isqrt};

use crate::{Quantized, Result, TensorError};
use alloc::vec::Vec;

/// `x − zero_point` widened to i32 once, so inner loops do one multiply-add per element.
pub fn centered<X: Quantized>(x: &[X], zero_point: i32) -> Vec<i32> {
    x.iter().map(|v| v.to_i32().wrapping_sub(zero_point)).collect()
}

pub(crate) fn expect_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(TensorError::LengthMismatch { what, expected, actual })
    }
}

/// Whether `bias + Σ w·(x − zp)` over `terms` products stays inside i32 (so the wrapping
/// accumulation is exact): `terms · max_w · max_x + max_bias < 2^31`.
pub fn accumulator_fits(terms: usize, max_w: u32, max_x: u32, max_bias: u32) -> bool {
    (terms as u128) * (max_w as u128) * (max_x as u128) + (max_bias as u128) < (1u128 << 31)
}
