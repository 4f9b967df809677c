use super::{centered, expect_len};
use crate::{Quantized, Result, TensorError};

/// `Σ w[i] · x[i]` over the common length, wrapping i32, unrolled ×8.
#[inline(always)]
pub fn dot<W: Quantized>(w: &[W], x: &[i32]) -> i32 {
    let n = w.len().min(x.len());
    let (w8, wr) = w[..n].as_chunks::<8>();
    let (x8, xr) = x[..n].as_chunks::<8>();
    let mut acc = 0i32;
    for (a, b) in w8.iter().zip(x8) {
        let s = a[0]
            .to_i32()
            .wrapping_mul(b[0])
            .wrapping_add(a[1].to_i32().wrapping_mul(b[1]))
            .wrapping_add(a[2].to_i32().wrapping_mul(b[2]))
            .wrapping_add(a[3].to_i32().wrapping_mul(b[3]))
            .wrapping_add(a[4].to_i32().wrapping_mul(b[4]))
            .wrapping_add(a[5].to_i32().wrapping_mul(b[5]))
            .wrapping_add(a[6].to_i32().wrapping_mul(b[6]))
            .wrapping_add(a[7].to_i32().wrapping_mul(b[7]));
        acc = acc.wrapping_add(s);
    }
    for (a, b) in wr.iter().zip(xr) {
        acc = acc.wrapping_add(a.to_i32().wrapping_mul(*b));
    }
    acc
}

/// `Σ w[i] · x[i]` for int16 weights stored as little-endian bytes (`w.len() = 2·n`) and
/// centred int16 activations widened to i64: the `int16` precision dot product, wrapping i64
/// (exact: each product is below 2^32), unrolled ×8. Reads the weight bytes in place.
#[inline(always)]
pub fn dot_i16_le(w: &[u8], x: &[i64]) -> i64 {
    let (w2, _) = w.as_chunks::<2>();
    let n = w2.len().min(x.len());
    let (w8, wr) = w2[..n].as_chunks::<8>();
    let (x8, xr) = x[..n].as_chunks::<8>();
    let at = |c: [u8; 2]| i64::from(i16::from_le_bytes(c));
    let mut acc = 0i64;
    for (a, b) in w8.iter().zip(x8) {
        let mut s = 0i64;
        for k in 0..8 {
            s = s.wrapping_add(at(a[k]).wrapping_mul(b[k]));
        }
        acc = acc.wrapping_add(s);
    }
    for (&a, &b) in wr.iter().zip(xr) {
        acc = acc.wrapping_add(at(a).wrapping_mul(b));
    }
    acc
}

/// `Σ a[i]·b[i]` over the common length, wrapping i64, unrolled ×8: the `int16` precision
/// product of two activations (centred int16 values, each product below 2^32).
#[inline(always)]
pub fn dot_i64(a: &[i64], b: &[i64]) -> i64 {
    let n = a.len().min(b.len());
    let (a8, ar) = a[..n].as_chunks::<8>();
    let (b8, br) = b[..n].as_chunks::<8>();
    macro_rules! terms {
        ($p:ident $q:ident: $($k:literal)*) => { 0i64 $(.wrapping_add($p[$k].wrapping_mul($q[$k])))* };
    }
    let mut acc = 0i64;
    for (p, q) in a8.iter().zip(b8) {
        acc = acc.wrapping_add(terms!(p q: 0 1 2 3 4 5 6 7));
    }
    for (p, q) in ar.iter().zip(br) {
        acc = acc.wrapping_add(p.wrapping_mul(*q));
    }
    acc
}

/// Matrix-vector product: `out[r] = bias[r] + Σ_c w[r·cols + c] · (x[c] − x_zp)`.
///
/// `w` is row-major `rows × cols` with `rows = out.len()`, `cols = x.len()`. Passing a block of
/// rows (and the matching `bias`/`out` slices) computes just those rows: that is how a Dense
/// layer is split across calls. Exact while every partial sum fits i32 (wrapping otherwise).
pub fn matvec<W: Quantized, X: Quantized>(
    w: &[W],
    x: &[X],
    x_zp: i32,
    bias: Option<&[i32]>,
    out: &mut [i32],
) -> Result<()> {
    let (rows, cols) = (out.len(), x.len());
    let n = rows.checked_mul(cols).ok_or(TensorError::ShapeOverflow)?;
    expect_len("matvec weights (rows × cols)", n, w.len())?;
    init_bias(bias, out)?;
    if cols == 0 {
        return Ok(());
    }
    let xs = centered(x, x_zp);
    for (o, row) in out.iter_mut().zip(w.chunks_exact(cols)) {
        *o = o.wrapping_add(dot(row, &xs));
    }
    Ok(())
}

/// Matrix-matrix product with `m` rows of activations:
/// `out[i·n + r] = bias[r] + Σ_c w[r·k + c] · (a[i·k + c] − a_zp)`, with `k = a.len() / m` and
/// `n = out.len() / m` (weights `n × k`, the ONNX Gemm layout with `transB = 1`).
pub fn matmul<W: Quantized, X: Quantized>(
    w: &[W],
    a: &[X],
    m: usize,
    a_zp: i32,
    bias: Option<&[i32]>,
    out: &mut [i32],
) -> Result<()> {
    if m == 0 {
        expect_len("matmul activations", 0, a.len())?;
        return expect_len("matmul output", 0, out.len());
    }
    if !a.len().is_multiple_of(m) || !out.len().is_multiple_of(m) {
        return Err(TensorError::InvalidShape(
            "matmul: activation/output length not a multiple of m",
        ));
    }
    let (k, n) = (a.len() / m, out.len() / m);
    for i in 0..m {
        matvec(w, &a[i * k..(i + 1) * k], a_zp, bias, &mut out[i * n..(i + 1) * n])?;
    }
    Ok(())
}

/// Fills `out` with the bias (or zeros).
pub(crate) fn init_bias(bias: Option<&[i32]>, out: &mut [i32]) -> Result<()> {
    match bias {
        Some(b) => {
            expect_len("bias", out.len(), b.len())?;
            out.copy_from_slice(b);
        }
        None => out.fill(0),
    }
    Ok(())
}
