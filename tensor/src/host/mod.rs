//! Host-side helpers (feature `std`): everything that needs a float runs here, off chain, and
//! hands the chain integers. Results are stored in the model package, so the chain never depends
//! on the host's libm: determinism on chain holds whatever machine built the package.

mod calibrate;
mod multiplier;
mod params;
mod tables;

pub use calibrate::RangeObserver;
pub use multiplier::requant_multiplier;
pub use params::{dequantize, quantize, quantize_slice, MIN_SCALE};
pub use tables::{exp_table, lut_i8, lut_i8_to};

/// `n` deterministic pseudo-random int8 values (xorshift64 from `seed`): test and benchmark
/// data that is the same on every machine.
pub fn pseudo_i8s(seed: u64, n: usize) -> alloc::vec::Vec<i8> {
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
