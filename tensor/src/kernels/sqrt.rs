//! Integer square roots: the floor root of a u64, and `1/√w` as a dyadic for LayerNorm.
//!
//! `isqrt` is the digit-by-digit method: each of the 32 steps tries the next bit of the root
//! (`(r + bit)² ≤ x`), so the result is the exact floor for every input. `inv_sqrt` first scales
//! `w` by an even power of two into `[2^60, 2^62)`, so its root `R` has 31 significant bits, then
//! divides once: `1/√w = 2^k/R ≈ ⌊2^61/R⌋ / 2^(61−k)`, relative error below 2^-29.
//!
//! Why: LayerNorm needs `1/√var` per row, in integers only. Newton's iteration (I-BERT, I-ViT)
//! needs a start value and a stopping rule; the bit-by-bit root is branch-free, always 32 steps
//! (≈ 400 metered Wasm operators once per row) and exact, so there is no error term to carry.

/// `⌊√v⌋`, exact for every `v`.
pub fn isqrt(v: u64) -> u64 {
    let (mut x, mut r) = (v, 0u64);
    let mut bit = 1u64 << 62;
    for _ in 0..32 {
        let t = r + bit;
        // Branch-free: `take` is all ones when the bit belongs to the root.
        let take = ((x >= t) as u64).wrapping_neg();
        x -= t & take;
        r = (r >> 1) + (bit & take);
        bit >>= 2;
    }
    r
}

/// `1/√w ≈ mantissa / 2^shift` with `mantissa ∈ (2^30, 2^31]` and `shift ∈ [31, 61]`, relative
/// error below 2^-29, for `1 ≤ w < 2^62` (larger `w` saturate to `2^62 − 1`); `w = 0` gives
/// `(0, 31)`: a zero variance has no deviation to scale.
pub fn inv_sqrt(w: u64) -> (u64, u32) {
    if w == 0 {
        return (0, 31);
    }
    let w = w.min((1 << 62) - 1);
    let bits = 64 - w.leading_zeros();
    // `w·4^k` has 61 or 62 bits: its root is in [2^30, 2^31).
    let k = (62 - bits) / 2;
    let root = isqrt(w << (2 * k));
    ((1u64 << 61) / root, 61 - k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn isqrt_is_the_floor_root(v in any::<u64>(), small in 0u64..5000) {
            for v in [v, small, v >> 20] {
                let r = isqrt(v) as u128;
                prop_assert!(r * r <= v as u128 && (r + 1) * (r + 1) > v as u128, "isqrt({}) = {}", v, r);
            }
        }

        #[test]
        fn inv_sqrt_is_within_2_pow_minus_29(w in 1u64..(1 << 62), small in 1u64..5000) {
            for w in [w, small, w >> 31] {
                let w = w.max(1);
                let (m, s) = inv_sqrt(w);
                prop_assert!((1 << 30) < m && m <= 1 << 31 && (31..=61).contains(&s));
                let got = m as f64 / 2f64.powi(s as i32);
                let want = 1.0 / (w as f64).sqrt();
                prop_assert!((got - want).abs() <= want * 2f64.powi(-29), "{}: {} vs {}", w, got, want);
            }
        }
    }

    #[test]
    fn edges() {
        assert_eq!(isqrt(u64::MAX), u32::MAX as u64);
        assert_eq!(isqrt(0), 0);
        assert_eq!(inv_sqrt(0), (0, 31));
        assert_eq!(inv_sqrt(1), (1 << 31, 31));
        assert_eq!(inv_sqrt(4), (1 << 31, 32));
        // Saturated, not wrapped.
        assert_eq!(inv_sqrt(u64::MAX), inv_sqrt((1 << 62) - 1));
    }
}
