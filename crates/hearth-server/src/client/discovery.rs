//! Discovery: versions, well-known, capabilities.

use std::collections::BTreeMap;

use hearth_core::{
    RoomVersion,
    ruma::api::client::discovery::{get_capabilities, get_supported_versions},
};
use ruma::{
    RoomVersionId,
    api::client::discovery::get_capabilities::v3::{
        Capabilities, RoomVersionStability, RoomVersionsCapability,
    },
};

use crate::{Authed, Server, error::Result};

use hearth_core::ruma;

/// The spec versions this server implements: every release whose endpoints it serves.
const VERSIONS: &[&str] = &[
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
    "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16",
];

/// `GET /_matrix/client/versions`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientversions)).
pub(crate) async fn get_supported_versions(
    _server: Server,
    _request: get_supported_versions::Request,
) -> Result<get_supported_versions::Response> {
    let mut response =
        get_supported_versions::Response::new(VERSIONS.iter().map(|v| (*v).to_owned()).collect());
    // Threads list and relations recursion are served; clients check these flags.
    response.unstable_features = BTreeMap::from([
        ("org.matrix.msc3440.stable".to_owned(), true),
        ("org.matrix.msc3981".to_owned(), true),
    ]);
    Ok(response)
}

/// `GET /.well-known/matrix/client`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#getwell-knownmatrixclient)).
///
/// A Hearth server name is a key, not a host, so the base URL is wherever this request
/// arrived: the scheme and authority of the request URI, or its `Host` header over HTTP.
pub(crate) fn discover_homeserver(
    request: &http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>> {
    let uri = request.uri();
    let base_url = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => {
            let host = request
                .headers()
                .get(http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .ok_or_else(|| {
                    crate::ServerError::NotFound(
                        "no Host header to derive the base URL from".into(),
                    )
                })?;
            format!("http://{host}")
        }
    };
    let body = serde_json::json!({ "m.homeserver": { "base_url": base_url } });
    Ok(http::Response::new(body.to_string().into_bytes()))
}

/// `GET /_matrix/client/v3/capabilities`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3capabilities)).
pub(crate) async fn get_capabilities(
    _server: Server,
    _authed: Authed,
    _request: get_capabilities::v3::Request,
) -> Result<get_capabilities::v3::Response> {
    let available: BTreeMap<RoomVersionId, RoomVersionStability> = RoomVersion::ALL
        .iter()
        .map(|version| (version.id(), RoomVersionStability::Stable))
        .collect();
    let mut capabilities = Capabilities::new();
    capabilities.room_versions =
        RoomVersionsCapability::new(RoomVersion::default().id(), available);
    Ok(get_capabilities::v3::Response::new(capabilities))
}
