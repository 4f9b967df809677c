//! The oracle calls a deployed model contract from its own execute and query (cw-multi-test).

use cosmwasm_std::Addr;
use cw_multi_test::{ContractWrapper, Executor};
use cwnn_digit_oracle::contract::{execute, instantiate, query};
use cwnn_digit_oracle::msg::{Classification, ExecuteMsg, InstantiateMsg, QueryMsg};
use cwnn_model_contract::testing::{mlp, ready, Env};

fn oracle(env: &mut Env) -> Addr {
    let code = env
        .app
        .store_code(Box::new(ContractWrapper::new(execute, instantiate, query)));
    let owner = env.owner.clone();
    let msg = InstantiateMsg {
        model: env.model.to_string(),
    };
    env.app
        .instantiate_contract(code, owner, &msg, &[], "digit-oracle", None)
        .unwrap()
}

/// Argmax as the oracle defines it: highest score, first on a tie.
fn argmax(v: &[i32]) -> u32 {
    let best = *v.iter().max().unwrap();
    v.iter().position(|&x| x == best).unwrap() as u32
}

#[test]
fn oracle_classifies_through_the_model_contract() {
    let m = mlp(64, 32, 10);
    let mut env = ready(&m, &m.instantiate_msg(), &[]);
    let oracle = oracle(&mut env);
    let alice = env.addr("alice");
    let expected = argmax(&m.native());

    let q: Classification = env
        .app
        .wrap()
        .query_wasm_smart(
            &oracle,
            &QueryMsg::Classify {
                input: m.sample_values(),
            },
        )
        .unwrap();
    assert_eq!(q.label, expected);
    assert_eq!(q.score, m.native()[expected as usize]);

    let res = env
        .app
        .execute_contract(
            alice.clone(),
            oracle.clone(),
            &ExecuteMsg::Classify {
                input: m.sample_values(),
            },
            &[],
        )
        .unwrap();
    let data: Classification = cosmwasm_std::from_json(res.data.unwrap()).unwrap();
    assert_eq!(data, q);
    let last = |env: &Env, who: &Addr| -> Option<Classification> {
        let msg = QueryMsg::Last {
            address: who.to_string(),
        };
        env.app.wrap().query_wasm_smart(&oracle, &msg).unwrap()
    };
    assert_eq!(last(&env, &alice), Some(q));

    // The model's refusal reaches the caller, and nothing is recorded.
    let bob = env.addr("bob");
    let err = env
        .app
        .execute_contract(
            bob.clone(),
            oracle.clone(),
            &ExecuteMsg::Classify { input: vec![0; 3] },
            &[],
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("length differs"), "{err:#}");
    assert_eq!(last(&env, &bob), None);
}
