//! Media across servers: the federation download endpoints, which serve this server's own files
//! to other servers as `multipart/mixed`, and fetching another server's file for a local client
//! ([spec](https://spec.matrix.org/v1.16/server-server-api/#content-repository)).
//!
//! A fetched file is kept in the local media store, so the next read is local (and works while
//! its server is offline). The copy of `mxc://{origin}/{mediaId}` is stored under the media ID
//! `{origin}/{mediaId}`: this server's own media IDs never hold a `/` (every endpoint refuses
//! such IDs), so a copy is never mistaken for a local file, nor served to other servers.
//! Concurrent requests for one remote file wait for one fetch.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures_util::future::{Either, select};
use hearth_core::ruma::{
    ServerName,
    api::federation::authenticated_media::{get_content, get_content_thumbnail},
};
use hearth_store::MediaRecord;
use http::header::CONTENT_TYPE;

use super::multipart::{self, Refused};
use crate::{
    Server, ServerError,
    client::media::{Served, is_media_id},
    error::Result,
    lock,
    platform::now_ms,
    router::{Response, Router},
};

/// A client waits at most this long for another server's file, whatever its `timeout_ms`.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(120);
/// At most this many different remote files are fetched at once (429 beyond).
const MAX_FETCHES: usize = 32;

pub(crate) fn routes(router: &mut Router) {
    router.federated_http(get_content);
    router.federated_http(get_content_thumbnail);
}

/// `GET /_matrix/federation/v1/media/download/{mediaId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1mediadownloadmediaid)).
///
/// Only this server's own files (`mxc://{this server}/{mediaId}`), never copies of others'.
async fn get_content(
    server: Server,
    _origin: hearth_core::ruma::OwnedServerName,
    request: get_content::v1::Request,
) -> Result<Response> {
    multipart_response(server.local_media(&request.media_id, None).await?)
}

/// `GET /_matrix/federation/v1/media/thumbnail/{mediaId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1mediathumbnailmediaid)).
///
/// The server decodes no images: the "thumbnail" is the original file, as on the client API.
async fn get_content_thumbnail(
    server: Server,
    _origin: hearth_core::ruma::OwnedServerName,
    request: get_content_thumbnail::v1::Request,
) -> Result<Response> {
    multipart_response(server.local_media(&request.media_id, None).await?)
}

fn multipart_response(served: Served) -> Result<Response> {
    let (content_type, body) =
        multipart::write(&served.content_type, &served.disposition, &served.file)?;
    let mut response = http::Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(response)
}

/// The remote files being fetched now, each behind its own lock.
#[derive(Default)]
pub(crate) struct RemoteFetches(BTreeMap<String, Arc<async_lock::Mutex<()>>>);

/// A turn at fetching one remote file; the last one out forgets the file's lock.
struct FetchGate<'a> {
    server: &'a Server,
    store_id: String,
    gate: Arc<async_lock::Mutex<()>>,
}

impl<'a> FetchGate<'a> {
    fn new(server: &'a Server, store_id: &str) -> Result<FetchGate<'a>> {
        let mut fetches = lock(&server.0.remote_fetches);
        let gate = match fetches.0.get(store_id) {
            Some(gate) => gate.clone(),
            None if fetches.0.len() >= MAX_FETCHES => {
                return Err(ServerError::LimitExceeded(
                    "too many files are being fetched from other servers; try again".into(),
                ));
            }
            None => {
                let gate = Arc::new(async_lock::Mutex::new(()));
                fetches.0.insert(store_id.to_owned(), gate.clone());
                gate
            }
        };
        Ok(FetchGate { server, store_id: store_id.to_owned(), gate })
    }
}

impl Drop for FetchGate<'_> {
    fn drop(&mut self) {
        let mut fetches = lock(&self.server.0.remote_fetches);
        // The map's reference and ours: nobody else waits.
        if Arc::strong_count(&self.gate) <= 2
            && fetches.0.get(&self.store_id).is_some_and(|gate| Arc::ptr_eq(gate, &self.gate))
        {
            fetches.0.remove(&self.store_id);
        }
    }
}

impl Server {
    /// Makes sure a copy of `origin`'s file `media_id` is in the local media store, fetching it
    /// over federation if it is not, and returns the copy's media ID in the store. Waits at most
    /// `fetch` (the client's `timeout_ms`, capped at two minutes) for the other server; with
    /// `fetch` `None` (`allow_remote=false`) a file not kept yet is not found.
    pub(crate) async fn remote_media(
        &self,
        origin: &ServerName,
        media_id: &str,
        fetch: Option<Duration>,
    ) -> Result<String> {
        if !is_media_id(media_id) {
            return Err(ServerError::NotFound("media not found".into()));
        }
        let store_id = format!("{origin}/{media_id}");
        if self.store().media(&store_id).await?.is_some() {
            return Ok(store_id);
        }
        let wait = fetch.ok_or_else(|| ServerError::NotFound("media not found".into()))?;
        let gate = FetchGate::new(self, &store_id)?;
        let fetch = async {
            let _turn = gate.gate.lock().await;
            // Whoever had the turn before may have stored it.
            if self.store().media(&store_id).await?.is_none() {
                self.fetch_remote_media(origin, media_id, &store_id).await?;
            }
            Ok::<(), ServerError>(())
        };
        let timeout = self.runtime().sleep(wait.min(MAX_FETCH_WAIT));
        let fetched = match select(Box::pin(fetch), timeout).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(ServerError::NotYetUploaded(format!(
                "{origin} did not send mxc://{origin}/{media_id} in time"
            ))),
        };
        fetched.map(|()| store_id)
    }

    /// Asks `origin` for its file and stores the copy (one transaction: whole or absent).
    async fn fetch_remote_media(
        &self,
        origin: &ServerName,
        media_id: &str,
        store_id: &str,
    ) -> Result<()> {
        let request = get_content::v1::Request::new(media_id.to_owned());
        let response = self.send_federation_request(origin, request).await?;
        if !response.status().is_success() {
            return Err(remote_media_error(origin, media_id, &response));
        }
        let max = self.config().max_upload_bytes;
        let received = multipart::parse(response.headers().get(CONTENT_TYPE), response.body(), max)
            .map_err(|refused| match refused {
                Refused::TooLarge(_) => ServerError::MediaTooLarge(format!("{origin}: {refused}")),
                Refused::Redirect | Refused::Malformed(_) => {
                    ServerError::Unreachable(format!("{origin} answered badly: {refused}"))
                }
            })?;
        let record = MediaRecord {
            content_type: received.content_type.filter(|content_type| !content_type.is_empty()),
            filename: received.filename.filter(|filename| !filename.is_empty()),
            size: received.file.len() as u64,
            uploader: origin.to_string(),
            created_ts: now_ms(),
        };
        let mut txn = self.store().transaction();
        txn.put_media(store_id, &record, received.file)?;
        self.store().commit(txn).await?;
        Ok(())
    }
}

/// What another server's refusal means for our client: its 404 is ours; the rest is a bad
/// gateway.
fn remote_media_error(
    origin: &ServerName,
    media_id: &str,
    response: &http::Response<Vec<u8>>,
) -> ServerError {
    let errcode = serde_json::from_slice::<serde_json::Value>(response.body())
        .ok()
        .and_then(|body| body.get("errcode").and_then(|code| code.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let status = response.status();
    match errcode.as_str() {
        "M_NOT_FOUND" => ServerError::NotFound(format!("{origin} has no media {media_id}")),
        "M_TOO_LARGE" => ServerError::MediaTooLarge(format!("{origin}: the file is too large")),
        _ => ServerError::Unreachable(format!("{origin} answered {status} {errcode}")),
    }
}
