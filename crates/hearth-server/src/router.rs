//! The route table, built from each ruma endpoint's metadata (its method and every path it has
//! had: r0, v3, v1, unstable), so no path string is written twice.

use std::{future::Future, sync::Arc};

use hearth_core::platform::{BoxFuture, SendOutsideWasm, SyncOutsideWasm};
use http::Method;
use ruma::{
    OwnedServerName,
    api::{
        IncomingRequest, IncomingRequestExt, OutgoingResponse, OutgoingResponseExt,
        error::{DeserializationError, FromHttpRequestError},
        path_builder::PathBuilder,
    },
};

use crate::{Authed, Server, ServerError, error::Result};

/// A request as it reaches a handler: the HTTP request and the decoded path parameters.
pub(crate) struct Incoming {
    pub(crate) request: http::Request<Vec<u8>>,
    pub(crate) path_args: Vec<String>,
}

pub(crate) type Response = http::Response<Vec<u8>>;

pub(crate) trait HandlerFn:
    Fn(Server, Incoming) -> BoxFuture<'static, Result<Response>> + SendOutsideWasm + SyncOutsideWasm
{
}
impl<T> HandlerFn for T where
    T: Fn(Server, Incoming) -> BoxFuture<'static, Result<Response>>
        + SendOutsideWasm
        + SyncOutsideWasm
{
}

type Handler = Arc<dyn HandlerFn>;

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: Method,
    segments: Vec<Segment>,
    handler: Handler,
}

/// What a path matched.
pub(crate) enum Found {
    Handler(Handler, Vec<String>),
    /// Only for other methods: the ones it accepts (for CORS preflight and 405).
    OtherMethods,
}

#[derive(Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// An endpoint that needs an access token.
    pub(crate) fn authed<R, F, Fut>(&mut self, handler: F)
    where
        R: IncomingRequest + SendOutsideWasm + 'static,
        R::OutgoingResponse: SendOutsideWasm,
        F: Fn(Server, Authed, R) -> Fut + Clone + SendOutsideWasm + SyncOutsideWasm + 'static,
        Fut: Future<Output = Result<R::OutgoingResponse>> + SendOutsideWasm + 'static,
    {
        self.add::<R>(Arc::new(move |server: Server, incoming: Incoming| {
            let handler = handler.clone();
            Box::pin(async move {
                let authed = server.authenticate(&incoming.request).await?;
                let request = parse::<R>(incoming)?;
                encode(handler(server, authed, request).await?)
            })
        }));
    }

    /// A federation endpoint: the calling server signs the request (`X-Matrix`); the handler
    /// gets the verified origin.
    pub(crate) fn federated<R, F, Fut>(&mut self, handler: F)
    where
        R: IncomingRequest + SendOutsideWasm + 'static,
        R::OutgoingResponse: SendOutsideWasm,
        F: Fn(Server, OwnedServerName, R) -> Fut
            + Clone
            + SendOutsideWasm
            + SyncOutsideWasm
            + 'static,
        Fut: Future<Output = Result<R::OutgoingResponse>> + SendOutsideWasm + 'static,
    {
        self.add::<R>(Arc::new(move |server: Server, incoming: Incoming| {
            let handler = handler.clone();
            Box::pin(async move {
                let origin = server.authenticate_server(&incoming.request)?;
                let request = parse::<R>(incoming)?;
                encode(handler(server, origin, request).await?)
            })
        }));
    }

    /// A federation endpoint whose response ruma cannot write as the spec wants (the
    /// `multipart/mixed` media downloads): the handler answers with the HTTP response itself.
    pub(crate) fn federated_http<R, F, Fut>(&mut self, handler: F)
    where
        R: IncomingRequest + SendOutsideWasm + 'static,
        F: Fn(Server, OwnedServerName, R) -> Fut
            + Clone
            + SendOutsideWasm
            + SyncOutsideWasm
            + 'static,
        Fut: Future<Output = Result<Response>> + SendOutsideWasm + 'static,
    {
        self.add::<R>(Arc::new(move |server: Server, incoming: Incoming| {
            let handler = handler.clone();
            Box::pin(async move {
                let origin = server.authenticate_server(&incoming.request)?;
                let request = parse::<R>(incoming)?;
                handler(server, origin, request).await
            })
        }));
    }

    /// An endpoint anyone may call.
    pub(crate) fn public<R, F, Fut>(&mut self, handler: F)
    where
        R: IncomingRequest + SendOutsideWasm + 'static,
        R::OutgoingResponse: SendOutsideWasm,
        F: Fn(Server, R) -> Fut + Clone + SendOutsideWasm + SyncOutsideWasm + 'static,
        Fut: Future<Output = Result<R::OutgoingResponse>> + SendOutsideWasm + 'static,
    {
        self.add::<R>(Arc::new(move |server: Server, incoming: Incoming| {
            let handler = handler.clone();
            Box::pin(async move {
                let request = parse::<R>(incoming)?;
                encode(handler(server, request).await?)
            })
        }));
    }

    /// An endpoint ruma has no type for, handled on the raw request.
    pub(crate) fn raw(&mut self, method: Method, path: &str, handler: Handler) {
        self.routes.push(Route { method, segments: segments(path), handler });
    }

    fn add<R: IncomingRequest>(&mut self, handler: Handler) {
        for path in R::PATH_BUILDER.all_paths() {
            self.raw(R::METHOD, path, handler.clone());
        }
    }

    /// Orders routes so that the most specific template wins: literal segments before
    /// parameters, position by position.
    pub(crate) fn finish(&mut self) {
        self.routes.sort_by(|a, b| {
            let rank = |route: &Route| {
                route.segments.iter().map(|s| matches!(s, Segment::Param(_))).collect::<Vec<_>>()
            };
            rank(a).cmp(&rank(b))
        });
    }

    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<Found> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut other_methods = false;
        for route in &self.routes {
            let Some(args) = match_segments(&route.segments, &parts) else { continue };
            // HEAD is GET without a body, as ruma's own parsing accepts.
            if route.method == method || (route.method == Method::GET && method == Method::HEAD) {
                return Some(Found::Handler(route.handler.clone(), args));
            }
            other_methods = true;
        }
        other_methods.then_some(Found::OtherMethods)
    }
}

fn segments(path: &str) -> Vec<Segment> {
    path.split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name.to_owned()),
            None => match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            },
        })
        .collect()
}

/// Matches a request path against a template, returning the percent-decoded parameters.
fn match_segments(template: &[Segment], parts: &[&str]) -> Option<Vec<String>> {
    // `PUT /rooms/{roomId}/state/{eventType}/{stateKey}` is also called without the state key
    // (`.../state/m.room.name`): the empty state key.
    let elided_state_key = parts.len() + 1 == template.len()
        && matches!(template.last(), Some(Segment::Param(name)) if name == "stateKey");
    if parts.len() != template.len() && !elided_state_key {
        return None;
    }
    let mut args = Vec::new();
    for (index, segment) in template.iter().enumerate() {
        let part = parts.get(index).copied().unwrap_or("");
        match segment {
            Segment::Literal(literal) => {
                if literal != part {
                    return None;
                }
            }
            Segment::Param(_) => {
                let decoded = percent_encoding::percent_decode_str(part).decode_utf8().ok()?;
                args.push(decoded.into_owned());
            }
        }
    }
    Some(args)
}

fn parse<R: IncomingRequest>(incoming: Incoming) -> Result<R> {
    let Incoming { request, path_args } = incoming;
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, body.as_slice());
    let args: Vec<&str> = path_args.iter().map(String::as_str).collect();
    R::try_from_http_request(request, &args).map_err(request_error)
}

/// Tells malformed JSON (`M_NOT_JSON`) from JSON of the wrong shape (`M_BAD_JSON`) and from bad
/// query or path parameters (`M_INVALID_PARAM`).
fn request_error(error: FromHttpRequestError) -> ServerError {
    match error {
        FromHttpRequestError::Deserialization(DeserializationError::Json(error)) => {
            if error.is_syntax() || error.is_eof() {
                ServerError::NotJson(error.to_string())
            } else {
                ServerError::BadJson(error.to_string())
            }
        }
        FromHttpRequestError::Deserialization(DeserializationError::Utf8(error)) => {
            ServerError::NotJson(error.to_string())
        }
        FromHttpRequestError::Deserialization(error) => {
            ServerError::InvalidParam(error.to_string())
        }
        FromHttpRequestError::MethodMismatch { .. } => ServerError::MethodNotAllowed,
        other => ServerError::InvalidParam(other.to_string()),
    }
}

fn encode<T: OutgoingResponse>(response: T) -> Result<Response> {
    response
        .try_into_http_response::<Vec<u8>>()
        .map_err(|error| ServerError::Internal(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_and_decode_parameters() {
        let template = segments("/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}");
        let parts: Vec<&str> =
            "/_matrix/client/v3/rooms/%21a%3Ax/state/m.room.member/%40b%3Ax".split('/').collect();
        assert_eq!(match_segments(&template, &parts).unwrap(), ["!a:x", "m.room.member", "@b:x"]);
        let elided: Vec<&str> =
            "/_matrix/client/v3/rooms/!a:x/state/m.room.name".split('/').collect();
        assert_eq!(match_segments(&template, &elided).unwrap(), ["!a:x", "m.room.name", ""]);
        let other: Vec<&str> =
            "/_matrix/client/v3/rooms/!a:x/send/m.room.name".split('/').collect();
        assert!(match_segments(&template, &other).is_none());
    }
}
