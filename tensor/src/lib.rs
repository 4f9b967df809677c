//! Deterministic, integer-only fixed-point tensors and kernels.
//!
//! Every kernel here is plain integer arithmetic with wrapping i32 accumulation and a single,
//! documented rounding rule, so it produces the same bits natively and inside Wasm (the chain).
//! The number formats, rounding rules and error bounds are written down in
//! `docs/ARITHMETIC.md`; each kernel's doc comment repeats its contract.
//!
//! Without the `std` feature the crate is `no_std + alloc` and contains no floating point.
//! The `std` feature adds the host-side helpers in [`host`]: quantization, calibration,
//! multiplier and lookup-table construction. Those use f64 and run off chain only.
//!
//! A Dense row end to end: quantize on the host, multiply-accumulate and requantize with
//! integers only (what the chain runs), dequantize on the host.
//!
//! ```
//! use cwnn_tensor::host::{dequantize, quantize, requant_multiplier};
//! use cwnn_tensor::kernels::{matvec, requantize, Clamp};
//! use cwnn_tensor::{DType, QuantParams};
//!
//! let (x, w) = ([0.5, -1.0, 2.0], [0.25, 0.5, -0.125]); // y = 0.125 - 0.5 - 0.25 = -0.625
//! let x_qp = QuantParams::asymmetric(-1.0, 2.0, DType::I8)?;
//! let w_qp = QuantParams::symmetric(0.5, DType::I8)?;
//! let y_qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8)?;
//! let xq: Vec<i8> = x.iter().map(|&v| quantize(v, &x_qp, DType::I8) as i8).collect();
//! let wq: Vec<i8> = w.iter().map(|&v| quantize(v, &w_qp, DType::I8) as i8).collect();
//!
//! let mut acc = [0i32; 1];
//! matvec(&wq, &xq, x_qp.zero_point, None, &mut acc)?;
//! let m = requant_multiplier(x_qp.scale_f64(), w_qp.scale_f64(), y_qp.scale_f64())?;
//! let mut y = [0i8; 1];
//! requantize(&acc, m, y_qp.zero_point, Clamp::full::<i8>(), &mut y)?;
//!
//! assert!((dequantize(y[0] as i32, &y_qp) + 0.625).abs() < 0.02);
//! # Ok::<(), cwnn_tensor::TensorError>(())
//! ```
// no_std unless `std` (host helpers) or `schema` (schemars' derive needs the std prelude;
// contracts have std anyway).
#![cfg_attr(not(any(feature = "std", feature = "schema")), no_std)]
#![cfg_attr(not(feature = "std"), deny(clippy::float_arithmetic))]

extern crate alloc;

mod dyadic;
mod error;
pub mod kernels;
mod quant;
mod tensor;

#[cfg(feature = "std")]
pub mod host;

pub use dyadic::Dyadic;
pub use error::TensorError;
pub use quant::{DType, QuantParams, Quantized};
pub use tensor::{numel, QTensor, TensorData};

/// Result of a tensor operation.
pub type Result<T> = core::result::Result<T, TensorError>;
