//! Federation: what waits to be sent to each server, the transactions other servers sent us, and
//! the events we rejected on receipt.
//!
//! Key layouts (see `keys.rs` for the encoding):
//!
//! | table                  | key                          | value                  |
//! |------------------------|------------------------------|------------------------|
//! | `outbound_queue`       | destination (str), seq (u64) | [`OutboundItem`]       |
//! | `inbound_transactions` | origin (str), txn ID (str)   | [`InboundTransaction`] |
//! | `rejected_events`      | event ID (str)               | [`RejectedEvent`]      |
//!
//! A queue entry's `seq` is a stream position, so an entry commits in the same transaction as the
//! event it carries, and a destination's entries scan oldest first.

use std::ops::Bound;

use hearth_core::ruma::{OwnedEventId, OwnedRoomId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    StoreError,
    backend::{Direction, KeyRange, Table},
    keys::{Key, KeyReader},
    store::{Store, Txn},
};

/// Something waiting to be sent to one destination server.
///
/// Externally tagged (`{"pdu": {...}}`, `{"edu": {...}}`): serde cannot read a [`RawValue`]
/// inside an internally tagged enum.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundItem {
    /// A PDU, by ID: its JSON is read from the events table when the transaction is built.
    Pdu {
        /// The event.
        event_id: OwnedEventId,
    },
    /// An EDU (typing, receipt, presence, to-device, device list update).
    Edu {
        /// The EDU type (`m.typing`, `m.receipt`, ...).
        edu_type: String,
        /// Its content, as it will be sent.
        content: Box<RawValue>,
    },
}

/// A federation transaction we received, remembered so that a repeat gets the same answer
/// without being processed again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InboundTransaction {
    /// When it arrived (ms since the epoch), so old ones can be pruned.
    pub received_ms: u64,
    /// The JSON response we gave.
    pub response: Box<RawValue>,
}

/// An event that failed the checks on receipt: not fetched or checked again, and events that
/// cite it are rejected too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvent {
    /// The room it claimed to be in.
    pub room_id: OwnedRoomId,
    /// Why it was rejected.
    pub reason: String,
}

fn outbound_key(destination: &str, seq: u64) -> Vec<u8> {
    Key::new().str(destination).u64(seq).build()
}

fn inbound_key(origin: &str, txn_id: &str) -> Vec<u8> {
    Key::new().str(origin).str(txn_id).build()
}

fn rejected_key(event_id: &str) -> Vec<u8> {
    Key::new().str(event_id).build()
}

impl Store {
    /// Up to `limit` items queued for `destination`, oldest first, with their sequence numbers.
    pub async fn outbound(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(u64, OutboundItem)>, StoreError> {
        self.scan_outbound(destination, limit, Direction::Forward).await
    }

    /// Up to `limit` items queued for `destination`, newest first, with their sequence numbers
    /// (what a status display shows: the latest sends are the ones a user looks at).
    pub async fn outbound_newest(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(u64, OutboundItem)>, StoreError> {
        self.scan_outbound(destination, limit, Direction::Backward).await
    }

    async fn scan_outbound(
        &self,
        destination: &str,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<(u64, OutboundItem)>, StoreError> {
        let prefix = Key::new().str(destination).build();
        let rows: Vec<(Vec<u8>, OutboundItem)> =
            self.scan(Table::OutboundQueue, KeyRange::prefix(&prefix), direction, limit).await?;
        rows.into_iter()
            .map(|(key, item)| {
                let mut reader = KeyReader::new(&key);
                reader.str()?;
                Ok((reader.u64()?, item))
            })
            .collect()
    }

    /// Every destination with at least one queued item, in key order.
    ///
    /// One scan of one entry per destination: each scan starts just past the previous
    /// destination's keys, so a long queue is never read whole.
    pub async fn outbound_destinations(&self) -> Result<Vec<String>, StoreError> {
        let mut destinations = Vec::new();
        let mut start = Bound::Unbounded;
        loop {
            let range = KeyRange { start, end: Bound::Unbounded };
            let Some((key, _)) =
                self.scan_raw(Table::OutboundQueue, range, Direction::Forward, 1).await?.pop()
            else {
                break;
            };
            let destination = KeyReader::new(&key).str()?;
            let past = KeyRange::prefix(&Key::new().str(&destination).build()).end;
            destinations.push(destination);
            start = match past {
                // The smallest key above every key of this destination.
                Bound::Excluded(next) => Bound::Included(next),
                // Nothing sorts above them (not reached: a string component ends in 0x01).
                Bound::Included(_) | Bound::Unbounded => break,
            };
        }
        Ok(destinations)
    }

    /// The transaction `txn_id` from `origin`, if it was received before.
    pub async fn inbound_transaction(
        &self,
        origin: &str,
        txn_id: &str,
    ) -> Result<Option<InboundTransaction>, StoreError> {
        self.get(Table::InboundTransactions, &inbound_key(origin, txn_id)).await
    }

    /// Why an event was rejected, if it was.
    pub async fn rejected_event(
        &self,
        event_id: &str,
    ) -> Result<Option<RejectedEvent>, StoreError> {
        self.get(Table::RejectedEvents, &rejected_key(event_id)).await
    }

    /// [`Store::rejected_event`] for many events, in the order of `event_ids`, in one backend
    /// read (the `prev_events` and `auth_events` of an incoming PDU).
    pub async fn rejected_events(
        &self,
        event_ids: &[&str],
    ) -> Result<Vec<Option<RejectedEvent>>, StoreError> {
        let keys: Vec<Vec<u8>> = event_ids.iter().map(|event_id| rejected_key(event_id)).collect();
        self.get_many(Table::RejectedEvents, &keys).await
    }
}

impl Txn {
    /// Queues `item` for `destination` at a new stream position, which it returns (its `seq`).
    pub fn queue_outbound(
        &mut self,
        destination: &str,
        item: &OutboundItem,
    ) -> Result<u64, StoreError> {
        let seq = self.next_stream();
        self.put(Table::OutboundQueue, outbound_key(destination, seq), item)?;
        self.queued_for.insert(destination.to_owned());
        Ok(seq)
    }

    /// The destinations this transaction queued something for: whoever commits it wakes their
    /// senders afterwards. (A rolled-back queue entry may leave a name here; a needless wake-up
    /// finds nothing to send.)
    pub fn queued_destinations(&self) -> Vec<String> {
        self.queued_for.iter().cloned().collect()
    }

    /// Removes sent items from `destination`'s queue (absent ones are ignored).
    pub fn remove_outbound(&mut self, destination: &str, seqs: &[u64]) {
        for &seq in seqs {
            self.delete(Table::OutboundQueue, outbound_key(destination, seq));
        }
    }

    /// Remembers a received transaction and the response given to it.
    pub fn put_inbound_transaction(
        &mut self,
        origin: &str,
        txn_id: &str,
        transaction: &InboundTransaction,
    ) -> Result<(), StoreError> {
        self.put(Table::InboundTransactions, inbound_key(origin, txn_id), transaction)
    }

    /// Remembers that an event was rejected, and why.
    pub fn put_rejected_event(
        &mut self,
        event_id: &str,
        rejected: &RejectedEvent,
    ) -> Result<(), StoreError> {
        self.put(Table::RejectedEvents, rejected_key(event_id), rejected)
    }
}
