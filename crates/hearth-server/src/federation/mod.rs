//! The server-server API, as other homeservers call it (over libp2p, through the host).

mod auth;
mod keys;
mod query;

use hearth_core::ruma::api::federation::discovery::get_server_version;

pub use self::auth::sign_request;
use crate::{Server, error::Result, router::Router};

pub(crate) fn routes(router: &mut Router) {
    router.public(keys::get_server_keys);
    router.public(get_server_version);
    router.federated(query::get_profile_information);
}

/// `GET /_matrix/federation/v1/version`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1version)).
async fn get_server_version(
    _server: Server,
    _request: get_server_version::v1::Request,
) -> Result<get_server_version::v1::Response> {
    let mut about = get_server_version::v1::Server::new();
    about.name = Some("Hearth".into());
    about.version = Some(env!("CARGO_PKG_VERSION").into());
    let mut response = get_server_version::v1::Response::new();
    response.server = Some(about);
    Ok(response)
}
