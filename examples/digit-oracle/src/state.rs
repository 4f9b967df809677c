use cosmwasm_std::Addr;
use cw_storage_plus::{Item, Map};

use crate::msg::Classification;

pub const MODEL: Item<Addr> = Item::new("model");
pub const LAST: Map<&Addr, Classification> = Map::new("last");
/// Who sent the `Classify` whose model reply is pending (set and cleared in one transaction).
pub const PENDING: Item<Addr> = Item::new("pending");
