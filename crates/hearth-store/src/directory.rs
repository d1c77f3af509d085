//! Room aliases and the public room directory.

use hearth_core::ruma::{OwnedRoomId, RoomId};
use serde::{Deserialize, Serialize};

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// Where an alias points and who made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// The room.
    pub room_id: OwnedRoomId,
    /// The user who created the alias (who may delete it).
    pub creator: String,
}

impl Store {
    /// The room an alias points to.
    pub async fn alias(&self, alias: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.get(Table::Aliases, &Key::new().str(alias).build()).await
    }

    /// The local aliases of a room.
    pub async fn room_aliases(&self, room_id: &RoomId) -> Result<Vec<String>, StoreError> {
        let prefix = Key::new().str(room_id.as_str()).build();
        let rows = self
            .scan_raw(Table::RoomAliases, KeyRange::prefix(&prefix), Direction::Forward, usize::MAX)
            .await?;
        rows.into_iter()
            .map(|(key, _)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                reader.str()
            })
            .collect()
    }

    /// Rooms published in the public room directory.
    pub async fn public_rooms(&self) -> Result<Vec<OwnedRoomId>, StoreError> {
        let rows = self
            .scan_raw(Table::PublicRooms, KeyRange::prefix(&[]), Direction::Forward, usize::MAX)
            .await?;
        rows.into_iter()
            .map(|(key, _)| {
                OwnedRoomId::try_from(KeyReader::new(&key).str()?).map_err(StoreError::corrupt)
            })
            .collect()
    }

    /// Whether a room is published in the directory.
    pub async fn is_public(&self, room_id: &RoomId) -> Result<bool, StoreError> {
        Ok(self
            .get_raw(Table::PublicRooms, &Key::new().str(room_id.as_str()).build())
            .await?
            .is_some())
    }
}

impl Txn {
    /// Points an alias at a room.
    pub fn put_alias(&mut self, alias: &str, record: &AliasRecord) -> Result<(), StoreError> {
        self.put(Table::Aliases, Key::new().str(alias).build(), record)?;
        self.put_raw(
            Table::RoomAliases,
            Key::new().str(record.room_id.as_str()).str(alias).build(),
            Vec::new(),
        );
        Ok(())
    }

    /// Removes an alias.
    pub fn delete_alias(&mut self, alias: &str, room_id: &RoomId) {
        self.delete(Table::Aliases, Key::new().str(alias).build());
        self.delete(Table::RoomAliases, Key::new().str(room_id.as_str()).str(alias).build());
    }

    /// Publishes a room in the directory, or withdraws it.
    pub fn set_public(&mut self, room_id: &RoomId, public: bool) {
        let key = Key::new().str(room_id.as_str()).build();
        if public {
            self.put_raw(Table::PublicRooms, key, Vec::new());
        } else {
            self.delete(Table::PublicRooms, key);
        }
    }
}
