//! [Request authentication](https://spec.matrix.org/v1.16/server-server-api/#request-authentication):
//! the `X-Matrix` authorization a server signs its federation requests with, and the check of
//! incoming ones. A Hearth server's key is its name, so the origin's key comes from the header
//! itself: no key fetch, and a request whose signature is not the named server's key is refused.

use hearth_core::{
    ServerIdentity,
    ruma::{
        CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, OwnedServerSigningKeyId,
        ServerName,
        api::federation::authentication::XMatrix,
        serde::{Base64, base64::Standard},
    },
    signing,
};
use http::{HeaderValue, header};

use crate::{Server, ServerError, error::Result};

/// Adds the `Authorization: X-Matrix …` header for `destination` to an outgoing federation
/// request (its body, if any, must be JSON).
pub fn sign_request(
    identity: &ServerIdentity,
    destination: &ServerName,
    request: &mut http::Request<Vec<u8>>,
) -> Result<()> {
    let origin = identity.server_name();
    let mut object = XMatrix::request_object(request, origin, destination)
        .map_err(|error| ServerError::BadJson(format!("federation request body: {error}")))?;
    signing::sign_json(origin.as_str(), identity.key(), &mut object)?;
    let signature = object
        .get("signatures")
        .and_then(CanonicalJsonValue::as_object)
        .and_then(|signatures| signatures.get(origin.as_str()))
        .and_then(CanonicalJsonValue::as_object)
        .and_then(|by_key| by_key.get(identity.key_id()))
        .and_then(CanonicalJsonValue::as_str)
        .ok_or_else(|| ServerError::Internal("signing left no signature".into()))?;
    let sig = Base64::<Standard>::parse(signature)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    let key = OwnedServerSigningKeyId::try_from(identity.key_id())
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    let header = XMatrix::new(origin.to_owned(), destination.to_owned(), key, sig);
    request.headers_mut().insert(header::AUTHORIZATION, HeaderValue::from(&header));
    Ok(())
}

impl Server {
    /// The server that signed an incoming federation request: its `X-Matrix` header must name
    /// this server as destination (when present) and carry a valid signature by the key that is
    /// the origin's name. Anything else is 401 `M_UNAUTHORIZED`.
    pub(crate) fn authenticate_server(
        &self,
        request: &http::Request<Vec<u8>>,
    ) -> Result<OwnedServerName> {
        let unauthorized = |why: String| ServerError::Unauthorized(why);
        let header = XMatrix::extract_from_http_headers(request.headers())
            .map_err(|error| unauthorized(format!("X-Matrix authorization: {error}")))?;
        let destination = self.server_name();
        if header.destination.as_deref().is_some_and(|named| named != destination) {
            return Err(unauthorized(format!(
                "the request is for {}, not this server",
                header.destination.as_deref().map(ServerName::as_str).unwrap_or_default()
            )));
        }
        let mut object: CanonicalJsonObject =
            XMatrix::request_object(request, &header.origin, destination)
                .map_err(|error| ServerError::NotJson(error.to_string()))?;
        let signature = CanonicalJsonObject::from([(
            header.key.to_string(),
            CanonicalJsonValue::String(header.sig.encode()),
        )]);
        object.insert(
            "signatures".into(),
            CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                header.origin.to_string(),
                CanonicalJsonValue::Object(signature),
            )])),
        );
        signing::verify_server_json(&header.origin, &object).map_err(|error| {
            unauthorized(format!("bad signature from {}: {error}", header.origin))
        })?;
        Ok(header.origin)
    }
}
