//! Media repository. (Being built: upload, download, thumbnails, config.)

/// Whether a path is a media upload, whose body may exceed the JSON body limit.
pub(crate) fn is_upload(path: &str) -> bool {
    path.starts_with("/_matrix/media/") && path.contains("/upload")
}
