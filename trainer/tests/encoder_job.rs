//! Issue 17's larger encoder on chain: 4 blocks, d = 128, 4 heads, 64 tokens (untrained,
//! seeded weights), exported as the trainer exports, imported in int8 and run as an
//! `Evaluate`/`Continue` job under the contract's default execute budget in cosmwasm-vm. Its
//! output must equal the native run (what `Predict` computes) bit for bit.

use cwnn_importer::import::{self, ImportArgs};
use cwnn_model_contract::msg::{EvaluateResponse, ExecuteMsg, QueryMsg};
use cwnn_trainer::rng::SplitMix64;
use cwnn_trainer::transformer::{Shape, Transformer};
use cwnn_vm::runner::ChainVm;
use onnx_protobuf::Message;

type B = burn::backend::NdArray;

const SHAPE: Shape = Shape {
    tokens: 64,
    features: 16,
    d: 128,
    heads: 4,
    blocks: 4,
};

/// `rows` random inputs in [0, 1) as a calibration CSV.
fn csv(rng: &mut SplitMix64, rows: usize) -> String {
    let n = SHAPE.tokens * SHAPE.features;
    let mut out: Vec<String> = vec![(0..n).map(|i| format!("p{i}")).collect::<Vec<_>>().join(",")];
    for _ in 0..rows {
        let row: Vec<String> = rng.uniform(n, 0.5).iter().map(|v| (v + 0.5).to_string()).collect();
        out.push(row.join(","));
    }
    out.join("\n") + "\n"
}

#[test]
fn a_four_block_encoder_runs_as_a_job_within_the_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let model = Transformer::<B>::with_shape(SHAPE, 3, &Default::default()).unwrap();
    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, model.export(1.0).write_to_bytes().unwrap()).unwrap();
    let mut rng = SplitMix64::new(11);
    let calibration = dir.path().join("calibration.csv");
    std::fs::write(&calibration, csv(&mut rng, 4)).unwrap();
    let imported = import::import(&ImportArgs {
        model: onnx,
        calibration: vec![calibration.clone()],
        ..Default::default()
    })
    .unwrap();
    let package = &imported.package;
    let config = &package.instantiate.model;
    assert_eq!(config.layers.len(), 2 + 17 * SHAPE.blocks + 5);

    let wasm = cwnn_vm::artifacts::read_wasm("cwnn_model_contract").unwrap();
    let mut vm = ChainVm::new(&wasm).unwrap();
    let (owner, user) = (vm.addr("author"), vm.addr("user"));
    assert!(package.instantiate.execute_budget.is_none(), "the default budget");
    vm.instantiate(&owner, &package.instantiate, &[])
        .unwrap()
        .result
        .unwrap();
    for msg in ExecuteMsg::uploads(&package.weights)
        .iter()
        .chain([&ExecuteMsg::Finalize {}])
    {
        vm.execute(&owner, msg, &[]).unwrap().result.unwrap();
    }
    let sample = &import::read_samples(&imported.float, &[calibration]).unwrap().inputs[0];
    let q = config.input.quantize(sample).unwrap();
    let input = q.data.to_i32s();
    // The whole model is over the query budget: Predict refuses it by name.
    let refused = vm
        .query(&QueryMsg::Predict {
            input: input.clone(),
            input_bytes: None,
        })
        .unwrap()
        .result
        .unwrap_err();
    assert!(refused.contains("over budget"), "{refused}");

    let native = config.run_all(&package.weights, q).unwrap();
    let mut msg = ExecuteMsg::Evaluate {
        input,
        input_bytes: None,
        steps: None,
    };
    let (mut calls, mut most, mut total) = (0u64, 0u64, 0u64);
    let output = loop {
        let call = vm.execute(&user, &msg, &[]).unwrap();
        let gas = call.gas.total_sdk_gas;
        (calls, most, total) = (calls + 1, most.max(gas), total + gas);
        let data: EvaluateResponse = serde_json::from_slice(&call.result.unwrap().data.unwrap()).unwrap();
        match data.output {
            Some(o) => break o,
            None => {
                msg = ExecuteMsg::Continue {
                    job_id: data.job_id,
                    steps: None,
                }
            }
        }
    };
    eprintln!(
        "{} layers, {} weight bytes: {calls} calls, {total} SDK gas in all, at most {most} in one call",
        config.layers.len(),
        package.weights.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(output.data, native.last().unwrap().data.to_i32s());
    assert!(calls > 1, "a job of one call would not test segments");
    // WorkBudget::default_execute's promise: about 3.5M SDK gas per call.
    assert!(most <= 3_500_000, "{most} SDK gas in one call");
}
