//! cwnn's kernels behind one entry point, `dispatch(op, input) -> output`, compiled both
//! natively (rlib) and to a plain Wasm module (cdylib, MVP features, no imports).
//!
//! Any byte string is a valid input: dimensions come from the first bytes (reduced to small
//! ranges), values from the rest (zero once exhausted). So a fuzzer or proptest can throw
//! random bytes at both builds and require identical output bits, error paths included.
//! Output: one status byte (0 = ok, 1 = the kernel refused its input) then the result bytes.
extern crate alloc;

use alloc::vec::Vec;
use cwnn_tensor::kernels::{self, Clamp, Conv2dGeometry};
use cwnn_tensor::{Dyadic, Result};

/// Operation codes understood by [`dispatch`].
pub mod op {
    pub const MATVEC_I8: u32 = 0;
    pub const MATVEC_I8_I16: u32 = 1;
    pub const MATMUL_I8: u32 = 2;
    pub const CONV2D_I8: u32 = 3;
    pub const REQUANT_I8: u32 = 4;
    pub const REQUANT_I16: u32 = 5;
    pub const CAST_I32_I8: u32 = 6;
    pub const CAST_I32_I16: u32 = 7;
    pub const LUT_I8: u32 = 8;
    pub const LUT_I32: u32 = 9;
    pub const ARGMAX_I8: u32 = 10;
    pub const SOFTMAX_I8: u32 = 11;
    pub const DYADIC_APPLY: u32 = 12;
    /// Number of operations.
    pub const COUNT: u32 = 13;
    pub const NAMES: [&str; COUNT as usize] = [
        "matvec_i8",
        "matvec_i8_i16",
        "matmul_i8",
        "conv2d_i8",
        "requant_i8",
        "requant_i16",
        "cast_i32_i8",
        "cast_i32_i16",
        "lut_i8",
        "lut_i32",
        "argmax_i8",
        "softmax_i8",
        "dyadic_apply",
    ];
}

/// Reads values from a byte string; past its end every read is 0.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A dimension in `1..=max`.
    fn dim(&mut self, max: u8) -> usize {
        1 + (self.u8() % max) as usize
    }
    fn i8(&mut self) -> i8 {
        self.u8() as i8
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes([self.u8(), self.u8()])
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn vec<T>(&mut self, n: usize, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        (0..n).map(|_| f(self)).collect()
    }
    /// A multiplier, valid most of the time (shift 0 and 63 exercise the refusal path).
    fn dyadic(&mut self) -> Dyadic {
        Dyadic {
            mantissa: self.i32(),
            shift: self.u8() % 64,
        }
    }
    /// An int8 zero point.
    fn zp(&mut self) -> i32 {
        self.i8() as i32
    }
    fn clamp(&mut self) -> Clamp {
        let (a, b) = (self.i16() as i32, self.i16() as i32);
        Clamp {
            lo: a.min(b),
            hi: a.max(b),
        }
    }
}

fn bytes_of<T: Copy>(v: &[T], to: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|&x| to(x)).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    bytes_of(v, |x| x.to_le_bytes().to_vec())
}

/// Runs operation `op` on arguments decoded from `input`.
pub fn dispatch(op: u32, input: &[u8]) -> Vec<u8> {
    let mut r = Reader {
        bytes: input,
        pos: 0,
    };
    let res: Result<Vec<u8>> = match op {
        op::MATVEC_I8 | op::MATVEC_I8_I16 => {
            let (rows, cols) = (r.dim(48), r.dim(96));
            let zp = r.zp();
            let has_bias = r.u8() & 1 == 1;
            let w = r.vec(rows * cols, Reader::i8);
            let bias = r.vec(rows, Reader::i32);
            let mut out = alloc::vec![0i32; rows];
            let b = has_bias.then_some(&bias[..]);
            if op == op::MATVEC_I8 {
                let x = r.vec(cols, Reader::i8);
                kernels::matvec(&w, &x, zp, b, &mut out)
            } else {
                let x = r.vec(cols, Reader::i16);
                kernels::matvec(&w, &x, r.i16() as i32, b, &mut out)
            }
            .map(|_| i32s(&out))
        }
        op::MATMUL_I8 => {
            let (m, n, k) = (r.dim(6), r.dim(24), r.dim(40));
            let zp = r.zp();
            let w = r.vec(n * k, Reader::i8);
            let a = r.vec(m * k, Reader::i8);
            let bias = r.vec(n, Reader::i32);
            let mut out = alloc::vec![0i32; m * n];
            kernels::matmul(&w, &a, m, zp, Some(&bias), &mut out).map(|_| i32s(&out))
        }
        op::CONV2D_I8 => {
            let groups = r.dim(3);
            let g = Conv2dGeometry {
                in_channels: groups * r.dim(3),
                in_h: r.dim(12),
                in_w: r.dim(12),
                out_channels: groups * r.dim(4),
                kernel_h: r.dim(4),
                kernel_w: r.dim(4),
                stride_h: r.dim(3),
                stride_w: r.dim(3),
                dilation_h: r.dim(2),
                dilation_w: r.dim(2),
                pad_top: r.u8() as usize % 3,
                pad_left: r.u8() as usize % 3,
                pad_bottom: r.u8() as usize % 3,
                pad_right: r.u8() as usize % 3,
                groups,
            };
            if g.validate().is_err() {
                Err(cwnn_tensor::TensorError::InvalidShape("conv geometry"))
            } else {
                let c0 = r.u8() as usize % g.out_channels;
                let c1 = c0 + 1 + r.u8() as usize % (g.out_channels - c0);
                let zp = r.zp();
                let x = r.vec(g.input_len().unwrap_or(0), Reader::i8);
                let w = r.vec((c1 - c0) * g.weights_per_channel(), Reader::i8);
                let bias = r.vec(c1 - c0, Reader::i32);
                let mut out = alloc::vec![0i32; (c1 - c0) * g.out_h() * g.out_w()];
                kernels::conv2d(&g, &x, zp, &w, Some(&bias), c0..c1, &mut out).map(|_| i32s(&out))
            }
        }
        op::REQUANT_I8 | op::REQUANT_I16 => {
            let (channels, inner) = (r.dim(8), r.dim(32));
            let ms = r.vec(channels, Reader::dyadic);
            let (zp, clamp) = (r.i16() as i32, r.clamp());
            let acc = r.vec(channels * inner, Reader::i32);
            if op == op::REQUANT_I8 {
                let mut out = alloc::vec![0i8; acc.len()];
                kernels::requantize_per_channel(&acc, &ms, zp, clamp, &mut out)
                    .map(|_| bytes_of(&out, |x| x.to_le_bytes().to_vec()))
            } else {
                let mut out = alloc::vec![0i16; acc.len()];
                kernels::requantize(&acc, ms[0], zp, clamp, &mut out)
                    .map(|_| bytes_of(&out, |x| x.to_le_bytes().to_vec()))
            }
        }
        op::CAST_I32_I8 | op::CAST_I32_I16 => {
            let n = r.dim(128);
            let x = r.vec(n, Reader::i32);
            if op == op::CAST_I32_I8 {
                let mut out = alloc::vec![0i8; n];
                kernels::saturating_cast(&x, &mut out)
                    .map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
            } else {
                let mut out = alloc::vec![0i16; n];
                kernels::saturating_cast(&x, &mut out)
                    .map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
            }
        }
        op::LUT_I8 => {
            let n = r.dim(128);
            let mut table = [0i8; 256];
            table.iter_mut().for_each(|t| *t = r.i8());
            let x = r.vec(n, Reader::i8);
            let mut out = alloc::vec![0i8; n];
            kernels::lut(&x, &table, &mut out).map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
        }
        op::LUT_I32 => {
            let n = r.dim(128);
            let mut table = [0i32; 256];
            table.iter_mut().for_each(|t| *t = r.i32());
            let x = r.vec(n, Reader::i8);
            let mut out = alloc::vec![0i32; n];
            kernels::lut(&x, &table, &mut out).map(|_| i32s(&out))
        }
        op::ARGMAX_I8 => {
            let n = r.u8() as usize; // 0 is allowed: argmax of nothing
            let x = r.vec(n, Reader::i8);
            Ok(match kernels::argmax(&x) {
                Some(i) => (i as u32).to_le_bytes().to_vec(),
                None => alloc::vec![0xff; 4],
            })
        }
        op::SOFTMAX_I8 => {
            let n = r.dim(64);
            // Mostly valid tables: a decreasing run from EXP_ONE with random decrements; one in
            // eight starts at 0, an all-zero table the kernel must refuse.
            let mut table = [0i32; 256];
            let mut e = if r.u8().is_multiple_of(8) {
                0
            } else {
                kernels::EXP_ONE
            };
            for t in table.iter_mut() {
                *t = e;
                e = (e - r.u8() as i32 * 4).max(0);
            }
            let x = r.vec(n, Reader::i8);
            let mut out = alloc::vec![0i8; n];
            kernels::softmax_i8(&x, &table, &mut out)
                .map(|_| bytes_of(&out, |v| v.to_le_bytes().to_vec()))
        }
        op::DYADIC_APPLY => {
            let n = r.dim(64);
            let m = r.dyadic();
            let xs = r.vec(n, Reader::i32);
            m.validate()
                .map(|m| bytes_of(&xs, |x| m.apply(x).to_le_bytes().to_vec()))
        }
        _ => Err(cwnn_tensor::TensorError::InvalidShape("unknown op")),
    };
    match res {
        Ok(mut v) => {
            v.insert(0, 0);
            v
        }
        Err(_) => alloc::vec![1],
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm_abi {
    //! The module's exports: allocate an input buffer, run, read `[len: u32 LE][bytes]`.
    use alloc::vec::Vec;

    #[no_mangle]
    pub extern "C" fn cwnn_alloc(len: u32) -> *mut u8 {
        let mut v = Vec::<u8>::with_capacity(len as usize);
        let p = v.as_mut_ptr();
        core::mem::forget(v);
        p
    }

    /// Frees a buffer from [`cwnn_alloc`] or [`cwnn_run`] (`cap` is its capacity).
    ///
    /// # Safety
    /// `ptr`/`cap` must come from this module's allocations.
    #[no_mangle]
    pub unsafe extern "C" fn cwnn_free(ptr: *mut u8, cap: u32) {
        drop(Vec::from_raw_parts(ptr, 0, cap as usize));
    }

    /// Runs `op` on `len` bytes at `ptr` (consumed) and returns `[len: u32][output]`.
    ///
    /// # Safety
    /// `ptr` must come from [`cwnn_alloc`] with capacity `len`.
    #[no_mangle]
    pub unsafe extern "C" fn cwnn_run(op: u32, ptr: *mut u8, len: u32) -> *mut u8 {
        let input = Vec::from_raw_parts(ptr, len as usize, len as usize);
        let out = super::dispatch(op, &input);
        let mut framed = Vec::with_capacity(out.len() + 4);
        framed.extend_from_slice(&(out.len() as u32).to_le_bytes());
        framed.extend_from_slice(&out);
        framed.shrink_to_fit();
        let p = framed.as_mut_ptr();
        core::mem::forget(framed);
        p
    }
}
