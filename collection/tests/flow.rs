//! The collection with real model contracts on cw-multi-test: mint through the model, infer
//! with a fee, transfer and approve + transfer_from, withdraw by the holder only; and every bad
//! input refused with a named error and no state change.

use cosmwasm_std::{coin, Addr, Coin, Empty};
use cw721::msg::{NftInfoResponse, NumTokensResponse, OwnerOfResponse};
use cw721::DefaultOptionalNftExtension;
use cw_multi_test::{ContractWrapper, Executor};
use cwnn_collection::msg::{ExecuteMsg, InstantiateMsg, ModelsResponse, QueryMsg, TokenOfResponse};
use cwnn_collection::state::ModelMetadata;
use cwnn_collection::ContractError;
use cwnn_model_contract::msg::{
    ExecuteMsg as ModelMsg, InstantiateMsg as ModelInit, OwnerResponse, ProceedsResponse, QueryMsg as ModelQuery,
};
use cwnn_model_contract::testing::{instantiate_in, mlp, ready, Env, TestModel, DENOM};
use cwnn_model_contract::ContractError as ModelError;

struct World {
    env: Env,
    m: TestModel,
    collection: Addr,
}

fn fee() -> Coin {
    coin(100, DENOM)
}

fn world() -> World {
    let m = mlp(16, 8, 4);
    let msg = ModelInit {
        fee: Some(fee()),
        ..m.instantiate_msg()
    };
    let mut env = ready(&m, &msg, &[coin(1_000, DENOM)]);
    let model_code = env.app.wrap().query_wasm_contract_info(&env.model).unwrap().code_id;
    let code = env.app.store_code(Box::new(ContractWrapper::new(
        cwnn_collection::contract::execute,
        cwnn_collection::contract::instantiate,
        cwnn_collection::contract::query,
    )));
    let init = InstantiateMsg {
        name: "cwnn models".into(),
        symbol: "CWNN".into(),
        model_code_ids: vec![model_code],
    };
    let creator = env.addr("creator");
    let collection = env
        .app
        .instantiate_contract(code, creator, &init, &[], "collection", None)
        .unwrap();
    World { env, m, collection }
}

impl World {
    fn mint_msg(&self, token_id: &str) -> ModelMsg {
        ModelMsg::MintNft {
            collection: self.collection.to_string(),
            token_id: token_id.into(),
            token_uri: Some("https://example.org/digits".into()),
            claimed_accuracy_bps: Some(9_749),
        }
    }
    fn model_exec(&mut self, sender: &Addr, msg: ModelMsg, funds: &[Coin]) -> anyhow::Result<()> {
        let model = self.env.model.clone();
        self.env
            .app
            .execute_contract(sender.clone(), model, &msg, funds)
            .map(|_| ())
    }
    fn nft_exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> anyhow::Result<()> {
        let c = self.collection.clone();
        self.env.app.execute_contract(sender.clone(), c, &msg, &[]).map(|_| ())
    }
    fn q<T: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> T {
        self.env.app.wrap().query_wasm_smart(&self.collection, msg).unwrap()
    }
    fn holder(&self) -> String {
        let r: OwnerOfResponse = self.q(&QueryMsg::OwnerOf {
            token_id: "digits".into(),
            include_expired: None,
        });
        r.owner
    }
    fn tokens(&self) -> u64 {
        self.q::<NumTokensResponse>(&QueryMsg::NumTokens {}).count
    }
    fn model_owner(&self) -> OwnerResponse {
        self.env
            .app
            .wrap()
            .query_wasm_smart(&self.env.model, &ModelQuery::Owner {})
            .unwrap()
    }
    fn proceeds(&self) -> Vec<Coin> {
        let r: ProceedsResponse = self
            .env
            .app
            .wrap()
            .query_wasm_smart(&self.env.model, &ModelQuery::Proceeds {})
            .unwrap();
        r.proceeds
    }
    fn infer(&mut self) {
        let alice = self.env.addr("alice");
        let msg = ModelMsg::Evaluate {
            input: self.m.sample_values(),
            steps: None,
        };
        self.model_exec(&alice, msg, &[fee()]).unwrap();
    }
}

/// The contract error behind a failed call (it may come from a sub-message).
fn model_err(e: anyhow::Error) -> ModelError {
    e.downcast().unwrap_or_else(|e| panic!("{e:#}"))
}
fn collection_err(e: anyhow::Error) -> ContractError {
    e.downcast().unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn mint_infer_transfer_and_withdraw() {
    let mut w = world();
    let owner = w.env.owner.clone();
    let (bob, carol) = (w.env.addr("bob"), w.env.addr("carol"));
    w.model_exec(&owner, w.mint_msg("digits"), &[]).unwrap();
    assert_eq!(w.holder(), owner.to_string());
    assert_eq!(w.tokens(), 1);

    // The model knows its token; the collection knows the model.
    let o = w.model_owner();
    assert_eq!(o.owner, owner.to_string());
    let nft = o.nft.unwrap();
    assert_eq!(
        (nft.collection, nft.token_id.as_str()),
        (w.collection.clone(), "digits")
    );
    let meta: ModelMetadata = w.q(&QueryMsg::Model {
        token_id: "digits".into(),
    });
    assert_eq!(meta.model, w.env.model);
    assert_eq!(meta.layers, ["dense", "dense", "softmax"]);
    assert_eq!(meta.macs, 16 * 8 + 8 * 4);
    assert_eq!((meta.input_shape, meta.output_shape), (vec![16], vec![4]));
    assert_eq!(meta.weights_sha256, w.m.sha256());
    assert_eq!(meta.claimed_accuracy_bps, Some(9_749));
    let t: TokenOfResponse = w.q(&QueryMsg::TokenOf {
        model: w.env.model.to_string(),
    });
    assert_eq!(t.token_id, "digits");
    let page: ModelsResponse = w.q(&QueryMsg::Models {
        start_after: None,
        limit: None,
    });
    assert_eq!(page.models.len(), 1);
    let info: NftInfoResponse<DefaultOptionalNftExtension> = w.q(&QueryMsg::NftInfo {
        token_id: "digits".into(),
    });
    let traits = info.extension.unwrap().attributes.unwrap();
    assert!(traits
        .iter()
        .any(|t| t.trait_type == "claimed_accuracy" && t.value == "97.49 %"));
    assert_eq!(info.token_uri.as_deref(), Some("https://example.org/digits"));

    // A paid inference; the fee waits in the model.
    w.infer();
    assert_eq!(w.proceeds(), vec![fee()]);

    // Plain transfer to bob: bob controls the model, the old holder does not.
    w.nft_exec(
        &owner,
        ExecuteMsg::TransferNft {
            recipient: bob.to_string(),
            token_id: "digits".into(),
        },
    )
    .unwrap();
    assert_eq!(w.model_owner().owner, bob.to_string());
    assert_eq!(
        model_err(w.model_exec(&owner, ModelMsg::Withdraw {}, &[]).unwrap_err()),
        ModelError::Unauthorized {}
    );
    let set_fee = ModelMsg::SetFee { fee: None };
    assert_eq!(
        model_err(w.model_exec(&owner, set_fee, &[]).unwrap_err()),
        ModelError::Unauthorized {}
    );
    assert_eq!(w.env.info().fee, Some(fee()));
    // Ownership now follows the token only.
    let transfer = ModelMsg::TransferOwnership {
        new_owner: owner.to_string(),
    };
    assert_eq!(
        model_err(w.model_exec(&bob, transfer, &[]).unwrap_err()),
        ModelError::OwnedByNft {}
    );
    w.model_exec(&bob, ModelMsg::Withdraw {}, &[]).unwrap();
    assert_eq!((w.env.balance(&bob), w.env.balance(&owner)), (100, 0));

    // Approve + transfer_from: carol, approved by bob, moves the token to herself.
    w.infer();
    w.nft_exec(
        &bob,
        ExecuteMsg::Approve {
            spender: carol.to_string(),
            token_id: "digits".into(),
            expires: None,
        },
    )
    .unwrap();
    w.nft_exec(
        &carol,
        ExecuteMsg::TransferNft {
            recipient: carol.to_string(),
            token_id: "digits".into(),
        },
    )
    .unwrap();
    assert_eq!(w.holder(), carol.to_string());
    assert_eq!(
        model_err(w.model_exec(&bob, ModelMsg::Withdraw {}, &[]).unwrap_err()),
        ModelError::Unauthorized {}
    );
    w.model_exec(&carol, ModelMsg::Withdraw {}, &[]).unwrap();
    assert_eq!((w.env.balance(&carol), w.env.balance(&bob)), (100, 100));
    // The new holder runs the owner-only actions.
    w.model_exec(&carol, ModelMsg::SetPaused { paused: true }, &[]).unwrap();
    assert!(w.env.info().paused);
}

#[test]
fn bad_mints_are_named_errors_without_state_change() {
    let mut w = world();
    let owner = w.env.owner.clone();
    let stranger = w.env.addr("stranger");

    // Minted by a stranger: the model refuses; nothing is minted or bound.
    assert_eq!(
        model_err(w.model_exec(&stranger, w.mint_msg("digits"), &[]).unwrap_err()),
        ModelError::Unauthorized {}
    );
    assert_eq!(w.tokens(), 0);
    assert_eq!(w.model_owner().nft, None);

    // For a non-model address: an account, or a contract of another code.
    let direct = ExecuteMsg::MintModel {
        token_id: "fake".into(),
        owner: stranger.to_string(),
        token_uri: None,
        claimed_accuracy_bps: None,
    };
    assert!(matches!(
        collection_err(w.nft_exec(&stranger, direct.clone()).unwrap_err()),
        ContractError::NotAModel { .. }
    ));
    let other = w.collection.clone();
    assert!(matches!(
        collection_err(w.nft_exec(&other, direct).unwrap_err()),
        ContractError::NotAModel { .. }
    ));
    assert_eq!(w.tokens(), 0);

    // A model that is not finalized cannot be minted.
    let m2 = mlp(8, 4, 2);
    let unfinished = instantiate_in(&mut w.env.app, &owner, &m2.instantiate_msg()).unwrap();
    let mint = w.mint_msg("unfinished");
    let err = w
        .env
        .app
        .execute_contract(owner.clone(), unfinished, &mint, &[])
        .unwrap_err();
    assert_eq!(model_err(err), ModelError::NotFinalized {});

    // Twice: the model refuses a second token, under any id.
    w.model_exec(&owner, w.mint_msg("digits"), &[]).unwrap();
    for id in ["digits", "digits-2"] {
        assert!(matches!(
            model_err(w.model_exec(&owner, w.mint_msg(id), &[]).unwrap_err()),
            ModelError::AlreadyMinted { .. }
        ));
    }
    assert_eq!(w.tokens(), 1);

    // Standard CW721 minting is closed: the collection is its own minter.
    let c = w.collection.clone();
    let mint: cw721::msg::Cw721ExecuteMsg<Option<Empty>, Option<Empty>, Empty> = cw721::msg::Cw721ExecuteMsg::Mint {
        token_id: "free".into(),
        owner: owner.to_string(),
        token_uri: None,
        extension: None,
    };
    assert!(w.env.app.execute_contract(owner.clone(), c, &mint, &[]).is_err());
    assert_eq!(w.tokens(), 1);
}
