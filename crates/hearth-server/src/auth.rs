//! Access tokens, passwords and identifiers of local users.

use argon2::{Argon2, PasswordHasher, PasswordVerifier, password_hash::phc::PasswordHash};
use base64::Engine as _;
use hearth_core::ruma::{OwnedDeviceId, OwnedUserId, UserId};

use crate::{Server, ServerError, error::Result};

/// The user and device an access token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authed {
    /// The user.
    pub user_id: OwnedUserId,
    /// The device.
    pub device_id: OwnedDeviceId,
}

impl Server {
    /// Who sent the request: the `Authorization: Bearer` header or the deprecated
    /// `access_token` query parameter
    /// ([using access tokens](https://spec.matrix.org/v1.16/client-server-api/#using-access-tokens)).
    pub(crate) async fn authenticate<B>(&self, request: &http::Request<B>) -> Result<Authed> {
        let token = access_token(request)?.ok_or(ServerError::MissingToken)?;
        let record = self.store().access_token(&token).await?.ok_or(ServerError::UnknownToken)?;
        let user_id = OwnedUserId::try_from(record.user_id)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        Ok(Authed { user_id, device_id: record.device_id.into() })
    }

    /// A local user ID from a localpart or a full ID, checked against the
    /// [grammar](https://spec.matrix.org/v1.16/appendices/#user-identifiers).
    pub(crate) fn local_user_id(&self, name: &str) -> Result<OwnedUserId> {
        let localpart = match name.strip_prefix('@') {
            Some(full) => {
                let user_id = UserId::parse(format!("@{full}"))
                    .map_err(|error| ServerError::InvalidUsername(error.to_string()))?;
                if user_id.server_name() != self.server_name() {
                    return Err(ServerError::InvalidUsername(format!(
                        "{user_id} is not a user of this server"
                    )));
                }
                return Ok(user_id);
            }
            None => name,
        };
        let valid = !localpart.is_empty()
            && localpart.bytes().all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'));
        if !valid {
            return Err(ServerError::InvalidUsername(
                "user names may contain only a-z, 0-9, '.', '_', '=', '-', '/' and '+'".into(),
            ));
        }
        let user_id = UserId::parse(format!("@{localpart}:{}", self.server_name()))
            .map_err(|error| ServerError::InvalidUsername(error.to_string()))?;
        if user_id.as_str().len() > 255 {
            return Err(ServerError::InvalidUsername("user ID longer than 255 bytes".into()));
        }
        Ok(user_id)
    }
}

fn access_token<B>(request: &http::Request<B>) -> Result<Option<String>> {
    if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ServerError::UnknownToken)?;
        let token = value.strip_prefix("Bearer ").ok_or(ServerError::UnknownToken)?;
        return Ok(Some(token.trim().to_owned()));
    }
    let query = request.uri().query().unwrap_or("");
    Ok(form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "access_token")
        .map(|(_, value)| value.into_owned()))
}

/// `bytes` random bytes, URL-safe base64.
pub(crate) fn random_token(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer))
}

/// A device ID: ten random capital letters, as other homeservers make them.
pub(crate) fn random_device_id() -> Result<OwnedDeviceId> {
    let mut buffer = [0u8; 10];
    getrandom::fill(&mut buffer).map_err(|error| ServerError::Internal(error.to_string()))?;
    let id: String = buffer.iter().map(|byte| char::from(b'A' + byte % 26)).collect();
    Ok(id.into())
}

/// An Argon2id hash in PHC format, with the OWASP-recommended parameters that need the least
/// memory (m = 7 MiB, t = 5, p = 1): the server runs in browser tabs and on small machines, and
/// the allocator keeps each hash's memory per thread afterwards. Verification reads the
/// parameters from the stored hash, so changing them here never locks anyone out.
pub(crate) fn hash_password(password: &str) -> Result<String> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| ServerError::Internal(error.to_string()))
}

/// Whether `password` matches a stored hash.
pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A short stable ID for immutable content (filters): URL-safe base64 of its first SHA-256 bytes.
pub(crate) fn content_id(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let request =
            http::Request::builder().header("authorization", "Bearer abc").body(()).unwrap();
        assert_eq!(access_token(&request).unwrap().as_deref(), Some("abc"));
        let request = http::Request::builder().uri("/x?access_token=q%2Bt").body(()).unwrap();
        assert_eq!(access_token(&request).unwrap().as_deref(), Some("q+t"));
        let request =
            http::Request::builder().header("authorization", "Basic abc").body(()).unwrap();
        assert!(matches!(access_token(&request), Err(ServerError::UnknownToken)));
        assert_eq!(access_token(&http::Request::new(())).unwrap(), None);
    }
}
