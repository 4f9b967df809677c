//! The compiled-in model: what `cwnn bake --rust` writes for the bundled model, and a
//! contract that answers as the model contract does, natively and in cosmwasm-vm.

use std::path::Path;

use cosmwasm_std::{from_json, Addr, Binary, Empty};
use cw_multi_test::{App, ContractWrapper, Executor};
use cwnn_importer::import::{import, ImportArgs};
use cwnn_importer::{bake, Package};
use cwnn_inline_model::contract::{instantiate, query};
use cwnn_inline_model::model::{CONFIG_JSON, WEIGHTS};
use cwnn_inline_model::msg::{Classification, InstantiateMsg, ModelResponse, QueryMsg};
use cwnn_layers::ModelConfig;
use cwnn_model_contract::msg::{ExecuteMsg, PredictResponse, QueryMsg as ModelQuery};
use cwnn_vm::artifacts::read_wasm;
use cwnn_vm::runner::ChainVm;

/// The bundled digits model imported as `cwnn import models/digits-mlp/model.onnx
/// --calibration models/digits-mlp/calibration.csv` does.
fn package() -> Package {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/digits-mlp");
    let args = ImportArgs {
        model: dir.join("model.onnx"),
        calibration: vec![dir.join("calibration.csv")],
        ..Default::default()
    };
    import(&args).unwrap().package
}

/// `CWNN_UPDATE_MODULE=1 cargo test -p cwnn-inline-model` rewrites the module.
#[test]
fn the_module_is_what_cwnn_bake_writes_for_the_package() {
    let p = package();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if std::env::var_os("CWNN_UPDATE_MODULE").is_some() {
        bake::write_rust(&p, &src).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(src.join("model.rs")).unwrap(),
        bake::rust_module(&p).unwrap()
    );
    assert_eq!(std::fs::read(src.join("weights.bin")).unwrap(), p.weights.concat());
}

fn deploy() -> (App, Addr) {
    let mut app = App::default();
    let code = app.store_code(Box::new(ContractWrapper::new(
        |_, _, _, _: Empty| -> cosmwasm_std::StdResult<cosmwasm_std::Response> { unreachable!() },
        instantiate,
        query,
    )));
    let creator = app.api().addr_make("creator");
    let addr = app
        .instantiate_contract(code, creator, &InstantiateMsg {}, &[], "inline", None)
        .unwrap();
    (app, addr)
}

#[test]
fn classify_answers_as_the_packaged_model() {
    let p = package();
    let (app, addr) = deploy();
    let config = &p.instantiate.model;
    let sample = p.input();
    for k in 0..8 {
        let input: Vec<i32> = sample
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + ((i * 5 + k * 17) % 97) as i32).clamp(-128, 127))
            .collect();
        let x = cwnn_model_contract::input_tensor(&config.input, input.clone(), None).unwrap();
        let want = config.run_all(&p.weights, x).unwrap().pop().unwrap().data.to_i32s();
        let got: Classification = app
            .wrap()
            .query_wasm_smart(
                &addr,
                &QueryMsg::Classify {
                    input: input.clone(),
                    input_bytes: None,
                },
            )
            .unwrap();
        assert_eq!(got.scores, want);
        let best = *want.iter().max().unwrap();
        assert_eq!(got.label as usize, want.iter().position(|&s| s == best).unwrap());
        let bytes = Binary::from(input.iter().map(|&v| v as i8 as u8).collect::<Vec<_>>());
        let by_bytes: Classification = app
            .wrap()
            .query_wasm_smart(
                &addr,
                &QueryMsg::Classify {
                    input: vec![],
                    input_bytes: Some(bytes),
                },
            )
            .unwrap();
        assert_eq!(by_bytes, got);
    }
    let info: ModelResponse = app.wrap().query_wasm_smart(&addr, &QueryMsg::Model {}).unwrap();
    let m = &p.instantiate;
    let hash = cwnn_model_contract::msg::model_sha256(&m.model, &m.weights_sha256).unwrap();
    assert_eq!(info.model_sha256, hash.to_hex());
}

/// The example's Wasm answers as the model contract's Wasm with the same model uploaded.
#[test]
fn in_cosmwasm_vm_it_answers_as_the_model_contract() {
    let p = package();
    let mut model = ChainVm::new(&read_wasm("cwnn_model_contract").unwrap()).unwrap();
    let owner = model.addr("owner");
    model.instantiate(&owner, &p.instantiate, &[]).unwrap().result.unwrap();
    for up in ExecuteMsg::uploads(&p.weights) {
        model.execute(&owner, &up, &[]).unwrap().result.unwrap();
    }
    model
        .execute(&owner, &ExecuteMsg::Finalize {}, &[])
        .unwrap()
        .result
        .unwrap();
    let mut inline = ChainVm::new(&read_wasm("cwnn_inline_model").unwrap()).unwrap();
    inline
        .instantiate(&owner, &InstantiateMsg {}, &[])
        .unwrap()
        .result
        .unwrap();
    for k in 0..4 {
        let input: Vec<i32> = (0..64).map(|i: i32| (i * 37 + k * 11) % 256 - 128).collect();
        let call = model
            .query(&ModelQuery::Predict {
                input: input.clone(),
                input_bytes: None,
            })
            .unwrap();
        let want: PredictResponse = from_json(call.result.unwrap()).unwrap();
        let mine = inline
            .query(&QueryMsg::Classify {
                input,
                input_bytes: None,
            })
            .unwrap();
        let got: Classification = from_json(mine.result.unwrap()).unwrap();
        assert_eq!(got.scores, want.data);
        eprintln!(
            "Classify {} SDK gas inline, Predict {} on the model contract",
            mine.gas.total_sdk_gas, call.gas.total_sdk_gas
        );
    }
}

#[test]
fn bad_inputs_are_named_errors() {
    let (app, addr) = deploy();
    let short = QueryMsg::Classify {
        input: vec![0; 63],
        input_bytes: None,
    };
    let e = app
        .wrap()
        .query_wasm_smart::<Classification>(&addr, &short)
        .unwrap_err()
        .to_string();
    assert!(e.contains("length differs from the input shape"), "{e}");
    let out_of_range = QueryMsg::Classify {
        input: vec![300; 64],
        input_bytes: None,
    };
    let e = app
        .wrap()
        .query_wasm_smart::<Classification>(&addr, &out_of_range)
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside the input's integer type"), "{e}");
}

#[test]
fn weights_of_the_wrong_length_are_named_errors() {
    let config: ModelConfig = serde_json::from_str(CONFIG_JSON).unwrap();
    let x = || cwnn_model_contract::input_tensor(&config.input, vec![0; 64], None).unwrap();
    let e = config
        .run_concatenated(&WEIGHTS[..WEIGHTS.len() - 1], x())
        .unwrap_err()
        .to_string();
    assert!(e.contains("weights end early"), "{e}");
    let longer = [WEIGHTS, &[0]].concat();
    let e = config.run_concatenated(&longer, x()).unwrap_err().to_string();
    assert!(e.contains("more weight bytes than the layers take"), "{e}");
}
