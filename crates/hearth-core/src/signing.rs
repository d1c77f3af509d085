//! [Signing JSON](https://spec.matrix.org/v1.16/appendices/#signing-json),
//! [signing events](https://spec.matrix.org/v1.16/server-server-api/#signing-events),
//! content and reference hashes, event IDs and redaction, on ruma-signatures.
//!
//! What Hearth adds is where keys come from: a Hearth server's verify key is its name
//! ([`crate::identity`]), so verification needs no key store.

use std::collections::BTreeMap;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedEventId, ServerName,
    serde::{Base64, base64::Standard},
    signatures::{self, PublicKeyMap, Verified},
};

use crate::{CoreError, Ed25519Key, RoomVersion, identity::verify_key_for_server};

/// The result of checking an event's signatures and content hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventVerification {
    /// Signatures and content hash are valid.
    Valid,
    /// Signatures are valid but the content hash is not: the spec says to keep the event, but
    /// redacted.
    ContentHashMismatch,
}

/// Signs a JSON object as `entity`, adding to its `signatures`.
pub fn sign_json(
    entity: &str,
    key: &Ed25519Key,
    object: &mut CanonicalJsonObject,
) -> Result<(), CoreError> {
    signatures::sign_json(entity, key, object)
        .map_err(|error| CoreError::Signing(error.to_string()))
}

/// Verifies a signed JSON object with explicit keys, for test vectors and keys that are not a
/// Hearth server's (such as a user's device keys).
pub fn verify_json_with_keys(
    keys: &PublicKeyMap,
    object: &CanonicalJsonObject,
) -> Result<(), CoreError> {
    signatures::verify_json(keys, object)
        .map_err(|error| CoreError::BadSignature(error.to_string()))
}

/// Verifies that a JSON object carries a valid signature of the Hearth server `server`.
pub fn verify_server_json(
    server: &ServerName,
    object: &CanonicalJsonObject,
) -> Result<(), CoreError> {
    let keys = public_keys_from_names([server], object)?;
    verify_json_with_keys(&keys, object)
}

/// Adds the content hash and the server's signature to an event.
pub fn hash_and_sign_event(
    entity: &str,
    key: &Ed25519Key,
    event: &mut CanonicalJsonObject,
    version: RoomVersion,
) -> Result<(), CoreError> {
    signatures::hash_and_sign_event(entity, key, event, &version.rules().redaction)
        .map_err(|error| CoreError::Signing(error.to_string()))
}

/// Checks an event's signatures (from every server the room version requires, with the keys
/// their names certify) and its content hash.
///
/// [Validating hashes and signatures on received events](https://spec.matrix.org/v1.16/server-server-api/#validating-hashes-and-signatures-on-received-events)
pub fn verify_event(
    event: &CanonicalJsonObject,
    version: RoomVersion,
) -> Result<EventVerification, CoreError> {
    let rules = version.rules();
    let servers = signatures::required_server_signatures_to_verify_event(event, &rules.signatures)
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))?;
    let keys = public_keys_from_names(servers.iter().map(|name| name.as_ref()), event)?;
    match signatures::verify_event(&keys, event, rules) {
        Ok(Verified::All) => Ok(EventVerification::Valid),
        Ok(Verified::Signatures) => Ok(EventVerification::ContentHashMismatch),
        Err(error) => Err(CoreError::BadSignature(error.to_string())),
    }
}

/// The [content hash](https://spec.matrix.org/v1.16/server-server-api/#calculating-the-content-hash-for-an-event)
/// of an event, unpadded base64.
pub fn content_hash(event: &CanonicalJsonObject) -> Result<String, CoreError> {
    signatures::content_hash(event)
        .map(|hash| hash.encode())
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))
}

/// The [event ID](https://spec.matrix.org/v1.16/rooms/v4/#event-ids): `$` and the URL-safe
/// reference hash.
pub fn event_id(
    event: &CanonicalJsonObject,
    version: RoomVersion,
) -> Result<OwnedEventId, CoreError> {
    let hash = signatures::reference_hash(event, version.rules()).map_err(|error| match error {
        signatures::JsonError::PduTooLarge => CoreError::EventTooLarge {
            size: crate::json::encode(event).map(|text| text.len()).unwrap_or_default(),
        },
        other => CoreError::MalformedEvent(other.to_string()),
    })?;
    OwnedEventId::try_from(format!("${hash}"))
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))
}

/// The [redacted](https://spec.matrix.org/v1.16/client-server-api/#redactions) form of an
/// event under its room version's rules.
pub fn redact(
    event: CanonicalJsonObject,
    version: RoomVersion,
) -> Result<CanonicalJsonObject, CoreError> {
    ruma::canonical_json::redact(event, &version.rules().redaction, None)
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))
}

/// A key map that gives every `ed25519` key ID each server signed with the key its name
/// certifies: the key ID is only a label, the name is the key.
fn public_keys_from_names<'a>(
    servers: impl IntoIterator<Item = &'a ServerName>,
    object: &CanonicalJsonObject,
) -> Result<PublicKeyMap, CoreError> {
    let signatures = match object.get("signatures") {
        Some(CanonicalJsonValue::Object(signatures)) => Some(signatures),
        Some(_) => return Err(CoreError::MalformedEvent("`signatures` is not an object".into())),
        None => None,
    };
    let mut keys = PublicKeyMap::new();
    for server in servers {
        let key = Base64::<Standard>::new(verify_key_for_server(server)?.to_bytes().to_vec());
        let key_ids = signatures
            .and_then(|signatures| signatures.get(server.as_str()))
            .and_then(CanonicalJsonValue::as_object)
            .map(|by_key_id| {
                by_key_id.keys().filter(|id| id.starts_with("ed25519:")).cloned().collect()
            })
            .unwrap_or_else(Vec::new);
        let entry: BTreeMap<String, Base64<Standard>> =
            key_ids.into_iter().map(|id| (id, key.clone())).collect();
        keys.insert(server.to_string(), entry);
    }
    Ok(keys)
}
