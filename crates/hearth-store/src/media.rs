//! The media repository: metadata in [`Table::Media`], bytes in [`Table::MediaContent`].

use serde::{Deserialize, Serialize};

use crate::{
    StoreError,
    backend::Table,
    keys::Key,
    store::{Store, Txn},
};

/// What is known about an uploaded file besides its bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// The `Content-Type` it was uploaded with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The file name it was uploaded with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The user who uploaded it; for a copy of another server's file, that server's name.
    pub uploader: String,
    /// When it was uploaded (ms since the epoch).
    pub created_ts: u64,
}

fn media_key(media_id: &str) -> Vec<u8> {
    Key::new().str(media_id).build()
}

impl Store {
    /// The metadata of a media file (local, or a copy of another server's: see `hearth-server`
    /// for how their IDs are told apart).
    pub async fn media(&self, media_id: &str) -> Result<Option<MediaRecord>, StoreError> {
        self.get(Table::Media, &media_key(media_id)).await
    }

    /// The bytes of a media file.
    pub async fn media_content(&self, media_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(Table::MediaContent, &media_key(media_id)).await
    }
}

impl Txn {
    /// Stores a media file: its metadata and its bytes (one transaction per upload).
    pub fn put_media(
        &mut self,
        media_id: &str,
        record: &MediaRecord,
        content: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.put(Table::Media, media_key(media_id), record)?;
        self.put_raw(Table::MediaContent, media_key(media_id), content);
        Ok(())
    }
}
