//! cwnn-collection: a CW721 collection with one NFT per cwnn model. Whoever holds a model's
//! token controls the model (the model contract asks the collection `OwnerOf` on each
//! owner-only action) and withdraws its fees. Transfers, sends and approvals are plain CW721,
//! so wallets, marketplaces and indexers handle model NFTs as any other.

pub mod contract;
pub mod error;
pub mod msg;
pub mod state;

pub use crate::error::ContractError;
