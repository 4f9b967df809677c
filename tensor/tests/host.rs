//! Error bounds of the quantized ops against f64 references (docs/ARITHMETIC.md states them).

use cwnn_tensor::host::*;
use cwnn_tensor::kernels::*;
use cwnn_tensor::{DType, Dyadic, QuantParams};
use proptest::prelude::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// A dyadic holds a real to 2^-31 relative error.
    #[test]
    fn dyadic_from_f64_relative_error(r in 1e-9f64..1e9, negative in any::<bool>()) {
        let r = if negative { -r } else { r };
        let d = Dyadic::from_f64(r).unwrap();
        prop_assert!(d.mantissa.unsigned_abs() >= 1 << 30);
        prop_assert!(((d.to_f64() - r) / r).abs() <= 2f64.powi(-31));
    }

    /// Quantize then dequantize is within half a step inside the range, and 0 is exact.
    #[test]
    fn quantize_round_trip_half_step(lo in -100f64..0.0, hi in 0.001f64..100.0, t in 0f64..1.0) {
        let qp = QuantParams::asymmetric(lo, hi, DType::I8).unwrap();
        let x = lo + t * (hi - lo);
        let q = quantize(x, &qp, DType::I8);
        prop_assert!((dequantize(q, &qp) - x).abs() <= qp.scale_f64() / 2.0 + 1e-12);
        prop_assert_eq!(dequantize(quantize(0.0, &qp, DType::I8), &qp), 0.0);
    }

    /// Requantization rescales to within ½ LSB of the real product (plus the multiplier's
    /// 2^-31 relative error).
    #[test]
    fn requantize_half_lsb(acc in -(1i32 << 24)..(1 << 24), r in 1e-6f64..0.5) {
        let m = Dyadic::from_f64(r).unwrap();
        let mut out = [0i32; 1];
        requantize(&[acc], m, 0, Clamp::full::<i32>(), &mut out).unwrap();
        let exact = acc as f64 * r;
        prop_assert!((out[0] as f64 - exact).abs() <= 0.5 + exact.abs() * 2f64.powi(-31) + 1e-9);
    }

    /// Dense (matvec + requantize) against f64 on the real inputs. Bound: ½ output LSB plus the
    /// input quantization errors, Σ_c (|w_c|·s_x/2 + |x_c|·s_w/2 + s_x·s_w/4).
    #[test]
    fn dense_error_bound(
        rows in 1usize..8, cols in 1usize..64,
        ws in proptest::collection::vec(-1f64..1.0, 8 * 64),
        xs in proptest::collection::vec(-3f64..5.0, 64),
    ) {
        let (w, x) = (&ws[..rows * cols], &xs[..cols]);
        let x_qp = QuantParams::asymmetric(-3.0, 5.0, DType::I8).unwrap();
        let w_qp = QuantParams::symmetric(w.iter().fold(0f64, |a, v| a.max(v.abs())), DType::I8).unwrap();
        let (sx, sw) = (x_qp.scale_f64(), w_qp.scale_f64());
        let reference: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * x[c]).sum()).collect();
        let amax = reference.iter().fold(1e-3f64, |a, v| a.max(v.abs()));
        let out_qp = QuantParams::asymmetric(-amax, amax, DType::I8).unwrap();
        let wq: Vec<i8> = w.iter().map(|&v| quantize(v, &w_qp, DType::I8) as i8).collect();
        let xq: Vec<i8> = x.iter().map(|&v| quantize(v, &x_qp, DType::I8) as i8).collect();
        let mut acc = vec![0; rows];
        matvec(&wq, &xq, x_qp.zero_point, None, &mut acc).unwrap();
        let m = requant_multiplier(sx, sw, out_qp.scale_f64()).unwrap();
        let mut y = vec![0i8; rows];
        requantize(&acc, m, out_qp.zero_point, Clamp::full::<i8>(), &mut y).unwrap();
        for r in 0..rows {
            let input_err: f64 = (0..cols).map(|c| w[r * cols + c].abs() * sx / 2.0 + x[c].abs() * sw / 2.0 + sx * sw / 4.0).sum();
            let bound = out_qp.scale_f64() * (0.5 + 1e-6) + input_err;
            let got = dequantize(y[r] as i32, &out_qp);
            prop_assert!((got - reference[r]).abs() <= bound, "row {}: {} vs {} (bound {})", r, got, reference[r], bound);
        }
    }

    /// A lookup table is exact on the grid: ½ output LSB from the real function.
    #[test]
    fn lut_half_lsb_on_grid(s_in in 0.005f64..0.2, q in any::<i8>()) {
        let in_qp = QuantParams { scale: Dyadic::from_f64(s_in).unwrap(), zero_point: 0 };
        let out_qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
        let t = lut_i8(f64::tanh, &in_qp, &out_qp);
        let mut y = [0i8];
        lut(&[q], &t, &mut y).unwrap();
        // Within the representable output range (outside it the table saturates at the ends).
        let exact = dequantize(q as i32, &in_qp).tanh().clamp(dequantize(-128, &out_qp), dequantize(127, &out_qp));
        prop_assert!((dequantize(y[0] as i32, &out_qp) - exact).abs() <= out_qp.scale_f64() / 2.0 + 1e-12);
    }

    /// Softmax against the f64 softmax of the dequantized logits: within
    /// ½ + 2^-17 + 256·(n+1)/2^17 LSB (1/256 each), one more LSB where a probability clamps.
    #[test]
    fn softmax_error_bound(x in proptest::collection::vec(any::<i8>(), 1..64), s in 0.01f64..0.5) {
        let t = exp_table(s);
        validate_exp_table(&t).unwrap();
        let mut out = vec![0i8; x.len()];
        softmax_i8(&x, &t, &mut out).unwrap();
        let m = *x.iter().max().unwrap() as f64;
        let e: Vec<f64> = x.iter().map(|&v| (s * (v as f64 - m)).exp()).collect();
        let sum: f64 = e.iter().sum();
        let n = x.len() as f64;
        let bound = 0.5 + 2f64.powi(-17) + 256.0 * (n + 1.0) / 131072.0;
        for i in 0..x.len() {
            let exact = 256.0 * e[i] / sum;
            let got = out[i] as f64 + 128.0;
            let extra = if exact > 255.0 { 1.0 } else { 0.0 };
            prop_assert!((got - exact).abs() <= bound + extra, "{} vs {}", got, exact);
        }
    }
}

#[test]
fn calibration_statistics() {
    let mut o = RangeObserver::default();
    assert_eq!(o.range(), (0.0, 0.0));
    o.observe(&[1.0, -2.0, f64::NAN, 3.0, f64::INFINITY]);
    assert_eq!(o.range(), (-2.0, 3.0));
    assert_eq!(o.count, 3);
    assert_eq!(o.abs_max(), 3.0);
    assert!((o.mean() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn quantization_parameters() {
    let qp = QuantParams::symmetric(2.54, DType::I8).unwrap();
    assert_eq!(qp.zero_point, 0);
    assert_eq!(quantize(2.54, &qp, DType::I8), 127);
    assert_eq!(
        quantize(-2.54, &qp, DType::I8),
        -127,
        "symmetric weights never reach -128 from in-range values"
    );
    let a = QuantParams::asymmetric(0.0, 6.0, DType::I8).unwrap();
    assert_eq!(a.zero_point, -128, "a non-negative range starts at the type's minimum");
    let (_, saturated) = quantize_slice(&[0.0, 7.0, -1.0], &a, DType::I8);
    assert_eq!(saturated, 2);
    assert!(QuantParams::asymmetric(1.0, 0.0, DType::I8).is_err());
    assert!(Dyadic::from_f64(f64::NAN).is_err());
    assert!(Dyadic::from_f64(2f64.powi(31)).is_err());
}
