//! Host-side helpers (feature `std`): everything that needs a float runs here, off chain, and
//! hands the chain integers. Results are stored in the model package, so the chain never depends
//! on the host's libm: determinism on chain holds whatever machine built the package.

mod calibrate;
mod multiplier;
mod params;
mod tables;

pub use calibrate::RangeObserver;
pub use multiplier::requant_multiplier;
pub use params::{dequantize, quantize, quantize_slice};
pub use tables::{exp_table, lut_i8, lut_i8_to};
