//! Requests this server makes to other servers: a ruma request type in, its response out,
//! signed with `X-Matrix` and carried by the host's [`Federation`](crate::Federation).

use hearth_core::ruma::{
    ServerName,
    api::{
        IncomingResponseExt, OutgoingRequest, error::FromHttpResponseError,
        path_builder::SinglePath,
    },
};
use http::{HeaderValue, header};

use crate::{Server, ServerError, error::Result, federation::sign_request};

impl Server {
    /// Sends a server-server request to `destination` and parses its response. A remote Matrix
    /// error comes back as the matching [`ServerError`] (a remote `M_FORBIDDEN` is `Forbidden`),
    /// so a client sees why another server refused.
    pub(crate) async fn federation_request<R>(
        &self,
        destination: &ServerName,
        request: R,
    ) -> Result<R::IncomingResponse>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
    {
        let response = self.send_federation_request(destination, request).await?;
        let (parts, body) = response.into_parts();
        R::IncomingResponse::try_from_http_response(http::Response::from_parts(parts, &body[..]))
            .map_err(|error| remote_error(destination, error))
    }

    /// Signs and sends a server-server request and returns the response as it came, whatever
    /// its status (for responses ruma's types cannot parse safely, such as media).
    pub(crate) async fn send_federation_request<R>(
        &self,
        destination: &ServerName,
        request: R,
    ) -> Result<http::Response<Vec<u8>>>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
    {
        if destination == self.server_name() {
            return Err(ServerError::Internal("a federation request to this server".into()));
        }
        let (mut parts, body) = request
            .try_into_http_request_inner("", ())
            .map_err(|error| ServerError::Internal(format!("federation request: {error}")))?
            .into_parts();
        if let Some(content_type) = hearth_core::ruma::api::OutgoingBody::content_type(&body) {
            parts.headers.entry(header::CONTENT_TYPE).or_insert(content_type);
        }
        parts
            .headers
            .entry(header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        let body: Vec<u8> =
            hearth_core::ruma::api::OutgoingBody::try_into_buf(body).map_err(|error| {
                let error: hearth_core::ruma::api::error::IntoHttpError = error.into();
                ServerError::Internal(format!("federation request body: {error}"))
            })?;
        let mut http_request = http::Request::from_parts(parts, body);
        sign_request(self.identity(), destination, &mut http_request)?;
        self.federation().request(destination.to_owned(), http_request).await
    }
}

impl Server {
    /// Sends a server-server request that ruma has no type for (Hearth's own endpoints) and
    /// returns the response whatever its status.
    pub(crate) async fn raw_federation_request(
        &self,
        destination: &ServerName,
        method: http::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<http::Response<Vec<u8>>> {
        let body = match body {
            Some(body) => serde_json::to_vec(body)
                .map_err(|error| ServerError::Internal(error.to_string()))?,
            None => Vec::new(),
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        sign_request(self.identity(), destination, &mut request)?;
        self.federation().request(destination.to_owned(), request).await
    }
}

/// What a remote refusal or a malformed answer means for whoever asked us.
fn remote_error<E: std::fmt::Display>(
    destination: &ServerName,
    error: FromHttpResponseError<E>,
) -> ServerError {
    match error {
        FromHttpResponseError::Server(error) => {
            let text = error.to_string();
            let message = format!("{destination}: {text}");
            // ruma renders a Matrix error as "[status / errcode] message".
            if text.contains("M_FORBIDDEN") {
                ServerError::Forbidden(message)
            } else if text.contains("M_NOT_FOUND") {
                ServerError::NotFound(message)
            } else if text.contains("M_INCOMPATIBLE_ROOM_VERSION")
                || text.contains("M_UNSUPPORTED_ROOM_VERSION")
            {
                ServerError::UnsupportedRoomVersion(message)
            } else if text.contains("M_LIMIT_EXCEEDED") {
                ServerError::LimitExceeded(message)
            } else {
                ServerError::Unreachable(message)
            }
        }
        other => ServerError::Unreachable(format!("{destination} answered badly: {other}")),
    }
}
