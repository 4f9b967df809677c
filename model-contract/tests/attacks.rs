//! The trust review's attacks on the model contract (docs/SECURITY.md, numbers as there), each
//! run as an attacker would and shown refused or harmless: a named error, storage and balances
//! unchanged. Attacks 1, 2 and 7 (binding to collections) are in collection/tests/flow.rs,
//! 9 in examples/digit-oracle, 10 in vm/tests/faults.rs (the 32-bit Wasm build).

use cosmwasm_std::{coin, from_json};
use cwnn_layers::{Clamp, Layer, MaxPool2d, Softmax, TensorSpec, Window2d};
use cwnn_model_contract::msg::*;
use cwnn_model_contract::state::CHUNK_BYTES;
use cwnn_model_contract::testing::*;
use cwnn_model_contract::ContractError;
use cwnn_tensor::{DType, QuantParams};

fn fee_model() -> (TestModel, Env) {
    let m = mlp(16, 8, 4);
    let msg = InstantiateMsg {
        fee: Some(coin(100, DENOM)),
        ..m.instantiate_msg()
    };
    let env = ready(&m, &msg, &[coin(1_000, DENOM)]);
    (m, env)
}

fn proceeds(env: &Env) -> Vec<cosmwasm_std::Coin> {
    let r: ProceedsResponse = env
        .app
        .wrap()
        .query_wasm_smart(&env.model, &QueryMsg::Proceeds {})
        .unwrap();
    r.proceeds
}

/// Attack 3: a contract asks a fee'd model through the free `Predict` query inside its own
/// transaction. The query is refused unless the holder allows free queries; the paid
/// `Predict` execute answers in its data, for exactly the fee.
#[test]
fn attack_3_a_fee_d_model_answers_only_those_who_pay() {
    let (m, mut env) = fee_model();
    let (owner, alice) = (env.owner.clone(), env.addr("alice"));
    let input = m.sample_values();
    let err = env.predict(input.clone()).unwrap_err();
    assert!(err.contains("charges a fee"), "{err}");

    let predict = ExecuteMsg::Predict {
        input: input.clone(),
        input_bytes: None,
    };
    for funds in [vec![], vec![coin(99, DENOM)], vec![coin(101, DENOM)]] {
        assert!(matches!(
            env.refused_with(&alice, predict.clone(), &funds),
            ContractError::WrongFee { .. }
        ));
    }
    let res = env.exec_with(&alice, predict, &[coin(100, DENOM)]).unwrap();
    let out: PredictResponse = from_json(res.data.as_ref().unwrap()).unwrap();
    assert_eq!(out.data, m.native());
    assert_eq!((env.balance(&alice), proceeds(&env)), (900, vec![coin(100, DENOM)]));
    // Nothing but the fee is stored: no job.
    assert_eq!((env.keys_in("job"), env.keys_in("jt")), (0, 0));
    let inference = res.events.iter().find(|e| e.ty == "wasm-cwnn_inference").unwrap();
    let attr = |k: &str| {
        inference
            .attributes
            .iter()
            .find(|a| a.key == k)
            .map(|a| a.value.clone())
    };
    assert_eq!(attr("model_sha256"), Some(env.info().model_sha256.to_hex()));
    assert!(attr("input").is_some());

    // The holder may open the query; nobody else may.
    let open = ExecuteMsg::SetFreeQueries { free_queries: true };
    assert_eq!(env.refused(&alice, open.clone()), ContractError::Unauthorized {});
    env.exec(&owner, open).unwrap();
    assert!(env.info().free_queries);
    assert_eq!(env.predict(input).unwrap().data, m.native());
}

/// Attack 4: a pooling window of 181×181 over a 362×362 input is ~1.09·10⁹ comparisons. Its
/// work counts them, so no budget that fits a call accepts it, and `ModelInfo` shows it.
#[test]
fn attack_4_work_counts_comparisons() {
    let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
    let pool = |k: usize, n: usize| ModelConfig {
        name: "pool".into(),
        input: TensorSpec::new(vec![1, n, n], DType::I8, qp),
        layers: vec![LayerConfig {
            layer: Layer::MaxPool2d(MaxPool2d {
                window: Window2d {
                    kernel: [k, k],
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [0; 4],
                },
            }),
            inputs: None,
        }],
    };
    let msg = |config: ModelConfig| InstantiateMsg::new(config, weights_sha256(&[vec![]]));
    let mut app = cw_multi_test::App::default();
    let owner = app.api().addr_make("owner");
    match instantiate_in(&mut app, &owner, &msg(pool(181, 362))).unwrap_err() {
        ContractError::SegmentOverBudget { index: 0, work, .. } => assert!(work >= 1_090_000_000, "{work}"),
        e => panic!("{e}"),
    }
    // A small pool is accepted and reports its comparisons: 7×7 outputs × 4 taps.
    let env = deploy(&msg(pool(2, 8)), &[]);
    assert!(env.info().layers[0].work >= 49 * 4);
}

/// Attack 5: a paid job is frozen by a pause while the owner withdraws the fee. A started job
/// now continues through a pause, and an overpayment is refused rather than kept.
#[test]
fn attack_5_a_paid_job_finishes_through_a_pause() {
    let (m, mut env) = fee_model();
    let (owner, alice) = (env.owner.clone(), env.addr("alice"));
    let evaluate = ExecuteMsg::Evaluate {
        input: m.sample_values(),
        input_bytes: None,
        steps: Some(1),
    };
    assert!(matches!(
        env.refused_with(&alice, evaluate.clone(), &[coin(500, DENOM)]),
        ContractError::WrongFee { .. }
    ));
    let id = evaluate_data(&env.exec_with(&alice, evaluate, &[coin(100, DENOM)]).unwrap()).job_id;
    env.exec(&owner, ExecuteMsg::SetPaused { paused: true }).unwrap();
    env.exec(&owner, ExecuteMsg::Withdraw { denom: None }).unwrap();
    let more = ExecuteMsg::Continue {
        job_id: id,
        steps: None,
    };
    let done = evaluate_data(&env.exec(&alice, more).unwrap());
    assert_eq!(done.output.unwrap().data, m.native());
    assert_eq!((env.balance(&alice), env.balance(&owner)), (900, 100));
}

/// Attack 6: a copy with the same weights but another clamp showed the same hash. The model
/// hash covers the config too.
#[test]
fn attack_6_the_model_hash_covers_the_config() {
    let m = mlp(16, 8, 4);
    let mut other = m.config.clone();
    let Layer::Dense(d) = &mut other.layers[0].layer else {
        unreachable!()
    };
    d.clamp = Clamp { lo: -5, hi: 5 };
    let a = deploy(&m.instantiate_msg(), &[]).info();
    let b = deploy(
        &InstantiateMsg {
            model: other.clone(),
            ..m.instantiate_msg()
        },
        &[],
    )
    .info();
    assert_eq!(a.weights_sha256, b.weights_sha256);
    assert_ne!(a.model_sha256, b.model_sha256);
    assert_eq!(a.model_sha256, model_sha256(&m.config, &m.sha256()).unwrap());
    assert_eq!(b.model_sha256, model_sha256(&other, &m.sha256()).unwrap());
}

/// Attack 8: one wrong uploaded byte bricked the model. The owner rewinds to the bad chunk and
/// uploads it again; bad rewinds are named errors.
#[test]
fn attack_8_a_wrong_chunk_is_replaced_before_finalize() {
    let m = mlp(784, 200, 10);
    let mut env = deploy(&m.instantiate_msg(), &[]);
    let (owner, bob) = (env.owner.clone(), env.addr("bob"));
    let mut bad = m.weights.clone();
    bad[0][CHUNK_BYTES as usize + 7] ^= 1;
    env.upload_all(&bad);
    assert!(matches!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::HashMismatch { .. }
    ));
    let rewind = |layer, offset| ExecuteMsg::RewindUpload { layer, offset };
    assert_eq!(
        env.refused(&bob, rewind(0, CHUNK_BYTES)),
        ContractError::Unauthorized {}
    );
    for (layer, offset) in [(0, 5), (0, 10 * CHUNK_BYTES), (1, CHUNK_BYTES)] {
        assert!(matches!(
            env.refused(&owner, rewind(layer, offset)),
            ContractError::InvalidRewind { .. }
        ));
    }
    assert!(matches!(
        env.refused(&owner, rewind(9, 0)),
        ContractError::UnknownLayer { layer: 9, .. }
    ));
    env.exec(&owner, rewind(0, CHUNK_BYTES)).unwrap();
    assert_eq!(env.info().layers[0].uploaded_bytes, CHUNK_BYTES);
    // The cursor is back: later chunks must wait for the replaced one.
    assert!(matches!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::Incomplete { layer: 0, .. }
    ));
    for up in ExecuteMsg::uploads(&m.weights) {
        if let ExecuteMsg::UploadWeights { layer, offset, data } = up {
            if (layer, offset) >= (0, CHUNK_BYTES) {
                env.upload(layer, offset, &data).unwrap();
            }
        }
    }
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert_eq!(env.predict(m.sample_values()).unwrap().data, m.native());
    assert_eq!(env.refused(&owner, rewind(0, 0)), ContractError::Finalized {});
}

/// A Softmax mask is weights the owner uploads: a `mask_rows` far beyond the scores' rows (up
/// to u32::MAX) makes the layer's weights, all read by every segment, larger than one call's
/// budget, so instantiation refuses it by name before anything is stored; a mask that fits is
/// accepted and its bytes counted.
#[test]
fn a_softmax_mask_too_large_for_a_call_is_refused() {
    let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
    let masked = |mask_rows: u32| ModelConfig {
        name: "masked".into(),
        input: TensorSpec::new(vec![4, 16], DType::I8, qp),
        layers: vec![LayerConfig {
            layer: Layer::Softmax(Softmax { mask_rows }),
            inputs: None,
        }],
    };
    let msg = |config: ModelConfig| InstantiateMsg::new(config, weights_sha256(&[vec![]]));
    let mut app = cw_multi_test::App::default();
    let owner = app.api().addr_make("owner");
    for rows in [1 << 20, u32::MAX] {
        match instantiate_in(&mut app, &owner, &msg(masked(rows))).unwrap_err() {
            ContractError::SegmentOverBudget {
                index: 0, weight_bytes, ..
            } => {
                assert!(weight_bytes > 1 << 20, "{weight_bytes}")
            }
            e => panic!("mask_rows {rows}: {e}"),
        }
    }
    let env = deploy(&msg(masked(4)), &[]);
    assert_eq!(env.info().layers[0].weight_bytes, 1024 + 4 * 2);
}

/// A Permute may now output more elements than it reads (a selection that repeats them), and
/// its index table is weights the owner uploads, 4 bytes per output element. An output of
/// 2^28 elements (or up to 2^32) is refused by name at instantiation, before anything is
/// stored: every activation must fit one 128 KiB storage value. One with no elements is a
/// named error; a selection that fits is accepted and its bytes counted.
#[test]
fn a_permute_output_too_large_for_a_call_is_refused() {
    use cwnn_layers::Permute;
    let qp = QuantParams::asymmetric(-4.0, 4.0, DType::I8).unwrap();
    let picked = |n: usize| ModelConfig {
        name: "picked".into(),
        input: TensorSpec::new(vec![4, 16], DType::I8, qp),
        layers: vec![LayerConfig {
            layer: Layer::Permute(Permute { shape: vec![n] }),
            inputs: None,
        }],
    };
    let msg = |config: ModelConfig| InstantiateMsg::new(config, weights_sha256(&[vec![]]));
    let mut app = cw_multi_test::App::default();
    let owner = app.api().addr_make("owner");
    for n in [1 << 28, u32::MAX as usize] {
        match instantiate_in(&mut app, &owner, &msg(picked(n))).unwrap_err() {
            ContractError::TensorTooLarge { tensor: 1, bytes } => assert_eq!(bytes, n as u64),
            e => panic!("{n} outputs: {e}"),
        }
    }
    assert!(instantiate_in(&mut app, &owner, &msg(picked(0))).is_err());
    let env = deploy(&msg(picked(16)), &[]);
    assert_eq!(env.info().layers[0].weight_bytes, 16 * 4);
}
