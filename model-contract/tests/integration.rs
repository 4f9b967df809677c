//! The contract on cw-multi-test: instantiate, chunked upload, finalize, predict, and every
//! bad input refused with its named error and no change of state.

use cosmwasm_std::{Binary, HexBinary};
use cw_multi_test::{App, ContractWrapper, Executor};
use cwnn_model_contract::contract::{execute, instantiate, query};
use cwnn_model_contract::msg::*;
use cwnn_model_contract::state::CHUNK_BYTES;
use cwnn_model_contract::testing::*;
use cwnn_model_contract::ContractError;
use cwnn_tensor::DType;

fn deploy_with(m: &TestModel, hash: HexBinary, query_budget: Option<WorkBudget>) -> Env {
    let msg = InstantiateMsg {
        weights_sha256: hash,
        query_budget,
        ..m.instantiate_msg()
    };
    deploy(&msg, &[])
}

#[test]
fn upload_finalize_predict_matches_native() {
    let m = mlp(784, 200, 10);
    let mut env = deploy_with(&m, m.sha256(), None);
    let info = env.info();
    assert_eq!(
        info.layers.iter().map(|l| l.weight_bytes).collect::<Vec<_>>(),
        m.weights.iter().map(|w| w.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(info.layers[0].macs, 784 * 200);
    assert!(
        info.layers[0].weight_bytes > CHUNK_BYTES,
        "layer 0 needs more than one chunk"
    );
    assert!(env.predict(m.sample_values()).unwrap_err().contains("not finalized"));

    env.upload_all(&m.weights);
    assert!(env.info().layers.iter().all(|l| l.uploaded_bytes == l.weight_bytes));
    // Chunks are stored as raw bytes, not as JSON arrays.
    let raw = env.app.dump_wasm_raw(&env.model);
    let chunk = |l: u32, k: u32| {
        let mut key = vec![0, 1, b'w', 0, 4];
        key.extend(l.to_be_bytes());
        key.extend(k.to_be_bytes());
        raw.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).unwrap()
    };
    assert_eq!(chunk(0, 1), m.weights[0][CHUNK_BYTES as usize..]);
    assert_eq!(chunk(1, 0), m.weights[1]);
    let owner = env.owner.clone();
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert!(env.info().finalized);

    let out = env.predict(m.sample_values()).unwrap();
    assert_eq!(out.data, m.native(), "on-chain output differs from the native layers");
    assert_eq!(out.output.shape, vec![10]);
}

#[test]
fn bad_uploads_are_refused_without_state_change() {
    let m = mlp(784, 200, 10);
    let mut env = deploy_with(&m, m.sha256(), None);
    let owner = env.owner.clone();
    let stranger = env.app.api().addr_make("stranger");
    let chunk = |l: usize, k: usize| Binary::from(m.weights[l].chunks(CHUNK_BYTES as usize).nth(k).unwrap());

    let up = |layer, offset, data| ExecuteMsg::UploadWeights { layer, offset, data };
    assert_eq!(
        env.refused(&stranger, up(0, 0, chunk(0, 0))),
        ContractError::Unauthorized {}
    );
    assert_eq!(
        env.refused(&owner, up(7, 0, chunk(0, 0))),
        ContractError::UnknownLayer { layer: 7, layers: 3 }
    );
    assert!(matches!(
        env.refused(&owner, up(1, 0, chunk(1, 0))),
        ContractError::OutOfOrder {
            expected_layer: 0,
            expected_offset: 0,
            ..
        }
    ));
    assert!(matches!(
        env.refused(&owner, up(0, CHUNK_BYTES, chunk(0, 1))),
        ContractError::OutOfOrder { .. }
    ));
    let oversize = Binary::from(vec![0u8; CHUNK_BYTES as usize + 1]);
    assert!(
        matches!(env.refused(&owner, up(0, 0, oversize)), ContractError::ChunkSize { expected, .. } if expected == CHUNK_BYTES)
    );
    assert!(matches!(
        env.refused(&owner, up(0, 0, Binary::from(vec![1u8; 10]))),
        ContractError::ChunkSize { actual: 10, .. }
    ));
    assert!(matches!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::Incomplete { layer: 0, offset: 0 }
    ));

    env.upload_all(&m.weights);
    assert_eq!(
        env.refused(&owner, up(0, 0, chunk(0, 0))),
        ContractError::UploadComplete {}
    );
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert_eq!(env.refused(&owner, up(0, 0, chunk(0, 0))), ContractError::Finalized {});
    assert_eq!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::Finalized {}
    );
}

#[test]
fn hash_mismatch_keeps_the_model_unfinalized() {
    let m = mlp(16, 8, 4);
    let mut env = deploy_with(&m, HexBinary::from(vec![0u8; 32]), None);
    env.upload_all(&m.weights);
    let owner = env.owner.clone();
    assert!(matches!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::HashMismatch { .. }
    ));
    assert!(!env.info().finalized);
}

#[test]
fn bad_configs_are_named_errors() {
    let mut app = App::default();
    let owner = app.api().addr_make("owner");
    let code = app.store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
    let m = mlp(16, 8, 4);
    let try_config = |app: &mut App, config: ModelConfig, hash: HexBinary| -> ContractError {
        let msg = InstantiateMsg {
            model: config,
            weights_sha256: hash,
            ..m.instantiate_msg()
        };
        app.instantiate_contract(code, owner.clone(), &msg, &[], "bad", None)
            .unwrap_err()
            .downcast()
            .unwrap()
    };
    let mut swapped = m.config.clone();
    swapped.layers.swap(0, 1);
    assert!(matches!(
        try_config(&mut app, swapped, m.sha256()),
        ContractError::Layer { index: 0, .. }
    ));
    let mut forward_ref = m.config.clone();
    forward_ref.layers[1].inputs = Some(vec![3]);
    assert_eq!(
        try_config(&mut app, forward_ref, m.sha256()),
        ContractError::LayerInput { index: 1, input: 3 }
    );
    // Int4 weights need int8 activations: an int16 model declaring them is refused by name.
    let mut int4_on_int16 = cwnn_model_contract::testing::dense_only_as(8, 4, cwnn_tensor::DType::I16).config;
    if let cwnn_layers::Layer::Dense(d) = &mut int4_on_int16.layers[0].layer {
        d.weights = cwnn_layers::WeightFormat::Int4;
    }
    assert!(matches!(
        try_config(&mut app, int4_on_int16, m.sha256()),
        ContractError::Layer { index: 0, .. }
    ));
    let mut empty = m.config.clone();
    empty.layers.clear();
    assert!(matches!(
        try_config(&mut app, empty, m.sha256()),
        ContractError::InvalidConfig(_)
    ));
    assert_eq!(
        try_config(&mut app, m.config.clone(), HexBinary::from(vec![1u8; 31])),
        ContractError::HashLength(31)
    );
    // At most 256 layers: each call's bookkeeping over layers is not in the work budget.
    let mut deep = m.config.clone();
    let last = deep.layers[2].clone();
    deep.layers.extend(std::iter::repeat_n(last, 255));
    assert_eq!(
        try_config(&mut app, deep, m.sha256()),
        ContractError::InvalidConfig("a model needs 1 to 256 layers")
    );
}

#[test]
fn predict_checks_input_and_budget() {
    let m = mlp(16, 8, 4);
    let mut env = deploy_with(
        &m,
        m.sha256(),
        Some(WorkBudget {
            max_work: 100,
            max_weight_bytes: 1 << 20,
            max_segments: 8,
        }),
    );
    env.upload_all(&m.weights);
    let owner = env.owner.clone();
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    let err = env.predict(m.sample_values()).unwrap_err();
    assert!(err.contains("over budget"), "{err}");

    let mut env = deploy_with(&m, m.sha256(), None);
    env.upload_all(&m.weights);
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert!(env.predict(vec![0; 15]).unwrap_err().contains("length differs"));
    let mut v = m.sample_values();
    v[0] = 300;
    assert!(env.predict(v).unwrap_err().contains("outside the input's integer type"));
    assert_eq!(env.predict(m.sample_values()).unwrap().data, m.native());
}

#[test]
fn input_bytes_give_the_answer_of_the_values() {
    for dtype in [DType::I8, DType::I16] {
        let m = dense_only_as(16, 4, dtype);
        let mut env = deploy_with(&m, m.sha256(), None);
        env.upload_all(&m.weights);
        let owner = env.owner.clone();
        env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
        let values = m.sample_values();
        let bytes = input_bytes(&values, dtype);
        let want = env.predict(values.clone()).unwrap();
        assert_eq!(env.predict_with(vec![], Some(&bytes)).unwrap(), want);
        // As a paid-free execute and as a job: the same output.
        let user = env.addr("user");
        let b = Some(Binary::from(bytes.clone()));
        let res = env
            .exec(
                &user,
                ExecuteMsg::Predict {
                    input: vec![],
                    input_bytes: b.clone(),
                },
            )
            .unwrap();
        assert_eq!(
            cosmwasm_std::from_json::<PredictResponse>(res.data.unwrap()).unwrap(),
            want
        );
        let res = env
            .exec(
                &user,
                ExecuteMsg::Evaluate {
                    input: vec![],
                    input_bytes: b,
                    steps: None,
                },
            )
            .unwrap();
        let done: EvaluateResponse = cosmwasm_std::from_json(res.data.unwrap()).unwrap();
        assert_eq!(done.output, Some(want));

        // Named refusals: both forms, a partial element, a wrong element count, neither.
        let both = env.predict_with(values, Some(&bytes)).unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let short = &bytes[..bytes.len() - 1];
        let err = env.predict_with(vec![], Some(short)).unwrap_err();
        match dtype {
            DType::I8 => assert!(err.contains("length differs"), "{err}"),
            _ => assert!(err.contains("whole number"), "{err}"),
        }
        let w = dtype.bytes();
        let err = env.predict_with(vec![], Some(&bytes[..bytes.len() - w])).unwrap_err();
        assert!(err.contains("length differs"), "{err}");
        assert!(env.predict(vec![]).unwrap_err().contains("length differs"));
        let oversized = bytes.repeat(1000);
        let err = env.predict_with(vec![], Some(&oversized)).unwrap_err();
        assert!(err.contains("length differs"), "{err}");
    }
}

fn input_bytes(values: &[i32], dtype: DType) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| v.to_le_bytes().into_iter().take(dtype.bytes()))
        .collect()
}

#[test]
fn only_the_owner_transfers_ownership() {
    let m = mlp(16, 8, 4);
    let mut env = deploy_with(&m, m.sha256(), None);
    let (owner, bob) = (env.owner.clone(), env.app.api().addr_make("bob"));
    let transfer = ExecuteMsg::TransferOwnership {
        new_owner: bob.to_string(),
    };
    assert_eq!(env.refused(&bob, transfer.clone()), ContractError::Unauthorized {});
    env.exec(&owner, transfer).unwrap();
    let r: OwnerResponse = env
        .app
        .wrap()
        .query_wasm_smart(&env.model, &QueryMsg::Owner {})
        .unwrap();
    assert_eq!(r.owner, bob.to_string());
    assert_eq!(
        env.refused(&owner, ExecuteMsg::Finalize {}),
        ContractError::Unauthorized {}
    );
}
