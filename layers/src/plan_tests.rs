//! Checked sizes and work figures of [`Layer::plan`] across the layer kinds.

use alloc::vec;
use alloc::vec::Vec;

use cwnn_tensor::{DType, Dyadic, QuantParams};

use crate::*;

const QP: QuantParams = QuantParams {
    scale: Dyadic::ONE,
    zero_point: 0,
};

fn spec(shape: &[usize], dtype: DType) -> TensorSpec {
    TensorSpec::new(shape.to_vec(), dtype, QP)
}

fn window(k: usize, s: usize) -> Window2d {
    Window2d {
        kernel: [k, k],
        strides: [s, s],
        dilations: [1, 1],
        pads: [0; 4],
    }
}

fn recurrent(input_size: usize, hidden: usize) -> Recurrent {
    Recurrent {
        input_size,
        hidden,
        reverse: false,
        sequence_output: true,
        initial_state: true,
        weights: WeightFormat::Native,
    }
}

/// A layer and its input specs.
type Case = (Layer, Vec<TensorSpec>);

/// One layer of every kind with its input shapes (`dtype` activations).
fn every_kind(dtype: DType) -> Vec<Case> {
    let clamp = Clamp { lo: -128, hi: 127 };
    let dense = Dense {
        in_features: 8,
        out_features: 4,
        clamp,
        output: QP,
        weights: WeightFormat::Native,
    };
    let conv = Conv2d {
        out_channels: 4,
        window: window(3, 1),
        groups: 2,
        clamp,
        output: QP,
        weights: WeightFormat::Native,
    };
    let mut cases = vec![
        (dense.into(), vec![spec(&[2, 8], dtype)]),
        (conv.into(), vec![spec(&[2, 6, 6], dtype)]),
    ];
    cases.extend(elementwise_kinds(dtype));
    cases.extend(recurrent_kinds(dtype));
    cases
}

/// The kinds without a weight matrix: activations, softmax, pools, reshape, affine, add,
/// mul, embedding.
fn elementwise_kinds(dtype: DType) -> Vec<Case> {
    let chw = || vec![spec(&[2, 6, 6], dtype)];
    let add = |constant| Add {
        multipliers: [1 << 30, 1 << 30],
        shift: 31,
        constant,
        output: QP,
    };
    vec![
        (
            Layer::Activation(Activation {
                kind: ActivationKind::Relu,
                output: QP,
            }),
            chw(),
        ),
        (
            Layer::Activation(Activation {
                kind: ActivationKind::Sigmoid,
                output: QP,
            }),
            chw(),
        ),
        (Layer::Softmax(Softmax::default()), vec![spec(&[3, 10], dtype)]),
        (Layer::MaxPool2d(MaxPool2d { window: window(2, 2) }), chw()),
        (
            Layer::AvgPool2d(AvgPool2d {
                window: window(3, 1),
                count_include_pad: false,
            }),
            chw(),
        ),
        (Layer::GlobalAvgPool(GlobalAvgPool {}), chw()),
        (Layer::Reshape(Reshape { shape: vec![72] }), chw()),
        (Layer::Permute(Permute { shape: vec![6, 6, 2] }), chw()),
        (
            Layer::Affine(Affine {
                channels: 2,
                output: QP,
            }),
            chw(),
        ),
        (
            Layer::Add(add(Some(Constant {
                shape: vec![6],
                quant: QP,
            }))),
            chw(),
        ),
        (
            Layer::Add(add(None)),
            vec![spec(&[2, 6, 6], dtype), spec(&[6, 1], dtype)],
        ),
        (
            Layer::Mul(Mul {
                multiplier: Dyadic::ONE,
                constant: None,
                output: QP,
            }),
            vec![spec(&[2, 6, 6], dtype), spec(&[2, 6, 6], dtype)],
        ),
        (
            Layer::Embedding(Embedding {
                vocab: 10,
                dim: 4,
                output: QP,
                weights: WeightFormat::Native,
            }),
            vec![spec(&[5], DType::I32)],
        ),
    ]
}

/// SimpleRnn, GRU and LSTM over 5 steps of 3 features, 4 hidden.
fn recurrent_kinds(dtype: DType) -> Vec<Case> {
    let seq = || vec![spec(&[5, 3], dtype)];
    vec![
        (Layer::SimpleRnn(SimpleRnn { rnn: recurrent(3, 4) }), seq()),
        (
            Layer::Gru(Gru {
                rnn: recurrent(3, 4),
                linear_before_reset: true,
            }),
            seq(),
        ),
        (
            Layer::Lstm(Lstm {
                rnn: recurrent(3, 4),
                peepholes: true,
            }),
            seq(),
        ),
    ]
}

fn plan(layer: &Layer, inputs: &[TensorSpec]) -> Result<LayerPlan> {
    layer.plan(&inputs.iter().collect::<Vec<_>>())
}

fn overflows(layer: Layer, inputs: &[TensorSpec]) {
    let name = layer.name();
    assert_eq!(
        plan(&layer, inputs),
        Err(LayerError::SizeOverflow { layer: name }),
        "{layer:?}"
    );
}

#[test]
fn work_covers_macs_and_is_positive() {
    for dtype in [DType::I8, DType::I16] {
        for (layer, inputs) in every_kind(dtype) {
            let p = plan(&layer, &inputs).unwrap_or_else(|e| panic!("{layer:?}: {e}"));
            assert!(p.output.numel() > Some(0));
            assert!(p.work > 0, "{}: no work", layer.name());
            assert!(p.work >= p.macs, "{}: work {} < macs {}", layer.name(), p.work, p.macs);
            // Each unit's share is real work too.
            assert!(p.work.div_ceil(p.units as u64) >= 1);
        }
    }
}

#[test]
fn max_pool_counts_every_comparison() {
    // A 181×181 window at stride 1 over 362×362: 182² outputs × 181² taps ≈ 1.085e9.
    let layer = Layer::MaxPool2d(MaxPool2d { window: window(181, 1) });
    let p = plan(&layer, &[spec(&[1, 362, 362], DType::I8)]).unwrap();
    assert_eq!(p.macs, 0);
    assert!(p.work >= 1_090_000_000, "work {}", p.work);
}

#[test]
fn int16_dense_costs_four_times_int8() {
    let dense = Layer::Dense(Dense {
        in_features: 256,
        out_features: 64,
        clamp: Clamp { lo: -128, hi: 127 },
        output: QP,
        weights: WeightFormat::Native,
    });
    let work = |dtype| plan(&dense, &[spec(&[3, 256], dtype)]).unwrap().work;
    assert!(work(DType::I16) >= 4 * work(DType::I8));
}

#[test]
fn work_saturates() {
    if usize::BITS < 64 {
        return;
    }
    // 2^24·2047² outputs of a 2^20-tap window: past u64, so past every budget.
    let layer = Layer::MaxPool2d(MaxPool2d {
        window: Window2d {
            kernel: [1 << 10, 1 << 10],
            strides: [1, 1],
            dilations: [1, 1],
            pads: [1023, 1023, 1023, 1023],
        },
    });
    let p = plan(&layer, &[spec(&[1 << 24, 1 << 10, 1 << 10], DType::I8)]).unwrap();
    assert_eq!(p.work, u64::MAX);
}

/// The contract refuses this one on its 32-bit target: 65,536² bytes of table wrap to 0.
#[test]
fn embedding_table_of_2_to_32_bytes() {
    let layer = Layer::Embedding(Embedding {
        vocab: 65_536,
        dim: 65_536,
        output: QP,
        weights: WeightFormat::Native,
    });
    let p = plan(&layer, &[spec(&[1], DType::I32)]);
    if usize::BITS == 32 {
        assert_eq!(p, Err(LayerError::SizeOverflow { layer: "embedding" }));
    } else {
        assert_eq!(p.unwrap().weight_len, 1 << 32);
    }
}

#[test]
fn sizes_past_usize_are_refused() {
    let big = usize::MAX / 4 + 1;
    overflows(
        Layer::Embedding(Embedding {
            vocab: i32::MAX as usize,
            dim: usize::MAX / (i32::MAX as usize) + 1,
            output: QP,
            weights: WeightFormat::Native,
        }),
        &[spec(&[1], DType::I32)],
    );
    // int16 (no i32-sum limit): weights of `out · (2·in + 13)` bytes.
    let dense = |in_features, out_features| {
        Layer::Dense(Dense {
            in_features,
            out_features,
            clamp: Clamp { lo: -32768, hi: 32767 },
            output: QP,
            weights: WeightFormat::Native,
        })
    };
    overflows(dense(1 << 20, big), &[spec(&[1 << 20], DType::I16)]);
    let huge = usize::MAX / 2 + 1;
    overflows(dense(huge, 1), &[spec(&[huge], DType::I16)]);
    overflows(
        Layer::Conv2d(Conv2d {
            out_channels: big,
            window: window(1, 1),
            groups: 1,
            clamp: Clamp { lo: -32768, hi: 32767 },
            output: QP,
            weights: WeightFormat::Native,
        }),
        &[spec(&[1, 1, 1], DType::I16)],
    );
    overflows(
        Layer::Affine(Affine {
            channels: big,
            output: QP,
        }),
        &[spec(&[big], DType::I8)],
    );
    overflows(
        Layer::Add(Add {
            multipliers: [1 << 30, 1 << 30],
            shift: 31,
            constant: Some(Constant {
                shape: vec![big, 8],
                quant: QP,
            }),
            output: QP,
        }),
        &[spec(&[8], DType::I8)],
    );
    overflows(
        Layer::Lstm(Lstm {
            rnn: recurrent(1, big),
            peepholes: true,
        }),
        &[spec(&[1, 1], DType::I16)],
    );
    // A window whose area overflows (and its padded geometry with it).
    let k = 1usize << (usize::BITS / 2);
    overflows(
        Layer::AvgPool2d(AvgPool2d {
            window: Window2d {
                kernel: [k, k],
                strides: [1, 1],
                dilations: [1, 1],
                pads: [k - 1; 4],
            },
            count_include_pad: true,
        }),
        &[spec(&[1, 1, 1], DType::I8)],
    );
    overflows(
        Layer::Reshape(Reshape { shape: vec![big, 8] }),
        &[spec(&[big, 8], DType::I8)],
    );
}

#[test]
fn macs_past_u64_are_refused() {
    // 2^42 inputs × 2^30 outputs (int16: no i32-sum limit) = 2^72 MACs.
    if usize::BITS == 64 {
        let layer = Layer::Dense(Dense {
            in_features: 1 << 20,
            out_features: 1 << 30,
            clamp: Clamp { lo: -32768, hi: 32767 },
            output: QP,
            weights: WeightFormat::Native,
        });
        overflows(layer, &[spec(&[1 << 22, 1 << 20], DType::I16)]);
    }
}
