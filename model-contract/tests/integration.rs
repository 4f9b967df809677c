//! The contract on cw-multi-test: instantiate, chunked upload, finalize, predict, and every
//! bad input refused with its named error and no change of state.

use cosmwasm_std::{Addr, Binary, HexBinary};
use cw_multi_test::{App, ContractWrapper, Executor};
use cwnn_layers::testing::quantize_input;
use cwnn_layers::{DenseF64, Layer, SoftmaxF64, TensorSpec};
use cwnn_model_contract::contract::{execute, instantiate, query};
use cwnn_model_contract::msg::*;
use cwnn_model_contract::state::CHUNK_BYTES;
use cwnn_model_contract::ContractError;
use cwnn_tensor::{DType, QTensor, QuantParams};
use ndarray::{Array1, Array2, ArrayD};
use sha2::{Digest, Sha256};

/// A quantized MLP `in → hidden (ReLU) → out → softmax`, its weights per layer and a sample.
struct Mlp {
    config: ModelConfig,
    weights: Vec<Vec<u8>>,
    sample: QTensor,
}

fn mlp(n_in: usize, hidden: usize, n_out: usize) -> Mlp {
    let f = |seed: usize, n: usize| {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104729) % 2001) as f64 / 1000.0 - 1.0) * 0.3)
            .collect::<Vec<_>>()
    };
    let d1 = DenseF64 {
        w: Array2::from_shape_vec((hidden, n_in), f(1, hidden * n_in)).unwrap(),
        b: Array1::from(f(2, hidden)),
        clamp: Some((0.0, f64::INFINITY)),
    };
    let d2 = DenseF64 {
        w: Array2::from_shape_vec((n_out, hidden), f(3, n_out * hidden)).unwrap(),
        b: Array1::from(f(4, n_out)),
        clamp: None,
    };
    let x = ArrayD::from_shape_vec(vec![n_in], f(5, n_in).iter().map(|v| v * 3.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input(&x);
    let h_qp = QuantParams::asymmetric(0.0, 8.0, DType::I8).unwrap();
    let y_qp = QuantParams::asymmetric(-8.0, 8.0, DType::I8).unwrap();
    let (l1, w1) = d1.quantize(&x_qp, &h_qp).unwrap();
    let (l2, w2) = d2.quantize(&h_qp, &y_qp).unwrap();
    let (l3, w3) = SoftmaxF64.quantize(&y_qp);
    let layers = [Layer::Dense(l1), Layer::Dense(l2), Layer::Softmax(l3)];
    let config = ModelConfig {
        name: "mlp".into(),
        input: TensorSpec::of(&sample),
        layers: layers
            .into_iter()
            .map(|layer| LayerConfig { layer, inputs: None })
            .collect(),
    };
    Mlp {
        config,
        weights: vec![w1, w2, w3],
        sample,
    }
}

fn sha256_all(weights: &[Vec<u8>]) -> HexBinary {
    let mut h = Sha256::new();
    weights.iter().for_each(|w| h.update(w));
    HexBinary::from(h.finalize().to_vec())
}

struct Env {
    app: App,
    owner: Addr,
    model: Addr,
}

fn deploy(m: &Mlp, hash: HexBinary, budget: Option<WorkBudget>) -> Env {
    let mut app = App::default();
    let owner = app.api().addr_make("owner");
    let code = app.store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
    let msg = InstantiateMsg {
        model: m.config.clone(),
        weights_sha256: hash,
        query_budget: budget,
        owner: None,
    };
    let model = app
        .instantiate_contract(code, owner.clone(), &msg, &[], "mlp", None)
        .unwrap();
    Env { app, owner, model }
}

impl Env {
    fn exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> Result<(), ContractError> {
        self.app
            .execute_contract(sender.clone(), self.model.clone(), &msg, &[])
            .map(|_| ())
            .map_err(|e| e.downcast().unwrap())
    }
    fn upload(&mut self, layer: u32, offset: u64, data: &[u8]) -> Result<(), ContractError> {
        let owner = self.owner.clone();
        self.exec(
            &owner,
            ExecuteMsg::UploadWeights {
                layer,
                offset,
                data: Binary::from(data),
            },
        )
    }
    fn upload_all(&mut self, weights: &[Vec<u8>]) {
        for (l, w) in weights.iter().enumerate() {
            for (k, chunk) in w.chunks(CHUNK_BYTES as usize).enumerate() {
                self.upload(l as u32, k as u64 * CHUNK_BYTES, chunk).unwrap();
            }
        }
    }
    fn info(&self) -> ModelInfoResponse {
        self.app
            .wrap()
            .query_wasm_smart(&self.model, &QueryMsg::ModelInfo {})
            .unwrap()
    }
    fn predict(&self, input: Vec<i32>) -> Result<PredictResponse, String> {
        self.app
            .wrap()
            .query_wasm_smart(&self.model, &QueryMsg::Predict { input })
            .map_err(|e| e.to_string())
    }
    /// Asserts a refused message left every storage key as it was.
    fn refused(&mut self, sender: &Addr, msg: ExecuteMsg) -> ContractError {
        let before = self.app.dump_wasm_raw(&self.model);
        let err = self.exec(sender, msg).unwrap_err();
        assert_eq!(
            self.app.dump_wasm_raw(&self.model),
            before,
            "state changed by a refused message: {err}"
        );
        err
    }
}

fn native(m: &Mlp) -> Vec<i32> {
    let mut x = m.sample.clone();
    for (lc, w) in m.config.layers.iter().zip(&m.weights) {
        x = lc.layer.run(&[&x], w).unwrap();
    }
    (0..x.len()).map(|i| x.data.get(i).unwrap()).collect()
}

fn sample_values(m: &Mlp) -> Vec<i32> {
    (0..m.sample.len()).map(|i| m.sample.data.get(i).unwrap()).collect()
}

#[test]
fn upload_finalize_predict_matches_native() {
    let m = mlp(784, 200, 10);
    let mut env = deploy(&m, sha256_all(&m.weights), None);
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
    assert!(env.predict(sample_values(&m)).unwrap_err().contains("not finalized"));

    env.upload_all(&m.weights);
    assert!(env.info().layers.iter().all(|l| l.uploaded_bytes == l.weight_bytes));
    let owner = env.owner.clone();
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert!(env.info().finalized);

    let out = env.predict(sample_values(&m)).unwrap();
    assert_eq!(out.data, native(&m), "on-chain output differs from the native layers");
    assert_eq!(out.output.shape, vec![10]);
}

#[test]
fn bad_uploads_are_refused_without_state_change() {
    let m = mlp(784, 200, 10);
    let mut env = deploy(&m, sha256_all(&m.weights), None);
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
    let mut env = deploy(&m, HexBinary::from(vec![0u8; 32]), None);
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
            query_budget: None,
            owner: None,
        };
        app.instantiate_contract(code, owner.clone(), &msg, &[], "bad", None)
            .unwrap_err()
            .downcast()
            .unwrap()
    };
    let mut swapped = m.config.clone();
    swapped.layers.swap(0, 1);
    assert!(matches!(
        try_config(&mut app, swapped, sha256_all(&m.weights)),
        ContractError::Layer { index: 0, .. }
    ));
    let mut forward_ref = m.config.clone();
    forward_ref.layers[1].inputs = Some(vec![3]);
    assert_eq!(
        try_config(&mut app, forward_ref, sha256_all(&m.weights)),
        ContractError::LayerInput { index: 1, input: 3 }
    );
    let mut empty = m.config.clone();
    empty.layers.clear();
    assert!(matches!(
        try_config(&mut app, empty, sha256_all(&m.weights)),
        ContractError::InvalidConfig(_)
    ));
    assert_eq!(
        try_config(&mut app, m.config.clone(), HexBinary::from(vec![1u8; 31])),
        ContractError::HashLength(31)
    );
}

#[test]
fn predict_checks_input_and_budget() {
    let m = mlp(16, 8, 4);
    let mut env = deploy(
        &m,
        sha256_all(&m.weights),
        Some(WorkBudget {
            max_macs: 100,
            max_weight_bytes: 1 << 20,
        }),
    );
    env.upload_all(&m.weights);
    let owner = env.owner.clone();
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    let err = env.predict(sample_values(&m)).unwrap_err();
    assert!(err.contains("query budget exceeded"), "{err}");

    let mut env = deploy(&m, sha256_all(&m.weights), None);
    env.upload_all(&m.weights);
    env.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    assert!(env.predict(vec![0; 15]).unwrap_err().contains("length differs"));
    let mut v = sample_values(&m);
    v[0] = 300;
    assert!(env.predict(v).unwrap_err().contains("outside the input's integer type"));
    assert_eq!(env.predict(sample_values(&m)).unwrap().data, native(&m));
}

#[test]
fn only_the_owner_transfers_ownership() {
    let m = mlp(16, 8, 4);
    let mut env = deploy(&m, sha256_all(&m.weights), None);
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
