use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Binary, HexBinary};
use cw721::Expiration;

use crate::state::ModelMetadata;

#[cw_serde]
pub struct InstantiateMsg {
    pub name: String,
    pub symbol: String,
    /// Code ids of the cwnn model contract whose instances may mint tokens here.
    pub model_code_ids: Vec<u64>,
    /// Runtimes whose baked models may mint here, each with its own code id: `cwnn bake`
    /// writes the runtime's entry (`runtime.json`). None by default.
    pub baked_runtimes: Option<Vec<BakedRuntime>>,
}

/// A cwnn runtime (the model contract's Wasm) as `cwnn_bake::RuntimeId` identifies it: a
/// baked model's code checksum must be SHA-256 resumed from `state` over `tail` and the data
/// section the model sends, whose own segments must hash to `data_sha256` (docs/SECURITY.md).
#[cw_serde]
pub struct BakedRuntime {
    /// SHA-256 state after the first `hashed` bytes of the runtime (32 bytes).
    pub state: HexBinary,
    pub hashed: u64,
    /// The runtime's bytes after those, up to its data section (under 64).
    pub tail: HexBinary,
    /// The runtime's data segments: count, bytes and sha256.
    pub segments: u32,
    pub data_len: u64,
    pub data_sha256: HexBinary,
}

/// CW721's messages (same JSON), less those that would break "one token per model, minted by
/// the model": Mint, Burn, minter changes and metadata rewrites.
#[cw_serde]
pub enum ExecuteMsg {
    /// Sent by a model contract from its `MintNft` (the model's owner asked it to): mints the
    /// token whose id is the model's address to `owner`, with the model's metadata. Any other
    /// sender, and a model with a wasmd admin, is refused.
    MintModel {
        owner: String,
        token_uri: Option<String>,
        claimed_accuracy_bps: Option<u16>,
        /// A baked model's data section, checked against [`BakedRuntime`]s.
        baked: Option<Binary>,
    },
    TransferNft {
        recipient: String,
        token_id: String,
    },
    SendNft {
        contract: String,
        token_id: String,
        msg: Binary,
    },
    Approve {
        spender: String,
        token_id: String,
        expires: Option<Expiration>,
    },
    Revoke {
        spender: String,
        token_id: String,
    },
    ApproveAll {
        operator: String,
        expires: Option<Expiration>,
    },
    RevokeAll {
        operator: String,
    },
}

/// CW721's queries (same JSON) and the collection's model queries. (Response types are named
/// in full: they are only used for the schema, which Wasm builds leave out.)
#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(cw721::msg::OwnerOfResponse)]
    OwnerOf {
        token_id: String,
        include_expired: Option<bool>,
    },
    #[returns(cw721::msg::ApprovalResponse)]
    Approval {
        token_id: String,
        spender: String,
        include_expired: Option<bool>,
    },
    #[returns(cw721::msg::ApprovalsResponse)]
    Approvals {
        token_id: String,
        include_expired: Option<bool>,
    },
    #[returns(cw721::msg::OperatorResponse)]
    Operator {
        owner: String,
        operator: String,
        include_expired: Option<bool>,
    },
    #[returns(cw721::msg::OperatorsResponse)]
    AllOperators {
        owner: String,
        include_expired: Option<bool>,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(cw721::msg::NumTokensResponse)]
    NumTokens {},
    #[returns(cw721::msg::CollectionInfoAndExtensionResponse<cw721::DefaultOptionalCollectionExtension>)]
    GetCollectionInfoAndExtension {},
    #[returns(cw721::msg::NftInfoResponse<cw721::DefaultOptionalNftExtension>)]
    NftInfo { token_id: String },
    #[returns(cw721::msg::AllNftInfoResponse<cw721::DefaultOptionalNftExtension>)]
    AllNftInfo {
        token_id: String,
        include_expired: Option<bool>,
    },
    #[returns(cw721::msg::TokensResponse)]
    Tokens {
        owner: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(cw721::msg::TokensResponse)]
    AllTokens {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// Models in the collection, ordered by token id (`limit` defaults to 10, at most 30).
    #[returns(ModelsResponse)]
    Models {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// A token's model.
    #[returns(ModelMetadata)]
    Model { token_id: String },
    /// A model's token.
    #[returns(TokenOfResponse)]
    TokenOf { model: String },
    /// What the collection accepts as a model: code ids, and runtimes of baked models. A
    /// buyer compares these with the released builds (docs/SECURITY.md).
    #[returns(ConfigResponse)]
    Config {},
}

#[cw_serde]
pub struct ConfigResponse {
    pub model_code_ids: Vec<u64>,
    pub baked_runtimes: Vec<BakedRuntime>,
}

#[cw_serde]
pub struct ModelEntry {
    pub token_id: String,
    pub model: ModelMetadata,
}

#[cw_serde]
pub struct ModelsResponse {
    pub models: Vec<ModelEntry>,
}

#[cw_serde]
pub struct TokenOfResponse {
    pub token_id: String,
}

impl From<&cwnn_bake::RuntimeId> for BakedRuntime {
    fn from(r: &cwnn_bake::RuntimeId) -> Self {
        BakedRuntime {
            state: HexBinary::from(&r.state[..]),
            hashed: r.hashed,
            tail: HexBinary::from(&r.tail[..]),
            segments: r.segments,
            data_len: r.data_len,
            data_sha256: HexBinary::from(&r.data_sha256[..]),
        }
    }
}

impl TryFrom<&BakedRuntime> for cwnn_bake::RuntimeId {
    type Error = &'static str;

    fn try_from(r: &BakedRuntime) -> Result<Self, Self::Error> {
        let bad =
            "a baked runtime's state and data_sha256 are 32 bytes, hashed a multiple of 64, its tail under 64 bytes";
        let (Ok(state), Ok(data_sha256)) = (r.state.to_array::<32>(), r.data_sha256.to_array::<32>()) else {
            return Err(bad);
        };
        if !r.hashed.is_multiple_of(64) || r.tail.len() >= 64 {
            return Err(bad);
        }
        Ok(cwnn_bake::RuntimeId {
            state,
            hashed: r.hashed,
            tail: r.tail.to_vec(),
            segments: r.segments,
            data_len: r.data_len,
            data_sha256,
        })
    }
}
