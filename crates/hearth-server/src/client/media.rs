//! The media repository: upload, download, thumbnails and the upload limit
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#content-repository)).
//!
//! Downloads are served on the authenticated `/_matrix/client/v1/media/*` paths and on the
//! legacy unauthenticated `/_matrix/media/v3/*` ones. Another server's file is fetched over
//! federation and kept in the local store (`federation/media.rs`); the legacy paths fetch too
//! unless the client says `allow_remote=false`.

use std::time::Duration;

use hearth_core::ruma::{
    OwnedMxcUri, ServerName, UInt,
    api::client::{
        authenticated_media::{
            get_content, get_content_as_filename, get_content_thumbnail, get_media_config,
        },
        media::{self, create_content},
    },
    http_headers::{ContentDisposition, ContentDispositionType},
};
use hearth_store::MediaRecord;

use crate::{Authed, Server, ServerError, auth::random_token, error::Result, platform::now_ms};

/// Whether a path is a media upload, whose body may exceed the JSON body limit.
pub(crate) fn is_upload(path: &str) -> bool {
    path.starts_with("/_matrix/media/") && path.contains("/upload")
}

/// Content types a browser may render inline without risk of running script; everything else
/// is served as an attachment, as the spec recommends.
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// Whether `media_id` could be one of this server's media IDs: what `random_token` makes, and
/// what the spec asks of every server (`[A-Za-z0-9_-]`). Anything else names no file.
pub(crate) fn is_media_id(media_id: &str) -> bool {
    !media_id.is_empty()
        && media_id.len() <= 255
        && media_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-'))
}

/// A file to serve: its bytes, content type and `Content-Disposition`.
pub(crate) struct Served {
    pub(crate) file: Vec<u8>,
    pub(crate) content_type: String,
    pub(crate) disposition: ContentDisposition,
}

fn not_found() -> ServerError {
    ServerError::NotFound("media not found".into())
}

impl Server {
    /// `mxc://{server_name}/{media_id}` for a client: a local file, or another server's (a copy
    /// already kept, else fetched, waiting at most `fetch` for it; with `fetch` `None`, when the
    /// client said `allow_remote=false`, only a copy already kept). `filename` overrides the stored name in the disposition.
    async fn serve_media(
        &self,
        server_name: &ServerName,
        media_id: &str,
        filename: Option<String>,
        fetch: Option<Duration>,
    ) -> Result<Served> {
        if server_name == self.server_name() {
            return self.local_media(media_id, filename).await;
        }
        let store_id = self.remote_media(server_name, media_id, fetch).await?;
        self.stored_media(&store_id, filename).await
    }

    /// One of this server's own files (never a copy of another server's).
    pub(crate) async fn local_media(
        &self,
        media_id: &str,
        filename: Option<String>,
    ) -> Result<Served> {
        if !is_media_id(media_id) {
            return Err(not_found());
        }
        self.stored_media(media_id, filename).await
    }

    /// A file of the media store, by its ID there.
    async fn stored_media(&self, store_id: &str, filename: Option<String>) -> Result<Served> {
        let record = self.store().media(store_id).await?.ok_or_else(not_found)?;
        let file = self.store().media_content(store_id).await?.ok_or_else(not_found)?;
        let content_type =
            record.content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let kind = if INLINE_TYPES.contains(&essence.as_str()) {
            ContentDispositionType::Inline
        } else {
            ContentDispositionType::Attachment
        };
        let disposition = ContentDisposition::new(kind).with_filename(filename.or(record.filename));
        Ok(Served { file, content_type, disposition })
    }

    fn upload_size(&self) -> UInt {
        UInt::new_saturating(self.config().max_upload_bytes)
    }
}

/// `POST /_matrix/media/v3/upload`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixmediav3upload)).
pub(crate) async fn create_content(
    server: Server,
    authed: Authed,
    request: create_content::v3::Request,
) -> Result<create_content::v3::Response> {
    let max = server.config().max_upload_bytes;
    if request.file.len() as u64 > max {
        return Err(ServerError::TooLarge(format!("uploads are limited to {max} bytes")));
    }
    let media_id = random_token(18)?;
    let record = MediaRecord {
        content_type: request.content_type.filter(|content_type| !content_type.is_empty()),
        filename: request.filename.filter(|filename| !filename.is_empty()),
        size: request.file.len() as u64,
        uploader: authed.user_id.to_string(),
        created_ts: now_ms(),
    };
    let mut txn = server.store().transaction();
    txn.put_media(&media_id, &record, request.file)?;
    server.store().commit(txn).await?;
    let uri = OwnedMxcUri::from(format!("mxc://{}/{media_id}", server.server_name()));
    Ok(create_content::v3::Response::new(uri))
}

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid)).
pub(crate) async fn get_content(
    server: Server,
    _authed: Authed,
    request: get_content::v1::Request,
) -> Result<get_content::v1::Response> {
    let served = server
        .serve_media(&request.server_name, &request.media_id, None, Some(request.timeout_ms))
        .await?;
    Ok(get_content::v1::Response::new(served.file, served.content_type, served.disposition))
}

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename)).
pub(crate) async fn get_content_as_filename(
    server: Server,
    _authed: Authed,
    request: get_content_as_filename::v1::Request,
) -> Result<get_content_as_filename::v1::Response> {
    let served = server
        .serve_media(
            &request.server_name,
            &request.media_id,
            Some(request.filename),
            Some(request.timeout_ms),
        )
        .await?;
    Ok(get_content_as_filename::v1::Response::new(
        served.file,
        served.content_type,
        served.disposition,
    ))
}

/// `GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediathumbnailservernamemediaid)).
///
/// The server decodes no images: the "thumbnail" is the original file, which clients scale.
pub(crate) async fn get_content_thumbnail(
    server: Server,
    _authed: Authed,
    request: get_content_thumbnail::v1::Request,
) -> Result<get_content_thumbnail::v1::Response> {
    let served = server
        .serve_media(&request.server_name, &request.media_id, None, Some(request.timeout_ms))
        .await?;
    Ok(get_content_thumbnail::v1::Response::new(
        served.file,
        served.content_type,
        served.disposition,
    ))
}

/// `GET /_matrix/client/v1/media/config`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediaconfig)).
pub(crate) async fn get_media_config(
    server: Server,
    _authed: Authed,
    _request: get_media_config::v1::Request,
) -> Result<get_media_config::v1::Response> {
    Ok(get_media_config::v1::Response::new(server.upload_size()))
}

/// The deprecated unauthenticated `/_matrix/media/v3/*` endpoints, kept for older clients (ruma
/// marks their types deprecated since Matrix 1.11).
#[allow(deprecated)]
pub(crate) mod legacy {
    use super::*;

    /// `GET /_matrix/media/v3/download/{serverName}/{mediaId}`
    /// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixmediav3downloadservernamemediaid)).
    pub(crate) async fn get_content(
        server: Server,
        request: media::get_content::v3::Request,
    ) -> Result<media::get_content::v3::Response> {
        let fetch = request.allow_remote.then_some(request.timeout_ms);
        let served =
            server.serve_media(&request.server_name, &request.media_id, None, fetch).await?;
        Ok(media::get_content::v3::Response::new(
            served.file,
            served.content_type,
            served.disposition,
        ))
    }

    /// `GET /_matrix/media/v3/download/{serverName}/{mediaId}/{fileName}`
    /// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixmediav3downloadservernamemediaidfilename)).
    pub(crate) async fn get_content_as_filename(
        server: Server,
        request: media::get_content_as_filename::v3::Request,
    ) -> Result<media::get_content_as_filename::v3::Response> {
        let fetch = request.allow_remote.then_some(request.timeout_ms);
        let served = server
            .serve_media(&request.server_name, &request.media_id, Some(request.filename), fetch)
            .await?;
        Ok(media::get_content_as_filename::v3::Response::new(
            served.file,
            served.content_type,
            served.disposition,
        ))
    }

    /// `GET /_matrix/media/v3/thumbnail/{serverName}/{mediaId}`
    /// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixmediav3thumbnailservernamemediaid)).
    ///
    /// The server decodes no images: the "thumbnail" is the original file, which clients scale.
    pub(crate) async fn get_content_thumbnail(
        server: Server,
        request: media::get_content_thumbnail::v3::Request,
    ) -> Result<media::get_content_thumbnail::v3::Response> {
        let fetch = request.allow_remote.then_some(request.timeout_ms);
        let served =
            server.serve_media(&request.server_name, &request.media_id, None, fetch).await?;
        Ok(media::get_content_thumbnail::v3::Response::new(
            served.file,
            served.content_type,
            served.disposition,
        ))
    }

    /// `GET /_matrix/media/v3/config`
    /// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixmediav3config)).
    pub(crate) async fn get_media_config(
        server: Server,
        _authed: Authed,
        _request: media::get_media_config::v3::Request,
    ) -> Result<media::get_media_config::v3::Response> {
        Ok(media::get_media_config::v3::Response::new(server.upload_size()))
    }
}
