//! The server's one error enum, and the one place it becomes a Matrix error response
//! ([standard error response](https://spec.matrix.org/v1.16/client-server-api/#standard-error-response)).

use hearth_core::CoreError;
use hearth_store::StoreError;
use http::StatusCode;
use serde_json::{Value, json};

/// Everything a request can fail with. Each variant maps to exactly one `errcode` and status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The request is not allowed (403 `M_FORBIDDEN`).
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist (404 `M_NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// No endpoint at this path (404 `M_UNRECOGNIZED`).
    #[error("unrecognized request")]
    Unrecognized,
    /// The path exists with other methods (405 `M_UNRECOGNIZED`).
    #[error("method not allowed for this endpoint")]
    MethodNotAllowed,
    /// No access token was given (401 `M_MISSING_TOKEN`).
    #[error("missing access token")]
    MissingToken,
    /// The access token is not known (401 `M_UNKNOWN_TOKEN`).
    #[error("unknown access token")]
    UnknownToken,
    /// The body is not JSON (400 `M_NOT_JSON`).
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON of the wrong shape (400 `M_BAD_JSON`).
    #[error("{0}")]
    BadJson(String),
    /// A parameter has an invalid value (400 `M_INVALID_PARAM`).
    #[error("{0}")]
    InvalidParam(String),
    /// A required parameter is missing (400 `M_MISSING_PARAM`).
    #[error("{0}")]
    MissingParam(String),
    /// The request or upload is too large (413 `M_TOO_LARGE`).
    #[error("{0}")]
    TooLarge(String),
    /// The user ID is taken (400 `M_USER_IN_USE`).
    #[error("user ID already taken")]
    UserInUse,
    /// The user ID is not a valid localpart (400 `M_INVALID_USERNAME`).
    #[error("{0}")]
    InvalidUsername(String),
    /// An alias in a canonical alias event does not point to the room (400 `M_BAD_ALIAS`).
    #[error("{0}")]
    BadAlias(String),
    /// The alias is taken (400 `M_ROOM_IN_USE`).
    #[error("room alias already taken")]
    RoomInUse,
    /// The room version is not supported (400 `M_UNSUPPORTED_ROOM_VERSION`).
    #[error("{0}")]
    UnsupportedRoomVersion(String),
    /// The account is deactivated (403 `M_USER_DEACTIVATED`).
    #[error("account deactivated")]
    UserDeactivated,
    /// The room key backup version is not the current one (403 `M_WRONG_ROOM_KEYS_VERSION`).
    #[error("wrong room keys version")]
    WrongRoomKeysVersion {
        /// The current version.
        current_version: Option<String>,
    },
    /// User-interactive authentication must continue (401 with the flows).
    #[error("user-interactive authentication required")]
    AuthRequired(Value),
    /// The request needs a capability the server has switched off (403 `M_FORBIDDEN`),
    /// such as registration on an invite-only server.
    #[error("{0}")]
    Disabled(String),
    /// A request the server understood and cannot serve (400 `M_UNKNOWN`).
    #[error("{0}")]
    Unknown(String),
    /// Too much is in flight; try again later (429 `M_LIMIT_EXCEEDED`).
    #[error("{0}")]
    LimitExceeded(String),
    /// A federation request without a valid `X-Matrix` signature (401 `M_UNAUTHORIZED`).
    #[error("{0}")]
    Unauthorized(String),
    /// The server is not serving now (stopped, or its host is handing over); the client should
    /// retry (503 `M_UNKNOWN`).
    #[error("{0}")]
    Unavailable(String),
    /// The room's version is not one the other side supports (400 `M_INCOMPATIBLE_ROOM_VERSION`).
    #[error("{0}")]
    IncompatibleRoomVersion(String),
    /// Another server could not be reached or did not answer in time (502 `M_UNKNOWN`).
    #[error("{0}")]
    Unreachable(String),
    /// Another server's file is larger than this server serves (502 `M_TOO_LARGE`, as the
    /// spec's media download endpoints answer).
    #[error("{0}")]
    MediaTooLarge(String),
    /// Content that is not available yet: another server did not deliver it within the
    /// client's `timeout_ms` (504 `M_NOT_YET_UPLOADED`).
    #[error("{0}")]
    NotYetUploaded(String),
    /// The storage failed (500 `M_UNKNOWN`).
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The protocol core refused or failed (see [`ServerError::from`]).
    #[error("{0}")]
    Core(#[from] CoreError),
    /// A bug or an impossible state (500 `M_UNKNOWN`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServerError {
    /// The HTTP status and the JSON body of the error response.
    pub fn to_response_parts(&self) -> (StatusCode, Value) {
        let (status, errcode) = match self {
            ServerError::Forbidden(_) | ServerError::Disabled(_) => {
                (StatusCode::FORBIDDEN, "M_FORBIDDEN")
            }
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            ServerError::Unrecognized => (StatusCode::NOT_FOUND, "M_UNRECOGNIZED"),
            ServerError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "M_UNRECOGNIZED"),
            ServerError::MissingToken => (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN"),
            ServerError::UnknownToken => (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN"),
            ServerError::NotJson(_) => (StatusCode::BAD_REQUEST, "M_NOT_JSON"),
            ServerError::BadJson(_) => (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
            ServerError::InvalidParam(_) => (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
            ServerError::MissingParam(_) => (StatusCode::BAD_REQUEST, "M_MISSING_PARAM"),
            ServerError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE"),
            ServerError::UserInUse => (StatusCode::BAD_REQUEST, "M_USER_IN_USE"),
            ServerError::InvalidUsername(_) => (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME"),
            ServerError::BadAlias(_) => (StatusCode::BAD_REQUEST, "M_BAD_ALIAS"),
            ServerError::RoomInUse => (StatusCode::BAD_REQUEST, "M_ROOM_IN_USE"),
            ServerError::UnsupportedRoomVersion(_) => {
                (StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION")
            }
            ServerError::UserDeactivated => (StatusCode::FORBIDDEN, "M_USER_DEACTIVATED"),
            ServerError::WrongRoomKeysVersion { .. } => {
                (StatusCode::FORBIDDEN, "M_WRONG_ROOM_KEYS_VERSION")
            }
            ServerError::LimitExceeded(_) => (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED"),
            ServerError::Unknown(_) => (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
            ServerError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED"),
            ServerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN"),
            ServerError::Unreachable(_) => (StatusCode::BAD_GATEWAY, "M_UNKNOWN"),
            ServerError::MediaTooLarge(_) => (StatusCode::BAD_GATEWAY, "M_TOO_LARGE"),
            ServerError::NotYetUploaded(_) => (StatusCode::GATEWAY_TIMEOUT, "M_NOT_YET_UPLOADED"),
            ServerError::IncompatibleRoomVersion(_) => {
                (StatusCode::BAD_REQUEST, "M_INCOMPATIBLE_ROOM_VERSION")
            }
            ServerError::AuthRequired(body) => return (StatusCode::UNAUTHORIZED, body.clone()),
            ServerError::Store(_) | ServerError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN")
            }
            ServerError::Core(error) => core_error_code(error),
        };
        let mut body = json!({ "errcode": errcode, "error": self.to_string() });
        if let ServerError::WrongRoomKeysVersion { current_version } = self {
            body["current_version"] = json!(current_version);
        }
        (status, body)
    }
}

/// Protocol-core errors that reach a client are either the client's fault (an event it asked
/// for breaks the auth rules or the format) or ours.
fn core_error_code(error: &CoreError) -> (StatusCode, &'static str) {
    match error {
        CoreError::NotAuthorized(_) => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        CoreError::EventTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE"),
        CoreError::UnsupportedRoomVersion(_) => {
            (StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION")
        }
        CoreError::InvalidJson(_)
        | CoreError::NonStringKey
        | CoreError::Float
        | CoreError::IntegerOutOfRange
        | CoreError::NotAnObject
        | CoreError::MalformedEvent(_) => (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
        CoreError::InvalidUtf8 { .. } => (StatusCode::BAD_REQUEST, "M_NOT_JSON"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN"),
    }
}

/// Results of handlers.
pub(crate) type Result<T, E = ServerError> = std::result::Result<T, E>;
