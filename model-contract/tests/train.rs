//! Training on chain (`Train`, `Reinforce`, `SetTraining`) on cw-multi-test: a step stores
//! exactly what the native step computes, versions and hashes follow, and every bad input or
//! unauthorised sender is a named error that changes no state.

use cosmwasm_std::{coin, Addr};
use cwnn_layers::train::{Sample, ONE};
use cwnn_model_contract::msg::*;
use cwnn_model_contract::testing::*;
use cwnn_model_contract::ContractError;
use cwnn_tensor::{QTensor, TensorData};

/// Whether an error is the one a case expects.
type Named = fn(&ContractError) -> bool;

fn model() -> TestModel {
    mlp(8, 16, 4)
}

/// An input of the model's: the sample shifted by `k`.
fn input(m: &TestModel, k: i32) -> Vec<i32> {
    m.sample_values()
        .iter()
        .map(|v| (v + 13 * k).clamp(-128, 127))
        .collect()
}

fn example(m: &TestModel, k: i32, label: u32) -> TrainExample {
    TrainExample {
        input: input(m, k),
        input_bytes: None,
        label,
    }
}

fn train(examples: Vec<TrainExample>) -> ExecuteMsg {
    ExecuteMsg::Train { examples }
}

fn ready_trainable(m: &TestModel, rules: TrainingRules) -> Env {
    ready(m, &m.trainable_msg(rules), &[coin(1_000, DENOM)])
}

/// The weights after one native step of `m`'s head (`layers` trained) on `batch` from
/// `weights` and `fractions`.
fn native_step(
    m: &TestModel,
    layers: usize,
    weights: &[Vec<u8>],
    fractions: &[u8],
    batch: &[(Vec<i32>, u32, i32)],
) -> (Vec<Vec<u8>>, Vec<u8>) {
    let head = cwnn_layers::train::model_head(&m.config, &m.weights, layers).unwrap();
    let samples = batch
        .iter()
        .map(|(x, label, weight)| Sample {
            input: QTensor::new(
                m.sample.shape.clone(),
                TensorData::I8(x.iter().map(|&v| v as i8).collect()),
                m.sample.quant,
            )
            .unwrap(),
            label: *label,
            weight: *weight,
        })
        .collect();
    let refs: Vec<&[u8]> = weights.iter().map(Vec::as_slice).collect();
    let lr = rules(TrainPolicy::Owner {}).lr;
    let update = head.model_step(&m.config, &refs, fractions, samples, lr).unwrap();
    let mut next = weights.to_vec();
    for (index, bytes) in update.layers {
        next[index] = bytes;
    }
    (next, update.fractions)
}

fn attr(res: &cw_multi_test::AppResponse, key: &str) -> String {
    res.events
        .iter()
        .filter(|e| e.ty == "wasm-cwnn_train")
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == key)
        .unwrap_or_else(|| panic!("no {key} in the cwnn_train event"))
        .value
        .clone()
}

/// Two steps: each stores the native step's weights (the Predict answers as the native model
/// with them), the version counts them and the hashes in `ModelInfo` and the event are the new
/// weights'. With the head alone, and with the Dense before it.
#[test]
fn steps_store_the_native_step_and_a_new_version() {
    for layers in [1, 2] {
        steps_store_the_native_step(layers);
    }
}

fn steps_store_the_native_step(layers: usize) {
    let m = model();
    let msg = m.trainable_msg_with(rules(TrainPolicy::Owner {}), layers);
    let mut env = ready(&m, &msg, &[]);
    assert_eq!(env.info().version, 0);
    let owner = env.owner.clone();
    let (mut weights, mut fractions) = (m.weights.clone(), Vec::new());
    for (version, batch) in [
        vec![(input(&m, 0), 1u32), (input(&m, 1), 3)],
        vec![(input(&m, 2), 0), (input(&m, 3), 2), (input(&m, 4), 1)],
    ]
    .into_iter()
    .enumerate()
    {
        let msg = train(
            batch
                .iter()
                .map(|(x, y)| TrainExample {
                    input: x.clone(),
                    input_bytes: None,
                    label: *y,
                })
                .collect(),
        );
        let res = env.exec(&owner, msg).unwrap();
        let batch: Vec<_> = batch.into_iter().map(|(x, y)| (x, y, ONE)).collect();
        (weights, fractions) = native_step(&m, layers, &weights, &fractions, &batch);
        let info = env.info();
        assert_eq!(info.version, version as u64 + 1);
        assert_eq!(info.weights_sha256, weights_sha256(&weights));
        assert_eq!(
            info.model_sha256,
            model_sha256(&m.config, &info.weights_sha256).unwrap()
        );
        assert_eq!(attr(&res, "model_sha256"), info.model_sha256.to_hex());
        assert_eq!(attr(&res, "version"), info.version.to_string());
        for k in 0..5 {
            let native = m.config.run_all(&weights, {
                let x = input(&m, k);
                QTensor::new(
                    m.sample.shape.clone(),
                    TensorData::I8(x.iter().map(|&v| v as i8).collect()),
                    m.sample.quant,
                )
                .unwrap()
            });
            assert_eq!(
                env.predict(input(&m, k)).unwrap().data,
                native.unwrap().last().unwrap().data.to_i32s()
            );
        }
    }
    assert_ne!(weights[1], m.weights[1], "the head moved");
    assert_eq!(
        weights[0] != m.weights[0],
        layers == 2,
        "the layer before moves when it trains"
    );
}

#[test]
fn bad_training_inputs_are_named_and_change_nothing() {
    let m = model();
    let mut env = ready_trainable(&m, rules(TrainPolicy::Owner {}));
    let owner = env.owner.clone();
    let nine: Vec<TrainExample> = (0..9).map(|k| example(&m, k, 0)).collect();
    let wide = TrainExample {
        input: vec![300; 8],
        ..example(&m, 0, 1)
    };
    let short = TrainExample {
        input: vec![1; 7],
        ..example(&m, 0, 1)
    };
    let cases: Vec<(ExecuteMsg, Named)> = vec![
        (train(vec![example(&m, 0, 1), example(&m, 1, 4)]), |e| {
            matches!(
                e,
                ContractError::Label {
                    example: 1,
                    label: 4,
                    classes: 4
                }
            )
        }),
        (train(vec![wide]), |e| matches!(e, ContractError::Input(_))),
        (train(vec![short]), |e| matches!(e, ContractError::Input(_))),
        (train(nine), |e| {
            matches!(e, ContractError::BatchSize { max: 8, got: 9 })
        }),
        (train(vec![]), |e| matches!(e, ContractError::BatchSize { got: 0, .. })),
    ];
    for (msg, named) in cases {
        let err = env.refused(&owner, msg);
        assert!(named(&err), "{err}");
    }
    assert_eq!(env.info().version, 0);
}

#[test]
fn only_a_trainable_finalized_unfrozen_model_trains() {
    let m = model();
    // Without a head: refused.
    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let owner = env.owner.clone();
    let err = env.refused(&owner, train(vec![example(&m, 0, 1)]));
    assert!(matches!(err, ContractError::NotTrainable(_)), "{err}");
    let err = env.refused(
        &owner,
        ExecuteMsg::SetTraining {
            rules: rules(TrainPolicy::Owner {}),
        },
    );
    assert!(matches!(err, ContractError::NotTrainable(_)), "{err}");
    // Before Finalize: refused.
    let mut env = deploy(&m.trainable_msg(rules(TrainPolicy::Owner {})), &[]);
    let owner = env.owner.clone();
    let err = env.refused(&owner, train(vec![example(&m, 0, 1)]));
    assert!(matches!(err, ContractError::NotFinalized {}), "{err}");
    // Frozen, then thawed by the owner.
    let frozen = TrainingRules {
        frozen: true,
        ..rules(TrainPolicy::Owner {})
    };
    let mut env = ready_trainable(&m, frozen);
    let owner = env.owner.clone();
    let err = env.refused(&owner, train(vec![example(&m, 0, 1)]));
    assert!(matches!(err, ContractError::TrainingFrozen {}), "{err}");
    let thaw = ExecuteMsg::SetTraining {
        rules: rules(TrainPolicy::Owner {}),
    };
    let alice = env.addr("alice");
    assert!(matches!(
        env.refused(&alice, thaw.clone()),
        ContractError::Unauthorized {}
    ));
    env.exec(&owner, thaw).unwrap();
    env.exec(&owner, train(vec![example(&m, 0, 1)])).unwrap();
    assert_eq!(env.info().version, 1);
}

/// A head that is not the model's last Dense before a Softmax, or rules out of range, are
/// refused at instantiation; bad rules by `SetTraining` too.
#[test]
fn bad_heads_and_rules_are_refused() {
    let m = model();
    let head = cwnn_layers::train::model_head(&m.config, &m.weights, 1).unwrap();
    let dense = dense_only(8, 4);
    let mut app = app_with(&[]);
    let owner = app.api().addr_make("owner");
    let on = |config: &TestModel, head: &cwnn_layers::train::Head, r: TrainingRules| InstantiateMsg {
        training: Some(Training {
            head: head.clone(),
            rules: r,
        }),
        ..config.instantiate_msg()
    };
    let err = instantiate_in(&mut app, &owner, &on(&dense, &head, rules(TrainPolicy::Owner {}))).unwrap_err();
    assert!(matches!(err, ContractError::Layer { .. }), "no Softmax: {err}");
    let wrong = cwnn_layers::train::Head {
        in_features: 15,
        ..head.clone()
    };
    let err = instantiate_in(&mut app, &owner, &on(&m, &wrong, rules(TrainPolicy::Owner {}))).unwrap_err();
    assert!(
        matches!(err, ContractError::Layer { index: 1, .. }),
        "a head of another shape: {err}"
    );
    // A hidden layer that is not the Dense before the head (another clamp), or on a model with
    // no Dense before its head.
    let two = cwnn_layers::train::model_head(&m.config, &m.weights, 2).unwrap();
    let mut hidden = two.hidden.clone().unwrap();
    hidden.clamp.1 -= 1;
    let reclamped = cwnn_layers::train::Head {
        hidden: Some(hidden),
        ..two.clone()
    };
    let err = instantiate_in(&mut app, &owner, &on(&m, &reclamped, rules(TrainPolicy::Owner {}))).unwrap_err();
    assert!(
        matches!(err, ContractError::Layer { index: 0, .. }),
        "another clamp: {err}"
    );
    assert!(cwnn_layers::train::model_head(&dense.config, &dense.weights, 2).is_err());
    // A hidden layer claimed on a model of two layers (a head reading the input, a Softmax).
    let plans = m.config.plans().unwrap();
    let short = TestModel {
        config: ModelConfig {
            name: "short".into(),
            input: plans[0].output.clone(),
            layers: m.config.layers[1..].to_vec(),
        },
        weights: m.weights[1..].to_vec(),
        sample: m.sample.clone(),
    };
    let err = instantiate_in(&mut app, &owner, &on(&short, &two, rules(TrainPolicy::Owner {}))).unwrap_err();
    assert!(
        matches!(err, ContractError::Layer { index: 0, .. }),
        "two layers: {err}"
    );
    assert!(cwnn_layers::train::model_head(&m.config, &m.weights, 3).is_err());
    let bad_rules = [
        TrainingRules {
            max_batch: 0,
            ..rules(TrainPolicy::Owner {})
        },
        TrainingRules {
            max_batch: MAX_TRAIN_BATCH + 1,
            ..rules(TrainPolicy::Owner {})
        },
        TrainingRules {
            lr: cwnn_tensor::Dyadic { mantissa: -1, shift: 4 },
            ..rules(TrainPolicy::Owner {})
        },
        TrainingRules {
            max_per_block: Some(0),
            ..rules(TrainPolicy::Owner {})
        },
        TrainingRules {
            max_reward: Some(0),
            ..rules(TrainPolicy::Owner {})
        },
        TrainingRules {
            max_reward: Some(32_769),
            ..rules(TrainPolicy::Owner {})
        },
        rules(TrainPolicy::Allowlist {
            addresses: vec!["not an address".into()],
        }),
        rules(TrainPolicy::Allowlist {
            addresses: (0..33)
                .map(|k| app.api().addr_make(&format!("a{k}")).into_string())
                .collect(),
        }),
        rules(TrainPolicy::Anyone {
            fee: Some(coin(0, DENOM)),
        }),
    ];
    for r in bad_rules {
        let err = instantiate_in(&mut app, &owner, &on(&m, &head, r.clone())).unwrap_err();
        assert!(
            matches!(err, ContractError::InvalidConfig(_) | ContractError::Std(_)),
            "{r:?}: {err}"
        );
    }
    let mut env = ready_trainable(&m, rules(TrainPolicy::Owner {}));
    let owner = env.owner.clone();
    let err = env.refused(
        &owner,
        ExecuteMsg::SetTraining {
            rules: TrainingRules {
                max_batch: 0,
                ..rules(TrainPolicy::Owner {})
            },
        },
    );
    assert!(matches!(err, ContractError::InvalidConfig(_)), "{err}");
}

/// Who may train: the owner always; an allowlist's addresses; anyone paying the exact fee,
/// which accrues to the model's proceeds.
#[test]
fn the_policy_decides_who_trains_and_who_pays() {
    let m = model();
    let mut env = ready_trainable(&m, rules(TrainPolicy::Owner {}));
    let (owner, alice) = (env.owner.clone(), env.addr("alice"));
    let one = || train(vec![example(&m, 0, 1)]);
    let err = env.refused(&alice, one());
    assert!(matches!(err, ContractError::NotAllowedToTrain { .. }), "{err}");

    let bob = env.addr("bob");
    let list = rules(TrainPolicy::Allowlist {
        addresses: vec![bob.to_string()],
    });
    env.exec(&owner, ExecuteMsg::SetTraining { rules: list }).unwrap();
    let err = env.refused(&alice, one());
    assert!(matches!(err, ContractError::NotAllowedToTrain { .. }), "{err}");
    env.exec(&bob, one()).unwrap();

    let paid = rules(TrainPolicy::Anyone {
        fee: Some(coin(7, DENOM)),
    });
    env.exec(&owner, ExecuteMsg::SetTraining { rules: paid }).unwrap();
    for funds in [vec![], vec![coin(6, DENOM)], vec![coin(8, DENOM)]] {
        let err = env.refused_with(&alice, one(), &funds);
        assert!(matches!(err, ContractError::WrongFee { .. }), "{err}");
    }
    let before = env.balance(&alice);
    env.exec_with(&alice, one(), &[coin(7, DENOM)]).unwrap();
    assert_eq!(env.balance(&alice), before - 7);
    env.exec(&owner, one()).unwrap();
    let proceeds: ProceedsResponse = env
        .app
        .wrap()
        .query_wasm_smart(&env.model, &QueryMsg::Proceeds {})
        .unwrap();
    assert_eq!(proceeds.proceeds, vec![coin(7, DENOM)]);
    assert_eq!(env.info().version, 3);
}

/// Caps per block and per address: the next update in the same block is refused, the next
/// block takes it.
#[test]
fn caps_bound_updates_per_block_and_address() {
    let m = model();
    let capped = TrainingRules {
        max_per_block: Some(2),
        max_per_address: Some(1),
        ..rules(TrainPolicy::Anyone { fee: None })
    };
    let mut env = ready_trainable(&m, capped);
    let (alice, bob, carol) = (env.addr("alice"), env.addr("bob"), env.addr("carol"));
    let one = || train(vec![example(&m, 0, 1)]);
    env.exec(&alice, one()).unwrap();
    let err = env.refused(&alice, one());
    assert!(
        matches!(
            err,
            ContractError::TrainingCap {
                max: 1,
                scope: "per address"
            }
        ),
        "{err}"
    );
    env.exec(&bob, one()).unwrap();
    let err = env.refused(&carol, one());
    assert!(matches!(err, ContractError::TrainingCap { max: 2, .. }), "{err}");
    // The owner's updates are not counted: nobody can use them up.
    let owner = env.owner.clone();
    env.exec(&owner, one()).unwrap();
    env.exec(&owner, one()).unwrap();
    env.app.update_block(|b| b.height += 1);
    env.exec(&carol, one()).unwrap();
    env.exec(&alice, one()).unwrap();
    assert_eq!(env.info().version, 6);
}

/// A job runs on one version: after a step, a job that has not reached the head yet moves to
/// the new version and finishes as `Predict` does now; one that has computed the head is
/// refused by name (its output would mix versions), and no longer holds its creator's slot.
#[test]
fn a_job_past_the_head_at_a_step_is_refused_one_before_it_moves_on() {
    let m = model();
    let mut env = ready_trainable(&m, rules(TrainPolicy::Owner {}));
    let (owner, alice) = (env.owner.clone(), env.addr("alice"));
    let evaluate = |steps| ExecuteMsg::Evaluate {
        input: m.sample_values(),
        input_bytes: None,
        steps,
    };
    // Layers: Dense, the head (Dense), Softmax.
    let before_head = evaluate_data(&env.exec(&alice, evaluate(Some(1))).unwrap()).job_id;
    let past_head = evaluate_data(&env.exec(&alice, evaluate(Some(2))).unwrap()).job_id;
    env.exec(&owner, train(vec![example(&m, 0, 1)])).unwrap();
    let more = |job_id| ExecuteMsg::Continue { job_id, steps: None };
    let err = env.refused(&alice, more(past_head));
    assert!(
        matches!(
            err,
            ContractError::ModelUpdated {
                job_version: 0,
                version: 1,
                ..
            }
        ),
        "{err}"
    );
    let data = evaluate_data(&env.exec(&alice, more(before_head)).unwrap());
    assert_eq!(data.output.unwrap().data, env.predict(m.sample_values()).unwrap().data);
    assert_eq!(env.job(before_head).unwrap().version, 1);
    // At the job limit, the dead job is pruned as a finished one would be.
    env.exec(&alice, ExecuteMsg::CancelJob { job_id: before_head }).unwrap();
    for _ in 0..7 {
        env.exec(&alice, evaluate(Some(1))).unwrap();
    }
    let res = env.exec(&alice, evaluate(None)).unwrap();
    let pruned = res
        .events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == "pruned_job");
    assert_eq!(pruned.unwrap().value, past_head.to_string());
}

/// REINFORCE: the job's creator, once, on a finished job, with its input; the step is the
/// native step towards the class the job chose, weighted by the reward.
#[test]
fn reinforce_steps_towards_the_chosen_class_once() {
    let m = model();
    let anyone = TrainingRules {
        max_reward: Some(512),
        ..rules(TrainPolicy::Anyone { fee: None })
    };
    let mut env = ready_trainable(&m, anyone);
    let (alice, bob) = (env.addr("alice"), env.addr("bob"));
    let x = input(&m, 2);
    let start = |env: &mut Env, who: &Addr, steps| {
        let msg = ExecuteMsg::Evaluate {
            input: x.clone(),
            input_bytes: None,
            steps,
        };
        evaluate_data(&env.exec(who, msg).unwrap())
    };
    let done = start(&mut env, &alice, None);
    let unfinished = start(&mut env, &alice, Some(1)).job_id;
    let chosen = {
        let out = done.output.unwrap().data;
        (0..out.len()).fold(0, |b, k| if out[k] > out[b] { k } else { b }) as u32
    };
    let reinforce = |job_id, reward, x: Vec<i32>| ExecuteMsg::Reinforce {
        job_id,
        reward,
        input: x,
        input_bytes: None,
    };
    let cases: Vec<(&Addr, ExecuteMsg, Named)> = vec![
        (&bob, reinforce(done.job_id, 256, x.clone()), |e| {
            matches!(e, ContractError::NotJobCreator { .. })
        }),
        (&alice, reinforce(unfinished, 256, x.clone()), |e| {
            matches!(e, ContractError::JobNotFinished { .. })
        }),
        (&alice, reinforce(99, 256, x.clone()), |e| {
            matches!(e, ContractError::JobNotFound { id: 99 })
        }),
        (&alice, reinforce(done.job_id, 256, input(&m, 3)), |e| {
            matches!(e, ContractError::InputMismatch { .. })
        }),
        (&alice, reinforce(done.job_id, 0, x.clone()), |e| {
            matches!(e, ContractError::Reward { reward: 0, .. })
        }),
        (&alice, reinforce(done.job_id, -513, x.clone()), |e| {
            matches!(e, ContractError::Reward { max: 512, .. })
        }),
    ];
    for (who, msg, named) in cases {
        let err = env.refused(who, msg);
        assert!(named(&err), "{err}");
    }
    let res = env.exec(&alice, reinforce(done.job_id, -384, x.clone())).unwrap();
    assert_eq!(attr(&res, "labels"), chosen.to_string());
    let (weights, _) = native_step(&m, 1, &m.weights, &[], &[(x.clone(), chosen, -384)]);
    assert_eq!(env.info().weights_sha256, weights_sha256(&weights));
    let err = env.refused(&alice, reinforce(done.job_id, 256, x.clone()));
    assert!(matches!(err, ContractError::AlreadyReinforced { .. }), "{err}");
}

/// Attack: a batch whose forward passes and step exceed the execute budget (work a call would
/// do unbudgeted) is refused by name before any work.
#[test]
fn a_step_over_the_execute_budget_is_refused() {
    let m = model();
    let per_example = {
        let info = ready_trainable(&m, rules(TrainPolicy::Owner {})).info();
        info.layers.iter().map(|l| l.work).sum::<u64>() + 2 * 16 * 4
    };
    let msg = InstantiateMsg {
        execute_budget: Some(WorkBudget {
            max_work: 3 * per_example + 64,
            ..WorkBudget::default_execute()
        }),
        ..m.trainable_msg(rules(TrainPolicy::Owner {}))
    };
    let mut env = ready(&m, &msg, &[]);
    let owner = env.owner.clone();
    env.exec(&owner, train((0..3).map(|k| example(&m, k, 1)).collect()))
        .unwrap();
    let err = env.refused(&owner, train((0..4).map(|k| example(&m, k, 1)).collect()));
    assert!(matches!(err, ContractError::OverBudget { .. }), "{err}");
}
