//! The federation protocol's side of the driver: requests out, requests in, responses back.

use futures::channel::oneshot;
use futures::future::Either;
use hearth_core::ruma::OwnedServerName;
use http::{Request, Response, StatusCode};
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundFailure, ResponseChannel};
use tracing::{debug, info};

use super::Driver;
use crate::{InboundRequest, P2pError, Responder, codec, platform, server_name_for_peer};

impl Driver {
    pub(super) fn on_answer(
        &mut self,
        channel: ResponseChannel<Response<Vec<u8>>>,
        response: Option<Response<Vec<u8>>>,
    ) {
        let response = match response {
            None => {
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "the server gave no response")
            }
            // Too large to send: say so, rather than reset the stream.
            Some(response) => match codec::check_response_size(&response) {
                Ok(()) => response,
                Err(reason) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &reason),
            },
        };
        let federation = &mut self.swarm.behaviour_mut().federation;
        if federation.send_response(channel, response).is_err() {
            debug!("the requester went away before the response");
        }
    }

    pub(super) fn on_federation(
        &mut self,
        event: request_response::Event<Request<Vec<u8>>, Response<Vec<u8>>>,
    ) {
        use request_response::{Event as E, Message};
        match event {
            E::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                self.on_inbound(peer, request, channel);
            }
            E::Message { message: Message::Response { request_id, response }, .. } => {
                if let Some((_, reply)) = self.pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            E::OutboundFailure { request_id, error, .. } => {
                if let Some((server, reply)) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(outbound_error(server, error)));
                }
            }
            E::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound request failed")
            }
            E::ResponseSent { .. } => {}
        }
    }

    fn on_inbound(
        &mut self,
        peer: PeerId,
        request: Request<Vec<u8>>,
        channel: ResponseChannel<Response<Vec<u8>>>,
    ) {
        // Only ed25519 keys are Hearth servers; anything else gets no answer (the stream closes).
        let Some(origin) = server_name_for_peer(&peer) else {
            info!(%peer, "refused a federation request from a non-ed25519 peer");
            return;
        };
        let (respond, answer) = oneshot::channel();
        let inbound = InboundRequest { origin, request, respond: Responder(respond) };
        match self.inbound.try_send(inbound) {
            Ok(()) => {
                let timeout = self.request_timeout;
                self.answers.push(Box::pin(async move {
                    let sleep = platform::sleep(timeout);
                    futures::pin_mut!(sleep);
                    match futures::future::select(answer, sleep).await {
                        Either::Left((Ok(response), _)) => (channel, Some(response)),
                        _ => (channel, None),
                    }
                }));
            }
            Err(e) => {
                // Full: the host is behind; refuse now rather than queue without bound.
                let (status, message) = if e.is_full() {
                    (StatusCode::SERVICE_UNAVAILABLE, "too many federation requests waiting")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "this server is not serving federation")
                };
                let response = error_response(status, message);
                let _ = self.swarm.behaviour_mut().federation.send_response(channel, response);
            }
        }
    }
}

fn outbound_error(server: OwnedServerName, error: OutboundFailure) -> P2pError {
    let reason = error.to_string();
    match error {
        OutboundFailure::DialFailure | OutboundFailure::UnsupportedProtocols => {
            P2pError::Unreachable { server, reason }
        }
        OutboundFailure::Timeout => P2pError::Timeout(server),
        OutboundFailure::ConnectionClosed | OutboundFailure::Io(_) => {
            P2pError::Interrupted { server, reason }
        }
    }
}

/// A Matrix error response (`M_UNKNOWN`), for what the p2p layer answers on the host's behalf.
fn error_response(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    let body = format!(r#"{{"errcode":"M_UNKNOWN","error":"{message}"}}"#).into_bytes();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}
