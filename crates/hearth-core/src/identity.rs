//! Self-certifying server identity.
//!
//! A Hearth homeserver's name is the lowercase hex of its ed25519 public key: 64 characters,
//! a valid Matrix [server name](https://spec.matrix.org/v1.16/appendices/#server-name). The same
//! key signs events and requests and is the server's libp2p identity, so a remote server's
//! verify key is read off its name, and the peer ID of a connection is checked against the name
//! it claims. No key server round trip, no trust on first use.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use ruma::{
    AnyKeyName, OwnedServerName, OwnedSigningKeyId, ServerName, SigningKeyAlgorithm,
    serde::{Base64, base64::Standard},
    signatures::{KeyPair, Signature},
};

use crate::CoreError;

/// Length of an ed25519 public key and of a key seed.
const KEY_BYTES: usize = 32;

/// The key ID a Hearth server signs with. Verification does not depend on it: any `ed25519` key
/// ID of a Hearth server verifies with the key its name certifies.
pub const SERVER_KEY_ID: &str = "ed25519:hearth";

/// The prefix of an ed25519 libp2p peer ID: multihash `identity` (0x00) of 36 bytes (0x24), then
/// the protobuf `PublicKey { Type = Ed25519 (1), Data = 32 bytes }` (`08 01 12 20`).
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// An ed25519 signing key with the key ID it signs under.
///
/// The key ID matters only for the spec's test vectors, which sign as `domain` with
/// `ed25519:1`; a Hearth server uses [`ServerIdentity`].
pub struct Ed25519Key {
    signing_key: SigningKey,
    key_id: OwnedSigningKeyId<AnyKeyName>,
}

impl Ed25519Key {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: &[u8], key_id: &str) -> Result<Self, CoreError> {
        let seed: &[u8; KEY_BYTES] =
            seed.try_into().map_err(|_| CoreError::InvalidKeySeed(seed.len()))?;
        let key_id = OwnedSigningKeyId::<AnyKeyName>::try_from(key_id)
            .map_err(|_| CoreError::Signing(format!("invalid key ID {key_id:?}")))?;
        if key_id.algorithm() != SigningKeyAlgorithm::Ed25519 {
            return Err(CoreError::Signing(format!("{key_id} is not an ed25519 key ID")));
        }
        Ok(Self { signing_key: SigningKey::from_bytes(seed), key_id })
    }

    /// The public half.
    pub fn public_key(&self) -> [u8; KEY_BYTES] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// The key ID, such as `ed25519:hearth`.
    pub fn key_id(&self) -> &str {
        self.key_id.as_str()
    }
}

impl KeyPair for Ed25519Key {
    fn sign(&self, message: &[u8]) -> Signature {
        Signature::new(self.key_id.clone(), self.signing_key.sign(message).to_bytes().to_vec())
    }
}

/// This homeserver's identity: its signing key and the server name that key certifies.
pub struct ServerIdentity {
    key: Ed25519Key,
    server_name: OwnedServerName,
}

impl ServerIdentity {
    /// A new identity from the operating system's (or browser's) random number generator.
    pub fn generate() -> Result<Self, CoreError> {
        let mut seed = [0u8; KEY_BYTES];
        getrandom::fill(&mut seed).map_err(|error| CoreError::Random(error.to_string()))?;
        Self::from_seed(&seed)
    }

    /// The identity whose signing key has this 32-byte seed, as kept in storage.
    pub fn from_seed(seed: &[u8]) -> Result<Self, CoreError> {
        let key = Ed25519Key::from_seed(seed, SERVER_KEY_ID)?;
        let server_name = server_name_for_key(&key.public_key())?;
        Ok(Self { key, server_name })
    }

    /// The 32-byte seed to store; whoever has it is this server.
    pub fn seed(&self) -> [u8; KEY_BYTES] {
        self.key.signing_key.to_bytes()
    }

    /// The server name: 64 lowercase hex characters.
    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// The ed25519 public key.
    pub fn public_key(&self) -> [u8; KEY_BYTES] {
        self.key.public_key()
    }

    /// The key ID signatures are made under.
    pub fn key_id(&self) -> &str {
        self.key.key_id()
    }

    /// The public key in unpadded base64, as `/_matrix/key/v2/server` publishes it.
    pub fn public_key_base64(&self) -> Base64<Standard> {
        Base64::new(self.public_key().to_vec())
    }

    /// The signing key, for ruma's signing functions.
    pub fn key(&self) -> &Ed25519Key {
        &self.key
    }

    /// The libp2p peer ID of this server.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(&self.public_key())
    }
}

impl fmt::Debug for ServerIdentity {
    // Never print the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity").field("server_name", &self.server_name).finish()
    }
}

/// The server name a public key certifies.
pub fn server_name_for_key(public_key: &[u8; KEY_BYTES]) -> Result<OwnedServerName, CoreError> {
    let hex: String = public_key.iter().map(|byte| format!("{byte:02x}")).collect();
    ServerName::parse(&hex)
        .map_err(|_| CoreError::InvalidServerKey { name: hex, reason: "not a valid server name" })
}

/// Reads the ed25519 verify key off a Hearth server name.
pub fn verify_key_for_server(server_name: &ServerName) -> Result<VerifyingKey, CoreError> {
    let name = server_name.as_str();
    let invalid = |reason| CoreError::InvalidServerKey { name: name.to_owned(), reason };
    if name.len() != 2 * KEY_BYTES {
        return Err(invalid("a Hearth server name is 64 hex characters"));
    }
    let mut key = [0u8; KEY_BYTES];
    for (byte, pair) in key.iter_mut().zip(name.as_bytes().chunks_exact(2)) {
        *byte = (hex_digit(pair[0]).ok_or_else(|| invalid("not lowercase hex"))? << 4)
            | hex_digit(pair[1]).ok_or_else(|| invalid("not lowercase hex"))?;
    }
    VerifyingKey::from_bytes(&key).map_err(|_| invalid("not an ed25519 public key"))
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A libp2p peer ID of an ed25519 key, in the byte form libp2p uses (`PeerId::from_bytes`).
///
/// Kept here so that the core checks connections against server names without depending on
/// libp2p; the host converts with `libp2p::PeerId::from_bytes(peer_id.as_bytes())`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; PEER_ID_PREFIX.len() + KEY_BYTES]);

impl PeerId {
    /// The peer ID of an ed25519 public key.
    pub fn from_public_key(public_key: &[u8; KEY_BYTES]) -> Self {
        let mut bytes = [0u8; PEER_ID_PREFIX.len() + KEY_BYTES];
        bytes[..PEER_ID_PREFIX.len()].copy_from_slice(&PEER_ID_PREFIX);
        bytes[PEER_ID_PREFIX.len()..].copy_from_slice(public_key);
        Self(bytes)
    }

    /// The peer ID a server name certifies.
    pub fn for_server(server_name: &ServerName) -> Result<Self, CoreError> {
        Ok(Self::from_public_key(&verify_key_for_server(server_name)?.to_bytes()))
    }

    /// Parses libp2p's byte form; only ed25519 identity peer IDs are Hearth servers.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let bytes: [u8; PEER_ID_PREFIX.len() + KEY_BYTES] =
            bytes.try_into().map_err(|_| CoreError::InvalidPeerId("not an ed25519 peer ID"))?;
        if bytes[..PEER_ID_PREFIX.len()] != PEER_ID_PREFIX {
            return Err(CoreError::InvalidPeerId("not an ed25519 peer ID"));
        }
        Ok(Self(bytes))
    }

    /// Parses the base58 text form (`12D3KooW…`).
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        let bytes =
            bs58::decode(text).into_vec().map_err(|_| CoreError::InvalidPeerId("not base58"))?;
        Self::from_bytes(&bytes)
    }

    /// libp2p's byte form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The ed25519 public key inside.
    pub fn public_key(&self) -> [u8; KEY_BYTES] {
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(&self.0[PEER_ID_PREFIX.len()..]);
        key
    }

    /// The server name this peer is: refuses a peer whose key does not match the name it claims.
    pub fn check_claim(&self, claimed: &ServerName) -> Result<(), CoreError> {
        if Self::for_server(claimed)? == *self {
            Ok(())
        } else {
            Err(CoreError::PeerIdMismatch { server_name: claimed.to_string() })
        }
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.0).into_string())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}
