//! End-to-end encryption: device and cross-signing keys, one-time and fallback keys, key
//! changes, to-device messages and room key backups.

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// A device's fallback key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FallbackKeyRecord {
    /// The key ID (after the algorithm).
    pub key_id: String,
    /// The key object as uploaded.
    pub key: Value,
    /// Whether it was handed out by a claim since it was uploaded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub used: bool,
}

/// A queued to-device message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToDeviceRecord {
    /// Who sent it.
    pub sender: String,
    /// The event type.
    pub event_type: String,
    /// The event content.
    pub content: Value,
}

/// A room key backup version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupVersionRecord {
    /// The backup algorithm.
    pub algorithm: String,
    /// Algorithm-dependent data.
    pub auth_data: Value,
    /// Changes whenever the stored keys change.
    pub etag: u64,
    /// A deleted version stays as a tombstone so that its number is never reused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

fn reader_at(key: &[u8], skip: usize) -> Result<KeyReader<'_>, StoreError> {
    let mut reader = KeyReader::new(key);
    for _ in 0..skip {
        reader.str()?;
    }
    Ok(reader)
}

fn prefix_range(key: Key) -> KeyRange {
    KeyRange::prefix(&key.build())
}

impl Store {
    /// The identity keys a device uploaded.
    pub async fn device_keys(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<Value>, StoreError> {
        self.get(Table::DeviceKeys, &Key::new().str(user_id).str(device_id).build()).await
    }

    /// The identity keys of all of a user's devices, by device ID.
    pub async fn all_device_keys(&self, user_id: &str) -> Result<Vec<(String, Value)>, StoreError> {
        let rows: Vec<(Vec<u8>, Value)> = self
            .scan(
                Table::DeviceKeys,
                prefix_range(Key::new().str(user_id)),
                Direction::Forward,
                usize::MAX,
            )
            .await?;
        rows.into_iter().map(|(key, value)| Ok((reader_at(&key, 1)?.str()?, value))).collect()
    }

    /// A device's unclaimed one-time keys: `(algorithm, key ID, key)`.
    pub async fn one_time_keys(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        let rows: Vec<(Vec<u8>, Value)> = self
            .scan(
                Table::OneTimeKeys,
                prefix_range(Key::new().str(user_id).str(device_id)),
                Direction::Forward,
                usize::MAX,
            )
            .await?;
        rows.into_iter()
            .map(|(key, value)| {
                let mut reader = reader_at(&key, 2)?;
                Ok((reader.str()?, reader.str()?, value))
            })
            .collect()
    }

    /// A device's fallback keys, by algorithm.
    pub async fn fallback_keys(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Vec<(String, FallbackKeyRecord)>, StoreError> {
        let rows: Vec<(Vec<u8>, FallbackKeyRecord)> = self
            .scan(
                Table::FallbackKeys,
                prefix_range(Key::new().str(user_id).str(device_id)),
                Direction::Forward,
                usize::MAX,
            )
            .await?;
        rows.into_iter().map(|(key, value)| Ok((reader_at(&key, 2)?.str()?, value))).collect()
    }

    /// A user's cross-signing key of one usage (`master`, `self_signing`, `user_signing`).
    pub async fn cross_signing_key(
        &self,
        user_id: &str,
        usage: &str,
    ) -> Result<Option<Value>, StoreError> {
        self.get(Table::CrossSigningKeys, &Key::new().str(user_id).str(usage).build()).await
    }

    /// Users whose keys changed with `after < stream <= up_to`, oldest first.
    pub async fn key_changes(
        &self,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let range = KeyRange {
            start: Bound::Excluded(Key::new().u64(after).build()),
            end: Bound::Included(Key::new().u64(up_to).build()),
        };
        let rows: Vec<(Vec<u8>, String)> =
            self.scan(Table::KeyChanges, range, Direction::Forward, usize::MAX).await?;
        rows.into_iter().map(|(key, user)| Ok((KeyReader::new(&key).u64()?, user))).collect()
    }

    /// To-device messages for a device with `after < stream <= up_to`, oldest first, at most
    /// `limit`.
    pub async fn to_device_messages(
        &self,
        user_id: &str,
        device_id: &str,
        after: u64,
        up_to: u64,
        limit: usize,
    ) -> Result<Vec<(u64, ToDeviceRecord)>, StoreError> {
        let range = KeyRange {
            start: Bound::Excluded(Key::new().str(user_id).str(device_id).u64(after).build()),
            end: Bound::Included(Key::new().str(user_id).str(device_id).u64(up_to).build()),
        };
        let rows: Vec<(Vec<u8>, ToDeviceRecord)> =
            self.scan(Table::ToDevice, range, Direction::Forward, limit).await?;
        rows.into_iter().map(|(key, record)| Ok((reader_at(&key, 2)?.u64()?, record))).collect()
    }

    /// A user's room key backup versions, oldest first.
    pub async fn backup_versions(
        &self,
        user_id: &str,
    ) -> Result<Vec<(u64, BackupVersionRecord)>, StoreError> {
        let rows: Vec<(Vec<u8>, BackupVersionRecord)> = self
            .scan(
                Table::BackupVersions,
                prefix_range(Key::new().str(user_id)),
                Direction::Forward,
                usize::MAX,
            )
            .await?;
        rows.into_iter().map(|(key, record)| Ok((reader_at(&key, 1)?.u64()?, record))).collect()
    }

    /// One backup version.
    pub async fn backup_version(
        &self,
        user_id: &str,
        version: u64,
    ) -> Result<Option<BackupVersionRecord>, StoreError> {
        self.get(Table::BackupVersions, &Key::new().str(user_id).u64(version).build()).await
    }

    /// Backed-up room keys of a version, optionally of one room (and one session):
    /// `(room ID, session ID, key data)`.
    pub async fn backup_keys(
        &self,
        user_id: &str,
        version: u64,
        room_id: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        let mut prefix = Key::new().str(user_id).u64(version);
        if let Some(room_id) = room_id {
            prefix = prefix.str(room_id);
            if let Some(session_id) = session_id {
                prefix = prefix.str(session_id);
            }
        }
        let rows: Vec<(Vec<u8>, Value)> = self
            .scan(Table::BackupKeys, prefix_range(prefix), Direction::Forward, usize::MAX)
            .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let mut reader = reader_at(&key, 1)?;
            reader.u64()?;
            let room = reader.str()?;
            let session = reader.str()?;
            // A session-ID prefix also matches longer session IDs.
            if session_id.is_some_and(|wanted| wanted != session) {
                continue;
            }
            keys.push((room, session, value));
        }
        Ok(keys)
    }
}

impl Txn {
    /// Stores a device's identity keys.
    pub fn put_device_keys(
        &mut self,
        user_id: &str,
        device_id: &str,
        keys: &Value,
    ) -> Result<(), StoreError> {
        self.put(Table::DeviceKeys, Key::new().str(user_id).str(device_id).build(), keys)
    }

    /// Removes a device's identity keys.
    pub fn delete_device_keys(&mut self, user_id: &str, device_id: &str) {
        self.delete(Table::DeviceKeys, Key::new().str(user_id).str(device_id).build());
    }

    /// Stores an unclaimed one-time key.
    pub fn put_one_time_key(
        &mut self,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
        key_id: &str,
        key: &Value,
    ) -> Result<(), StoreError> {
        let k = Key::new().str(user_id).str(device_id).str(algorithm).str(key_id).build();
        self.put(Table::OneTimeKeys, k, key)
    }

    /// Removes a one-time key (claimed, or its device deleted).
    pub fn delete_one_time_key(
        &mut self,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
        key_id: &str,
    ) {
        let k = Key::new().str(user_id).str(device_id).str(algorithm).str(key_id).build();
        self.delete(Table::OneTimeKeys, k);
    }

    /// Stores a device's fallback key for an algorithm.
    pub fn put_fallback_key(
        &mut self,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
        key: &FallbackKeyRecord,
    ) -> Result<(), StoreError> {
        let k = Key::new().str(user_id).str(device_id).str(algorithm).build();
        self.put(Table::FallbackKeys, k, key)
    }

    /// Removes a device's fallback key for an algorithm.
    pub fn delete_fallback_key(&mut self, user_id: &str, device_id: &str, algorithm: &str) {
        self.delete(
            Table::FallbackKeys,
            Key::new().str(user_id).str(device_id).str(algorithm).build(),
        );
    }

    /// Stores a cross-signing key.
    pub fn put_cross_signing_key(
        &mut self,
        user_id: &str,
        usage: &str,
        key: &Value,
    ) -> Result<(), StoreError> {
        self.put(Table::CrossSigningKeys, Key::new().str(user_id).str(usage).build(), key)
    }

    /// Records that a user's keys changed, at a new stream position.
    pub fn put_key_change(&mut self, user_id: &str) -> Result<u64, StoreError> {
        let stream = self.next_stream();
        self.put(Table::KeyChanges, Key::new().u64(stream).build(), user_id)?;
        Ok(stream)
    }

    /// Queues a to-device message for a device, at a new stream position.
    pub fn put_to_device(
        &mut self,
        user_id: &str,
        device_id: &str,
        message: &ToDeviceRecord,
    ) -> Result<u64, StoreError> {
        let stream = self.next_stream();
        self.put(
            Table::ToDevice,
            Key::new().str(user_id).str(device_id).u64(stream).build(),
            message,
        )?;
        Ok(stream)
    }

    /// Removes a delivered to-device message.
    pub fn delete_to_device(&mut self, user_id: &str, device_id: &str, stream: u64) {
        self.delete(Table::ToDevice, Key::new().str(user_id).str(device_id).u64(stream).build());
    }

    /// Creates or replaces a backup version.
    pub fn put_backup_version(
        &mut self,
        user_id: &str,
        version: u64,
        record: &BackupVersionRecord,
    ) -> Result<(), StoreError> {
        self.put(Table::BackupVersions, Key::new().str(user_id).u64(version).build(), record)
    }

    /// Removes a backup version (its keys are removed one by one with
    /// [`Txn::delete_backup_key`]).
    pub fn delete_backup_version(&mut self, user_id: &str, version: u64) {
        self.delete(Table::BackupVersions, Key::new().str(user_id).u64(version).build());
    }

    /// Stores a backed-up room key.
    pub fn put_backup_key(
        &mut self,
        user_id: &str,
        version: u64,
        room_id: &str,
        session_id: &str,
        data: &Value,
    ) -> Result<(), StoreError> {
        let k = Key::new().str(user_id).u64(version).str(room_id).str(session_id).build();
        self.put(Table::BackupKeys, k, data)
    }

    /// Removes a backed-up room key.
    pub fn delete_backup_key(
        &mut self,
        user_id: &str,
        version: u64,
        room_id: &str,
        session_id: &str,
    ) {
        let k = Key::new().str(user_id).u64(version).str(room_id).str(session_id).build();
        self.delete(Table::BackupKeys, k);
    }
}
