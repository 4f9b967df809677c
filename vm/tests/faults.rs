//! Faults on the real VM (the model contract's Wasm in cosmwasm-vm): a call that runs out of
//! gas part-way leaves storage exactly as before, as wasmd drops a failed transaction's
//! writes, and the same call then succeeds with enough gas, to the same result. Also the
//! 32-bit edge of layer sizes, which only the Wasm build has (attack 10).

use cosmwasm_std::{coin, to_json_binary, Addr, Coin, ContractInfoResponse, ContractResult, SystemResult};
use cwnn_layers::{Embedding, Layer, TensorSpec};
use cwnn_model_contract::msg::weights_sha256;
use cwnn_model_contract::msg::{
    ExecuteMsg, InstantiateMsg, LayerConfig, ModelConfig, TrainExample, TrainPolicy, WorkBudget,
};
use cwnn_model_contract::testing::{mlp, TestModel, DENOM};
use cwnn_tensor::{DType, QuantParams};
use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::chain::GAS_MULTIPLIER;
use cwnn_vm::runner::{ChainVm, CALL_GAS_LIMIT};

/// A trainable model's VM that answers `ContractInfo` for any contract with code 7 and no
/// admin (an accepted collection, for `MintNft`).
fn model_vm(m: &TestModel) -> ChainVm {
    let mut vm = ChainVm::new(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
    vm.answer_wasm_queries(|_| {
        let info = ContractInfoResponse::new(7, Addr::unchecked("c"), None, false, None);
        SystemResult::Ok(ContractResult::Ok(to_json_binary(&info).unwrap()))
    });
    let owner = vm.addr("owner");
    let rules = cwnn_model_contract::testing::rules(TrainPolicy::Anyone { fee: None });
    let msg = InstantiateMsg {
        fee: Some(coin(100, DENOM)),
        collection_code_ids: Some(vec![7]),
        ..m.trainable_msg(rules)
    };
    vm.instantiate(&owner, &msg, &[]).unwrap().result.unwrap();
    vm
}

/// Every execute message that writes, in an order in which each succeeds.
fn scenario(m: &TestModel, vm: &ChainVm) -> Vec<(String, ExecuteMsg, Vec<Coin>)> {
    let (owner, alice) = (vm.addr("owner"), vm.addr("alice"));
    let fee = vec![coin(100, DENOM)];
    let small = WorkBudget {
        max_work: 6_000,
        max_weight_bytes: 1 << 20,
        max_segments: 2,
    };
    let mut steps: Vec<(String, ExecuteMsg, Vec<Coin>)> = ExecuteMsg::uploads(&m.weights)
        .into_iter()
        .map(|u| (owner.clone(), u, vec![]))
        .collect();
    let last = steps.last().unwrap().1.clone();
    let o = |msg: ExecuteMsg| (owner.clone(), msg, vec![]);
    steps.extend([
        o(ExecuteMsg::RewindUpload { layer: 2, offset: 0 }),
        o(last),
        o(ExecuteMsg::Finalize {}),
        o(ExecuteMsg::SetBudgets {
            query_budget: WorkBudget::default_query(),
            execute_budget: small,
        }),
        o(ExecuteMsg::SetFreeQueries { free_queries: true }),
        (
            alice.clone(),
            ExecuteMsg::Evaluate {
                input: m.sample_values(),
                input_bytes: None,
                steps: Some(1),
            },
            fee.clone(),
        ),
        o(ExecuteMsg::SetPaused { paused: true }),
        (
            alice.clone(),
            ExecuteMsg::Continue {
                job_id: 1,
                steps: Some(1),
            },
            vec![],
        ),
        (alice.clone(), ExecuteMsg::Continue { job_id: 1, steps: None }, vec![]),
        o(ExecuteMsg::SetPaused { paused: false }),
        o(ExecuteMsg::SetBudgets {
            query_budget: WorkBudget::default_query(),
            execute_budget: WorkBudget::default_execute(),
        }),
        (
            alice.clone(),
            ExecuteMsg::Predict {
                input: m.sample_values(),
                input_bytes: None,
            },
            fee.clone(),
        ),
        o(ExecuteMsg::Train {
            examples: vec![TrainExample {
                input: m.sample_values(),
                input_bytes: None,
                label: 2,
            }],
        }),
        (
            alice.clone(),
            ExecuteMsg::Reinforce {
                job_id: 1,
                reward: -256,
                input: m.sample_values(),
                input_bytes: None,
            },
            vec![],
        ),
        o(ExecuteMsg::SetTraining {
            rules: cwnn_model_contract::testing::rules(TrainPolicy::Owner {}),
        }),
        (alice.clone(), ExecuteMsg::CancelJob { job_id: 1 }, vec![]),
        o(ExecuteMsg::SetFee {
            fee: Some(coin(5, DENOM)),
        }),
        o(ExecuteMsg::Withdraw { denom: None }),
        o(ExecuteMsg::TransferOwnership {
            new_owner: alice.clone(),
        }),
    ]);
    steps.push((
        alice.clone(),
        ExecuteMsg::MintNft {
            collection: vm.addr("collection"),
            token_uri: None,
            claimed_accuracy_bps: None,
        },
        vec![],
    ));
    steps
}

fn kind(msg: &ExecuteMsg) -> String {
    let json = serde_json::to_value(msg).unwrap();
    json.as_object().unwrap().keys().next().unwrap().clone()
}

/// Runs every writing message twice over: on one VM with ample gas (the reference), and on a
/// second VM first with half the gas it needs (out of gas: storage unchanged), then with ample
/// gas (the reference's result and storage).
#[test]
fn a_call_that_runs_out_of_gas_changes_nothing_and_can_be_retried() {
    let m = mlp(16, 8, 4);
    let (mut reference, mut vm) = (model_vm(&m), model_vm(&m));
    let steps = scenario(&m, &vm);
    let mut kinds: Vec<String> = steps.iter().map(|(_, msg, _)| kind(msg)).collect();
    for (sender, msg, funds) in &steps {
        let want = reference.execute(sender, msg, funds).unwrap();
        let want_result = want.result.unwrap_or_else(|e| panic!("{}: {e}", kind(msg)));
        let needed = want.gas.vm_gas + want.gas.storage_sdk_gas * GAS_MULTIPLIER;
        let before = vm.storage().data().clone();
        vm.set_gas_limit(needed / 2);
        let short = vm.execute(sender, msg, funds).unwrap();
        let err = short.result.unwrap_err();
        assert!(
            err.contains("Ran out of gas") || err.to_lowercase().contains("gas"),
            "{}: {err}",
            kind(msg)
        );
        assert_eq!(
            vm.storage().data(),
            &before,
            "{}: a failed call kept its writes",
            kind(msg)
        );
        vm.set_gas_limit(CALL_GAS_LIMIT);
        let again = vm.execute(sender, msg, funds).unwrap();
        assert_eq!(again.result.unwrap(), want_result, "{}", kind(msg));
        assert_eq!(vm.storage().data(), reference.storage().data(), "{}", kind(msg));
    }
    kinds.sort();
    kinds.dedup();
    let writing = [
        "cancel_job",
        "continue",
        "evaluate",
        "finalize",
        "mint_nft",
        "predict",
        "reinforce",
        "rewind_upload",
        "set_budgets",
        "set_fee",
        "set_free_queries",
        "set_paused",
        "set_training",
        "train",
        "transfer_ownership",
        "upload_weights",
        "withdraw",
    ];
    assert_eq!(kinds, writing);
}

/// A job cut by an out-of-gas call mid-layer continues with more gas to the same output as
/// the native layers.
#[test]
fn a_job_cut_mid_layer_by_gas_finishes_to_the_native_output() {
    let m = mlp(64, 32, 10);
    let mut vm = model_vm(&m);
    let owner = vm.addr("owner");
    for up in ExecuteMsg::uploads(&m.weights) {
        vm.execute(&owner, &up, &[]).unwrap().result.unwrap();
    }
    vm.execute(&owner, &ExecuteMsg::Finalize {}, &[])
        .unwrap()
        .result
        .unwrap();
    let alice = vm.addr("alice");
    let evaluate = ExecuteMsg::Evaluate {
        input: m.sample_values(),
        input_bytes: None,
        steps: None,
    };
    let fee = [coin(100, DENOM)];
    vm.set_gas_limit(30_000 * GAS_MULTIPLIER);
    let short = vm.execute(&alice, &evaluate, &fee).unwrap();
    assert!(short.result.is_err());
    assert!(
        short.markers.iter().any(|mk| mk.label.starts_with("cwnn:layer:")),
        "the call ran out before any layer: {:?}",
        short.markers
    );
    vm.set_gas_limit(CALL_GAS_LIMIT);
    let done = vm.execute(&alice, &evaluate, &fee).unwrap().result.unwrap();
    let data: cwnn_model_contract::msg::EvaluateResponse = cosmwasm_std::from_json(done.data.unwrap()).unwrap();
    assert_eq!(data.output.unwrap().data, m.native());
}

/// Attack 10: vocab = dim = 65,536 makes 2^32 weight bytes, 0 in a 32-bit `usize` without
/// overflow checks. The Wasm build refuses the model with a named error.
#[test]
fn sizes_that_overflow_32_bits_are_refused_in_the_wasm_build() {
    let mut vm = ChainVm::new(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
    let qp = QuantParams::asymmetric(-1.0, 1.0, DType::I8).unwrap();
    let config = ModelConfig {
        name: "huge".into(),
        input: TensorSpec::new(vec![1], DType::I32, QuantParams::symmetric(1.0, DType::I32).unwrap()),
        layers: vec![LayerConfig {
            layer: Layer::Embedding(Embedding {
                vocab: 65_536,
                dim: 65_536,
                output: qp,
                weights: cwnn_layers::WeightFormat::Native,
            }),
            inputs: None,
        }],
    };
    let msg = InstantiateMsg::new(config, weights_sha256(&[vec![]]));
    let owner = vm.addr("owner");
    let err = vm.instantiate(&owner, &msg, &[]).unwrap().result.unwrap_err();
    assert!(err.contains("overflow"), "{err}");
}
