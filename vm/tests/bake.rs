//! Baked models in cosmwasm-vm: the same answers as the stored model, no uploads, and a
//! collection that accepts a genuine bake and refuses forgeries (issue 18).

use cosmwasm_std::{
    from_json, to_json_binary, Addr, Binary, Checksum, CodeInfoResponse, ContractInfoResponse, ContractResult,
    SystemResult, WasmQuery,
};
use cwnn_bake::RuntimeId;
use cwnn_collection::msg::{BakedRuntime, InstantiateMsg as CollectionInit};
use cwnn_layers::WeightFormat;
use cwnn_model_contract::msg::{ExecuteMsg, InstantiateMsg, ModelInfoResponse, PredictResponse, QueryMsg, WorkBudget};
use cwnn_model_contract::state::bake;
use cwnn_model_contract::testing::{dense_only, lenet, mlp, self_product_as, skip_lstm_as, TestModel};
use cwnn_tensor::DType;
use cwnn_vm::artifacts::{read_wasm, runtime_for, RUNTIMES};
use cwnn_vm::deploy::sent_message;
use cwnn_vm::runner::ChainVm;

/// The model contract: stored models, and the runtime with every layer family.
fn runtime() -> Vec<u8> {
    read_wasm("cwnn_model_contract").unwrap()
}

/// `m` baked on the smallest runtime with its layers, as `cwnn bake` does.
fn baked(m: &TestModel) -> Vec<u8> {
    bake(&runtime_for(&m.config).unwrap().1, &m.config, &m.weights).unwrap()
}

/// `m`'s instantiate message with budgets that split an `Evaluate` into one-segment calls.
fn msg(m: &TestModel, execute_segments: u32) -> InstantiateMsg {
    InstantiateMsg {
        query_budget: Some(WorkBudget {
            max_work: u64::MAX,
            max_weight_bytes: u64::MAX,
            max_segments: u32::MAX,
        }),
        execute_budget: Some(WorkBudget {
            max_segments: execute_segments,
            ..WorkBudget::default_execute()
        }),
        collection_code_ids: Some(vec![1]),
        ..m.instantiate_msg()
    }
}

/// `wasm` deployed with `m`; the weights uploaded unless it is baked.
fn deploy(wasm: &[u8], m: &TestModel, execute_segments: u32) -> ChainVm {
    let mut vm = ChainVm::new(wasm).unwrap();
    let owner = vm.addr("owner");
    vm.instantiate(&owner, &msg(m, execute_segments), &[])
        .unwrap()
        .result
        .unwrap();
    if !info(&mut vm).baked {
        for up in ExecuteMsg::uploads(&m.weights) {
            vm.execute(&owner, &up, &[]).unwrap().result.unwrap();
        }
        vm.execute(&owner, &ExecuteMsg::Finalize {}, &[])
            .unwrap()
            .result
            .unwrap();
    }
    vm
}

fn info(vm: &mut ChainVm) -> ModelInfoResponse {
    from_json(vm.query(&QueryMsg::ModelInfo {}).unwrap().result.unwrap()).unwrap()
}

fn predict(vm: &mut ChainVm, input: &[i32]) -> (PredictResponse, u64) {
    let call = vm
        .query(&QueryMsg::Predict {
            input: input.to_vec(),
            input_bytes: None,
        })
        .unwrap();
    (from_json(call.result.unwrap()).unwrap(), call.gas.total_sdk_gas)
}

/// The job's output after `Evaluate` and as many `Continue`s as it takes.
fn evaluate(vm: &mut ChainVm, input: &[i32]) -> (Vec<i32>, u64) {
    let alice = vm.addr("alice");
    let eval = ExecuteMsg::Evaluate {
        input: input.to_vec(),
        input_bytes: None,
        steps: None,
    };
    let call = vm.execute(&alice, &eval, &[]).unwrap();
    let res = call.result.unwrap();
    let id: u64 = from_json::<serde_json::Value>(res.data.unwrap()).unwrap()["job_id"]
        .as_u64()
        .unwrap();
    let mut calls = 1;
    loop {
        let job: serde_json::Value = from_json(vm.query(&QueryMsg::Job { id }).unwrap().result.unwrap()).unwrap();
        if job["finished"].as_bool().unwrap() {
            return (serde_json::from_value(job["output"]["data"].clone()).unwrap(), calls);
        }
        let cont = ExecuteMsg::Continue {
            job_id: id,
            steps: None,
        };
        vm.execute(&alice, &cont, &[]).unwrap().result.unwrap();
        calls += 1;
    }
}

/// `m`'s sample and three variations of it.
fn inputs(m: &TestModel) -> Vec<Vec<i32>> {
    let s = m.sample_values();
    let spec = &m.instantiate_msg().model.input;
    let (lo, hi) = (spec.dtype.min(), spec.dtype.max());
    (0..4)
        .map(|k| {
            s.iter()
                .enumerate()
                .map(|(i, &v)| (v + ((i * 7 + k * 13) % 11) as i32 * k as i32 - 5 * k as i32).clamp(lo, hi))
                .collect()
        })
        .collect()
}

#[test]
fn a_baked_model_answers_as_the_stored_one() {
    let models = [
        ("lenet int4", lenet(WeightFormat::Int4)),
        ("lenet int8", lenet(WeightFormat::Native)),
        ("skip lstm int16", skip_lstm_as(DType::I16)),
        ("mlp", mlp(64, 32, 10)),
    ];
    for (name, m) in &models {
        let wasm = baked(m);
        // One segment per call: jobs read the baked weights layer by layer and unit by unit.
        let (mut stored, mut bk) = (deploy(&runtime(), m, 1), deploy(&wasm, m, 1));
        let (si, bi) = (info(&mut stored), info(&mut bk));
        assert!(bi.baked && bi.finalized && !si.baked, "{name}");
        assert_eq!(
            (&bi.model_sha256, &bi.weights_sha256),
            (&si.model_sha256, &si.weights_sha256),
            "{name}"
        );
        for input in inputs(m) {
            let (a, b) = (predict(&mut stored, &input).0, predict(&mut bk, &input).0);
            assert_eq!(a, b, "{name}: Predict");
            let ((ja, calls), (jb, _)) = (evaluate(&mut stored, &input), evaluate(&mut bk, &input));
            assert_eq!((&ja, &jb), (&a.data, &a.data), "{name}: Evaluate in {calls} calls");
        }
        let (_, sg) = predict(&mut stored, &m.sample_values());
        let (_, bg) = predict(&mut bk, &m.sample_values());
        eprintln!(
            "{name}: Predict {sg} SDK gas stored, {bg} baked; Wasm {} bytes",
            wasm.len()
        );
    }
}

#[test]
fn a_baked_model_takes_no_uploads_and_only_its_own_instantiation() {
    let m = mlp(16, 8, 4);
    let wasm = baked(&m);
    let mut vm = ChainVm::new(&wasm).unwrap();
    let owner = vm.addr("owner");
    // Another model's message is refused by name, and changes nothing.
    let other = mlp(16, 8, 5);
    let e = vm
        .instantiate(&owner, &other.instantiate_msg(), &[])
        .unwrap()
        .result
        .unwrap_err();
    assert!(
        e.contains("baked model: the message's model differs from the baked one"),
        "{e}"
    );
    let wrong_hash = InstantiateMsg {
        weights_sha256: other.sha256(),
        ..m.instantiate_msg()
    };
    let e = vm.instantiate(&owner, &wrong_hash, &[]).unwrap().result.unwrap_err();
    assert!(e.contains("weights_sha256 differs from the baked weights"), "{e}");
    // Its weights are its code: a runtime has no training.
    let rules = cwnn_model_contract::testing::rules(cwnn_model_contract::msg::TrainPolicy::Owner {});
    let e = vm
        .instantiate(&owner, &m.trainable_msg(rules), &[])
        .unwrap()
        .result
        .unwrap_err();
    assert!(e.contains("not trainable: this build leaves training out"), "{e}");
    assert!(vm.storage().data().is_empty());

    vm.instantiate(&owner, &m.instantiate_msg(), &[])
        .unwrap()
        .result
        .unwrap();
    let before = vm.storage().data().clone();
    for msg in [
        ExecuteMsg::uploads(&m.weights).remove(0),
        ExecuteMsg::Finalize {},
        ExecuteMsg::RewindUpload { layer: 0, offset: 0 },
    ] {
        let e = vm.execute(&owner, &msg, &[]).unwrap().result.unwrap_err();
        assert!(e.contains("finalized"), "{e}");
    }
    assert_eq!(vm.storage().data(), &before);
    // Its record leaves out what the Wasm carries.
    let record = before.iter().find(|(k, _)| k.as_slice() == b"model").unwrap().1;
    assert!(record.len() < 100, "{}", String::from_utf8_lossy(record));
}

#[test]
fn the_bake_of_a_package_is_reproducible() {
    let m = lenet(WeightFormat::Int4);
    assert_eq!(baked(&m), baked(&m));
    assert_ne!(baked(&m), baked(&lenet(WeightFormat::Native)));
}

/// A bake passes the checks `scripts/build-wasm.sh` runs on every contract: cosmwasm-check
/// 2.2's validation and no float instruction, within wasmd's 800 KiB.
#[test]
fn baked_models_pass_the_chain_checks_and_the_float_gate() {
    for m in [lenet(WeightFormat::Native), skip_lstm_as(DType::I16), mlp(64, 32, 10)] {
        let wasm = baked(&m);
        assert!(wasm.len() <= cwnn_bake::MAX_WASM_BYTES);
        cwnn_vm::check::check_contract(&wasm).unwrap();
    }
}

/// A model of `wasm` (code id 7, `admin`) minting into a collection that accepts `runtime`:
/// the collection's answer to the model's `MintModel`.
fn mint(
    wasm: &[u8],
    m: &TestModel,
    runtime: &RuntimeId,
    admin: Option<&str>,
    proof: Option<Binary>,
) -> Result<(), String> {
    let mut model = deploy(wasm, m, 64);
    let owner = model.addr("owner");
    let mut coll = ChainVm::new(&read_wasm("cwnn_collection").unwrap()).unwrap();
    let init = CollectionInit {
        name: "models".into(),
        symbol: "CWNN".into(),
        model_code_ids: vec![],
        baked_runtimes: Some(vec![BakedRuntime::from(runtime)]),
    };
    coll.instantiate(&coll.addr("creator"), &init, &[])
        .unwrap()
        .result
        .unwrap();
    let mint_nft = ExecuteMsg::MintNft {
        collection: coll.contract().to_string(),
        token_uri: None,
        claimed_accuracy_bps: None,
    };
    model.answer_wasm_queries(|_| SystemResult::Ok(ContractResult::Ok(contract_info(1, None))));
    let sent = sent_message(&model.execute(&owner, &mint_nft, &[]).unwrap()).unwrap();
    let sent = match proof {
        None => sent,
        Some(d) => {
            let mut v: serde_json::Value = from_json(&sent).unwrap();
            v["mint_model"]["baked"] = serde_json::to_value(d).unwrap();
            Binary::from(serde_json::to_vec(&v).unwrap())
        }
    };
    let info = model.query(&QueryMsg::ModelInfo {}).unwrap().result.unwrap();
    let checksum = Checksum::generate(wasm);
    let admin = admin.map(|a| coll.addr(a));
    coll.answer_wasm_queries(move |q| {
        SystemResult::Ok(ContractResult::Ok(match q {
            WasmQuery::ContractInfo { .. } => contract_info(7, admin.clone()),
            WasmQuery::CodeInfo { code_id } => {
                to_json_binary(&CodeInfoResponse::new(*code_id, Addr::unchecked("creator"), checksum)).unwrap()
            }
            _ => info.clone(),
        }))
    });
    let model_addr = model.contract().to_string();
    coll.execute_raw(&model_addr, &sent, &[]).unwrap().result.map(|_| ())
}

fn contract_info(code_id: u64, admin: Option<String>) -> Binary {
    to_json_binary(&ContractInfoResponse::new(
        code_id,
        Addr::unchecked("creator"),
        admin.map(Addr::unchecked),
        false,
        None,
    ))
    .unwrap()
}

/// The data section a baked Wasm's model sends.
fn data_section(wasm: &[u8], runtime: &RuntimeId) -> Binary {
    Binary::from(&wasm[runtime.hashed as usize + runtime.tail.len()..])
}

#[test]
fn the_collection_accepts_a_genuine_bake_and_refuses_forgeries() {
    let m = mlp(16, 8, 4);
    let rt = runtime_for(&m.config).unwrap().1;
    let id = RuntimeId::of(&rt).unwrap();
    let genuine = baked(&m);
    mint(&genuine, &m, &id, None, None).unwrap();

    // The same genuine bake with a wasmd admin, who could migrate it after a sale.
    let e = mint(&genuine, &m, &id, Some("admin"), None).unwrap_err();
    assert!(e.contains("has a wasmd admin"), "{e}");

    // A contract claiming another genuine model's data section.
    let other = baked(&mlp(16, 8, 5));
    let e = mint(&genuine, &m, &id, None, Some(data_section(&other, &id))).unwrap_err();
    assert!(e.contains("not a genuine baked model: code checksum differs"), "{e}");

    // Forged runtime data (a byte of the runtime's own segments changed), proof sent as is.
    let mut forged = genuine.clone();
    let s = id.hashed as usize + id.tail.len() + 11 + 100;
    forged[s] ^= 0x20;
    let e = mint(&genuine, &m, &id, None, Some(data_section(&forged, &id))).unwrap_err();
    assert!(e.contains("the runtime's data segments differ"), "{e}");

    // Forged code: a runtime with one byte of code changed, baked the same way.
    let mut evil = rt.clone();
    let at = id.hashed as usize / 2;
    evil[at] ^= 1;
    let evil_baked = bake(&evil, &m.instantiate_msg().model, &m.weights).unwrap();
    let e = verify_err(&id, &evil_baked);
    assert!(e.contains("code checksum differs"), "{e}");

    // A stored (unbaked) model is not a bake either.
    let e = mint(&runtime(), &m, &id, None, None).unwrap_err();
    assert!(
        e.contains("is not a cwnn model contract this collection accepts"),
        "{e}"
    );
}

/// A bake near wasmd's 800 KiB mints: the model's `MintModel` carries its whole data section
/// (about 1.8 × its bytes after two base64 layers), which a chain takes at 1 SDK gas per byte.
#[test]
fn the_largest_bakes_mint() {
    let m = dense_only(400, 445);
    let wasm = baked(&m);
    assert!(wasm.len() > 780 * 1024, "{} bytes", wasm.len());
    let id = RuntimeId::of(&runtime_for(&m.config).unwrap().1).unwrap();
    mint(&wasm, &m, &id, None, None).unwrap();
}

fn verify_err(id: &RuntimeId, wasm: &[u8]) -> String {
    let d = data_section(wasm, id);
    cwnn_bake::verify(id, &d, Checksum::generate(wasm).as_slice())
        .unwrap_err()
        .to_string()
}

/// `cwnn bake` picks the smallest runtime with a model's layer families; a runtime without a
/// family refuses, by name, a model that needs it; each family costs its kernels' bytes.
#[test]
fn runtimes_carry_only_their_layer_families() {
    let pick = |m: &TestModel| runtime_for(&m.config).unwrap().0;
    assert_eq!(pick(&mlp(16, 8, 4)), "cwnn_runtime_core");
    assert_eq!(pick(&lenet(WeightFormat::Int4)), "cwnn_runtime_conv");
    assert_eq!(pick(&skip_lstm_as(DType::I8)), "cwnn_runtime_seq");
    assert_eq!(pick(&self_product_as(2, 4, 4, DType::I8)), "cwnn_runtime_attn");
    let sizes: Vec<usize> = RUNTIMES.iter().map(|(n, _)| read_wasm(n).unwrap().len()).collect();
    eprintln!("runtimes {RUNTIMES:?}: {sizes:?} bytes");
    assert!((1..4).all(|k| sizes[0] < sizes[k] && sizes[k] < sizes[4]), "{sizes:?}");

    let lstm = skip_lstm_as(DType::I8);
    for name in ["cwnn_runtime_core", "cwnn_runtime_conv"] {
        let wasm = bake(&read_wasm(name).unwrap(), &lstm.config, &lstm.weights).unwrap();
        let mut vm = ChainVm::new(&wasm).unwrap();
        let owner = vm.addr("owner");
        let e = vm
            .instantiate(&owner, &lstm.instantiate_msg(), &[])
            .unwrap()
            .result
            .unwrap_err();
        assert!(e.contains("this contract build has no lstm kernel"), "{name}: {e}");
        assert!(vm.storage().data().is_empty());
    }
}
