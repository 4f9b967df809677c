//! The collection with real model contracts on cw-multi-test: mint through the model, infer
//! with a fee, transfer and approve + transfer_from, withdraw by the holder only; and every bad
//! input refused with a named error and no state change.

use cosmwasm_std::{coin, Addr, Coin, Empty};
use cw721::msg::{NftInfoResponse, NumTokensResponse, OwnerOfResponse};
use cw721::DefaultOptionalNftExtension;
use cw_multi_test::App;
use cw_multi_test::{ContractWrapper, Executor};
use cwnn_collection::msg::{ExecuteMsg, InstantiateMsg, ModelsResponse, QueryMsg, TokenOfResponse};
use cwnn_collection::state::ModelMetadata;
use cwnn_collection::ContractError;
use cwnn_model_contract::msg::{
    ExecuteMsg as ModelMsg, InstantiateMsg as ModelInit, OwnerResponse, ProceedsResponse, QueryMsg as ModelQuery,
};
use cwnn_model_contract::testing::{app_with, instantiate_code, mlp, store_model_code, Env, TestModel, DENOM};
use cwnn_model_contract::ContractError as ModelError;

struct World {
    env: Env,
    m: TestModel,
    collection: Addr,
    model_code: u64,
    code: u64,
}

fn fee() -> Coin {
    coin(100, DENOM)
}

/// A collection that accepts the model code, and a finalized fee'd model (no wasmd admin)
/// that accepts the collection code.
fn world() -> World {
    world_with(None, None)
}

/// [`world`] with wasmd admins for the model and the collection.
fn world_with(model_admin: Option<&str>, collection_admin: Option<&str>) -> World {
    let m = mlp(16, 8, 4);
    let mut app = app_with(&[coin(1_000, DENOM)]);
    let model_code = store_model_code(&mut app);
    let code = app.store_code(Box::new(ContractWrapper::new(
        cwnn_collection::contract::execute,
        cwnn_collection::contract::instantiate,
        cwnn_collection::contract::query,
    )));
    let init = InstantiateMsg {
        name: "cwnn models".into(),
        symbol: "CWNN".into(),
        model_code_ids: vec![model_code],
        baked_runtimes: None,
    };
    let creator = app.api().addr_make("creator");
    let admin = |a: Option<&str>, app: &App| a.map(|a| app.api().addr_make(a).to_string());
    let collection_admin = admin(collection_admin, &app);
    let collection = app
        .instantiate_contract(code, creator, &init, &[], "collection", collection_admin)
        .unwrap();
    let owner = app.api().addr_make("owner");
    let msg = ModelInit {
        fee: Some(fee()),
        collection_code_ids: Some(vec![code]),
        ..m.instantiate_msg()
    };
    let model_admin = admin(model_admin, &app);
    let model = instantiate_code(&mut app, model_code, &owner, &msg, model_admin).unwrap();
    let mut env = Env { app, owner, model };
    env.finalize_with(&m.weights);
    World {
        env,
        m,
        collection,
        model_code,
        code,
    }
}

impl World {
    fn mint_msg(&self) -> ModelMsg {
        ModelMsg::MintNft {
            collection: self.collection.to_string(),
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
    /// The model's token id: its address.
    fn token(&self) -> String {
        self.env.model.to_string()
    }
    fn holder(&self) -> String {
        let r: OwnerOfResponse = self.q(&QueryMsg::OwnerOf {
            token_id: self.token(),
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
            input_bytes: None,
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

impl World {
    /// Moves the token from `from` to `to` with a plain `TransferNft`.
    fn transfer(&mut self, from: &Addr, to: &Addr) {
        let msg = ExecuteMsg::TransferNft {
            recipient: to.to_string(),
            token_id: self.token(),
        };
        self.nft_exec(from, msg).unwrap();
    }

    /// The model's refusal of `msg` from `sender`.
    fn model_refuses(&mut self, sender: &Addr, msg: ModelMsg) -> ModelError {
        model_err(self.model_exec(sender, msg, &[]).unwrap_err())
    }

    /// After the mint: the model knows its token, the collection knows the model.
    fn check_minted(&self, owner: &Addr) {
        let o = self.model_owner();
        assert_eq!(o.owner, owner.to_string());
        let nft = o.nft.unwrap();
        assert_eq!((nft.collection, nft.token_id), (self.collection.clone(), self.token()));
        let meta: ModelMetadata = self.q(&QueryMsg::Model { token_id: self.token() });
        assert_eq!(meta.model, self.env.model);
        assert_eq!(meta.layers, ["dense", "dense", "softmax"]);
        assert_eq!(meta.macs, 16 * 8 + 8 * 4);
        assert_eq!((meta.input_shape, meta.output_shape), (vec![16], vec![4]));
        assert_eq!(meta.weights_sha256, self.m.sha256());
        assert_eq!(meta.model_sha256, self.env.info().model_sha256);
        assert_eq!(meta.code_id, self.model_code);
        assert_eq!(meta.claimed_accuracy_bps, Some(9_749));
        let t: TokenOfResponse = self.q(&QueryMsg::TokenOf {
            model: self.env.model.to_string(),
        });
        assert_eq!(t.token_id, self.token());
        let page: ModelsResponse = self.q(&QueryMsg::Models {
            start_after: None,
            limit: None,
        });
        assert_eq!(page.models.len(), 1);
        let info: NftInfoResponse<DefaultOptionalNftExtension> = self.q(&QueryMsg::NftInfo { token_id: self.token() });
        let traits = info.extension.unwrap().attributes.unwrap();
        assert!(traits
            .iter()
            .any(|t| t.trait_type == "claimed_accuracy" && t.value == "97.49 %"));
        assert_eq!(info.token_uri.as_deref(), Some("https://example.org/digits"));
    }
}

#[test]
fn mint_infer_transfer_and_withdraw() {
    let mut w = world();
    let owner = w.env.owner.clone();
    let (bob, carol) = (w.env.addr("bob"), w.env.addr("carol"));
    w.model_exec(&owner, w.mint_msg(), &[]).unwrap();
    assert_eq!(w.holder(), owner.to_string());
    assert_eq!(w.tokens(), 1);
    w.check_minted(&owner);

    // A paid inference; the fee waits in the model.
    w.infer();
    assert_eq!(w.proceeds(), vec![fee()]);

    // Plain transfer to bob: bob controls the model, the old holder does not.
    w.transfer(&owner, &bob);
    assert_eq!(w.model_owner().owner, bob.to_string());
    let withdraw = || ModelMsg::Withdraw { denom: None };
    assert_eq!(w.model_refuses(&owner, withdraw()), ModelError::Unauthorized {});
    assert_eq!(
        w.model_refuses(&owner, ModelMsg::SetFee { fee: None }),
        ModelError::Unauthorized {}
    );
    assert_eq!(w.env.info().fee, Some(fee()));
    // Ownership now follows the token only.
    let transfer = ModelMsg::TransferOwnership {
        new_owner: owner.to_string(),
    };
    assert_eq!(w.model_refuses(&bob, transfer), ModelError::OwnedByNft {});
    w.model_exec(&bob, withdraw(), &[]).unwrap();
    assert_eq!((w.env.balance(&bob), w.env.balance(&owner)), (100, 0));

    // Approve + transfer_from: carol, approved by bob, moves the token to herself.
    w.infer();
    let approve = ExecuteMsg::Approve {
        spender: carol.to_string(),
        token_id: w.token(),
        expires: None,
    };
    w.nft_exec(&bob, approve).unwrap();
    // An approved spender (and an operator) may move the token, not act for the model.
    let approve_all = ExecuteMsg::ApproveAll {
        operator: owner.to_string(),
        expires: None,
    };
    w.nft_exec(&bob, approve_all).unwrap();
    for spender in [&carol, &owner] {
        for msg in [withdraw(), ModelMsg::SetPaused { paused: true }] {
            assert_eq!(w.model_refuses(spender, msg), ModelError::Unauthorized {});
        }
    }
    w.transfer(&carol, &carol);
    assert_eq!(w.holder(), carol.to_string());
    assert_eq!(w.model_refuses(&bob, withdraw()), ModelError::Unauthorized {});
    w.model_exec(&carol, withdraw(), &[]).unwrap();
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
        model_err(w.model_exec(&stranger, w.mint_msg(), &[]).unwrap_err()),
        ModelError::Unauthorized {}
    );
    assert_eq!(w.tokens(), 0);
    assert_eq!(w.model_owner().nft, None);

    // For a non-model address: an account, or a contract of another code.
    let direct = ExecuteMsg::MintModel {
        owner: stranger.to_string(),
        token_uri: None,
        claimed_accuracy_bps: None,
        baked: None,
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
    let msg2 = ModelInit {
        collection_code_ids: Some(vec![w.code]),
        ..m2.instantiate_msg()
    };
    let unfinished = instantiate_code(&mut w.env.app, w.model_code, &owner, &msg2, None).unwrap();
    let mint = w.mint_msg();
    let err = w
        .env
        .app
        .execute_contract(owner.clone(), unfinished, &mint, &[])
        .unwrap_err();
    assert_eq!(model_err(err), ModelError::NotFinalized {});

    // Twice: the model refuses a second token.
    w.model_exec(&owner, w.mint_msg(), &[]).unwrap();
    assert!(matches!(
        model_err(w.model_exec(&owner, w.mint_msg(), &[]).unwrap_err()),
        ModelError::AlreadyMinted { .. }
    ));
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

impl World {
    /// Sends the model's `MintNft` from `sender`, which must fail and leave the model, the
    /// collection and every balance as they were.
    fn refused_mint(&mut self, model: &Addr, sender: &Addr) -> anyhow::Error {
        let dump = |w: &World| {
            let app = &w.env.app;
            let balances: Vec<Coin> = [model, sender, &w.collection]
                .iter()
                .map(|a| app.wrap().query_balance(*a, DENOM).unwrap())
                .collect();
            (app.dump_wasm_raw(model), app.dump_wasm_raw(&w.collection), balances)
        };
        let before = dump(self);
        let msg = self.mint_msg();
        let err = self
            .env
            .app
            .execute_contract(sender.clone(), model.clone(), &msg, &[])
            .unwrap_err();
        assert!(before == dump(self), "a refused mint changed state: {err:#}");
        err
    }
    /// A second finalized model of the accepted model code, deployed by `author`.
    fn another_model(&mut self, author: &Addr) -> Addr {
        let msg = ModelInit {
            collection_code_ids: Some(vec![self.code]),
            ..self.m.instantiate_msg()
        };
        let app = &mut self.env.app;
        let model = instantiate_code(app, self.model_code, author, &msg, None).unwrap();
        for up in ModelMsg::uploads(&self.m.weights) {
            app.execute_contract(author.clone(), model.clone(), &up, &[]).unwrap();
        }
        app.execute_contract(author.clone(), model.clone(), &ModelMsg::Finalize {}, &[])
            .unwrap();
        model
    }
}

/// Attack 1: the author keeps a wasmd admin on the model, mints and sells it, then migrates it
/// to code that hands it back. The collection refuses to mint a model that has an admin, so
/// no such token can exist to be sold.
#[test]
fn a_model_with_a_wasmd_admin_is_never_minted() {
    let mut w = world_with(Some("seller"), None);
    let (owner, model) = (w.env.owner.clone(), w.env.model.clone());
    let err = collection_err(w.refused_mint(&model, &owner));
    assert_eq!(
        err,
        ContractError::ModelHasAdmin {
            model: model.to_string(),
            admin: w.env.addr("seller").to_string(),
        }
    );
    assert_eq!((w.tokens(), w.model_owner().nft), (0, None));
}

/// Attack 2: a collection whose creator kept a wasmd admin could be migrated to answer
/// `OwnerOf` with the creator for every token. A model refuses to bind to it, and to a
/// contract of any code it does not accept.
#[test]
fn a_model_binds_only_to_an_accepted_collection_without_admin() {
    let mut w = world_with(None, Some("creator"));
    let (owner, model) = (w.env.owner.clone(), w.env.model.clone());
    assert_eq!(
        model_err(w.refused_mint(&model, &owner)),
        ModelError::CollectionHasAdmin {
            collection: w.collection.to_string(),
            admin: w.env.addr("creator").to_string(),
        }
    );
    // A look-alike collection of another code (here: a second upload of the same Rust code,
    // which a chain gives a new code id), without admin.
    let mut w = world();
    let (owner, model) = (w.env.owner.clone(), w.env.model.clone());
    let fake_code = w.env.app.store_code(Box::new(ContractWrapper::new(
        cwnn_collection::contract::execute,
        cwnn_collection::contract::instantiate,
        cwnn_collection::contract::query,
    )));
    let init = InstantiateMsg {
        name: "look-alike".into(),
        symbol: "CWNN".into(),
        model_code_ids: vec![w.model_code],
        baked_runtimes: None,
    };
    let creator = w.env.addr("creator");
    w.collection = w
        .env
        .app
        .instantiate_contract(fake_code, creator, &init, &[], "fake", None)
        .unwrap();
    assert_eq!(
        model_err(w.refused_mint(&model, &owner)),
        ModelError::CollectionNotAccepted {
            collection: w.collection.to_string(),
            code_id: Some(fake_code),
            accepted: vec![w.code],
        }
    );
    // An account is no collection either.
    w.collection = w.env.addr("someone");
    assert!(matches!(
        model_err(w.refused_mint(&model, &owner)),
        ModelError::CollectionNotAccepted { code_id: None, .. }
    ));
}

/// Attack 7: a squatter deploys a copy of the model (same code, same weights) and mints first.
/// Token ids are model addresses, so the copy gets its own id and the author's stays free.
#[test]
fn token_ids_cannot_be_squatted() {
    let mut w = world();
    let (owner, model) = (w.env.owner.clone(), w.env.model.clone());
    let squatter = w.env.addr("squatter");
    let copy = w.another_model(&squatter);
    let mint = w.mint_msg();
    w.env
        .app
        .execute_contract(squatter.clone(), copy.clone(), &mint, &[])
        .unwrap();
    w.model_exec(&owner, w.mint_msg(), &[]).unwrap();
    assert_eq!(w.tokens(), 2);
    assert_eq!(w.holder(), owner.to_string());
    let t: TokenOfResponse = w.q(&QueryMsg::TokenOf {
        model: copy.to_string(),
    });
    assert_eq!(t.token_id, copy.to_string());
    // Same code and weights, same config: the same identity, shown to any buyer.
    let meta = |token_id: String| -> ModelMetadata { w.q(&QueryMsg::Model { token_id }) };
    let (a, b) = (meta(model.to_string()), meta(copy.to_string()));
    assert_eq!((a.model_sha256, a.model), (b.model_sha256, model));
}

/// Both contracts say what code they are (cw2), so a buyer can check it.
#[test]
fn cw2_versions_are_recorded_on_both_contracts() {
    let w = world();
    let q = w.env.app.wrap();
    let model = cw2::query_contract_info(&q, &w.env.model).unwrap();
    assert_eq!(model.contract, "crates.io:cwnn-model-contract");
    let collection = cw2::query_contract_info(&q, &w.collection).unwrap();
    assert_eq!(collection.contract, "crates.io:cwnn-collection");
}
