//! Access tokens, passwords and identifiers of local users.

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
        let seen = {
            let caches = self.caches();
            if let Some(authed) = caches.tokens.get(&token) {
                return Ok(authed);
            }
            caches.tokens.version()
        };
        let record = self.store().access_token(&token).await?.ok_or(ServerError::UnknownToken)?;
        let user_id = OwnedUserId::try_from(record.user_id)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        let authed = Authed { user_id, device_id: record.device_id.into() };
        self.caches().tokens.fill(seen, token, authed.clone());
        Ok(authed)
    }

    /// Drops every cached token; called after a commit that deleted devices (and with them
    /// their tokens), so that a logged-out token is refused from the next request on.
    pub(crate) fn forget_tokens(&self) {
        self.caches().tokens.clear();
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

/// Argon2id with OWASP's least memory-hungry recommended parameters (m = 7 MiB, t = 5, p = 1):
/// the server runs in browser tabs and on small machines.
const ARGON2_M_COST_KIB: u32 = 7 * 1024;
const ARGON2_T_COST: u32 = 5;
const ARGON2_OUTPUT_BYTES: usize = 32;

/// Argon2's working memory, allocated once and reused by every hash, one hash at a time. A
/// fresh 7 MiB per hash is not returned to the system by the allocator afterwards, so every
/// registration used to grow the process for good.
#[derive(Default)]
pub(crate) struct PasswordHasher {
    memory: async_lock::Mutex<Vec<argon2::Block>>,
}

impl PasswordHasher {
    /// An Argon2id hash in PHC string format (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|error| ServerError::Internal(error.to_string()))?;
        let output = self.compute(password, &salt, ARGON2_M_COST_KIB, ARGON2_T_COST, 1).await?;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        Ok(format!(
            "$argon2id$v=19$m={ARGON2_M_COST_KIB},t={ARGON2_T_COST},p=1${}${}",
            b64.encode(salt),
            b64.encode(output)
        ))
    }

    /// Whether `password` matches a stored PHC hash (with whatever parameters it was made).
    pub(crate) async fn verify(&self, password: &str, hash: &str) -> bool {
        let Some(Phc { m_cost, t_cost, p_cost, salt, output: expected }) = parse_phc(hash) else {
            return false;
        };
        // A stored hash is our own output; refuse parameters that would exhaust memory anyway.
        if m_cost > 256 * 1024
            || t_cost > 64
            || p_cost > 16
            || expected.len() != ARGON2_OUTPUT_BYTES
        {
            return false;
        }
        match self.compute(password, &salt, m_cost, t_cost, p_cost).await {
            Ok(actual) => constant_time_eq(&actual, &expected),
            Err(_) => false,
        }
    }

    async fn compute(
        &self,
        password: &str,
        salt: &[u8],
        m_cost: u32,
        t_cost: u32,
        p_cost: u32,
    ) -> Result<[u8; ARGON2_OUTPUT_BYTES]> {
        let params = argon2::Params::new(m_cost, t_cost, p_cost, Some(ARGON2_OUTPUT_BYTES))
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params.clone(),
        );
        let mut memory = self.memory.lock().await;
        if memory.len() < params.block_count() {
            memory.resize(params.block_count(), argon2::Block::default());
        }
        let mut output = [0u8; ARGON2_OUTPUT_BYTES];
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut output,
                &mut memory[..params.block_count()],
            )
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        // A rare larger stored hash must not keep its memory: shrink back to the default.
        let default_blocks = ARGON2_M_COST_KIB as usize;
        if memory.len() > default_blocks {
            memory.truncate(default_blocks);
            memory.shrink_to_fit();
        }
        Ok(output)
    }
}

/// The parts of an `$argon2id$v=19$m=..,t=..,p=..$salt$hash` string.
struct Phc {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Vec<u8>,
    output: Vec<u8>,
}

fn parse_phc(hash: &str) -> Option<Phc> {
    let mut parts = hash.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
        return None;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for param in parts.next()?.split(',') {
        let (name, value) = param.split_once('=')?;
        let value: u32 = value.parse().ok()?;
        match name {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return None,
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let salt = b64.decode(parts.next()?).ok()?;
    let output = b64.decode(parts.next()?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Phc { m_cost: m?, t_cost: t?, p_cost: p?, salt, output })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
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
        let hasher = PasswordHasher::default();
        let hash = hearth_store::conformance::block_on(hasher.hash("correct horse")).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        let verify = |password: &str, hash: &str| {
            hearth_store::conformance::block_on(hasher.verify(password, hash))
        };
        assert!(verify("correct horse", &hash));
        assert!(!verify("wrong", &hash));
        assert!(!verify("correct horse", "not a hash"));
        // Hashes stored before, made by the argon2 crate's own PHC encoder with its default
        // parameters, still verify.
        use argon2::PasswordHasher as _;
        let older = argon2::Argon2::default().hash_password(b"old password").unwrap().to_string();
        assert!(older.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{older}");
        assert!(verify("old password", &older));
        assert!(!verify("new password", &older));
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
