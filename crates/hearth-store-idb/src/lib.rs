#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(target_family = "wasm")]
mod backend;
#[cfg(target_family = "wasm")]
mod js;
mod schema;
#[cfg(all(test, target_family = "wasm"))]
mod tests;

#[cfg(target_family = "wasm")]
pub use self::backend::IdbBackend;
pub use self::schema::DATABASE_VERSION;
