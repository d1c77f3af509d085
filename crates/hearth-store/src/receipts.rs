//! Read receipts: the newest receipt per room, type, thread and user, and a change index for
//! incremental sync.

use hearth_core::ruma::{OwnedEventId, RoomId};
use serde::{Deserialize, Serialize};

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// A user's receipt of one type in one room (and thread).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// The event read up to.
    pub event_id: OwnedEventId,
    /// When (ms since the epoch).
    pub ts: u64,
    /// The stream position of the change.
    pub stream: u64,
}

/// Which receipt changed at a stream position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptChange {
    /// `m.read` or `m.read.private`.
    pub receipt_type: String,
    /// The thread (`""` for an unthreaded receipt, `main` for the main timeline).
    pub thread: String,
    /// The user.
    pub user_id: String,
}

fn receipt_key(room_id: &str, receipt_type: &str, thread: &str, user_id: &str) -> Vec<u8> {
    Key::new().str(room_id).str(receipt_type).str(thread).str(user_id).build()
}

impl Store {
    /// One receipt.
    pub async fn receipt(
        &self,
        room_id: &RoomId,
        receipt_type: &str,
        thread: &str,
        user_id: &str,
    ) -> Result<Option<ReceiptRecord>, StoreError> {
        self.get(Table::Receipts, &receipt_key(room_id.as_str(), receipt_type, thread, user_id))
            .await
    }

    /// Every receipt in a room: `(change, record)`.
    pub async fn receipts(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<(ReceiptChange, ReceiptRecord)>, StoreError> {
        let prefix = Key::new().str(room_id.as_str()).build();
        let rows: Vec<(Vec<u8>, ReceiptRecord)> = self
            .scan(Table::Receipts, KeyRange::prefix(&prefix), Direction::Forward, usize::MAX)
            .await?;
        rows.into_iter()
            .map(|(key, record)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                let receipt_type = reader.str()?;
                let thread = reader.str()?;
                let user_id = reader.str()?;
                Ok((ReceiptChange { receipt_type, thread, user_id }, record))
            })
            .collect()
    }

    /// Receipt changes in a room with `after < stream <= up_to`.
    pub async fn receipt_changes(
        &self,
        room_id: &RoomId,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<ReceiptChange>, StoreError> {
        if after >= up_to {
            return Ok(Vec::new());
        }
        let range = KeyRange {
            start: std::ops::Bound::Excluded(Key::new().str(room_id.as_str()).u64(after).build()),
            end: std::ops::Bound::Included(Key::new().str(room_id.as_str()).u64(up_to).build()),
        };
        let rows: Vec<(Vec<u8>, ReceiptChange)> =
            self.scan(Table::ReceiptChanges, range, Direction::Forward, usize::MAX).await?;
        Ok(rows.into_iter().map(|(_, change)| change).collect())
    }
}

impl Txn {
    /// Records a receipt at a new stream position; returns the position.
    pub fn put_receipt(
        &mut self,
        room_id: &RoomId,
        change: &ReceiptChange,
        event_id: OwnedEventId,
        ts: u64,
    ) -> Result<u64, StoreError> {
        let stream = self.next_stream();
        let record = ReceiptRecord { event_id, ts, stream };
        let key =
            receipt_key(room_id.as_str(), &change.receipt_type, &change.thread, &change.user_id);
        self.put(Table::Receipts, key, &record)?;
        self.put(
            Table::ReceiptChanges,
            Key::new().str(room_id.as_str()).u64(stream).build(),
            change,
        )?;
        Ok(stream)
    }
}
