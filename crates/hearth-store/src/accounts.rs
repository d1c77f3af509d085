//! Local accounts: users, devices, access tokens, account data, filters, transaction IDs.

use hearth_core::ruma::{OwnedRoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// A local account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// PHC-format password hash; `None` for an account that cannot log in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Deactivated accounts keep their ID reserved and can do nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deactivated: bool,
    /// Profile display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displayname: Option<String>,
    /// Profile avatar (an `mxc://` URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// When the account was created (ms since the epoch).
    pub created_ts: u64,
}

/// A logged-in device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The name the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Its current access token.
    pub access_token: String,
    /// When it was last seen (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ts: Option<u64>,
}

/// Whom an access token authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
}

/// One piece of account data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountDataRecord {
    /// When it last changed.
    pub stream: u64,
    /// The content the client put.
    pub content: Box<RawValue>,
}

/// What changed at a stream position, for incremental sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDataChange {
    /// The room, or `None` for global account data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<OwnedRoomId>,
    /// The event type.
    pub event_type: String,
}

fn device_key(user_id: &str, device_id: &str) -> Vec<u8> {
    Key::new().str(user_id).str(device_id).build()
}

fn account_data_key(user_id: &str, room_id: Option<&str>, event_type: &str) -> Vec<u8> {
    Key::new().str(user_id).str(room_id.unwrap_or("")).str(event_type).build()
}

impl Store {
    /// A local account.
    pub async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.get(Table::Users, &Key::new().str(user_id.as_str()).build()).await
    }

    /// Local accounts whose ID starts at `from`, in order (user directory search walks these).
    pub async fn users(&self, limit: usize) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let rows: Vec<(Vec<u8>, UserRecord)> =
            self.scan(Table::Users, KeyRange::prefix(&[]), Direction::Forward, limit).await?;
        rows.into_iter().map(|(key, user)| Ok((KeyReader::new(&key).str()?, user))).collect()
    }

    /// A device of a user.
    pub async fn device(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.get(Table::Devices, &device_key(user_id, device_id)).await
    }

    /// All devices of a user, by device ID.
    pub async fn devices(&self, user_id: &str) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        self.scan_under(Table::Devices, user_id).await
    }

    /// Whom an access token belongs to.
    pub async fn access_token(&self, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(Table::AccessTokens, &Key::new().str(token).build()).await
    }

    /// One piece of account data (`room_id` `None` for global).
    pub async fn account_data(
        &self,
        user_id: &str,
        room_id: Option<&str>,
        event_type: &str,
    ) -> Result<Option<AccountDataRecord>, StoreError> {
        self.get(Table::AccountData, &account_data_key(user_id, room_id, event_type)).await
    }

    /// All account data of a user: `(room or None, type, record)`.
    pub async fn all_account_data(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Option<String>, String, AccountDataRecord)>, StoreError> {
        let prefix = Key::new().str(user_id).build();
        let rows: Vec<(Vec<u8>, AccountDataRecord)> = self
            .scan(Table::AccountData, KeyRange::prefix(&prefix), Direction::Forward, usize::MAX)
            .await?;
        rows.into_iter()
            .map(|(key, record)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                let room = reader.str()?;
                let event_type = reader.str()?;
                Ok(((!room.is_empty()).then_some(room), event_type, record))
            })
            .collect()
    }

    /// Account data changes of a user with `after < stream <= up_to`, oldest first.
    pub async fn account_data_changes(
        &self,
        user_id: &str,
        after: u64,
        up_to: u64,
    ) -> Result<Vec<(u64, AccountDataChange)>, StoreError> {
        let range = KeyRange {
            start: std::ops::Bound::Excluded(Key::new().str(user_id).u64(after).build()),
            end: std::ops::Bound::Included(Key::new().str(user_id).u64(up_to).build()),
        };
        let rows: Vec<(Vec<u8>, AccountDataChange)> =
            self.scan(Table::AccountDataChanges, range, Direction::Forward, usize::MAX).await?;
        rows.into_iter()
            .map(|(key, change)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                Ok((reader.u64()?, change))
            })
            .collect()
    }

    /// A stored filter definition (JSON).
    pub async fn filter(
        &self,
        user_id: &str,
        filter_id: &str,
    ) -> Result<Option<Box<RawValue>>, StoreError> {
        self.get(Table::Filters, &Key::new().str(user_id).str(filter_id).build()).await
    }

    /// The event a client transaction produced, if it was already sent.
    pub async fn transaction_event(
        &self,
        user_id: &str,
        device_id: &str,
        txn_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.get(Table::Transactions, &Key::new().str(user_id).str(device_id).str(txn_id).build())
            .await
    }

    /// [`Store::transaction_event`] for many `(user, device, transaction)` at once, in order.
    pub async fn transaction_events(
        &self,
        transactions: &[(&str, &str, &str)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let keys: Vec<Vec<u8>> = transactions
            .iter()
            .map(|(user_id, device_id, txn_id)| {
                Key::new().str(user_id).str(device_id).str(txn_id).build()
            })
            .collect();
        self.get_many(Table::Transactions, &keys).await
    }
}

impl Txn {
    /// Creates or replaces an account.
    pub fn put_user(&mut self, user_id: &UserId, user: &UserRecord) -> Result<(), StoreError> {
        self.put(Table::Users, Key::new().str(user_id.as_str()).build(), user)
    }

    /// Creates or replaces a device, and indexes its access token.
    pub fn put_device(
        &mut self,
        user_id: &str,
        device_id: &str,
        device: &DeviceRecord,
    ) -> Result<(), StoreError> {
        self.put(Table::Devices, device_key(user_id, device_id), device)?;
        let token = TokenRecord { user_id: user_id.to_owned(), device_id: device_id.to_owned() };
        self.put(Table::AccessTokens, Key::new().str(&device.access_token).build(), &token)
    }

    /// Removes a device and its access token (its keys are removed by the E2EE layer).
    pub fn delete_device(&mut self, user_id: &str, device_id: &str, device: &DeviceRecord) {
        self.delete(Table::Devices, device_key(user_id, device_id));
        self.delete(Table::AccessTokens, Key::new().str(&device.access_token).build());
    }

    /// Sets a piece of account data at a new stream position.
    pub fn put_account_data(
        &mut self,
        user_id: &str,
        room_id: Option<&str>,
        event_type: &str,
        content: Box<RawValue>,
    ) -> Result<u64, StoreError> {
        let stream = self.next_stream();
        let record = AccountDataRecord { stream, content };
        self.put(Table::AccountData, account_data_key(user_id, room_id, event_type), &record)?;
        let change = AccountDataChange {
            room_id: room_id.map(OwnedRoomId::try_from).transpose().map_err(StoreError::corrupt)?,
            event_type: event_type.to_owned(),
        };
        self.put(Table::AccountDataChanges, Key::new().str(user_id).u64(stream).build(), &change)?;
        Ok(stream)
    }

    /// Stores a filter definition.
    pub fn put_filter(
        &mut self,
        user_id: &str,
        filter_id: &str,
        filter: &RawValue,
    ) -> Result<(), StoreError> {
        self.put(Table::Filters, Key::new().str(user_id).str(filter_id).build(), filter)
    }

    /// Remembers which event a client transaction produced.
    pub fn put_transaction(
        &mut self,
        user_id: &str,
        device_id: &str,
        txn_id: &str,
        event_id: &str,
    ) -> Result<(), StoreError> {
        self.put(
            Table::Transactions,
            Key::new().str(user_id).str(device_id).str(txn_id).build(),
            event_id,
        )
    }
}
