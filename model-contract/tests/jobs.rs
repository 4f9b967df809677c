//! Layer-by-layer jobs: `Evaluate` / `Continue` / `CancelJob`, fees and events, on
//! cw-multi-test. The central check: however a job is cut into segments and calls, its
//! output equals `Predict`'s and the native layers', bit for bit.

use cosmwasm_std::{coin, Addr, Binary, Coin};
use cwnn_model_contract::msg::*;
use cwnn_model_contract::state::MAX_JOBS_PER_SENDER;
use cwnn_model_contract::testing::*;
use cwnn_model_contract::ContractError;
use cwnn_tensor::DType;
use sha2::{Digest, Sha256};

fn evaluate(input: Vec<i32>, steps: Option<u32>) -> ExecuteMsg {
    ExecuteMsg::Evaluate {
        input,
        input_bytes: None,
        steps,
    }
}

fn budget(max_work: u64, max_weight_bytes: u64, max_segments: u32) -> Option<WorkBudget> {
    Some(WorkBudget {
        max_work,
        max_weight_bytes,
        max_segments,
    })
}

/// Starts a job as "alice" and lets "relayer" continue it one call at a time; gives the output
/// and the number of calls.
fn run_to_end(env: &mut Env, m: &TestModel, steps: Option<u32>) -> (Vec<i32>, usize) {
    let (alice, relayer) = (env.addr("alice"), env.addr("relayer"));
    let res = env.exec(&alice, evaluate(m.sample_values(), steps)).unwrap();
    let mut data = evaluate_data(&res);
    let mut calls = 1;
    let mut last = (0, 0);
    while !data.finished {
        let job = env.job(data.job_id).unwrap();
        assert!((job.layer, job.unit) > last, "no progress: {job:?}");
        last = (job.layer, job.unit);
        assert!(job.output.is_none());
        let res = env
            .exec(
                &relayer,
                ExecuteMsg::Continue {
                    job_id: data.job_id,
                    steps,
                },
            )
            .unwrap();
        data = evaluate_data(&res);
        calls += 1;
        assert!(calls < 10_000, "job does not finish");
    }
    let out = data.output.unwrap();
    assert_eq!(env.job(data.job_id).unwrap().output.unwrap(), out);
    (out.data, calls)
}

#[test]
fn one_evaluate_matches_predict_and_emits_the_inference() {
    let m = mlp(784, 200, 10);
    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let alice = env.addr("alice");
    let res = env.exec(&alice, evaluate(m.sample_values(), None)).unwrap();
    let data = evaluate_data(&res);
    assert!(data.finished, "the default budget runs this MLP in one call");
    let out = data.output.unwrap();
    assert_eq!(out, env.predict(m.sample_values()).unwrap());
    assert_eq!(out.data, m.native());

    let event = res.events.iter().find(|e| e.ty == "wasm-cwnn_inference").unwrap();
    let attr = |k: &str| event.attributes.iter().find(|a| a.key == k).unwrap().value.clone();
    assert_eq!(attr("job_id"), data.job_id.to_string());
    assert_eq!(attr("weights_sha256"), m.sha256().to_hex());
    let input_bytes = m.sample.data.to_le_bytes();
    assert_eq!(attr("input_sha256"), hex(&Sha256::digest(&input_bytes)));
    let output = Binary::from_base64(&attr("output")).unwrap();
    assert_eq!(output.iter().map(|&b| b as i8 as i32).collect::<Vec<_>>(), out.data);
    assert_eq!(attr("output_sha256"), hex(&Sha256::digest(output.as_slice())));
    let started = res.events.iter().find(|e| e.ty == "wasm-cwnn_evaluate").unwrap();
    let input = started.attributes.iter().find(|a| a.key == "input").unwrap();
    assert_eq!(Binary::from_base64(&input.value).unwrap().to_vec(), input_bytes);
    // Only the output is left in storage: no intermediate tensor, no state.
    assert_eq!((env.keys_in("jt"), env.keys_in("js")), (1, 0));
}

fn hex(b: &[u8]) -> String {
    cosmwasm_std::HexBinary::from(b).to_hex()
}

#[test]
fn many_calls_match_predict_for_any_cut() {
    // (model, execute budget, steps, calls): cuts by weight bytes (25 of 200 rows a call), by
    // work (9 rows of 320 units after the segment's 3,000; 2 LSTM steps of 3,504 after 6,420),
    // by segments and by steps, most of them mid-layer.
    let cases: Vec<(TestModel, Option<WorkBudget>, Option<u32>, usize)> = vec![
        (mlp(784, 200, 10), budget(u64::MAX, 20_000, 64), None, 9),
        (mlp(784, 200, 10), None, Some(1), 3),
        (mlp(300, 40, 10), budget(6_000, u64::MAX, 3), Some(2), 6),
        (skip_lstm(), budget(14_000, 100_000, 1), None, 6),
        (skip_lstm(), budget(1_000_000, 2_000, 2), Some(1), 4),
        (skip_lstm(), None, None, 1),
        // `int16` precision: int16 tensors and the LSTM's state carried between calls (its
        // 5,700 weight bytes, read by every segment, need a larger byte budget).
        (skip_lstm_as(DType::I16), budget(40_000, 100_000, 1), None, 6),
        (skip_lstm_as(DType::I16), budget(1_000_000, 6_000, 2), Some(1), 4),
    ];
    for (i, (m, execute_budget, steps, expected_calls)) in cases.into_iter().enumerate() {
        let msg = InstantiateMsg {
            execute_budget,
            ..m.instantiate_msg()
        };
        let mut env = ready(&m, &msg, &[]);
        let (out, calls) = run_to_end(&mut env, &m, steps);
        assert_eq!(out, env.predict(m.sample_values()).unwrap().data, "case {i}");
        assert_eq!(out, m.native(), "case {i}");
        assert_eq!(calls, expected_calls, "case {i}");
        assert_eq!((env.keys_in("jt"), env.keys_in("js")), (1, 0), "case {i} left tensors");
    }
}

/// A model with a fee of 100 ucosm, and alice with 1,000 ucosm and 1,000 uother.
fn paid_model() -> (TestModel, Env, Addr) {
    let m = mlp(16, 8, 4);
    let msg = InstantiateMsg {
        fee: Some(coin(100, DENOM)),
        ..m.instantiate_msg()
    };
    let env = ready(&m, &msg, &[coin(1_000, DENOM), coin(1_000, "uother")]);
    let alice = env.addr("alice");
    (m, env, alice)
}

#[test]
fn fees_accrue_until_the_owner_withdraws_and_wrong_payments_are_refused() {
    let (m, mut env, alice) = paid_model();
    let input = m.sample_values();
    for funds in [
        vec![],
        vec![coin(99, DENOM)],
        vec![coin(100, "uother")],
        vec![coin(100, DENOM), coin(1, "uother")],
        // Overpayment is refused, not kept (attack 5).
        vec![coin(150, DENOM)],
    ] {
        assert!(
            matches!(
                env.refused_with(&alice, evaluate(input.clone(), None), &funds),
                ContractError::WrongFee { .. }
            ),
            "{funds:?}"
        );
    }
    let owner = env.owner.clone();
    let res = env
        .exec_with(&alice, evaluate(input.clone(), None), &[coin(100, DENOM)])
        .unwrap();
    assert!(evaluate_data(&res).finished);
    // The fee stays in the model until the owner withdraws it; nobody else may.
    assert_eq!(
        (
            env.balance(&alice),
            env.balance(&owner),
            env.balance(&env.model.clone())
        ),
        (900, 0, 100)
    );
    let proceeds: ProceedsResponse = env
        .app
        .wrap()
        .query_wasm_smart(&env.model, &QueryMsg::Proceeds {})
        .unwrap();
    assert_eq!(proceeds.proceeds, vec![coin(100, DENOM)]);
    assert_eq!(
        env.refused(&alice, ExecuteMsg::Withdraw { denom: None }),
        ContractError::Unauthorized {}
    );
    env.exec(&owner, ExecuteMsg::Withdraw { denom: None }).unwrap();
    assert_eq!((env.balance(&owner), env.balance(&env.model.clone())), (100, 0));
    assert_eq!(
        env.refused(&owner, ExecuteMsg::Withdraw { denom: None }),
        ContractError::NothingToWithdraw {}
    );
}

#[test]
fn the_owner_changes_the_fee_and_withdraws_one_denom_at_a_time() {
    let (m, mut env, alice) = paid_model();
    let owner = env.owner.clone();
    // The owner changes the fee; a stranger may not.
    let no_fee = ExecuteMsg::SetFee { fee: None };
    assert_eq!(env.refused(&alice, no_fee.clone()), ContractError::Unauthorized {});
    let zero = ExecuteMsg::SetFee {
        fee: Some(coin(0, DENOM)),
    };
    assert!(matches!(env.refused(&owner, zero), ContractError::InvalidConfig(_)));
    env.exec(
        &owner,
        ExecuteMsg::SetFee {
            fee: Some(coin(10, "uother")),
        },
    )
    .unwrap();
    env.exec_with(&alice, evaluate(m.sample_values(), None), &[coin(10, "uother")])
        .unwrap();
    assert_eq!(env.info().fee, Some(coin(10, "uother")));
    // One denom at a time, so a denom the bank refuses to send can't hold back the others.
    let one = |d: &str| ExecuteMsg::Withdraw { denom: Some(d.into()) };
    assert_eq!(env.refused(&owner, one(DENOM)), ContractError::NothingToWithdraw {});
    env.exec(&owner, one("uother")).unwrap();
    let other = env.app.wrap().query_balance(&owner, "uother").unwrap().amount.u128();
    assert_eq!((other, env.balance(&owner)), (10, 0));
}

#[test]
fn a_model_without_a_fee_refuses_funds_rather_than_keeping_them() {
    let m = mlp(16, 8, 4);
    let mut free = ready(&m, &m.instantiate_msg(), &[coin(1_000, DENOM)]);
    let alice = free.addr("alice");
    let input = m.sample_values();
    let pay: &[Coin] = &[coin(5, DENOM)];
    assert_eq!(
        free.refused_with(&alice, evaluate(input.clone(), None), pay),
        ContractError::UnexpectedFunds {}
    );
    let id = evaluate_data(&free.exec(&alice, evaluate(input, Some(1))).unwrap()).job_id;
    let cont = ExecuteMsg::Continue {
        job_id: id,
        steps: None,
    };
    assert_eq!(free.refused_with(&alice, cont, pay), ContractError::UnexpectedFunds {});
}

#[test]
fn bad_job_messages_are_named_errors_without_state_change() {
    let m = mlp(16, 8, 4);
    let (alice, bob) = (
        cosmwasm_std::testing::MockApi::default().addr_make("alice"),
        cosmwasm_std::testing::MockApi::default().addr_make("bob"),
    );
    let mut fresh = deploy(&m.instantiate_msg(), &[]);
    assert_eq!(
        fresh.refused(&alice, evaluate(m.sample_values(), None)),
        ContractError::NotFinalized {}
    );

    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let input = m.sample_values();
    assert_eq!(
        env.refused(&alice, evaluate(input.clone(), Some(0))),
        ContractError::ZeroSteps {}
    );
    assert!(matches!(
        env.refused(&alice, evaluate(vec![1; 3], None)),
        ContractError::Input(_)
    ));
    assert!(matches!(
        env.refused(&alice, evaluate(vec![200; 16], None)),
        ContractError::Input(_)
    ));
    let cont = |job_id| ExecuteMsg::Continue { job_id, steps: None };
    assert_eq!(env.refused(&alice, cont(42)), ContractError::JobNotFound { id: 42 });
    let running = evaluate_data(&env.exec(&alice, evaluate(input.clone(), Some(1))).unwrap()).job_id;
    assert_eq!(
        env.refused(
            &alice,
            ExecuteMsg::Continue {
                job_id: running,
                steps: Some(0)
            }
        ),
        ContractError::ZeroSteps {}
    );
    let done = evaluate_data(&env.exec(&alice, evaluate(input.clone(), None)).unwrap()).job_id;
    assert_eq!(env.refused(&bob, cont(done)), ContractError::JobFinished { id: done });
    assert_eq!(
        env.refused(&bob, ExecuteMsg::CancelJob { job_id: running }),
        ContractError::NotJobCreator { id: running }
    );
    assert_eq!(
        env.refused(&alice, ExecuteMsg::CancelJob { job_id: 42 }),
        ContractError::JobNotFound { id: 42 }
    );

    // Cancelling removes everything the job stored.
    env.exec(&alice, ExecuteMsg::CancelJob { job_id: running }).unwrap();
    env.exec(&alice, ExecuteMsg::CancelJob { job_id: done }).unwrap();
    assert!(env.job(running).unwrap_err().contains("not found"));
    for ns in ["job", "job_by", "jt", "js"] {
        assert_eq!(env.keys_in(ns), 0, "{ns}");
    }
    assert_eq!(env.keys_in("job_n"), 1, "alice's count stays, at zero");
}

#[test]
fn jobs_per_sender_are_bounded() {
    let m = mlp(16, 8, 4);
    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let (alice, bob) = (env.addr("alice"), env.addr("bob"));
    let input = m.sample_values();
    let mut ids = vec![];
    for _ in 0..MAX_JOBS_PER_SENDER {
        ids.push(evaluate_data(&env.exec(&alice, evaluate(input.clone(), Some(1))).unwrap()).job_id);
    }
    // All running: a ninth is refused, but others may still start jobs.
    assert_eq!(
        env.refused(&alice, evaluate(input.clone(), Some(1))),
        ContractError::TooManyJobs {
            max: MAX_JOBS_PER_SENDER
        }
    );
    env.exec(&bob, evaluate(input.clone(), Some(1))).unwrap();
    // Once two have finished, a new job replaces the oldest finished one.
    for &id in &ids[2..4] {
        env.exec(
            &bob,
            ExecuteMsg::Continue {
                job_id: id,
                steps: None,
            },
        )
        .unwrap();
    }
    let res = env.exec(&alice, evaluate(input, Some(1))).unwrap();
    let pruned = res
        .events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == "pruned_job")
        .unwrap();
    assert_eq!(pruned.value, ids[2].to_string());
    assert!(env.job(ids[2]).is_err() && env.job(ids[3]).is_ok());
    let jobs: JobsResponse = env
        .app
        .wrap()
        .query_wasm_smart(
            &env.model,
            &QueryMsg::Jobs {
                creator: alice.to_string(),
            },
        )
        .unwrap();
    assert_eq!(jobs.ids.len(), MAX_JOBS_PER_SENDER as usize);
    assert!(!jobs.ids.contains(&ids[2]));
}

#[test]
fn budgets_and_activations_are_checked_at_instantiation() {
    let m = mlp(300, 40, 10);
    let app_err = |msg: InstantiateMsg| -> ContractError {
        let mut app = cw_multi_test::App::default();
        let owner = app.api().addr_make("owner");
        instantiate_in(&mut app, &owner, &msg).unwrap_err()
    };
    // One Dense row of 300 inputs is 300 MACs and 320 work units (with its requantization),
    // plus 3,000 for centring the input, which every segment pays; and 309 bytes (row, bias,
    // multiplier): neither limit may be below that.
    let plan = m.config.layers[0].layer.plan(&[&m.config.input]).unwrap();
    let one_row = plan.work.div_ceil(plan.units as u64) + plan.segment_work;
    assert_eq!(one_row, 3_320);
    assert_eq!(
        app_err(InstantiateMsg {
            execute_budget: budget(one_row - 1, u64::MAX, 4),
            ..m.instantiate_msg()
        }),
        ContractError::SegmentOverBudget {
            index: 0,
            work: one_row,
            weight_bytes: 309
        }
    );
    assert!(matches!(
        app_err(InstantiateMsg {
            execute_budget: budget(u64::MAX, 308, 4),
            ..m.instantiate_msg()
        }),
        ContractError::SegmentOverBudget { index: 0, .. }
    ));
    assert!(matches!(
        app_err(InstantiateMsg {
            execute_budget: budget(u64::MAX, u64::MAX, 0),
            ..m.instantiate_msg()
        }),
        ContractError::InvalidConfig(_)
    ));
    assert!(matches!(
        app_err(InstantiateMsg {
            fee: Some(coin(0, DENOM)),
            ..m.instantiate_msg()
        }),
        ContractError::InvalidConfig(_)
    ));
    // A 140,000-wide int8 activation does not fit one storage value.
    let mut wide = m.config.clone();
    let cwnn_layers::Layer::Dense(d) = &mut wide.layers[1].layer else {
        unreachable!()
    };
    d.out_features = 140_000;
    assert_eq!(
        app_err(InstantiateMsg {
            model: wide,
            ..m.instantiate_msg()
        }),
        ContractError::TensorTooLarge {
            tensor: 2,
            bytes: 140_000
        }
    );
}

#[test]
fn the_owner_pauses_and_sets_budgets_and_strangers_may_not() {
    let m = mlp(16, 8, 4);
    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let (owner, alice) = (env.owner.clone(), env.addr("alice"));
    let input = m.sample_values();
    let id = evaluate_data(&env.exec(&alice, evaluate(input.clone(), Some(1))).unwrap()).job_id;

    let pause = ExecuteMsg::SetPaused { paused: true };
    assert_eq!(env.refused(&alice, pause.clone()), ContractError::Unauthorized {});
    env.exec(&owner, pause).unwrap();
    assert!(env.info().paused);
    assert_eq!(
        env.refused(&alice, evaluate(input.clone(), None)),
        ContractError::Paused {}
    );
    let more = ExecuteMsg::Continue {
        job_id: id,
        steps: None,
    };
    assert!(env.predict(input.clone()).unwrap_err().contains("paused"));
    // A started job was paid for: a pause does not freeze it (attack 5).
    assert!(evaluate_data(&env.exec(&alice, more).unwrap()).finished);
    env.exec(&owner, ExecuteMsg::SetPaused { paused: false }).unwrap();

    let set = |execute_budget: WorkBudget| ExecuteMsg::SetBudgets {
        query_budget: WorkBudget::default_query(),
        execute_budget,
    };
    // The softmax's one unit (5,560 work units: its 1,024-byte table read and 4 elements) just
    // fits; the whole model does not.
    let small = WorkBudget {
        max_work: 5_600,
        max_weight_bytes: 1_100,
        max_segments: 4,
    };
    assert_eq!(env.refused(&alice, set(small.clone())), ContractError::Unauthorized {});
    // A budget no segment of layer 0 fits is refused, as at instantiation.
    let tiny = WorkBudget {
        max_weight_bytes: 10,
        ..small.clone()
    };
    assert!(matches!(
        env.refused(&owner, set(tiny)),
        ContractError::SegmentOverBudget { index: 0, .. }
    ));
    let none = WorkBudget {
        max_segments: 0,
        ..small.clone()
    };
    assert!(matches!(
        env.refused(&owner, set(none)),
        ContractError::InvalidConfig(_)
    ));
    assert_eq!(env.info().execute_budget, WorkBudget::default_execute());
    env.exec(&owner, set(small.clone())).unwrap();
    assert_eq!(env.info().execute_budget, small);
    assert!(env.info().layers.iter().map(|l| l.work).sum::<u64>() > small.max_work);
    // Jobs now take more calls, and still match Predict.
    let res = env.exec(&alice, evaluate(input.clone(), None)).unwrap();
    assert!(!evaluate_data(&res).finished);
}
