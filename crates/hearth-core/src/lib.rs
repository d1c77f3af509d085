#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Natively `web_time` is std's clock, which the lint cannot tell apart; see clippy.toml.
#![cfg_attr(not(target_family = "wasm"), allow(clippy::disallowed_methods))]

pub mod auth;
pub mod builder;
mod error;
pub mod identity;
pub mod json;
pub mod pdu;
pub mod platform;
pub mod room_version;
pub mod signing;
pub mod state_res;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use self::{
    builder::PduBuilder,
    error::CoreError,
    identity::{Ed25519Key, PeerId, ServerIdentity},
    pdu::Pdu,
    room_version::RoomVersion,
    state_res::{EventSource, StateMap, resolve_state},
};
/// The Matrix types Hearth's API is written in.
pub use ruma;

#[cfg(all(test, target_family = "wasm"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
