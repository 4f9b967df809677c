//! Gas on the real VM: the model contract's Wasm in cosmwasm-vm with the chain's storage
//! billing. Gas counts are deterministic, so the bounds here are exact checks, not timings.

use cosmwasm_std::{from_json, Addr, Binary};
use cwnn_layers::WeightFormat;
use cwnn_model_contract::msg::{ExecuteMsg, InstantiateMsg, PredictResponse, QueryMsg, WorkBudget};
use cwnn_model_contract::state::CHUNK_BYTES;
use cwnn_model_contract::testing::{
    conv_only, conv_only_as, conv_only_int4, dense_only, dense_only_as, dense_only_int4, lenet, mlp, self_product_as,
    skip_lstm_as, TestModel,
};
use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::chain::{ChainStorage, GasRecord, GAS_MULTIPLIER, INSTANCE_COST, READ_COST_FLAT, READ_COST_PER_BYTE};
use cwnn_vm::runner::{Call, ChainVm, Marker};

fn unlimited() -> WorkBudget {
    WorkBudget {
        max_work: u64::MAX,
        max_weight_bytes: u64::MAX,
        max_segments: u32::MAX,
    }
}

/// Deploys `m` with no budget limits, uploads its weights and finalizes.
fn deploy(m: &TestModel) -> ChainVm {
    deploy_with(m, None)
}

/// [`deploy`], accepting collections of `collection_code_ids`.
fn deploy_with(m: &TestModel, collection_code_ids: Option<Vec<u64>>) -> ChainVm {
    let mut vm = ChainVm::new(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
    let owner = vm.addr("owner");
    let msg = InstantiateMsg {
        query_budget: Some(unlimited()),
        execute_budget: Some(unlimited()),
        collection_code_ids,
        ..m.instantiate_msg()
    };
    vm.instantiate(&owner, &msg, &[]).unwrap().result.unwrap();
    for (l, w) in m.weights.iter().enumerate() {
        for (k, chunk) in w.chunks(CHUNK_BYTES as usize).enumerate() {
            let up = ExecuteMsg::UploadWeights {
                layer: l as u32,
                offset: k as u64 * CHUNK_BYTES,
                data: Binary::from(chunk),
            };
            vm.execute(&owner, &up, &[]).unwrap().result.unwrap();
        }
    }
    vm.execute(&owner, &ExecuteMsg::Finalize {}, &[])
        .unwrap()
        .result
        .unwrap();
    vm
}

fn predict(vm: &mut ChainVm, m: &TestModel) -> Call<Binary> {
    let call = vm
        .query(&QueryMsg::Predict {
            input: m.sample_values(),
            input_bytes: None,
        })
        .unwrap();
    let out: PredictResponse = from_json(call.result.as_ref().unwrap()).unwrap();
    assert_eq!(out.data, m.native(), "the Wasm contract differs from the native layers");
    call
}

/// VM gas and storage SDK gas of each layer, from the contract's `cwnn:layer:<i>` markers.
fn per_layer(markers: &[Marker]) -> Vec<(u64, u64)> {
    markers
        .windows(2)
        .map(|w| (w[1].vm_gas - w[0].vm_gas, w[1].storage_sdk_gas - w[0].storage_sdk_gas))
        .collect()
}

fn vm_gas_per_mac(m: &TestModel) -> (u64, u64) {
    let mut vm = deploy(m);
    let call = predict(&mut vm, m);
    let layers = per_layer(&call.markers);
    assert_eq!(layers.len(), 1, "{:?}", call.markers);
    let lc = &m.config.layers[0];
    let refs = vec![&m.config.input; lc.inputs.as_ref().map_or(1, |i| i.len())];
    let macs = lc.layer.plan(&refs).unwrap().macs;
    (layers[0].0, macs)
}

#[test]
fn dense_256x256_costs_at_most_900_vm_gas_per_mac() {
    let (gas, macs) = vm_gas_per_mac(&dense_only(256, 256));
    assert_eq!(macs, 65_536);
    eprintln!("dense 256→256: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 900 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
}

#[test]
fn conv_16x16_3x3_costs_at_most_900_vm_gas_per_mac() {
    let (gas, macs) = vm_gas_per_mac(&conv_only(16, 16, 3, 16));
    assert_eq!(macs, 16 * 16 * 9 * 16 * 16);
    eprintln!("conv 16→16 3×3 16×16: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 900 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
}

/// Int4 weights (int8 activations): Dense and Conv within the int8 bound of 900 VM gas per
/// MAC, and a 256→256 Dense in at most 0.52 stored bytes per parameter.
#[test]
fn int4_weights_cost_at_most_900_vm_gas_per_mac_and_half_the_bytes() {
    let m = dense_only_int4(256, 256);
    let (gas, macs) = vm_gas_per_mac(&m);
    eprintln!("int4 dense 256→256: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 900 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
    let bytes = m.weights[0].len();
    assert!(bytes as f64 <= 0.52 * (256.0 * 256.0 + 256.0), "{bytes} bytes");
    eprintln!(
        "storage floor: int4 {}, int8 {} SDK gas",
        storage_floor(&m),
        storage_floor(&dense_only(256, 256))
    );
    let (gas, macs) = vm_gas_per_mac(&conv_only_int4(16, 16, 3, 16));
    eprintln!("int4 conv 16→16 3×3 16×16: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 900 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
}

/// MatMul of two activations (attention's scores `x·xᵀ`, 4 heads × 64 tokens): int8 within
/// Dense's 900 VM gas per MAC with 64-wide heads (measured 776). A 32-wide head spreads each
/// output's set-up and rescale over half the MACs, as it does for a Dense with 32 inputs:
/// measured 953 against Dense's 1,476 at that width, and held at or under Dense's. int16 within
/// Dense's int16 bound.
#[test]
fn matmul_of_activations_costs_at_most_900_vm_gas_per_mac() {
    use cwnn_tensor::DType::{I16, I8};
    let (dense, dense_macs) = vm_gas_per_mac(&dense_only(32, 2048));
    eprintln!("dense 32 → 2048: {dense} VM gas, {} per MAC", dense / dense_macs);
    for (dim, bound) in [(64, 900), (32, dense / dense_macs)] {
        let (gas, macs) = vm_gas_per_mac(&self_product_as(4, 64, dim, I8));
        assert_eq!(macs, 4 * 64 * 64 * dim as u64);
        eprintln!("matmul 4×64×{dim} · 4×{dim}×64: {gas} VM gas, {} per MAC", gas / macs);
        assert!(gas <= bound * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
    }
    let (gas, macs) = vm_gas_per_mac(&self_product_as(4, 64, 32, I16));
    eprintln!("int16 matmul 4×64×32 · 4×32×64: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 3_500 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
}

/// `int16` precision (int16 weights and activations, i64 sums): the Wasm matches the native
/// layers (checked in `predict`) for Dense, Conv and an LSTM graph; measured 3,220 (Dense) and
/// 3,824 (Conv) VM gas per MAC. For Dense that is 0.02 SDK gas per MAC beside 6 SDK gas to
/// read each 2-byte weight.
#[test]
fn high_precision_matches_native_within_its_vm_gas_bounds() {
    let (gas, macs) = vm_gas_per_mac(&dense_only_as(256, 256, cwnn_tensor::DType::I16));
    eprintln!("int16 dense 256→256: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 3_500 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
    let (gas, macs) = vm_gas_per_mac(&conv_only_as(16, 16, 3, 16, cwnn_tensor::DType::I16));
    eprintln!("int16 conv 16→16 3×3 16×16: {gas} VM gas, {} per MAC", gas / macs);
    assert!(gas <= 4_200 * macs, "{} VM gas per MAC", gas as f64 / macs as f64);
    // An LSTM with a skip branch and an Add, in int16: the native bits too.
    let m = skip_lstm_as(cwnn_tensor::DType::I16);
    predict(&mut deploy(&m), &m);
}

/// The storage floor of one inference: every weight chunk read once at its flat cost plus
/// 3 SDK gas per weight byte (keys not even counted).
fn storage_floor(m: &TestModel) -> u64 {
    m.weights
        .iter()
        .flat_map(|w| w.chunks(CHUNK_BYTES as usize))
        .map(|c| READ_COST_FLAT + READ_COST_PER_BYTE * c.len() as u64)
        .sum()
}

/// Issue 18's storage-mode target: LeNet-5 with int4 weights answers a `Predict` within
/// 1.10 × (60,000 + reading its weights once), at about half the int8 model's bytes.
#[test]
fn lenet_with_int4_weights_is_within_10_percent_of_its_storage_floor() {
    for weights in [WeightFormat::Int4, WeightFormat::Native] {
        let m = lenet(weights);
        let call = predict(&mut deploy(&m), &m);
        let (gas, floor) = (call.gas.total_sdk_gas, INSTANCE_COST + storage_floor(&m));
        let bytes: usize = m.weights.iter().map(Vec::len).sum();
        eprintln!("LeNet, {weights:?} weights: {bytes} weight bytes, Predict {gas} SDK gas, floor {floor}");
        assert!(gas * 10 <= floor * 11, "{gas} SDK gas against a floor of {floor}");
    }
}

/// Issue 18's baked targets: LeNet-5 baked (`cwnn bake`, input as bytes, default budgets)
/// answers a `Predict` within 1.10 × the 60,000 instance floor, and runs as one `Evaluate`
/// transaction under 100,000 SDK gas.
#[test]
fn lenet_baked_is_within_10_percent_of_the_instance_floor() {
    for weights in [WeightFormat::Int4, WeightFormat::Native] {
        let m = lenet(weights);
        let (_, runtime) = cwnn_vm::artifacts::runtime_for(&m.config).unwrap();
        let wasm = cwnn_model_contract::state::bake(&runtime, &m.config, &m.weights).unwrap();
        let mut vm = ChainVm::new(&wasm).unwrap();
        let owner = vm.addr("owner");
        vm.instantiate(&owner, &m.instantiate_msg(), &[])
            .unwrap()
            .result
            .unwrap();
        let bytes: Vec<u8> = m.sample_values().iter().map(|&v| v as i8 as u8).collect();
        let predict = QueryMsg::Predict {
            input: vec![],
            input_bytes: Some(Binary::from(bytes.clone())),
        };
        let call = vm.query(&predict).unwrap();
        call.result.unwrap();
        let eval = ExecuteMsg::Evaluate {
            input: vec![],
            input_bytes: Some(Binary::from(bytes)),
            steps: None,
        };
        let job = vm.execute(&owner, &eval, &[]).unwrap();
        job.result.unwrap();
        let (p, e) = (call.gas.total_sdk_gas, job.gas.total_sdk_gas);
        eprintln!("LeNet baked, {weights:?} weights: Predict {p} SDK gas, Evaluate {e}");
        assert!(p * 100 <= INSTANCE_COST * 110, "Predict {p} SDK gas");
        assert!(e <= 100_000, "Evaluate {e} SDK gas");
    }
}

#[test]
fn a_whole_mlp_inference_is_within_10_percent_of_the_storage_floor() {
    let m = mlp(784, 128, 10);
    let mut vm = deploy(&m);
    let floor = INSTANCE_COST + storage_floor(&m);
    let call = predict(&mut vm, &m);
    eprintln!("MLP 784→128→10 Predict: {:?}, floor {floor}", call.gas);
    assert!(
        call.gas.total_sdk_gas * 100 <= floor * 110,
        "{} SDK gas against a floor of {floor}",
        call.gas.total_sdk_gas
    );

    // The same inference as a one-call job pays for its bookkeeping writes too.
    let alice = vm.addr("alice");
    let eval = ExecuteMsg::Evaluate {
        input: m.sample_values(),
        input_bytes: None,
        steps: None,
    };
    let call = vm.execute(&alice, &eval, &[]).unwrap();
    assert!(call.result.is_ok());
    eprintln!("MLP 784→128→10 Evaluate (one call): {:?}", call.gas);
}

/// Predict reads exactly the model record and each weight chunk once, and the backend bills
/// each read at 1,000 + 3 per byte of key (with wasmd's 33-byte contract prefix) and value.
#[test]
fn storage_is_billed_as_the_sdk_gas_kv_store_does() {
    let m = mlp(300, 200, 10);
    let mut vm = deploy(&m);
    let data = vm.storage().data().clone();
    let cost = |key: &[u8]| ChainStorage::read_cost(key.len(), data[key].len());
    let model_key = b"model".to_vec();
    let mut expected = cost(&model_key);
    for (l, w) in m.weights.iter().enumerate() {
        for k in 0..(w.len() as u64).div_ceil(CHUNK_BYTES) {
            // cw-storage-plus: 2-byte namespace length, "w", 2-byte length of the first key
            // part, then both u32 parts big-endian.
            let mut key = vec![0, 1, b'w', 0, 4];
            key.extend((l as u32).to_be_bytes());
            key.extend((k as u32).to_be_bytes());
            expected += cost(&key);
        }
    }
    assert_eq!(ChainStorage::read_cost(10, 100), 1_000 + 3 * (33 + 10 + 100));
    assert_eq!(ChainStorage::write_cost(10, 100), 2_000 + 30 * (33 + 10 + 100));
    let call = predict(&mut vm, &m);
    assert_eq!(call.gas.storage_sdk_gas, expected);
    assert_eq!(
        call.gas,
        GasRecord::new(call.gas.vm_gas, expected, call.result.unwrap().len())
    );
    assert_eq!(call.gas.instance_sdk_gas, 60_000);
}

/// The report splits one `Predict` into its layers exactly, and plans calls for a block limit.
#[test]
fn report_attributes_gas_per_layer_and_plans_calls() {
    use cwnn_vm::report::{measure, plan_calls};
    let m = mlp(784, 128, 10);
    let wasm = read_wasm("cwnn_model_contract").unwrap();
    let r = measure(&wasm, &m.instantiate_msg(), &m.weights, &m.sample_values(), 10_000_000).unwrap();
    eprintln!("{}", r.table());
    let kinds: Vec<&str> = r.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(kinds, ["dense", "dense", "softmax"]);
    assert_eq!(r.layers[0].macs, 784 * 128);
    for (l, w) in r.layers.iter().zip(&m.weights) {
        // One chunk per layer, read once, with its 13-byte key.
        assert_eq!(l.storage_reads, 1);
        assert_eq!(l.storage_sdk_gas, ChainStorage::read_cost(13, w.len()));
        assert_eq!(l.weight_bytes, w.len() as u64);
    }
    let layers: u64 = r.layers.iter().map(|l| l.sdk_gas).sum();
    assert_eq!(r.total_sdk_gas, r.instance_sdk_gas + r.overhead_sdk_gas + layers);
    assert!(r.fits_query);
    assert_eq!(r.calls, 1);
    // Layer 0 alone reads ~300k SDK gas of weights: 150k per call needs at least 3 calls.
    assert!(plan_calls(&r.layers, r.overhead_sdk_gas, 150_000 + 60_000 + r.overhead_sdk_gas) >= 3);
}

/// Owner-only actions of a model minted into a collection ask the collection who holds the
/// token. On chain that query costs the caller's side (measured in the model's VM), an
/// instance cost, and the collection's own execution (measured in the collection's VM).
#[test]
fn nft_bound_owner_actions_pay_for_the_ownership_query() {
    use cosmwasm_std::{to_json_binary, ContractInfoResponse, ContractResult, SystemResult, WasmQuery};
    let m = mlp(16, 8, 4);
    let pause = ExecuteMsg::SetPaused { paused: true };

    // Unbound: the owner of record is read from storage.
    let mut plain = deploy(&m);
    let owner = plain.addr("owner");
    let unbound = plain.execute(&owner, &pause, &[]).unwrap();
    unbound.result.unwrap();

    // The collection, in its own VM, mints the model's token (the model's side of MintNft
    // does not run here: its info and code id are answered directly).
    let mut bound = deploy_with(&m, Some(vec![7]));
    let info = bound.query(&QueryMsg::ModelInfo {}).unwrap().result.unwrap();
    let mut coll = ChainVm::new(&read_wasm("cwnn_collection").unwrap()).unwrap();
    coll.answer_wasm_queries(move |q| {
        SystemResult::Ok(ContractResult::Ok(match q {
            WasmQuery::ContractInfo { .. } => {
                to_json_binary(&ContractInfoResponse::new(1, Addr::unchecked("c"), None, false, None)).unwrap()
            }
            _ => info.clone(),
        }))
    });
    let creator = coll.addr("creator");
    let init = serde_json::json!({"name": "models", "symbol": "CWNN", "model_code_ids": [1]});
    coll.instantiate(&creator, &init, &[]).unwrap().result.unwrap();
    let model_addr = bound.contract().to_string();
    let mint = serde_json::json!({"mint_model": {"owner": owner, "token_uri": null, "claimed_accuracy_bps": null}});
    coll.execute(&model_addr, &mint, &[]).unwrap().result.unwrap();
    let owner_of = serde_json::json!({"owner_of": {"token_id": model_addr, "include_expired": null}});
    let query = coll.query(&owner_of).unwrap();
    let answer = query.result.clone().unwrap();

    // The model checks the collection's code (7, accepted) and admin (none), binds itself (its
    // MintNft), then asks the collection on each owner action.
    let collection_addr = coll.contract().to_string();
    let mint_nft = ExecuteMsg::MintNft {
        collection: collection_addr,
        token_uri: None,
        claimed_accuracy_bps: None,
    };
    bound.answer_wasm_queries(|_| {
        let info = ContractInfoResponse::new(7, Addr::unchecked("c"), None, false, None);
        SystemResult::Ok(ContractResult::Ok(to_json_binary(&info).unwrap()))
    });
    bound.execute(&owner, &mint_nft, &[]).unwrap().result.unwrap();
    bound.answer_wasm_queries(move |_| SystemResult::Ok(ContractResult::Ok(answer.clone())));
    let call = bound.execute(&owner, &pause, &[]).unwrap();
    call.result.unwrap();
    let stranger = bound.addr("stranger");
    assert!(bound.execute(&stranger, &pause, &[]).unwrap().result.is_err());

    let total = call.gas.total_sdk_gas + query.gas.total_sdk_gas;
    println!(
        "SetPaused: {} SDK gas by the owner of record; NFT-bound {total} = {} in the model + {} for the OwnerOf query ({} instance, {} collection execution)",
        unbound.gas.total_sdk_gas,
        call.gas.total_sdk_gas,
        query.gas.total_sdk_gas,
        INSTANCE_COST,
        query.gas.total_sdk_gas - INSTANCE_COST
    );
    assert!(total > unbound.gas.total_sdk_gas + INSTANCE_COST);
    assert!(query.gas.total_sdk_gas > INSTANCE_COST, "{:?}", query.gas);
    // A whole OwnerOf costs less than a second contract call's instance cost twice over.
    assert!(query.gas.total_sdk_gas < 2 * INSTANCE_COST, "{:?}", query.gas);
}

/// Attack 4: a layer's `work` counts all it does, not only MACs. Every layer kind, in int8 and
/// int16, on the determinism harness's random cases, runs in the contract Wasm within
/// `VM_GAS_PER_WORK` per work unit plus `VM_GAS_PER_SEGMENT`; so do the full-size layers above.
#[test]
fn every_layer_kind_spends_at_most_its_work_in_vm_gas() {
    use cwnn_model_contract::msg::{VM_GAS_PER_SEGMENT, VM_GAS_PER_WORK};
    let big = [
        mlp(784, 128, 10),
        dense_only(256, 256),
        dense_only_int4(256, 256),
        dense_only_as(256, 256, cwnn_tensor::DType::I16),
        conv_only(16, 16, 3, 16),
        conv_only_int4(16, 16, 3, 16),
        conv_only_as(16, 16, 3, 16, cwnn_tensor::DType::I16),
        skip_lstm_as(cwnn_tensor::DType::I16),
        self_product_as(4, 64, 32, cwnn_tensor::DType::I8),
        self_product_as(4, 64, 32, cwnn_tensor::DType::I16),
    ];
    for m in &big {
        let call = predict(&mut deploy(m), m);
        let mut specs = vec![m.config.input.clone()];
        for (i, (lc, (gas, _))) in m.config.layers.iter().zip(per_layer(&call.markers)).enumerate() {
            let ids = lc.inputs.clone().unwrap_or(vec![i as u32]);
            let refs: Vec<_> = ids.iter().map(|&k| &specs[k as usize]).collect();
            let plan = lc.layer.plan(&refs).unwrap();
            let bound = VM_GAS_PER_WORK * (plan.work + plan.segment_work) + VM_GAS_PER_SEGMENT;
            let work = plan.work + plan.segment_work;
            eprintln!(
                "{} layer {i} ({}): {gas} VM gas, work {work} (bound {bound})",
                m.config.name,
                lc.layer.name()
            );
            assert!(
                gas <= bound,
                "{} layer {i}: {gas} VM gas for {work} work",
                m.config.name
            );
            specs.push(plan.output);
        }
    }
    every_random_layer_kind_within_its_work();
}

fn every_random_layer_kind_within_its_work() {
    use cwnn_layers::TensorSpec;
    use cwnn_model_contract::msg::{LayerConfig, ModelConfig, VM_GAS_PER_SEGMENT, VM_GAS_PER_WORK};
    use cwnn_wasm_kernels::{layer_case_of, op};
    let mut vm = ChainVm::new(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
    let owner = vm.addr("owner");
    // splitmix64: reproducible bytes for the harness's case builder.
    let mut state = 0u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (z ^ (z >> 31)) as u8
        };
        (0..n).map(|_| next()).collect()
    };
    for (kind, name) in op::LAYER_NAMES.iter().enumerate() {
        let (mut ran, mut worst) = ([0u32; 2], (0u64, 0u64));
        for _ in 0..40 {
            let Ok(case) = layer_case_of(kind as u32, &bytes(4_096)) else {
                continue;
            };
            // A model has one input: a two-tensor layer (MatMul, Add/Mul of two tensors) takes
            // it twice where its shapes allow.
            let input = &case.inputs[0];
            let spec = TensorSpec::of(input);
            let twice = case.inputs.len() == 2;
            let refs = if twice { vec![&spec, &spec] } else { vec![&spec] };
            let Ok(plan) = case.layer.plan(&refs) else {
                continue;
            };
            let config = ModelConfig {
                name: (*name).into(),
                input: spec.clone(),
                layers: vec![LayerConfig {
                    layer: case.layer.clone(),
                    inputs: twice.then(|| vec![0, 0]),
                }],
            };
            let work = plan.work + plan.segment_work;
            let msg = InstantiateMsg {
                query_budget: Some(unlimited()),
                execute_budget: Some(unlimited()),
                ..InstantiateMsg::new(
                    config,
                    cwnn_model_contract::msg::weights_sha256(&[case.weights.clone()]),
                )
            };
            vm.clear_storage();
            if vm.instantiate(&owner, &msg, &[]).unwrap().result.is_err() {
                continue;
            }
            for up in ExecuteMsg::uploads(&[case.weights.clone()]) {
                vm.execute(&owner, &up, &[]).unwrap().result.unwrap();
            }
            vm.execute(&owner, &ExecuteMsg::Finalize {}, &[])
                .unwrap()
                .result
                .unwrap();
            let values = input.data.to_i32s();
            let call = vm
                .query(&QueryMsg::Predict {
                    input: values,
                    input_bytes: None,
                })
                .unwrap();
            if call.result.is_err() {
                continue; // weights the layer refuses (the harness draws some on purpose)
            }
            let gas = per_layer(&call.markers)[0].0;
            assert!(
                gas <= VM_GAS_PER_WORK * work + VM_GAS_PER_SEGMENT,
                "{name}: {gas} VM gas for {work} work units"
            );
            if gas as f64 / work.max(1) as f64 > worst.0 as f64 / worst.1.max(1) as f64 {
                worst = (gas, work);
            }
            ran[(input.dtype() != cwnn_tensor::DType::I8) as usize] += 1;
        }
        eprintln!(
            "{name}: {ran:?} cases (int8, other), highest gas per work: {} VM gas for {} work",
            worst.0, worst.1
        );
        assert!(ran.iter().sum::<u32>() >= 10, "{name}: only {ran:?} cases ran");
    }
}

/// A paid `Predict` on a Dense n→1 model, its input as values or as `input_bytes`: the call's
/// SDK gas outside the layer (parsing the message and the input, loading the model record,
/// hashing the input, the event and response) and the VM gas before the first layer.
fn predict_overhead(n: usize, as_bytes: bool) -> (u64, u64) {
    let m = dense_only(n, 1);
    let mut vm = deploy(&m);
    let values = m.sample_values();
    let msg = match as_bytes {
        false => ExecuteMsg::Predict {
            input: values,
            input_bytes: None,
        },
        true => ExecuteMsg::Predict {
            input: vec![],
            input_bytes: Some(Binary::from(values.iter().map(|&v| v as i8 as u8).collect::<Vec<u8>>())),
        },
    };
    let call = vm.execute(&vm.addr("user"), &msg, &[]).unwrap();
    call.result.as_ref().unwrap();
    let layer = per_layer(&call.markers)[0];
    let overhead = call.gas.total_sdk_gas - INSTANCE_COST - (layer.0 / GAS_MULTIPLIER + layer.1);
    (overhead, call.markers[0].vm_gas)
}

/// Issue 18's input cost: what the input values add to a paid `Predict`, scaled to 784 (an
/// MNIST image) from the overheads at 64 and 784 values. Measured: 1,748 SDK gas as a JSON
/// array, 1,432 as `input_bytes`, whose parse takes a quarter of the VM gas (60.4M → 16.1M);
/// most of what remains is the event's base64 copy of the input (1 SDK gas per result byte),
/// which `cwnn verify` reads.
#[test]
fn input_bytes_cost_less_than_the_values() {
    let (v64, v784) = (predict_overhead(64, false), predict_overhead(784, false));
    let (b64, b784) = (predict_overhead(64, true), predict_overhead(784, true));
    let per_784 = |a: u64, b: u64| (b - a) * 784 / 720;
    let (values, bytes) = (per_784(v64.0, v784.0), per_784(b64.0, b784.0));
    let parse = |a: (u64, u64), b: (u64, u64)| (b.1 - a.1) * 784 / 720;
    println!(
        "784 input values cost a paid Predict {values} SDK gas as values, {bytes} as input_bytes; VM gas to parse them {} vs {}",
        parse(v64, v784),
        parse(b64, b784)
    );
    assert!(bytes <= 2_000, "{bytes}");
    assert!(bytes < values, "{bytes} vs {values}");
    assert!(parse(b64, b784) * 3 < parse(v64, v784));
}

/// Issue 18's deployment cost: a layer of more than one chunk uploads in full 128 KiB chunks,
/// each paying the write (2,000 + 30 per byte, key included) and its tx bytes (10 per byte of
/// base64 JSON): ~5.7M SDK gas a chunk.
#[test]
fn deploying_counts_every_transaction() {
    let m = dense_only(512, 300); // 154,800 weight bytes: two chunks
    let model = read_wasm("cwnn_model_contract").unwrap();
    let collection = read_wasm("cwnn_collection").unwrap();
    let d = cwnn_vm::deploy::deploy_cost(
        cwnn_vm::deploy::Code::Stored {
            wasm: &model,
            weights: &m.weights,
        },
        &collection,
        &m.instantiate_msg(),
    )
    .unwrap();
    let what: Vec<&str> = d.transactions.iter().map(|t| t.what.as_str()).collect();
    assert_eq!(what, ["instantiate", "upload 1/2", "upload 2/2", "finalize", "mint"]);
    let full = &d.transactions[1];
    let chunk = CHUNK_BYTES;
    assert!(full.call_sdk_gas > INSTANCE_COST + 2_000 + 30 * chunk, "{full:?}");
    assert!(full.msg_bytes > chunk * 4 / 3, "base64: {full:?}");
    assert!((5_600_000..5_900_000).contains(&full.sdk_gas), "{full:?}");
    // Finalize reads every weight byte to hash it; minting runs three contract calls.
    assert!(d.transactions[3].call_sdk_gas > INSTANCE_COST + 3 * m.weights[0].len() as u64);
    assert!(d.transactions[4].call_sdk_gas > 3 * INSTANCE_COST);
    assert_eq!(d.total_sdk_gas, d.transactions.iter().map(|t| t.sdk_gas).sum::<u64>());
    assert_eq!(d.store_code.msg_bytes, model.len() as u64);
    println!("{}", d.table());
}

/// A training step of the bundled MLP's shape (64 → 64 ReLU → 10 → softmax, so a 64 → 10
/// head) on a batch of 8 costs at most twice the storage of reading and writing that head once
/// (its Dense bytes and its fractions), beside the 60,000 instance cost every call pays.
#[test]
fn a_training_step_costs_at_most_twice_its_head_read_and_write() {
    use cwnn_model_contract::msg::{TrainExample, TrainPolicy};
    let m = mlp(64, 64, 10);
    let msg = m.trainable_msg(cwnn_model_contract::testing::rules(TrainPolicy::Owner {}));
    let examples = (0..8)
        .map(|k| TrainExample {
            input: m
                .sample_values()
                .iter()
                .map(|v| (v + 11 * k).clamp(-128, 127))
                .collect(),
            input_bytes: None,
            label: k as u32 % 10,
        })
        .collect();
    let wasm = read_wasm("cwnn_model_contract").unwrap();
    let g = cwnn_vm::report::train_gas(&wasm, &msg, &m.weights, examples).unwrap();
    let step = g.step.total_sdk_gas - INSTANCE_COST;
    eprintln!("train step: {g:?}; {step} SDK gas beside the instance cost");
    assert_eq!((g.head_bytes, g.fraction_bytes), (10 * (64 + 9), 10 * 65));
    assert!(
        step <= 2 * g.head_read_write,
        "a step costs {step} SDK gas, more than twice the head's read and write ({})",
        g.head_read_write
    );
}
