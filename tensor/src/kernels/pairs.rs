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
    let mut out: Vec<i64> = pairs.iter().map(|&[c, d]| activation_pair(c, d)).collect();
    if let [c] = tail {
        out.push((*c as i64) << 32);
    }
    out
}

/// The activation-style pair `c·2^32 + d` ([`pack_activations`]).
#[inline(always)]
pub fn activation_pair(c: i32, d: i32) -> i64 {
    ((c as i64) << 32).wrapping_add(d as i64)
}

/// The weight-style pair `a + b·2^32` ([`pack_weights`]). A product of two activations
/// (`MatMul`) packs one operand so and the other as [`activation_pair`]s: with both centred
/// int8 (`|·| ≤ 255`) the packed dot is exact whenever
/// [`accumulator_fits`](super::accumulator_fits)`(n, 255, 255, 0)`: then `|L| ≤ n/2·255² < 2^30`.
#[inline(always)]
pub fn weight_pair(a: i32, b: i32) -> i64 {
    (a as i64).wrapping_add((b as i64) << 32)
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

/// `n` int4 weights as [`pack_weights`] pairs, straight from their bytes (`w + 8` in each
/// nibble, `w[2j]` low): `spread(b) − (8 + 8·2^32)`, no int8 copy. For an odd `n` the last
/// byte's high nibble is padding and its pair holds the low weight alone, as `pack_weights`'
/// odd tail does (whatever the activations pair it with).
pub fn pack_nibbles(w: &[u8], n: usize) -> Vec<i64> {
    let bytes = &w[..n.div_ceil(2).min(w.len())];
    let mut out: Vec<i64> = bytes.iter().map(|&b| spread(b).wrapping_sub(0x8_0000_0008)).collect();
    if let (true, Some(last), Some(&b)) = (n % 2 == 1, out.last_mut(), bytes.last()) {
        *last = (b & 15) as i64 - 8;
    }
    out
}

/// `u0 + u1·2^32` from the byte `u0 + 16·u1` (see [`dot2_nibbles`]).
#[inline(always)]
fn spread(b: u8) -> i64 {
    (b as i64).wrapping_mul(0x1000_0001) & 0x0000_000F_0000_000F
}

#[inline(always)]
fn pair(a: i8, b: i8) -> i64 {
    weight_pair(a as i32, b as i32)
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

/// [`dot_packed`] of two weight rows against one packed row `x`: each pair of `x` is loaded
/// once for both, and one loop serves both. For a convolution's patch, which every output
/// channel of its group reuses, and whose short dots (a 5×5 kernel on one channel is 13
/// pairs) pay their loop set-up and single-pair tail once per two channels.
#[inline(always)]
pub fn dot_packed2(w0: &[i64], w1: &[i64], x: &[i64]) -> (i32, i32) {
    let n = w0.len().min(w1.len()).min(x.len());
    let (a8, ar) = w0[..n].as_chunks::<8>();
    let (b8, br) = w1[..n].as_chunks::<8>();
    let (x8, xr) = x[..n].as_chunks::<8>();
    let (mut acc0, mut acc1) = (0i64, 0i64);
    macro_rules! terms {
        ($a:ident $b:ident $v:ident: $($k:literal)*) => {
            $( let x = $v[$k];
               acc0 = acc0.wrapping_add($a[$k].wrapping_mul(x));
               acc1 = acc1.wrapping_add($b[$k].wrapping_mul(x)); )*
        };
    }
    for ((a, b), v) in a8.iter().zip(b8).zip(x8) {
        terms!(a b v: 0 1 2 3 4 5 6 7);
    }
    for ((a, b), &x) in ar.iter().zip(br).zip(xr) {
        acc0 = acc0.wrapping_add(a.wrapping_mul(x));
        acc1 = acc1.wrapping_add(b.wrapping_mul(x));
    }
    (unpack(acc0), unpack(acc1))
}

/// [`dot_packed`] of four weight rows against one packed row `x`, the rows interleaved pair by
/// pair: `w[4t + q]` is pair `t` of row `q` (`w.len() = 4·x.len()`; other lengths sum what
/// lines up).
///
/// Why: a product of two activations often has a short inner axis (an attention head of 32
/// is 16 pairs), where a dot product's set-up (slicing, chunking, its loops' metered branches)
/// costs as much as its multiplies. One loop over one slice serves four outputs, four pairs
/// per iteration, each row's four terms one expression: one loop branch per 32 multiply-adds.
#[inline(always)]
pub fn dot_packed4(w: &[i64], x: &[i64]) -> [i32; 4] {
    let (w16, wr) = w.as_chunks::<16>();
    let (x4, xr) = x.as_chunks::<4>();
    let mut acc = [0i64; 4];
    macro_rules! row {
        ($a:ident $v:ident: $($q:literal)*) => {
            $( acc[$q] = acc[$q].wrapping_add(
                $a[$q].wrapping_mul($v[0])
                    .wrapping_add($a[4 + $q].wrapping_mul($v[1]))
                    .wrapping_add($a[8 + $q].wrapping_mul($v[2]))
                    .wrapping_add($a[12 + $q].wrapping_mul($v[3])),
            ); )*
        };
    }
    for (a, v) in w16.iter().zip(x4) {
        row!(a v: 0 1 2 3);
    }
    for (a, &v) in wr.as_chunks::<4>().0.iter().zip(xr) {
        for (s, p) in acc.iter_mut().zip(a) {
            *s = s.wrapping_add(p.wrapping_mul(v));
        }
    }
    acc.map(unpack)
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

/// `Σ u·x` for unsigned 4-bit weights, two per byte (`u[2j]` in the low nibble of `w[j]`),
/// against activations packed in pairs (`pack_activations`), for two rows of weights at once:
/// the dot products the int4 layers correct by `8·Σ x` for their offset nibbles.
///
/// Math: for a byte `b = u0 + 16·u1`, `b·(1 + 2^28) & (0xF + 0xF·2^32) = u0 + u1·2^32` (the two
/// copies of `b` do not overlap), a weight pair as above, so the packed product's upper half
/// gains `u0·x[2j] + u1·x[2j+1]`. With `u ≤ 15` and `|x| ≤ 255` the low half stays below
/// `15·255·n/2`; exact whenever [`accumulator_fits`](super::accumulator_fits)`(n, 16, 255, 0)`.
///
/// Why: a byte load, a multiply and a mask spread two weights (`b | b << 28` is the same value
/// in three more operators), and two rows share each activation load and the loop: 4.5
/// metered Wasm operators per multiply-add, fewer than `dot2_i8` spends on int8 weights, at
/// half their bytes.
#[inline(always)]
pub fn dot2_nibbles(w0: &[u8], w1: &[u8], x: &[i64]) -> (i32, i32) {
    let n = w0.len().min(w1.len()).min(x.len());
    let (a16, ar) = w0[..n].as_chunks::<16>();
    let (b16, br) = w1[..n].as_chunks::<16>();
    let (x16, xr) = x[..n].as_chunks::<16>();
    let (mut acc0, mut acc1) = (0i64, 0i64);
    // Written out (a `for k in 0..16` is not reliably unrolled): 32 columns per loop branch.
    macro_rules! terms {
        ($a:ident $b:ident $x:ident: $($k:literal)*) => {{
            let (mut s0, mut s1) = (0i64, 0i64);
            $(
                s0 = s0.wrapping_add(spread($a[$k]).wrapping_mul($x[$k]));
                s1 = s1.wrapping_add(spread($b[$k]).wrapping_mul($x[$k]));
            )*
            (s0, s1)
        }};
    }
    for ((a, b), x) in a16.iter().zip(b16).zip(x16) {
        let (s0, s1) = terms!(a b x: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
        (acc0, acc1) = (acc0.wrapping_add(s0), acc1.wrapping_add(s1));
    }
    for ((a, b), x) in ar.iter().zip(br).zip(xr) {
        acc0 = acc0.wrapping_add(spread(*a).wrapping_mul(*x));
        acc1 = acc1.wrapping_add(spread(*b).wrapping_mul(*x));
    }
    (unpack(acc0), unpack(acc1))
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
            prop_assert_eq!(dot_packed2(&pack_weights(&w), &pack_weights(&w1), &xp), (expected, naive(&w1, &x)));
            let xw: Vec<i64> = x.iter().map(|&v| v as i64).collect();
            prop_assert_eq!(dot2_i8(&w, &w1, &xw), (expected, naive(&w1, &x)));
        }

        /// Two centred int8 activations (both in ±255), odd lengths included: weight-style
        /// pairs of one against `pack_activations` of the other is the plain dot.
        #[test]
        fn activation_pairs_equal_the_plain_dot(
            ab in (0usize..600).prop_flat_map(|n| (
                proptest::collection::vec(-255i32..=255, n),
                proptest::collection::vec(-255i32..=255, n),
            ))
        ) {
            let (a, b) = ab;
            let plain: i32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let rev: Vec<i32> = b.iter().rev().copied().collect();
            let plain_rev: i32 = a.iter().zip(&rev).map(|(x, y)| x * y).sum();
            let pack = |v: &[i32]| -> Vec<i64> { v.chunks(2).map(|p| weight_pair(p[0], p.get(1).copied().unwrap_or(0))).collect() };
            prop_assert_eq!(dot_packed(&pack(&a), &pack_activations(&b)), plain);
            prop_assert_eq!(dot_packed2(&pack(&b), &pack(&rev), &pack_activations(&a)), (plain, plain_rev));
            let neg: Vec<i32> = b.iter().map(|v| -v).collect();
            let (pb, pr, pn) = (pack(&b), pack(&rev), pack(&neg));
            let w4: Vec<i64> = (0..4 * pb.len()).map(|i| [&pb, &pr, &pn, &pb][i % 4][i / 4]).collect();
            prop_assert_eq!(dot_packed4(&w4, &pack_activations(&a)), [plain, plain_rev, -plain, plain]);
        }
    }

    fn nibbles(u: &[u8]) -> Vec<u8> {
        u.chunks(2)
            .map(|p| p[0] | p.get(1).copied().unwrap_or(0) << 4)
            .collect()
    }

    proptest! {
        /// Exact for any nibbles and centred int8 activations, odd lengths included.
        #[test]
        fn nibble_dots_equal_the_plain_dot(
            ux in (0usize..600).prop_flat_map(|n| (
                proptest::collection::vec(0u8..16, n),
                proptest::collection::vec(-255i32..=255, n),
            ))
        ) {
            let (u, x) = ux;
            let plain: i32 = u.iter().zip(&x).map(|(&a, &b)| a as i32 * b).sum();
            let u1: Vec<u8> = u.iter().rev().map(|v| 15 - v).collect();
            let plain1: i32 = u1.iter().zip(&x).map(|(&a, &b)| a as i32 * b).sum();
            prop_assert_eq!(dot2_nibbles(&nibbles(&u), &nibbles(&u1), &pack_activations(&x)), (plain, plain1));
        }
    }

    /// Nibble pairs are the int8 pairs of `nibble − 8`, odd tails included whatever their
    /// padding nibble holds.
    #[test]
    fn nibbles_pack_as_their_weights() {
        for n in [1usize, 2, 7, 16, 25] {
            let u: Vec<u8> = (0..n).map(|i| (i * 7 % 16) as u8).collect();
            let w: Vec<i8> = u.iter().map(|&v| v as i8 - 8).collect();
            let mut bytes = nibbles(&u);
            if n % 2 == 1 {
                *bytes.last_mut().unwrap() |= 0xB0; // padding that is not a zero weight
            }
            assert_eq!(pack_nibbles(&bytes, n), pack_weights(&w), "n = {n}");
        }
    }

    /// Nibble dots at their extremes over the longest length `accumulator_fits(n, 16, 255, 0)` allows.
    #[test]
    fn nibble_extremes_stay_exact() {
        let n = (1..600_000)
            .rev()
            .find(|&n| crate::kernels::accumulator_fits(n, 16, 255, 0))
            .unwrap();
        for (uv, xv) in [(15u8, 255), (15, -255), (0, 255)] {
            let u = vec![uv; n];
            let x: Vec<i32> = (0..n).map(|i| if i % 3 == 0 { -xv } else { xv }).collect();
            let plain: i64 = u.iter().zip(&x).map(|(&a, &b)| a as i64 * b as i64).sum();
            let w = nibbles(&u);
            assert_eq!(dot2_nibbles(&w, &w, &pack_activations(&x)).0 as i64, plain);
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
