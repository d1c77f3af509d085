//! The media repository: upload, download, thumbnails and the upload limit
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#content-repository)).
//!
//! Downloads are served on the authenticated `/_matrix/client/v1/media/*` paths and on the
//! legacy unauthenticated `/_matrix/media/v3/*` ones. Only local media is served: a remote
//! server name answers 404 until federation fetches media.

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

/// A local file: its bytes, content type and `Content-Disposition`.
struct Served {
    file: Vec<u8>,
    content_type: String,
    disposition: ContentDisposition,
}

impl Server {
    /// Reads a local media file; `filename` overrides the stored name in the disposition.
    async fn serve_media(
        &self,
        server_name: &ServerName,
        media_id: &str,
        filename: Option<String>,
    ) -> Result<Served> {
        let not_found = || ServerError::NotFound("media not found".into());
        if server_name != self.server_name() {
            return Err(not_found());
        }
        let record = self.store().media(media_id).await?.ok_or_else(not_found)?;
        let file = self.store().media_content(media_id).await?.ok_or_else(not_found)?;
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
    let served = server.serve_media(&request.server_name, &request.media_id, None).await?;
    Ok(get_content::v1::Response::new(served.file, served.content_type, served.disposition))
}

/// `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1mediadownloadservernamemediaidfilename)).
pub(crate) async fn get_content_as_filename(
    server: Server,
    _authed: Authed,
    request: get_content_as_filename::v1::Request,
) -> Result<get_content_as_filename::v1::Response> {
    let served =
        server.serve_media(&request.server_name, &request.media_id, Some(request.filename)).await?;
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
    let served = server.serve_media(&request.server_name, &request.media_id, None).await?;
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
        let served = server.serve_media(&request.server_name, &request.media_id, None).await?;
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
        let served = server
            .serve_media(&request.server_name, &request.media_id, Some(request.filename))
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
        let served = server.serve_media(&request.server_name, &request.media_id, None).await?;
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
