//! The quantizer never panics (issue 21): calibration ranges from 1e-30 to 1e30, zero-width
//! ranges and constants of any magnitude give a representable scale or a named error, and a
//! model that quantizes also runs.

use cwnn_importer::float::{FloatModel, FloatNode, FloatOp, InputKind};
use cwnn_importer::quantize::{quantize, Precision, QuantizeError};
use cwnn_layers::{ActivationF64, AddF64, DenseF64};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use proptest::prelude::*;

/// Dense 4→3 (weights at `10^w`) → Add of a constant (at `10^c`) → ReLU.
fn model(w: i32, c: i32) -> FloatModel {
    let node = |name: &str, op, input: usize, n: usize| FloatNode {
        name: name.into(),
        op,
        inputs: vec![input],
        shape: vec![n],
    };
    let dense = DenseF64 {
        w: Array2::from_shape_fn((3, 4), |(i, j)| (i as f64 - j as f64 + 0.5) * 10f64.powi(w)),
        b: Array1::from(vec![0.1, -0.2, 0.3]) * 10f64.powi(w),
        clamp: None,
    };
    let constant = ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, -2.0, 0.5]).unwrap() * 10f64.powi(c);
    FloatModel {
        name: "ranges".into(),
        input_name: "x".into(),
        input_kind: InputKind::Real,
        input_shape: vec![4],
        input_batch_axis: None,
        output_name: "y".into(),
        output_batch_axis: None,
        nodes: vec![
            node("dense", FloatOp::Dense(dense), 0, 3),
            node(
                "add",
                FloatOp::Add(AddF64 {
                    constant: Some(constant),
                }),
                1,
                3,
            ),
            node("relu", FloatOp::Activation(ActivationF64::Relu), 2, 3),
        ],
    }
}

/// Quantizes and, if that succeeds, runs the quantized model on every sample: neither may
/// panic, and a refusal must be a named error.
fn quantize_and_run(m: &FloatModel, samples: &[ArrayD<f64>], precision: Precision) {
    match quantize(m, samples, "ranges", precision) {
        Ok(q) => {
            for s in samples {
                let x = q.config.input.quantize(s).unwrap();
                q.config.run_all(&q.weights, x).unwrap();
            }
        }
        Err(e @ (QuantizeError::Range { .. } | QuantizeError::Layer { .. })) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_magnitude_is_a_scale_or_a_named_error(
        x in -30i32..=30, w in -30i32..=30, c in -30i32..=30, flat in any::<bool>(), int16 in any::<bool>(),
    ) {
        let samples: Vec<ArrayD<f64>> = (0..3)
            .map(|k| ArrayD::from_shape_fn(IxDyn(&[4]), |i| match flat {
                // A zero-width range: every value the same.
                true => 10f64.powi(x),
                false => (i[0] as f64 - 1.5 + k as f64) * 10f64.powi(x),
            }))
            .collect();
        let precision = if int16 { Precision::Int16 } else { Precision::Int8 };
        quantize_and_run(&model(w, c), &samples, precision);
    }
}

/// ONNX's `test_operator_add_broadcast` range: tiny and zero-width ranges quantize.
#[test]
fn tiny_ranges_get_the_smallest_scale() {
    let samples = vec![
        ArrayD::from_elem(IxDyn(&[4]), 1e-12),
        ArrayD::from_elem(IxDyn(&[4]), 2e-12),
    ];
    let q = quantize(&model(-12, -12), &samples, "tiny", Precision::Int8).unwrap();
    assert!(q.config.input.quant.scale_f64() >= cwnn_tensor::host::MIN_SCALE);
}

/// A range no scale covers is refused by name, naming the tensor.
#[test]
fn huge_ranges_are_named_errors() {
    let samples = vec![ArrayD::from_elem(IxDyn(&[4]), 1e30)];
    match quantize(&model(0, 0), &samples, "huge", Precision::Int8) {
        Err(QuantizeError::Range { tensor, .. }) => assert_eq!(tensor, "the input 'x'"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}
