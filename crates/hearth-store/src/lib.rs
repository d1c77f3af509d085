#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod accounts;
pub mod backend;
pub mod conformance;
mod directory;
mod e2ee;
mod error;
mod federation;
mod keys;
mod media;
mod memory;
mod receipts;
mod rooms;
mod store;

pub use self::{
    accounts::{AccountDataChange, AccountDataRecord, DeviceRecord, TokenRecord, UserRecord},
    backend::{Backend, Direction, KeyRange, Table, WriteBatch, WriteOp},
    directory::AliasRecord,
    e2ee::{BackupVersionRecord, FallbackKeyRecord, ToDeviceRecord},
    error::StoreError,
    federation::{InboundTransaction, OutboundItem, RejectedEvent},
    media::MediaRecord,
    memory::MemoryBackend,
    receipts::{ReceiptChange, ReceiptRecord},
    rooms::{
        EMPTY_STATE_GROUP, MAX_STATE_CHAIN, MembershipRecord, RoomRecord, StateGroup, StoredEvent,
        TransactionOrigin,
    },
    store::{SCHEMA_VERSION, Store, Txn},
};
