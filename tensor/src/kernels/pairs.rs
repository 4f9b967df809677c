//! Two multiply-adds per Wasm multiply: dot products over i64-packed pairs.
//!
//! With `W = a + b·2^32` (two weights) and `X = c·2^32 + d` (two activations), the wrapping
//! product is `W·X ≡ a·d + (a·c + b·d)·2^32 (mod 2^64)`: the upper half holds two terms of
//! the dot product. Summed over pairs, `acc ≡ L + D·2^32` where `D` is the dot product and
//! `L = Σ a·d`. While `|L| < 2^31` and `D` fits i32, `(acc + 2^31) >> 32 = D` exactly. Both
//! hold whenever [`accumulator_fits`](super::accumulator_fits)`(n, 128, 255, 0)`: then
//! `|L| ≤ n/2 · 128 · 255 < 2^30`.
//!
//! Why: CosmWasm meters every Wasm operator. A plain i8 × i32 multiply-add is 6 operators
//! (two address-plus-load pairs, a multiply, an add); a packed pair is the same 6 operators
//! for two multiply-adds. Layers use these where weights or activations are reused enough to
//! pay for packing them (docs/ARITHMETIC.md).

use alloc::vec::Vec;

/// Activations as pairs `x[2j]·2^32 + x[2j+1]`; an odd tail is paired with 0.
pub fn pack_activations(x: &[i32]) -> Vec<i64> {
    let (pairs, tail) = x.as_chunks::<2>();
    let mut out: Vec<i64> = pairs
        .iter()
        .map(|[c, d]| ((*c as i64) << 32).wrapping_add(*d as i64))
        .collect();
    if let [c] = tail {
        out.push((*c as i64) << 32);
    }
    out
}

/// Weights as pairs `w[2j] + w[2j+1]·2^32`; an odd tail stands alone.
pub fn pack_weights(w: &[i8]) -> Vec<i64> {
    let (pairs, tail) = w.as_chunks::<2>();
    let mut out: Vec<i64> = pairs.iter().map(|&[a, b]| pair(a, b)).collect();
    if let [a] = tail {
        out.push(*a as i64);
    }
    out
}

#[inline(always)]
fn pair(a: i8, b: i8) -> i64 {
    (a as i64).wrapping_add((b as i64) << 32)
}

/// The dot product from a packed accumulator (see the module docs).
#[inline(always)]
fn unpack(acc: i64) -> i32 {
    (acc.wrapping_add(1 << 31) >> 32) as i32
}

/// `Σ w·x` over packed weights and activations (as many pairs as the shorter holds).
/// Inlined: a call and its loop set-up are metered branches, a large share of a short dot.
#[inline(always)]
pub fn dot_packed(w: &[i64], x: &[i64]) -> i32 {
    let n = w.len().min(x.len());
    let (w16, wr) = w[..n].as_chunks::<16>();
    let (x16, xr) = x[..n].as_chunks::<16>();
    macro_rules! terms {
        ($a:ident $b:ident: $($k:literal)*) => { 0i64 $(.wrapping_add($a[$k].wrapping_mul($b[$k])))* };
    }
    let mut acc = 0i64;
    for (a, b) in w16.iter().zip(x16) {
        acc = acc.wrapping_add(terms!(a b: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15));
    }
    // A tail of 8 or more pairs in one block, then single pairs: a 3×3 kernel over 16
    // channels is 72 pairs = 4 × 16 + 8.
    let (w8, wr) = wr.as_chunks::<8>();
    let (x8, xr) = xr.as_chunks::<8>();
    if let (Some(a), Some(b)) = (w8.first(), x8.first()) {
        acc = acc.wrapping_add(terms!(a b: 0 1 2 3 4 5 6 7));
    }
    for (a, b) in wr.iter().zip(xr) {
        acc = acc.wrapping_add(a.wrapping_mul(*b));
    }
    unpack(acc)
}

/// Two rows at once: `(Σ w0·x, Σ w1·x)`, with each weight pair `w0[c] + w1[c]·2^32` in one
/// i64 multiplied by the plain activation `x[c]` (widened to i64). The sum is
/// `A0 + A1·2^32` exactly while both dot products fit i32 ([`accumulator_fits`](super::accumulator_fits)),
/// so the low half is `A0` and the rest `A1`. For weights read once (Dense) this halves the
/// per-row loop and set-up, which in CosmWasm gas are metered branches.
#[inline(always)]
pub fn dot2_i8(w0: &[i8], w1: &[i8], x: &[i64]) -> (i32, i32) {
    let n = w0.len().min(w1.len()).min(x.len());
    let (a32, ar) = w0[..n].as_chunks::<32>();
    let (b32, br) = w1[..n].as_chunks::<32>();
    let (x32, xr) = x[..n].as_chunks::<32>();
    let mut acc = 0i64;
    // Written out (a `for k in 0..32` is not reliably unrolled): 32 columns per loop branch.
    macro_rules! terms {
        ($a:ident $b:ident $x:ident: $($k:literal)*) => {
            0i64 $(.wrapping_add(pair($a[$k], $b[$k]).wrapping_mul($x[$k])))*
        };
    }
    for ((a, b), x) in a32.iter().zip(b32).zip(x32) {
        let lo = terms!(a b x: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        let hi = terms!(a b x: 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
        acc = acc.wrapping_add(lo).wrapping_add(hi);
    }
    for ((a, b), x) in ar.iter().zip(br).zip(xr) {
        acc = acc.wrapping_add(pair(*a, *b).wrapping_mul(*x));
    }
    let lo = acc as i32;
    (lo, (acc.wrapping_sub(lo as i64) >> 32) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(w: &[i8], x: &[i32]) -> i32 {
        w.iter().zip(x).map(|(&a, &b)| a as i32 * b).sum()
    }

    proptest! {
        /// Exact for any int8 weights and centered int8 activations (|x| ≤ 255), up to the
        /// lengths the layers allow.
        #[test]
        fn packed_dots_equal_the_plain_dot(
            wx in (0usize..600).prop_flat_map(|n| (
                proptest::collection::vec(any::<i8>(), n),
                proptest::collection::vec(-255i32..=255, n),
            ))
        ) {
            let (w, x) = wx;
            let expected = naive(&w, &x);
            let xp = pack_activations(&x);
            prop_assert_eq!(dot_packed(&pack_weights(&w), &xp), expected);
            let w1: Vec<i8> = w.iter().rev().copied().collect();
            let xw: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            prop_assert_eq!(dot2_i8(&w, &w1, &xw), (expected, naive(&w1, &x)));
        }
    }

    /// The extremes: every product at its largest magnitude, both signs, over the longest
    /// vector `accumulator_fits` allows.
    #[test]
    fn extremes_stay_exact() {
        let n = (1..200_000)
            .rev()
            .find(|&n| crate::kernels::accumulator_fits(n, 128, 255, 0))
            .unwrap();
        for (wv, xv) in [(-128i8, 255), (-128, -255), (127, 255), (127, -255)] {
            for (a, b) in [(wv, xv), (wv, -xv)] {
                let w = vec![a; n];
                let x: Vec<i32> = (0..n).map(|i| if i % 2 == 0 { b } else { xv }).collect();
                let xp = pack_activations(&x);
                assert_eq!(dot_packed(&pack_weights(&w), &xp), naive(&w, &x));
                let xw: Vec<i64> = x.iter().map(|&v| v as i64).collect();
                let w1: Vec<i8> = w.iter().map(|v| v.saturating_neg()).collect();
                assert_eq!(dot2_i8(&w, &w1, &xw), (naive(&w, &x), naive(&w1, &x)));
            }
        }
    }
}
