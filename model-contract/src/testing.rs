//! Test models and a cw-multi-test harness (feature `testing`): the contract's own tests and
//! contracts that call it (examples/digit-oracle) deploy models with these.

use crate::contract::{execute, instantiate, query};
use crate::msg::*;
use crate::state::CHUNK_BYTES;
use crate::ContractError;
use cosmwasm_std::{Addr, Binary, Coin, HexBinary};
use cw_multi_test::{App, AppResponse, ContractWrapper, Executor};
use cwnn_layers::testing::{quantize_input, quantize_input_as};
use cwnn_layers::{
    AddF64, CellF64, Conv2dF64, DenseF64, Layer, MatMulF64, MaxPool2d, QuantSpec, Quantize, RecurrentF64, Reshape,
    SoftmaxF64, TensorSpec, WeightFormat, Window2d, HIDDEN_QUANT, HIDDEN_QUANT_I16,
};
use cwnn_tensor::{DType, QTensor, QuantParams};
use ndarray::{Array1, Array2, Array4, ArrayD};

/// The denom fees are paid in.
pub const DENOM: &str = "ucosm";

/// A quantized model, its weights per layer and a sample input.
pub struct TestModel {
    pub config: ModelConfig,
    pub weights: Vec<Vec<u8>>,
    pub sample: QTensor,
}

/// Deterministic values in ±0.3 for weights.
fn values(seed: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104729) % 2001) as f64 / 1000.0 - 1.0) * 0.3)
        .collect()
}

fn dense_f64(seed: usize, n_out: usize, n_in: usize, relu: bool) -> DenseF64 {
    DenseF64 {
        w: Array2::from_shape_vec((n_out, n_in), values(seed, n_out * n_in)).unwrap(),
        b: Array1::from(values(seed + 1, n_out)),
        clamp: relu.then_some((0.0, f64::INFINITY)),
    }
}

fn sequential(name: &str, sample: &QTensor, layers: Vec<Layer>) -> ModelConfig {
    ModelConfig {
        name: name.into(),
        input: TensorSpec::of(sample),
        layers: layers
            .into_iter()
            .map(|layer| LayerConfig { layer, inputs: None })
            .collect(),
    }
}

/// An MLP `in → hidden (ReLU) → out → softmax`.
pub fn mlp(n_in: usize, hidden: usize, n_out: usize) -> TestModel {
    let x = ArrayD::from_shape_vec(vec![n_in], values(5, n_in).iter().map(|v| v * 3.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input(&x);
    let h_qp = QuantParams::asymmetric(0.0, 8.0, DType::I8).unwrap();
    let y_qp = QuantParams::asymmetric(-8.0, 8.0, DType::I8).unwrap();
    let (l1, w1) = dense_f64(1, hidden, n_in, true)
        .quantize(&QuantSpec::int8(x_qp, h_qp))
        .unwrap();
    let (l2, w2) = dense_f64(3, n_out, hidden, false)
        .quantize(&QuantSpec::int8(h_qp, y_qp))
        .unwrap();
    let (l3, w3) = SoftmaxF64::default().quantize(&QuantSpec::int8(y_qp, y_qp)).unwrap();
    TestModel {
        config: sequential(
            "mlp",
            &sample,
            vec![Layer::Dense(l1), Layer::Dense(l2), Layer::Softmax(l3)],
        ),
        weights: vec![w1, w2, w3],
        sample,
    }
}

/// One int8 Dense layer `n_in → n_out` (no activation).
pub fn dense_only(n_in: usize, n_out: usize) -> TestModel {
    dense_only_as(n_in, n_out, DType::I8)
}

/// [`dense_only`] in `dtype` (int16).
pub fn dense_only_as(n_in: usize, n_out: usize, dtype: DType) -> TestModel {
    dense_only_with(n_in, n_out, dtype, WeightFormat::Native)
}

/// [`dense_only`] with int4 weights.
pub fn dense_only_int4(n_in: usize, n_out: usize) -> TestModel {
    dense_only_with(n_in, n_out, DType::I8, WeightFormat::Int4)
}

fn dense_only_with(n_in: usize, n_out: usize, dtype: DType, weights: WeightFormat) -> TestModel {
    let x = ArrayD::from_shape_vec(vec![n_in], values(5, n_in).iter().map(|v| v * 3.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input_as(&x, dtype);
    let y_qp = QuantParams::asymmetric(-8.0, 8.0, dtype).unwrap();
    let (l, w) = dense_f64(1, n_out, n_in, false)
        .quantize(&QuantSpec::new(x_qp, y_qp, dtype).with_weights(weights))
        .unwrap();
    TestModel {
        config: sequential("dense", &sample, vec![Layer::Dense(l)]),
        weights: vec![w],
        sample,
    }
}

/// One int8 Conv2D layer, `c_in → c_out` channels, `k × k` kernel, "same" padding, over a
/// `c_in × hw × hw` input.
pub fn conv_only(c_in: usize, c_out: usize, k: usize, hw: usize) -> TestModel {
    conv_only_as(c_in, c_out, k, hw, DType::I8)
}

/// [`conv_only`] in `dtype` (int16).
pub fn conv_only_as(c_in: usize, c_out: usize, k: usize, hw: usize, dtype: DType) -> TestModel {
    conv_only_with(c_in, c_out, k, hw, (dtype, WeightFormat::Native))
}

/// [`conv_only`] with int4 weights.
pub fn conv_only_int4(c_in: usize, c_out: usize, k: usize, hw: usize) -> TestModel {
    conv_only_with(c_in, c_out, k, hw, (DType::I8, WeightFormat::Int4))
}

fn conv_only_with(
    c_in: usize,
    c_out: usize,
    k: usize,
    hw: usize,
    (dtype, weights): (DType, WeightFormat),
) -> TestModel {
    let x = ArrayD::from_shape_vec(
        vec![c_in, hw, hw],
        values(9, c_in * hw * hw).iter().map(|v| v * 3.0).collect(),
    )
    .unwrap();
    let (sample, x_qp) = quantize_input_as(&x, dtype);
    let y_qp = QuantParams::asymmetric(-8.0, 8.0, dtype).unwrap();
    let p = k / 2;
    let conv = Conv2dF64 {
        w: Array4::from_shape_vec((c_out, c_in, k, k), values(3, c_out * c_in * k * k)).unwrap(),
        b: Array1::from(values(4, c_out)),
        strides: [1, 1],
        dilations: [1, 1],
        pads: [p, p, p, p],
        groups: 1,
        clamp: None,
    };
    let (l, w) = conv
        .quantize(&QuantSpec::new(x_qp, y_qp, dtype).with_weights(weights))
        .unwrap();
    TestModel {
        config: sequential("conv", &sample, vec![Layer::Conv2d(l)]),
        weights: vec![w],
        sample,
    }
}

/// LeNet-5's shape on one 28×28 image: Conv 6@5×5 (pad 2), ReLU, max-pool 2, Conv 16@5×5,
/// ReLU, max-pool 2, Dense 400→120→84→10 (ReLU between), softmax; 61,706 parameters with
/// deterministic values, Dense and Conv weights stored as `weights`. Gas depends on the
/// shapes and the bytes, not the values, so this costs what a trained LeNet does.
pub fn lenet(weights: WeightFormat) -> TestModel {
    let x = ArrayD::from_shape_vec(vec![1, 28, 28], values(31, 784).iter().map(|v| v.abs() * 3.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input(&x);
    let a_qp = QuantParams::asymmetric(0.0, 4.0, DType::I8).unwrap();
    let y_qp = QuantParams::asymmetric(-8.0, 8.0, DType::I8).unwrap();
    let q = |input, output| QuantSpec::int8(input, output).with_weights(weights);
    let conv = |seed, c_out, c_in, pad| Conv2dF64 {
        w: Array4::from_shape_vec((c_out, c_in, 5, 5), values(seed, c_out * c_in * 25)).unwrap(),
        b: Array1::from(values(seed + 1, c_out)),
        strides: [1, 1],
        dilations: [1, 1],
        pads: [pad; 4],
        groups: 1,
        clamp: Some((0.0, f64::INFINITY)),
    };
    let pool = || {
        Layer::MaxPool2d(MaxPool2d {
            window: Window2d {
                kernel: [2, 2],
                strides: [2, 2],
                dilations: [1, 1],
                pads: [0; 4],
            },
        })
    };
    let (c1, w1) = conv(41, 6, 1, 2).quantize(&q(x_qp, a_qp)).unwrap();
    let (c2, w2) = conv(43, 16, 6, 0).quantize(&q(a_qp, a_qp)).unwrap();
    let (d1, v1) = dense_f64(45, 120, 400, true).quantize(&q(a_qp, a_qp)).unwrap();
    let (d2, v2) = dense_f64(47, 84, 120, true).quantize(&q(a_qp, a_qp)).unwrap();
    let (d3, v3) = dense_f64(49, 10, 84, false).quantize(&q(a_qp, y_qp)).unwrap();
    let (sm, ws) = SoftmaxF64::default().quantize(&QuantSpec::int8(y_qp, y_qp)).unwrap();
    let layers = vec![
        Layer::Conv2d(c1),
        pool(),
        Layer::Conv2d(c2),
        pool(),
        Layer::Reshape(Reshape { shape: vec![400] }),
        Layer::Dense(d1),
        Layer::Dense(d2),
        Layer::Dense(d3),
        Layer::Softmax(sm),
    ];
    TestModel {
        config: sequential("lenet", &sample, layers),
        weights: vec![w1, vec![], w2, vec![], vec![], v1, v2, v3, ws],
        sample,
    }
}

/// Not a chain: `x [6, 4]` → LSTM (sequence of 8) → Dense 8→16 per step, plus a skip branch
/// Dense 4→16 on `x`, summed by Add. Jobs must keep `x` for the skip branch and carry the
/// LSTM's state between segments.
pub fn skip_lstm() -> TestModel {
    skip_lstm_as(DType::I8)
}

/// [`skip_lstm`] in `dtype` (int16: `int16` precision, `h` at Q15).
pub fn skip_lstm_as(dtype: DType) -> TestModel {
    let (t, n_in, hidden, n_out) = (6, 4, 8, 16);
    let x = ArrayD::from_shape_vec(vec![t, n_in], values(7, t * n_in).iter().map(|v| v * 5.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input_as(&x, dtype);
    let lstm = RecurrentF64 {
        cell: CellF64::Lstm,
        w: Array2::from_shape_vec((4 * hidden, n_in), values(11, 4 * hidden * n_in)).unwrap(),
        r: Array2::from_shape_vec((4 * hidden, hidden), values(12, 4 * hidden * hidden)).unwrap(),
        bw: Array1::from(values(13, 4 * hidden)),
        br: Array1::from(values(14, 4 * hidden)),
        peepholes: None,
        h0: None,
        c0: None,
        reverse: false,
        sequence_output: true,
    };
    let (l0, w0) = lstm.quantize(&QuantSpec::new(x_qp, x_qp, dtype)).unwrap();
    let h_qp = if dtype == DType::I16 {
        HIDDEN_QUANT_I16
    } else {
        HIDDEN_QUANT
    };
    let y_qp = QuantParams::asymmetric(-4.0, 4.0, dtype).unwrap();
    let z_qp = QuantParams::asymmetric(-8.0, 8.0, dtype).unwrap();
    let (l1, w1) = dense_f64(21, n_out, hidden, false)
        .quantize(&QuantSpec::new(h_qp, y_qp, dtype))
        .unwrap();
    let (l2, w2) = dense_f64(23, n_out, n_in, false)
        .quantize(&QuantSpec::new(x_qp, y_qp, dtype))
        .unwrap();
    let (l3, w3) = AddF64::default()
        .quantize(&QuantSpec::new(y_qp, z_qp, dtype).with_second(Some(y_qp)))
        .unwrap();
    let layers = [
        (l0, None),
        (Layer::Dense(l1), None),
        (Layer::Dense(l2), Some(vec![0])),
        (Layer::Add(l3), Some(vec![2, 3])),
    ];
    TestModel {
        config: ModelConfig {
            name: "skip-lstm".into(),
            input: TensorSpec::of(&sample),
            layers: layers
                .into_iter()
                .map(|(layer, inputs)| LayerConfig { layer, inputs })
                .collect(),
        },
        weights: vec![w0, w1, w2, w3],
        sample,
    }
}

/// Attention scores without the projections: `x·xᵀ` per head of an input of `heads × tokens ×
/// dim` (one MatMul of the input with itself, the second operand transposed), in `dtype`.
pub fn self_product_as(heads: usize, tokens: usize, dim: usize, dtype: DType) -> TestModel {
    let n = heads * tokens * dim;
    let x = ArrayD::from_shape_vec(vec![heads, tokens, dim], values(9, n).iter().map(|v| v * 4.0).collect()).unwrap();
    let (sample, x_qp) = quantize_input_as(&x, dtype);
    let f = MatMulF64::new(false, true);
    let y = f.forward(&x, &x);
    let hi = y.iter().fold(0f64, |a, v| a.max(v.abs()));
    let y_qp = QuantParams::asymmetric(-hi, hi, dtype).unwrap();
    let (l, w) = f
        .quantize(&QuantSpec::new(x_qp, y_qp, dtype).with_second(Some(x_qp)))
        .unwrap();
    TestModel {
        config: ModelConfig {
            name: "self-product".into(),
            input: TensorSpec::of(&sample),
            layers: vec![LayerConfig {
                layer: Layer::MatMul(l),
                inputs: Some(vec![0, 0]),
            }],
        },
        weights: vec![w],
        sample,
    }
}

impl TestModel {
    pub fn sha256(&self) -> HexBinary {
        weights_sha256(&self.weights)
    }

    pub fn sample_values(&self) -> Vec<i32> {
        self.sample.data.to_i32s()
    }

    /// The model run natively through the layers crate.
    pub fn native(&self) -> Vec<i32> {
        let tensors = self.config.run_all(&self.weights, self.sample.clone()).unwrap();
        tensors.last().unwrap().data.to_i32s()
    }

    /// An instantiate message with every option at its default.
    pub fn instantiate_msg(&self) -> InstantiateMsg {
        InstantiateMsg::new(self.config.clone(), self.sha256())
    }

    /// An instantiate message that makes the model's head trainable under `rules`.
    #[cfg(feature = "train")]
    pub fn trainable_msg(&self, rules: TrainingRules) -> InstantiateMsg {
        self.trainable_msg_with(rules, 1)
    }

    /// [`TestModel::trainable_msg`] with `layers` trained layers (2: the head and the Dense
    /// before it).
    #[cfg(feature = "train")]
    pub fn trainable_msg_with(&self, rules: TrainingRules, layers: usize) -> InstantiateMsg {
        let head = cwnn_layers::train::model_head(&self.config, &self.weights, layers).unwrap();
        InstantiateMsg {
            training: Some(Training { head, rules }),
            ..self.instantiate_msg()
        }
    }
}

/// Training rules: learning rate 1/2, batches of up to 8, no caps, not frozen.
pub fn rules(policy: TrainPolicy) -> TrainingRules {
    TrainingRules {
        lr: cwnn_tensor::Dyadic::new(1 << 30, 31).unwrap(),
        max_batch: 8,
        policy,
        max_per_block: None,
        max_per_address: None,
        frozen: false,
        max_reward: None,
    }
}

pub struct Env {
    pub app: App,
    pub owner: Addr,
    pub model: Addr,
}

/// An app in which "alice" holds `funds` (for fees).
pub fn app_with(funds: &[Coin]) -> App {
    let alice_funds = funds.to_vec();
    App::new(|router, api, storage| {
        if !alice_funds.is_empty() {
            router
                .bank
                .init_balance(storage, &api.addr_make("alice"), alice_funds)
                .unwrap();
        }
    })
}

/// Deploys `msg` from "owner"; `funds` are given to "alice" for fees.
pub fn deploy(msg: &InstantiateMsg, funds: &[Coin]) -> Env {
    let mut app = app_with(funds);
    let owner = app.api().addr_make("owner");
    let model = instantiate_in(&mut app, &owner, msg).unwrap();
    Env { app, owner, model }
}

/// Stores the contract's code in `app`; gives its code id.
pub fn store_model_code(app: &mut App) -> u64 {
    app.store_code(Box::new(ContractWrapper::new(execute, instantiate, query)))
}

/// Instantiates model code `code` from `sender`, with `admin` as its wasmd admin.
pub fn instantiate_code(
    app: &mut App,
    code: u64,
    sender: &Addr,
    msg: &InstantiateMsg,
    admin: Option<String>,
) -> Result<Addr, ContractError> {
    app.instantiate_contract(code, sender.clone(), msg, &[], "model", admin)
        .map_err(|e| e.downcast().unwrap())
}

/// Stores the contract's code in `app` and instantiates it from `sender` (no wasmd admin).
pub fn instantiate_in(app: &mut App, sender: &Addr, msg: &InstantiateMsg) -> Result<Addr, ContractError> {
    let code = store_model_code(app);
    instantiate_code(app, code, sender, msg, None)
}

/// Deploys, uploads and finalizes.
pub fn ready(m: &TestModel, msg: &InstantiateMsg, funds: &[Coin]) -> Env {
    let mut env = deploy(msg, funds);
    env.finalize_with(&m.weights);
    env
}

impl Env {
    pub fn addr(&self, name: &str) -> Addr {
        self.app.api().addr_make(name)
    }
    pub fn exec_with(&mut self, sender: &Addr, msg: ExecuteMsg, funds: &[Coin]) -> Result<AppResponse, ContractError> {
        self.app
            .execute_contract(sender.clone(), self.model.clone(), &msg, funds)
            .map_err(|e| e.downcast().unwrap())
    }
    pub fn exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> Result<AppResponse, ContractError> {
        self.exec_with(sender, msg, &[])
    }
    pub fn upload(&mut self, layer: u32, offset: u64, data: &[u8]) -> Result<AppResponse, ContractError> {
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
    /// Uploads `weights` and finalizes (as the owner).
    pub fn finalize_with(&mut self, weights: &[Vec<u8>]) {
        self.upload_all(weights);
        let owner = self.owner.clone();
        self.exec(&owner, ExecuteMsg::Finalize {}).unwrap();
    }
    pub fn upload_all(&mut self, weights: &[Vec<u8>]) {
        for (l, w) in weights.iter().enumerate() {
            for (k, chunk) in w.chunks(CHUNK_BYTES as usize).enumerate() {
                self.upload(l as u32, k as u64 * CHUNK_BYTES, chunk).unwrap();
            }
        }
    }
    pub fn info(&self) -> ModelInfoResponse {
        self.app
            .wrap()
            .query_wasm_smart(&self.model, &QueryMsg::ModelInfo {})
            .unwrap()
    }
    pub fn predict(&self, input: Vec<i32>) -> Result<PredictResponse, String> {
        self.predict_with(input, None)
    }
    /// The `Predict` query with the input as values, as `input_bytes` (little-endian bytes at
    /// its width), or both (refused).
    pub fn predict_with(&self, input: Vec<i32>, bytes: Option<&[u8]>) -> Result<PredictResponse, String> {
        let msg = QueryMsg::Predict {
            input,
            input_bytes: bytes.map(Binary::from),
        };
        self.app
            .wrap()
            .query_wasm_smart(&self.model, &msg)
            .map_err(|e| e.to_string())
    }
    pub fn job(&self, id: u64) -> Result<JobResponse, String> {
        self.app
            .wrap()
            .query_wasm_smart(&self.model, &QueryMsg::Job { id })
            .map_err(|e| e.to_string())
    }
    pub fn balance(&self, who: &Addr) -> u128 {
        self.app.wrap().query_balance(who, DENOM).unwrap().amount.u128()
    }
    /// Raw storage keys of the model contract that start with `namespace` (cw-storage-plus
    /// prefixes a map's keys with its 2-byte length and name).
    pub fn keys_in(&self, namespace: &str) -> usize {
        let mut prefix = (namespace.len() as u16).to_be_bytes().to_vec();
        prefix.extend(namespace.as_bytes());
        self.app
            .dump_wasm_raw(&self.model)
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .count()
    }
    /// Asserts a refused message left every storage key (and the sender's balance) as it was.
    pub fn refused_with(&mut self, sender: &Addr, msg: ExecuteMsg, funds: &[Coin]) -> ContractError {
        let before = self.app.dump_wasm_raw(&self.model);
        let balance = self.app.wrap().query_balance(sender, DENOM).unwrap();
        let err = self.exec_with(sender, msg, funds).unwrap_err();
        assert_eq!(
            self.app.dump_wasm_raw(&self.model),
            before,
            "state changed by a refused message: {err}"
        );
        assert_eq!(self.app.wrap().query_balance(sender, DENOM).unwrap(), balance);
        err
    }
    pub fn refused(&mut self, sender: &Addr, msg: ExecuteMsg) -> ContractError {
        self.refused_with(sender, msg, &[])
    }
}

/// The `EvaluateResponse` a call put in its data.
pub fn evaluate_data(res: &AppResponse) -> EvaluateResponse {
    cosmwasm_std::from_json(res.data.as_ref().expect("evaluate sets data")).unwrap()
}
