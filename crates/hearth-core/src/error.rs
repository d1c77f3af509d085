//! The one error type of `hearth-core`.
//!
//! Every way input can be bad has its own variant, so that callers (the federation and
//! client-server handlers) can map each to the right Matrix `errcode` without parsing messages.

use ruma::OwnedEventId;

/// Everything that can go wrong in the protocol core.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// The bytes are not valid UTF-8.
    #[error("JSON is not valid UTF-8 (at byte {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the longest valid prefix.
        valid_up_to: usize,
    },
    /// The text is not JSON at all (syntax error, trailing data, nesting too deep).
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// An object key is not a string (`{1: 2}`), which canonical JSON cannot represent.
    #[error("object keys must be strings")]
    NonStringKey,
    /// A number with a fractional part: canonical JSON has integers only.
    #[error("floating-point numbers are not allowed in canonical JSON")]
    Float,
    /// An integer outside `[-(2^53)+1, (2^53)-1]`.
    #[error("integer outside the canonical JSON range ±(2^53−1)")]
    IntegerOutOfRange,
    /// The top-level JSON value is not an object.
    #[error("expected a JSON object")]
    NotAnObject,
    /// An event is larger than the 65,536 bytes the spec allows.
    #[error("event is {size} bytes, more than the 65536 allowed")]
    EventTooLarge {
        /// Size of the event in canonical JSON, signatures included.
        size: usize,
    },
    /// A room version this server does not implement.
    #[error("unsupported room version {0:?}")]
    UnsupportedRoomVersion(String),
    /// A server name that is not the lowercase hex of an ed25519 public key.
    #[error("server name {name:?} is not a Hearth server key: {reason}")]
    InvalidServerKey {
        /// The offending server name.
        name: String,
        /// Why it is not a key.
        reason: &'static str,
    },
    /// A libp2p peer ID that is not an ed25519 identity peer ID.
    #[error("invalid peer ID: {0}")]
    InvalidPeerId(&'static str),
    /// The peer ID of a connection is not the one the claimed server name certifies.
    #[error("peer ID does not match server name {server_name}")]
    PeerIdMismatch {
        /// The server name the peer claimed.
        server_name: String,
    },
    /// The key seed is not 32 bytes.
    #[error("a signing key seed is 32 bytes, got {0}")]
    InvalidKeySeed(usize),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// An event does not have the shape the room version requires.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// A signature is missing or does not verify.
    #[error("signature check failed: {0}")]
    BadSignature(String),
    /// Signing failed (the object is not signable, such as a non-object `signatures`).
    #[error("cannot sign: {0}")]
    Signing(String),
    /// An event fails the authorization rules.
    #[error("event not authorized: {0}")]
    NotAuthorized(String),
    /// An event needed for the operation is not available.
    #[error("missing event {0}")]
    MissingEvent(OwnedEventId),
    /// State resolution failed.
    #[error("state resolution failed: {0}")]
    StateResolution(String),
    /// The event source behind the state-resolution adapter failed.
    #[error("event source failed: {0}")]
    EventSource(String),
}
