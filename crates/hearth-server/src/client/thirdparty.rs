//! Endpoints for features this server does not offer, answered the way clients expect from a
//! server without them: third-party identifiers, bridged protocols and TURN.

use std::collections::BTreeMap;

use hearth_core::ruma::api::client::{
    account::get_3pids, thirdparty::get_protocols, voip::get_turn_server_info,
};

use crate::{Authed, Server, ServerError, error::Result};

/// `GET /_matrix/client/v3/account/3pid`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3account3pid)):
/// always empty, since no email or phone number can be bound to an account here.
pub(crate) async fn get_3pids(
    _server: Server,
    _authed: Authed,
    _request: get_3pids::v3::Request,
) -> Result<get_3pids::v3::Response> {
    Ok(get_3pids::v3::Response::new(Vec::new()))
}

/// `GET /_matrix/client/v3/thirdparty/protocols`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3thirdpartyprotocols)):
/// an empty object, since no application service bridges a protocol here.
pub(crate) async fn get_protocols(
    _server: Server,
    _authed: Authed,
    _request: get_protocols::v3::Request,
) -> Result<get_protocols::v3::Response> {
    Ok(get_protocols::v3::Response::new(BTreeMap::new()))
}

/// `GET /_matrix/client/v3/voip/turnServer`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3voipturnserver)):
/// no TURN server is configured, so this answers 404 `M_NOT_FOUND`, as other homeservers
/// without TURN do; clients then call over STUN or direct connections only.
pub(crate) async fn get_turn_server_info(
    _server: Server,
    _authed: Authed,
    _request: get_turn_server_info::v3::Request,
) -> Result<get_turn_server_info::v3::Response> {
    Err(ServerError::NotFound("no TURN server is configured".into()))
}
