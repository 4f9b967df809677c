//! The oracle calls a deployed model contract from its own execute and query (cw-multi-test).

use cosmwasm_std::{coin, Addr};
use cw_multi_test::{ContractWrapper, Executor};
use cwnn_digit_oracle::contract::{execute, instantiate, query, reply};
use cwnn_digit_oracle::msg::{Classification, ExecuteMsg, InstantiateMsg, QueryMsg};
use cwnn_model_contract::msg::{InstantiateMsg as ModelInit, ProceedsResponse, QueryMsg as ModelQuery};
use cwnn_model_contract::testing::{mlp, ready, Env, DENOM};

fn oracle(env: &mut Env) -> Addr {
    let code = env.app.store_code(Box::new(
        ContractWrapper::new(execute, instantiate, query).with_reply(reply),
    ));
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

/// Attack 9: the oracle kept any funds sent to it. It now forwards them, exactly, as the
/// model's fee: the model takes a right fee, and a wrong one reverts the whole transaction.
#[test]
fn oracle_pays_the_model_and_keeps_nothing() {
    let m = mlp(64, 32, 10);
    let msg = ModelInit {
        fee: Some(coin(100, DENOM)),
        ..m.instantiate_msg()
    };
    let mut env = ready(&m, &msg, &[coin(1_000, DENOM)]);
    let oracle = oracle(&mut env);
    let alice = env.addr("alice");
    let classify = ExecuteMsg::Classify {
        input: m.sample_values(),
    };
    // The free query is closed on a fee'd model, so the oracle's query says so.
    let q: Result<Classification, _> = env.app.wrap().query_wasm_smart(
        &oracle,
        &QueryMsg::Classify {
            input: m.sample_values(),
        },
    );
    assert!(q.unwrap_err().to_string().contains("charges a fee"));
    for wrong in [vec![], vec![coin(150, DENOM)]] {
        let err = env
            .app
            .execute_contract(alice.clone(), oracle.clone(), &classify, &wrong)
            .unwrap_err();
        assert!(format!("{err:#}").contains("wrong fee"), "{err:#}");
        assert_eq!((env.balance(&alice), env.balance(&oracle)), (1_000, 0));
    }
    let res = env
        .app
        .execute_contract(alice.clone(), oracle.clone(), &classify, &[coin(100, DENOM)])
        .unwrap();
    let c: Classification = cosmwasm_std::from_json(res.data.unwrap()).unwrap();
    assert_eq!(c.label, argmax(&m.native()));
    assert_eq!((env.balance(&alice), env.balance(&oracle)), (900, 0));
    let p: ProceedsResponse = env
        .app
        .wrap()
        .query_wasm_smart(&env.model, &ModelQuery::Proceeds {})
        .unwrap();
    assert_eq!(p.proceeds, vec![coin(100, DENOM)]);
}
