//! Message-level fuzzing of the model contract and the collection on cw-multi-test: random
//! and mutated JSON messages, and random sequences of them from several senders (accounts and
//! the contracts themselves), with and without funds. After every step:
//! - no panic: every refusal is a named error;
//! - the model's proceeds = fees paid − withdrawn = its bank balance;
//! - no sender holds more than 8 jobs;
//! - once finalized, the stored weights never change;
//! - exactly one NFT per minted model, whose token id is the model's address.
//!
//! `cargo test -p cwnn-collection --test fuzz` runs 5,000 steps per seed for 2 seeds;
//! `CWNN_FUZZ_SECS=600` runs new seeds for that long and prints the figures
//! (docs/SECURITY.md).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use cosmwasm_std::{coin, to_json_vec, Addr, Binary, Coin, CosmosMsg, Empty, QueryRequest, WasmMsg, WasmQuery};
use cw_multi_test::{App, ContractWrapper, Executor};
use cwnn_collection::msg::{ExecuteMsg as NftMsg, InstantiateMsg, QueryMsg as NftQuery};
use cwnn_model_contract::msg::{
    ExecuteMsg as ModelMsg, InstantiateMsg as ModelInit, ModelInfoResponse, OwnerResponse, ProceedsResponse,
    QueryMsg as ModelQuery, WorkBudget, CHUNK_BYTES,
};
use cwnn_model_contract::state::Job;
use cwnn_model_contract::testing::{instantiate_code, mlp, store_model_code, TestModel, DENOM};

const OTHER: &str = "uother";
const FEE: u128 = 100;
const SENDERS: [&str; 4] = ["owner", "alice", "bob", "mallory"];

/// xorshift64*: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct World {
    app: App,
    m: TestModel,
    models: Vec<Addr>,
    collection: Addr,
    /// Fees paid and not withdrawn, per model and denom, as the bank sees them.
    expected: BTreeMap<(usize, String), u128>,
    /// Each finalized model's weight keys and values, once finalized.
    weights: Vec<Option<Vec<(Vec<u8>, Vec<u8>)>>>,
}

fn world() -> World {
    let m = mlp(16, 8, 4);
    let mut app = App::new(|router, api, storage| {
        for s in SENDERS {
            let funds = vec![coin(1_000_000_000, DENOM), coin(1_000_000_000, OTHER)];
            router.bank.init_balance(storage, &api.addr_make(s), funds).unwrap();
        }
    });
    let model_code = store_model_code(&mut app);
    let code = app.store_code(Box::new(ContractWrapper::new(
        cwnn_collection::contract::execute,
        cwnn_collection::contract::instantiate,
        cwnn_collection::contract::query,
    )));
    let owner = app.api().addr_make("owner");
    let init = InstantiateMsg {
        name: "models".into(),
        symbol: "CWNN".into(),
        model_code_ids: vec![model_code],
        baked_runtimes: None,
    };
    let collection = app
        .instantiate_contract(code, owner.clone(), &init, &[], "collection", None)
        .unwrap();
    // Two models: one with a fee, one free with a wasmd admin (never mintable).
    let mut models = Vec::new();
    for (fee, admin) in [(Some(coin(FEE, DENOM)), None), (None, Some(owner.to_string()))] {
        let msg = ModelInit {
            fee,
            collection_code_ids: Some(vec![code]),
            ..m.instantiate_msg()
        };
        models.push(instantiate_code(&mut app, model_code, &owner, &msg, admin).unwrap());
    }
    World {
        app,
        m,
        weights: vec![None; models.len()],
        models,
        collection,
        expected: BTreeMap::new(),
    }
}

impl World {
    /// The owner half the time (so owner messages get through), else anyone.
    fn sender(&self, r: &mut Rng) -> Addr {
        match r.below(10) {
            0 => self.collection.clone(),
            1 => self.models[r.below(2) as usize].clone(),
            2..=5 => self.app.api().addr_make("owner"),
            _ => self.app.api().addr_make(SENDERS[r.below(4) as usize]),
        }
    }
    /// The upload `model` expects next, if any.
    fn next_upload(&self, model: &Addr) -> Option<ModelMsg> {
        let info: ModelInfoResponse = self
            .app
            .wrap()
            .query_wasm_smart(model, &ModelQuery::ModelInfo {})
            .ok()?;
        let (layer, l) = info
            .layers
            .iter()
            .enumerate()
            .find(|(_, l)| l.uploaded_bytes < l.weight_bytes)?;
        let at = l.uploaded_bytes as usize;
        let end = (at + CHUNK_BYTES as usize).min(self.m.weights[layer].len());
        Some(ModelMsg::UploadWeights {
            layer: layer as u32,
            offset: at as u64,
            data: Binary::from(&self.m.weights[layer][at..end]),
        })
    }
    fn someone(&self, r: &mut Rng) -> String {
        match r.below(8) {
            0 => "not an address".into(),
            1 => self.collection.to_string(),
            _ => self.app.api().addr_make(SENDERS[r.below(4) as usize]).to_string(),
        }
    }
    /// Funds for a message: mostly right for what it is (the fee for an inference), else
    /// anything.
    fn funds(&self, r: &mut Rng, kind: &str) -> Vec<Coin> {
        let paid = matches!(kind, "predict" | "evaluate");
        match r.below(10) {
            0..=6 if paid => vec![coin(FEE, DENOM)],
            0..=6 => vec![],
            7 => vec![coin(FEE, DENOM)],
            8 => vec![coin(r.below(300) as u128 + 1, DENOM)],
            _ => vec![coin(FEE, DENOM), coin(r.below(5) as u128 + 1, OTHER)],
        }
    }
    fn input(&self, r: &mut Rng) -> Vec<i32> {
        match r.below(6) {
            0 => vec![0; r.below(20) as usize],
            1 => (0..16).map(|_| r.below(600) as i32 - 300).collect(),
            _ => self.m.sample_values(),
        }
    }
    /// The input as bytes, sometimes: a valid encoding of a sample, a cut one, or noise.
    fn input_bytes(&self, r: &mut Rng) -> Option<Binary> {
        let valid = || {
            self.m
                .sample_values()
                .iter()
                .map(|&v| v as i8 as u8)
                .collect::<Vec<u8>>()
        };
        match r.below(8) {
            0 => Some(Binary::from(valid())),
            1 => Some(Binary::from(&valid()[..r.below(16) as usize])),
            2 => Some(Binary::from(
                (0..r.below(40)).map(|_| r.below(256) as u8).collect::<Vec<u8>>(),
            )),
            _ => None,
        }
    }
    fn model_msg(&self, model: &Addr, r: &mut Rng) -> ModelMsg {
        let job_id = r.below(12);
        let steps = [None, Some(0), Some(1), Some(2)][r.below(4) as usize];
        match r.below(15) {
            0 | 1 => {
                let uploads = ModelMsg::uploads(&self.m.weights);
                match (r.below(10), self.next_upload(model)) {
                    (0..=5, Some(next)) => next,
                    (6..=7, _) => uploads[r.below(uploads.len() as u64) as usize].clone(),
                    _ => ModelMsg::UploadWeights {
                        layer: r.below(5) as u32,
                        offset: [0, CHUNK_BYTES, r.below(2_000)][r.below(3) as usize],
                        data: Binary::from(vec![r.below(256) as u8; r.below(1_200) as usize]),
                    },
                }
            }
            2 => ModelMsg::RewindUpload {
                layer: r.below(4) as u32,
                offset: [0, CHUNK_BYTES, r.below(2_000)][r.below(3) as usize],
            },
            3 => ModelMsg::Finalize {},
            4 => ModelMsg::TransferOwnership {
                new_owner: match r.chance(70) {
                    true => self.app.api().addr_make("owner").to_string(),
                    false => self.someone(r),
                },
            },
            5 => ModelMsg::Predict {
                input: self.input(r),
                input_bytes: self.input_bytes(r),
            },
            6 => ModelMsg::Evaluate {
                input: self.input(r),
                input_bytes: self.input_bytes(r),
                steps,
            },
            7 => ModelMsg::Continue { job_id, steps },
            8 => ModelMsg::CancelJob { job_id },
            9 => ModelMsg::MintNft {
                collection: match r.chance(80) {
                    true => self.collection.to_string(),
                    false => self.someone(r),
                },
                token_uri: None,
                claimed_accuracy_bps: Some(r.below(12_000) as u16),
            },
            10 => ModelMsg::SetFee {
                fee: [None, Some(coin(FEE, DENOM)), Some(coin(r.below(3) as u128, OTHER))][r.below(3) as usize].clone(),
            },
            11 => ModelMsg::SetFreeQueries {
                free_queries: r.chance(50),
            },
            12 => ModelMsg::Withdraw { denom: None },
            13 => ModelMsg::SetPaused { paused: r.chance(25) },
            _ => {
                let b = |r: &mut Rng| WorkBudget {
                    max_work: [0, 50, 1_000, u64::MAX][r.below(4) as usize],
                    max_weight_bytes: [0, 100, 2_000, u64::MAX][r.below(4) as usize],
                    max_segments: r.below(4) as u32,
                };
                ModelMsg::SetBudgets {
                    query_budget: b(r),
                    execute_budget: b(r),
                }
            }
        }
    }
    fn nft_msg(&self, r: &mut Rng) -> NftMsg {
        let token_id = match r.chance(80) {
            true => self.models[r.below(2) as usize].to_string(),
            false => "junk".into(),
        };
        match r.below(7) {
            0 => NftMsg::MintModel {
                owner: self.someone(r),
                token_uri: None,
                claimed_accuracy_bps: None,
                baked: None,
            },
            1 => NftMsg::TransferNft {
                recipient: self.someone(r),
                token_id,
            },
            2 => NftMsg::SendNft {
                contract: self.models[0].to_string(),
                token_id,
                msg: Binary::from(b"{}".to_vec()),
            },
            3 => NftMsg::Approve {
                spender: self.someone(r),
                token_id,
                expires: None,
            },
            4 => NftMsg::Revoke {
                spender: self.someone(r),
                token_id,
            },
            5 => NftMsg::ApproveAll {
                operator: self.someone(r),
                expires: None,
            },
            _ => NftMsg::RevokeAll {
                operator: self.someone(r),
            },
        }
    }
}

/// Flips, inserts or deletes a few bytes of a message's JSON.
fn mutate(r: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..=r.below(3) {
        let at = r.below(bytes.len() as u64 + 1) as usize;
        match r.below(3) {
            0 if at < bytes.len() => bytes[at] ^= 1 << r.below(8),
            1 => {
                let alphabet = b"{}[]\",:0-9ae";
                bytes.insert(at, alphabet[r.below(alphabet.len() as u64) as usize]);
            }
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

#[derive(Default, Debug)]
struct Tally {
    steps: u64,
    accepted: u64,
    refused: u64,
    queries: u64,
    /// Accepted messages by kind: what the run reached.
    kinds: BTreeMap<String, u64>,
    /// Accepted mutated messages that serde_json does not read as the contract did, and one.
    reparsed: u64,
    reparsed_example: Option<String>,
}

fn kind_of(json: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    v.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default()
}

/// One random step: an execute (valid-shaped or mutated) or a query.
fn step(w: &mut World, r: &mut Rng, tally: &mut Tally) {
    let target = r.below(3) as usize;
    if r.chance(15) {
        let contract = if target == 2 {
            w.collection.clone()
        } else {
            w.models[target].clone()
        };
        let msg = match target {
            2 => to_json_vec(&NftQuery::NumTokens {}).unwrap(),
            _ => to_json_vec(
                &[
                    ModelQuery::ModelInfo {},
                    ModelQuery::Predict {
                        input: w.input(r),
                        input_bytes: None,
                    },
                ][r.below(2) as usize],
            )
            .unwrap(),
        };
        let msg = if r.chance(50) { mutate(r, msg) } else { msg };
        let q: QueryRequest<Empty> = QueryRequest::Wasm(WasmQuery::Smart {
            contract_addr: contract.to_string(),
            msg: Binary::from(msg),
        });
        let _ = w.app.wrap().query::<serde_json::Value>(&q);
        tally.queries += 1;
        return;
    }
    let (contract, json) = match target {
        2 => (w.collection.clone(), to_json_vec(&w.nft_msg(r)).unwrap()),
        i => (w.models[i].clone(), to_json_vec(&w.model_msg(&w.models[i], r)).unwrap()),
    };
    let json = if r.chance(20) { mutate(r, json) } else { json };
    let mut sender = w.sender(r);
    // A contract sends only what its code sends. Impersonated, it carries no funds, and a model
    // never sends `mint_model` but from its own `mint_nft`, after binding itself: a bare one
    // would mint a token its model does not know (what the first long run did).
    if w.models.contains(&sender) && target == 2 && kind_of(&json) == "mint_model" {
        sender = w.app.api().addr_make("mallory");
    }
    let contract_sender = sender == w.collection || w.models.contains(&sender);
    let funds = if contract_sender {
        vec![]
    } else {
        w.funds(r, &kind_of(&json))
    };
    let msg = CosmosMsg::Wasm(WasmMsg::Execute {
        contract_addr: contract.to_string(),
        msg: Binary::from(json.clone()),
        funds: funds.clone(),
    });
    match w.app.execute(sender, msg) {
        Ok(res) => {
            tally.accepted += 1;
            let action = action_of(&res);
            if action.is_some() && action != Some(kind_of(&json)) {
                tally.reparsed += 1;
                tally.reparsed_example = Some(String::from_utf8_lossy(&json).into_owned());
            }
            *tally
                .kinds
                .entry(action.clone().unwrap_or_else(|| kind_of(&json)))
                .or_default() += 1;
            if let Some(i) = w.models.iter().position(|m| *m == contract) {
                account(w, i, action.as_deref(), &res, &funds);
            }
        }
        Err(_) => tally.refused += 1,
    }
    tally.steps += 1;
}

/// The `action` the contract reported: what it actually did, whatever the JSON looked like
/// (the contract's parser may accept a mutated message that serde_json reads otherwise).
fn action_of(res: &cw_multi_test::AppResponse) -> Option<String> {
    res.events
        .iter()
        .filter(|e| e.ty == "wasm")
        .flat_map(|e| &e.attributes)
        .find(|a| a.key == "action")
        .map(|a| a.value.clone())
}

/// Updates the expected proceeds after an accepted model message, from what it reported.
fn account(w: &mut World, model: usize, action: Option<&str>, res: &cw_multi_test::AppResponse, funds: &[Coin]) {
    match action {
        Some("predict" | "evaluate") => {
            for c in funds {
                *w.expected.entry((model, c.denom.clone())).or_default() += c.amount.u128();
            }
        }
        Some("withdraw") => {
            let paid = res
                .events
                .iter()
                .flat_map(|e| &e.attributes)
                .find(|a| a.key == "amount");
            for coin in paid.map_or("", |a| a.value.as_str()).split(',') {
                let c: Coin = coin.parse().unwrap();
                *w.expected.entry((model, c.denom)).or_default() -= c.amount.u128();
            }
        }
        _ => {}
    }
}

/// The model's raw keys in cw-storage-plus namespace `ns`.
fn raw(app: &App, contract: &Addr, ns: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut prefix = (ns.len() as u16).to_be_bytes().to_vec();
    prefix.extend(ns.as_bytes());
    app.dump_wasm_raw(contract)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect()
}

fn check_invariants(w: &mut World) {
    let mut minted = 0;
    for (i, model) in w.models.clone().iter().enumerate() {
        let q = w.app.wrap();
        let p: ProceedsResponse = q.query_wasm_smart(model, &ModelQuery::Proceeds {}).unwrap();
        for denom in [DENOM, OTHER] {
            let expected = w.expected.get(&(i, denom.to_string())).copied().unwrap_or(0);
            let proceeds = p
                .proceeds
                .iter()
                .find(|c| c.denom == denom)
                .map_or(0, |c| c.amount.u128());
            let balance = q.query_balance(model, denom).unwrap().amount.u128();
            assert_eq!((proceeds, balance), (expected, expected), "model {i} {denom}");
        }
        let mut per_creator: BTreeMap<String, u32> = BTreeMap::new();
        for (_, v) in raw(&w.app, model, "job") {
            let job: Job = serde_json::from_slice(&v).unwrap();
            *per_creator.entry(job.creator.to_string()).or_default() += 1;
        }
        assert!(per_creator.values().all(|&n| n <= 8), "{per_creator:?}");
        let info: ModelInfoResponse = q.query_wasm_smart(model, &ModelQuery::ModelInfo {}).unwrap();
        let weights = raw(&w.app, model, "w");
        match &w.weights[i] {
            Some(frozen) => assert!(*frozen == weights, "model {i}: finalized weights changed"),
            None if info.finalized => w.weights[i] = Some(weights),
            None => {}
        }
        let owner: OwnerResponse = q.query_wasm_smart(model, &ModelQuery::Owner {}).unwrap();
        if let Some(nft) = owner.nft {
            assert_eq!(
                (nft.collection, nft.token_id),
                (w.collection.clone(), model.to_string())
            );
            minted += 1;
        }
    }
    let n: cw721::msg::NumTokensResponse = w
        .app
        .wrap()
        .query_wasm_smart(&w.collection, &NftQuery::NumTokens {})
        .unwrap();
    assert_eq!(n.count, minted, "one NFT per minted model");
}

/// Runs `steps` random steps from `seed` (or until `deadline`); a panic names its step.
fn run(seed: u64, steps: u64, deadline: Option<Instant>, tally: &mut Tally) {
    let mut w = world();
    let mut r = Rng(seed | 1);
    for k in 0..steps {
        if deadline.is_some_and(|d| Instant::now() > d) {
            return;
        }
        let ok = catch_unwind(AssertUnwindSafe(|| {
            step(&mut w, &mut r, tally);
            check_invariants(&mut w);
        }));
        assert!(ok.is_ok(), "seed {seed}, step {k}: a panic (see above)");
    }
}

#[test]
fn random_message_sequences_keep_the_invariants() {
    let secs: u64 = std::env::var("CWNN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut tally = Tally::default();
    let start = Instant::now();
    if secs == 0 {
        for seed in [1, 2] {
            run(seed, 5_000, None, &mut tally);
        }
    } else {
        let deadline = start + Duration::from_secs(secs);
        let mut seed = 1_000;
        while Instant::now() < deadline {
            run(seed, 5_000, Some(deadline), &mut tally);
            seed += 1;
        }
        eprintln!("seeds 1000..{seed}");
    }
    eprintln!("fuzz: {tally:?} in {:.0} s", start.elapsed().as_secs_f64());
    // The runs reach every stage: uploads, finalize, paid inferences, jobs, mint, trades.
    for kind in [
        "upload_weights",
        "finalize",
        "predict",
        "evaluate",
        "continue",
        "mint_nft",
        "withdraw",
        "transfer_nft",
    ] {
        assert!(
            tally.kinds.get(kind).is_some_and(|&n| n > 0),
            "{kind} never accepted: {tally:?}"
        );
    }
}
