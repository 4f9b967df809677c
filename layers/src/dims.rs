//! Serde for dimensions: `usize` in Rust, `u32` on the wire.
//!
//! serde reads a `usize` as a u64 and narrows it; the narrowing's error path formats
//! `serde::de::Unexpected`, whose float variant links float formatting into a contract. Through
//! `u32` the JSON parser reads the number directly and the contract Wasm stays float-free.

use alloc::vec::Vec;

use serde::{Deserialize, Deserializer, Serializer};

/// One dimension.
pub mod dim {
    use super::*;

    pub fn serialize<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        u32::deserialize(d).map(|v| v as usize)
    }
}

/// A list of dimensions: `Vec<usize>` or `[usize; N]`.
pub mod list {
    use super::*;

    pub fn serialize<S: Serializer, T: AsRef<[usize]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.as_ref().iter().map(|&x| x as u64))
    }
    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<usize>>>(d: D) -> Result<T, D::Error> {
        let v: Vec<u32> = Vec::deserialize(d)?;
        T::try_from(v.into_iter().map(|x| x as usize).collect())
            .map_err(|_| serde::de::Error::custom("wrong number of dimensions"))
    }
}
