//! The committed JSON schema (schema/cwnn-collection.json, what frontends and ts-codegen
//! read) must match the messages. Regenerate it with
//! `CWNN_UPDATE_SCHEMA=1 cargo test -p cwnn-collection --test schema`.

use cosmwasm_schema::generate_api;
use cwnn_collection::msg::{ExecuteMsg, InstantiateMsg, QueryMsg};

#[test]
fn committed_schema_matches_the_messages() {
    let api = generate_api! {
        name: "cwnn-collection",
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
    }
    .render()
    .to_string()
    .unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/cwnn-collection.json");
    if std::env::var_os("CWNN_UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &api).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == api,
        "{path} is stale: regenerate it with CWNN_UPDATE_SCHEMA=1 cargo test -p cwnn-collection --test schema"
    );
}
