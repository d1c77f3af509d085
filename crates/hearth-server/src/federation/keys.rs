//! This server's signing key, as other servers fetch it.

use std::collections::BTreeMap;

use hearth_core::{
    ruma::{
        CanonicalJsonObject, CanonicalJsonValue, api::federation::discovery::get_server_keys,
        serde::Raw,
    },
    signing,
};

use crate::{Server, ServerError, error::Result, platform::now_ms};

/// How long others may cache the key. A Hearth server's key is its name and never changes, so
/// this only bounds how stale a cached copy of the response may be.
const KEY_VALIDITY_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// `GET /_matrix/key/v2/server`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixkeyv2server)): the
/// server's one key, signed by itself. The key is also the server's name (self-certifying), so
/// a remote server can check this answer without trusting where it came from.
pub(crate) async fn get_server_keys(
    server: Server,
    _request: get_server_keys::v2::Request,
) -> Result<get_server_keys::v2::Response> {
    let identity = server.identity();
    let verify_key = CanonicalJsonObject::from([(
        "key".to_owned(),
        CanonicalJsonValue::String(identity.public_key_base64().encode()),
    )]);
    let valid_until = now_ms().saturating_add(KEY_VALIDITY_MS);
    let mut keys = BTreeMap::from([
        ("old_verify_keys".to_owned(), CanonicalJsonValue::Object(BTreeMap::new())),
        ("server_name".to_owned(), CanonicalJsonValue::String(identity.server_name().to_string())),
        (
            "valid_until_ts".to_owned(),
            CanonicalJsonValue::Integer(
                valid_until.try_into().map_err(|_| ServerError::Internal("clock".into()))?,
            ),
        ),
        (
            "verify_keys".to_owned(),
            CanonicalJsonValue::Object(BTreeMap::from([(
                identity.key_id().to_owned(),
                CanonicalJsonValue::Object(verify_key),
            )])),
        ),
    ]);
    signing::sign_json(identity.server_name().as_str(), identity.key(), &mut keys)?;
    let raw = serde_json::value::to_raw_value(&keys)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(get_server_keys::v2::Response::new(Raw::from_json(raw)))
}
