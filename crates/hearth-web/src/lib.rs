#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(target_family = "wasm")]
mod host;
#[cfg(target_family = "wasm")]
mod p2p;

#[cfg(target_family = "wasm")]
pub use host::Homeserver;
