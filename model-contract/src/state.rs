use cosmwasm_std::Addr;
use cw_storage_plus::Item;

/// Who controls the model.
pub const OWNER: Item<Addr> = Item::new("owner");
