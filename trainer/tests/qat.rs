//! Fake quantization against the tensor crate's own quantizer: training must round exactly
//! as `cwnn import` will.

use burn::backend::{ndarray::NdArrayDevice, NdArray};
use burn::tensor::{Tensor, TensorData};
use cwnn_tensor::host::{dequantize, quantize};
use cwnn_tensor::{DType, QuantParams};
use cwnn_trainer::qat::{self, Qat};
use cwnn_trainer::rng::SplitMix64;

type B = NdArray;

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn activation_params_match_quant_params() {
    for (lo, hi) in [(0.0, 16.0), (-1.0, 2.0), (-3.5, -0.25), (0.1, 0.7), (-0.002, 1e-4)] {
        let (scale, zp) = qat::activation_params(lo, hi).unwrap();
        let qp = QuantParams::asymmetric(lo as f64, hi as f64, DType::I8).unwrap();
        assert!((scale as f64 / qp.scale_f64() - 1.0).abs() < 1e-6, "[{lo}, {hi}]");
        assert_eq!(zp as i32, qp.zero_point, "[{lo}, {hi}]");
    }
    assert_eq!(qat::activation_params(0.0, 0.0), None);
}

#[test]
fn fake_quant_rounds_like_the_importer() {
    let dev = NdArrayDevice::Cpu;
    let mut rng = SplitMix64::new(5);
    // Weights: per output row, symmetric.
    let (rows, cols) = (6, 20);
    let mut w = rng.uniform(rows * cols, 1.0);
    w[cols..2 * cols].iter_mut().for_each(|v| *v *= 1e-3); // a small row keeps its own scale
    w[2 * cols..3 * cols].fill(0.0);
    let got = host(qat::weights(
        Tensor::<B, 2>::from_data(TensorData::new(w.clone(), [rows, cols]), &dev),
        Qat::Int8,
    ));
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let amax = row.iter().fold(0f32, |a, v| a.max(v.abs())) as f64;
        let qp = QuantParams::symmetric(amax, DType::I8).unwrap();
        for (c, &v) in row.iter().enumerate() {
            let want = dequantize(quantize(v as f64, &qp, DType::I8), &qp);
            let g = got[r * cols + c] as f64;
            assert!(
                (g - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "row {r} col {c}: {g} vs {want}"
            );
        }
    }
    // Int4 weights: 15 levels per row, k·max|w|/7 (the importer rounds that scale up by
    // under 1/128 to fit its 8-bit multiplier).
    let got = host(qat::weights(
        Tensor::<B, 2>::from_data(TensorData::new(w.clone(), [rows, cols]), &dev),
        Qat::Int4,
    ));
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let step = row.iter().fold(0f32, |a, v| a.max(v.abs())) as f64 / 7.0;
        for (c, &v) in row.iter().enumerate() {
            let want = if step == 0.0 {
                0.0
            } else {
                (v as f64 / step).round().clamp(-7.0, 7.0) * step
            };
            let g = got[r * cols + c] as f64;
            assert!(
                (g - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "int4 row {r} col {c}: {g} vs {want}"
            );
        }
    }
    // Activations: per tensor, asymmetric over the observed range.
    let x: Vec<f32> = rng.uniform(200, 3.0).into_iter().map(|v| v + 1.0).collect();
    let got = host(qat::activations(Tensor::<B, 1>::from_data(
        TensorData::new(x.clone(), [200]),
        &dev,
    )));
    let lo = x.iter().fold(f32::INFINITY, |a, &v| a.min(v)) as f64;
    let hi = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v)) as f64;
    let qp = QuantParams::asymmetric(lo, hi, DType::I8).unwrap();
    for (&v, &g) in x.iter().zip(&got) {
        let want = dequantize(quantize(v as f64, &qp, DType::I8), &qp);
        assert!((g as f64 - want).abs() <= 1e-5, "{v}: {g} vs {want}");
    }
}

#[test]
fn fake_quant_passes_gradients_straight_through() {
    use burn::backend::Autodiff;
    let dev = NdArrayDevice::Cpu;
    let w = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(vec![0.3f32, -0.7, 0.01, 0.5], [2, 2]), &dev)
        .require_grad();
    let grads = qat::weights(w.clone(), Qat::Int4).mul_scalar(3.0).sum().backward();
    let g = w.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    assert_eq!(g, vec![3.0; 4]);
}
