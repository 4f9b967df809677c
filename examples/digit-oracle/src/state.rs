use cosmwasm_std::Addr;
use cw_storage_plus::{Item, Map};

use crate::msg::Classification;

pub const MODEL: Item<Addr> = Item::new("model");
pub const LAST: Map<&Addr, Classification> = Map::new("last");
