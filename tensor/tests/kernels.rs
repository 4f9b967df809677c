//! Every kernel against an exact i128 reference, 1,000+ random cases each.

use cwnn_tensor::kernels::*;
use cwnn_tensor::{Dyadic, TensorError};
use proptest::prelude::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

/// `round_half_up(x · m / 2^s)` in exact integers: `floor((x·m + 2^(s−1)) / 2^s)`.
fn ref_dyadic(x: i128, m: Dyadic) -> i128 {
    let d = 1i128 << m.shift;
    (x * m.mantissa as i128 + d / 2).div_euclid(d)
}

fn dyadic() -> impl Strategy<Value = Dyadic> {
    (any::<i32>(), 1u8..=62).prop_map(|(m, s)| Dyadic { mantissa: m, shift: s })
}

fn ref_matvec(w: &[i8], x: &[i8], zp: i32, bias: &[i32]) -> Vec<i128> {
    let cols = x.len();
    bias.iter()
        .enumerate()
        .map(|(r, &b)| {
            b as i128
                + (0..cols)
                    .map(|c| w[r * cols + c] as i128 * (x[c] as i128 - zp as i128))
                    .sum::<i128>()
        })
        .collect()
}

fn matvec_case() -> impl Strategy<Value = (Vec<i8>, Vec<i8>, i32, Vec<i32>)> {
    (1usize..24, 0usize..300, any::<i8>()).prop_flat_map(|(rows, cols, zp)| {
        (
            proptest::collection::vec(any::<i8>(), rows * cols),
            proptest::collection::vec(any::<i8>(), cols),
            Just(zp as i32),
            proptest::collection::vec(-(1 << 20)..(1 << 20), rows),
        )
    })
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn dyadic_apply_is_exact_rounding(x in any::<i32>(), m in dyadic()) {
        let r = ref_dyadic(x as i128, m);
        prop_assert_eq!(m.apply(x) as i128, r);
        // |result − x·m/2^s| ≤ ½, ties up: 2·result − 1 < 2·x·m/2^s ≤ 2·result + 1 … in integers:
        let num = x as i128 * m.mantissa as i128;
        let d = 1i128 << m.shift;
        prop_assert!((2 * r - 1) * d <= 2 * num && 2 * num < (2 * r + 1) * d);
    }

    /// The i64 form rounds the same way, saturates to i64, and agrees with `apply` on every i32.
    #[test]
    fn dyadic_apply_i64_is_exact_rounding(x in -(1i64 << 50)..(1i64 << 50), y in any::<i32>(), m in dyadic()) {
        prop_assert_eq!(m.apply_i64(y as i64), m.apply(y));
        let r = m.apply_i64(x) as i128;
        let exact = ref_dyadic(x as i128, m);
        // Round half up where the result fits i64; saturated where it does not.
        prop_assert_eq!(r, exact.clamp(i64::MIN as i128, i64::MAX as i128));
        if r == exact {
            let num = x as i128 * m.mantissa as i128;
            let d = 1i128 << m.shift;
            prop_assert!((2 * r - 1) * d <= 2 * num && 2 * num < (2 * r + 1) * d);
        }
    }

    /// The int16 dot over LE weight bytes is the exact sum, at every length (unrolled part
    /// and remainder).
    #[test]
    fn dot_i16_le_is_exact(w in proptest::collection::vec(any::<i16>(), 0..40), seed in any::<u64>()) {
        let x: Vec<i64> = (0..w.len()).map(|i| ((seed >> (i % 48)) as i64 & 0xffff) - 32768).collect();
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let want: i64 = w.iter().zip(&x).map(|(&a, &b)| a as i64 * b).sum();
        prop_assert_eq!(cwnn_tensor::kernels::dot_i16_le(&bytes, &x), want);
    }

    /// The i64 dot of centred int16 values (|·| ≤ 65535) is the exact sum at every length.
    #[test]
    fn dot_i64_is_exact(a in proptest::collection::vec(-65535i64..=65535, 0..40), seed in any::<u64>()) {
        let b: Vec<i64> = (0..a.len()).map(|i| ((seed >> (i % 47)) as i64 & 0x1ffff) - 65535).collect();
        let want: i64 = a.iter().zip(&b).map(|(&p, &q)| p * q).sum();
        prop_assert_eq!(cwnn_tensor::kernels::dot_i64(&a, &b), want);
    }

    #[test]
    fn matvec_is_exact((w, x, zp, bias) in matvec_case()) {
        let mut out = vec![0; bias.len()];
        matvec(&w, &x, zp, Some(&bias), &mut out).unwrap();
        let r = ref_matvec(&w, &x, zp, &bias);
        prop_assert_eq!(out.iter().map(|&v| v as i128).collect::<Vec<_>>(), r);
    }

    /// Out of range, the result is the exact sum modulo 2^32: the same on every platform.
    #[test]
    fn matvec_wraps_modulo_2_32(
        (w, x, zp, b) in matvec_case(),
        big in proptest::collection::vec(any::<i32>(), 24),
    ) {
        let rows = b.len();
        let bias = &big[..rows];
        let mut out = vec![0; rows];
        matvec(&w, &x, zp, Some(bias), &mut out).unwrap();
        let r = ref_matvec(&w, &x, zp, bias);
        prop_assert_eq!(out, r.iter().map(|&v| v as i32).collect::<Vec<_>>());
    }

    #[test]
    fn matvec_i16_activations_are_exact(
        rows in 1usize..16, cols in 0usize..64, zp in any::<i16>(), seed in any::<u64>()
    ) {
        let mut s = seed;
        let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 33) as i32 };
        let w: Vec<i8> = (0..rows * cols).map(|_| next() as i8).collect();
        let x: Vec<i16> = (0..cols).map(|_| next() as i16).collect();
        let mut out = vec![0; rows];
        matvec(&w, &x, zp as i32, None, &mut out).unwrap();
        for r in 0..rows {
            let e: i128 = (0..cols).map(|c| w[r * cols + c] as i128 * (x[c] as i128 - zp as i128)).sum();
            prop_assert_eq!(out[r] as i128, e);
        }
    }

    #[test]
    fn matmul_is_rows_of_matvec(m in 1usize..5, (w, x, zp, bias) in matvec_case(), seed in any::<i8>()) {
        let k = x.len();
        let a: Vec<i8> = (0..m * k).map(|i| x[i % k.max(1)].wrapping_add(seed.wrapping_mul(i as i8))).collect();
        let n = bias.len();
        let mut out = vec![0; m * n];
        matmul(&w, &a, m, zp, Some(&bias), &mut out).unwrap();
        for i in 0..m {
            let r = ref_matvec(&w, &a[i * k..(i + 1) * k], zp, &bias);
            prop_assert_eq!(out[i * n..(i + 1) * n].iter().map(|&v| v as i128).collect::<Vec<_>>(), r);
        }
    }

    #[test]
    fn requantize_matches_reference(
        acc in proptest::collection::vec(any::<i32>(), 1..64),
        m in dyadic(), zp in -200i32..200, a in any::<i16>(), b in any::<i16>(),
    ) {
        let clamp = Clamp { lo: (a as i32).min(b as i32), hi: (a as i32).max(b as i32) };
        let mut o8 = vec![0i8; acc.len()];
        let mut o16 = vec![0i16; acc.len()];
        requantize(&acc, m, zp, clamp, &mut o8).unwrap();
        requantize(&acc, m, zp, clamp, &mut o16).unwrap();
        for (i, &x) in acc.iter().enumerate() {
            let v = (zp as i128 + ref_dyadic(x as i128, m)).clamp(clamp.lo as i128, clamp.hi as i128);
            prop_assert_eq!(o8[i] as i128, v.clamp(-128, 127));
            prop_assert_eq!(o16[i] as i128, v.clamp(-32768, 32767));
        }
    }

    #[test]
    fn requantize_per_channel_uses_each_channels_multiplier(
        ms in proptest::collection::vec(dyadic(), 1..6), inner in 1usize..10, seed in any::<i32>(),
    ) {
        let acc: Vec<i32> = (0..ms.len() * inner).map(|i| seed.wrapping_mul(i as i32 + 7).rotate_left(i as u32)).collect();
        let mut out = vec![0i8; acc.len()];
        requantize_per_channel(&acc, &ms, -3, Clamp::full::<i8>(), &mut out).unwrap();
        for (i, &x) in acc.iter().enumerate() {
            let v = (-3 + ref_dyadic(x as i128, ms[i / inner])).clamp(-128, 127);
            prop_assert_eq!(out[i] as i128, v);
        }
    }

    #[test]
    fn saturating_casts_clamp(x in proptest::collection::vec(any::<i32>(), 0..64)) {
        let mut o8 = vec![0i8; x.len()];
        let mut o16 = vec![0i16; x.len()];
        saturating_cast(&x, &mut o8).unwrap();
        saturating_cast(&x, &mut o16).unwrap();
        for i in 0..x.len() {
            prop_assert_eq!(o8[i] as i32, x[i].clamp(-128, 127));
            prop_assert_eq!(o16[i] as i32, x[i].clamp(-32768, 32767));
        }
    }

    #[test]
    fn lut_reads_entry_x_plus_128(table in proptest::collection::vec(any::<i32>(), 256), x in proptest::collection::vec(any::<i8>(), 0..64)) {
        let t: [i32; 256] = table.try_into().unwrap();
        let mut out = vec![0; x.len()];
        lut(&x, &t, &mut out).unwrap();
        for i in 0..x.len() {
            prop_assert_eq!(out[i], t[(x[i] as i32 + 128) as usize]);
        }
    }

    #[test]
    fn argmax_is_first_maximum(x in proptest::collection::vec(-4i8..4, 0..40)) {
        let expect = x.iter().copied().max().map(|m| x.iter().position(|&v| v == m).unwrap());
        prop_assert_eq!(argmax(&x), expect);
        prop_assert_eq!(max(&x), x.iter().copied().max());
    }

    #[test]
    fn softmax_matches_integer_reference_and_rational_bound(
        x in proptest::collection::vec(any::<i8>(), 1..64), decay in 1i32..2000,
    ) {
        let mut t = [0i32; 256];
        for (d, e) in t.iter_mut().enumerate() { *e = (EXP_ONE - decay * d as i32).max(0); }
        validate_exp_table(&t).unwrap();
        let mut out = vec![0i8; x.len()];
        softmax_i8(&x, &t, &mut out).unwrap();
        let m = *x.iter().max().unwrap() as i32;
        let e: Vec<i128> = x.iter().map(|&v| t[(m - v as i32) as usize] as i128).collect();
        let s: i128 = e.iter().sum();
        let r = ((1i128 << 40) + s / 2) / s;
        for i in 0..x.len() {
            let p = (e[i] * r + (1 << 31)) >> 32;
            prop_assert_eq!(out[i] as i128, (p - 128).clamp(-128, 127));
            // Against the exact ratio 256·e/s: within ½ + 2^-17 LSB, or clamped at the top.
            let exact = 256.0 * e[i] as f64 / s as f64;
            let got = out[i] as f64 + 128.0;
            prop_assert!((got - exact).abs() <= 0.5 + 1.0 / 131072.0 || (exact > 255.0 && got == 255.0),
                "got {} exact {}", got, exact);
        }
    }

    /// Conv2D against a direct evaluation of its definition, over random geometries and
    /// channel ranges.
    #[test]
    fn conv2d_is_exact(
        (g, c0, c1) in conv_geometry(), seed in any::<u32>(), zp in any::<i8>(),
    ) {
        let x = pseudo(seed, g.input_len().unwrap());
        let per = g.weights_per_channel();
        let w_all = pseudo(seed ^ 0x9e37, g.out_channels * per);
        let bias: Vec<i32> = (0..g.out_channels).map(|i| (i as i32 - 3) * 1000).collect();
        let mut out = vec![0; (c1 - c0) * g.out_h() * g.out_w()];
        conv2d(&g, &x, zp as i32, &w_all[c0 * per..c1 * per], Some(&bias[c0..c1]), c0..c1, &mut out).unwrap();
        prop_assert_eq!(out, ref_conv(&g, &x, zp as i32, &w_all, &bias, c0, c1));
    }
}

fn pseudo(seed: u32, n: usize) -> Vec<i8> {
    cwnn_tensor::host::pseudo_i8s(seed as u64, n)
}

fn conv_geometry() -> impl Strategy<Value = (Conv2dGeometry, usize, usize)> {
    (
        (1usize..4, 1usize..4, 1usize..4, 1usize..10, 1usize..10),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3, 1usize..3, 1usize..3),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3),
    )
        .prop_filter_map(
            "kernel larger than input",
            |((groups, cin, cout, h, w), (kh, kw, sh, sw, dh, dw), (pt, pl, pb, pr))| {
                let g = Conv2dGeometry {
                    in_channels: groups * cin,
                    in_h: h,
                    in_w: w,
                    out_channels: groups * cout,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride_h: sh,
                    stride_w: sw,
                    dilation_h: dh,
                    dilation_w: dw,
                    pad_top: pt,
                    pad_left: pl,
                    pad_bottom: pb,
                    pad_right: pr,
                    groups,
                };
                g.validate().ok().map(|_| g)
            },
        )
        .prop_flat_map(|g| (Just(g), 0..g.out_channels))
        .prop_flat_map(|(g, c0)| (Just(g), Just(c0), c0 + 1..=g.out_channels))
}

fn ref_conv(g: &Conv2dGeometry, x: &[i8], zp: i32, w: &[i8], bias: &[i32], c0: usize, c1: usize) -> Vec<i32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (cin_g, cout_g) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let mut out = Vec::new();
    for oc in c0..c1 {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias[oc] as i128;
                for icg in 0..cin_g {
                    let ic = oc / cout_g * cin_g + icg;
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            let iy = (oy * g.stride_h + ky * g.dilation_h) as i64 - g.pad_top as i64;
                            let ix = (ox * g.stride_w + kx * g.dilation_w) as i64 - g.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= g.in_h as i64 || ix >= g.in_w as i64 {
                                continue;
                            }
                            let xv = x[(ic * g.in_h + iy as usize) * g.in_w + ix as usize] as i128 - zp as i128;
                            let wv = w[((oc * cin_g + icg) * g.kernel_h + ky) * g.kernel_w + kx] as i128;
                            acc += xv * wv;
                        }
                    }
                }
                out.push(acc as i32);
            }
        }
    }
    out
}

#[test]
fn bad_shapes_are_named_errors() {
    let mut out = [0i32; 3];
    let e = matvec(&[1i8; 5], &[1i8; 2], 0, None, &mut out).unwrap_err();
    assert!(matches!(
        e,
        TensorError::LengthMismatch {
            expected: 6,
            actual: 5,
            ..
        }
    ));
    assert!(matches!(
        matvec(&[1i8; 6], &[1i8; 2], 0, Some(&[0; 2]), &mut out),
        Err(TensorError::LengthMismatch { .. })
    ));
    let mut o = [0i8; 2];
    assert!(requantize(
        &[1, 2],
        Dyadic { mantissa: 1, shift: 0 },
        0,
        Clamp::full::<i8>(),
        &mut o
    )
    .is_err());
    assert!(requantize(
        &[1, 2],
        Dyadic { mantissa: 1, shift: 63 },
        0,
        Clamp::full::<i8>(),
        &mut o
    )
    .is_err());
    assert!(requantize(&[1, 2], Dyadic::ONE, 0, Clamp { lo: 5, hi: 4 }, &mut o).is_err());
    assert_eq!(
        softmax_i8(&[1, 2], &[0; 256], &mut o),
        Err(TensorError::InvalidExpTable)
    );
    let g = Conv2dGeometry {
        in_channels: 2,
        in_h: 3,
        in_w: 3,
        out_channels: 3,
        kernel_h: 5,
        kernel_w: 1,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        pad_top: 0,
        pad_left: 0,
        pad_bottom: 0,
        pad_right: 0,
        groups: 2,
    };
    assert!(g.validate().is_err(), "groups must divide out channels");
    let g = Conv2dGeometry { out_channels: 2, ..g };
    assert!(
        matches!(g.validate(), Err(TensorError::InvalidShape(_))),
        "kernel taller than input"
    );
    let g = Conv2dGeometry { kernel_h: 3, ..g };
    let mut out = vec![0; 9];
    assert!(
        conv2d(&g, &[0i8; 18], 0, &[0i8; 9], None, 1..3, &mut out).is_err(),
        "weights for 1 channel, range of 2"
    );
    assert!(
        conv2d(&g, &[0i8; 18], 0, &[0i8; 9], None, 2..3, &mut out).is_err(),
        "range past the last channel"
    );
}
