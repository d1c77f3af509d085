//! The federation sender: one task per destination server with something queued, sending the
//! persistent outbound queue as [transactions](https://spec.matrix.org/v1.16/server-server-api/#transactions)
//! (`PUT /_matrix/federation/v1/send/{txnId}`), oldest first, retried with exponential backoff.
//!
//! Queue entries are written in the same store transaction as the events they carry, so nothing
//! sent locally is lost to a crash; an entry leaves the queue only once the destination has
//! acknowledged the transaction holding it. A destination seen online again (the host calls
//! [`Server::destination_online`]) is retried at once instead of at the end of its backoff.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use event_listener::Event;
use futures_util::future::{Either, select};
use hearth_core::ruma::{
    MilliSecondsSinceUnixEpoch, OwnedServerName, OwnedTransactionId, ServerName, UInt,
    api::federation::transactions::send_transaction_message, serde::Raw,
};
use hearth_store::OutboundItem;
use serde_json::value::RawValue;

use crate::{Server, ServerError, error::Result, lock, platform::now_ms};

/// The spec's limits on one transaction.
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// The first retry after a failure, doubling up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Which destinations have a sender task running.
#[derive(Default)]
pub(crate) struct Senders {
    running: BTreeMap<OwnedServerName, Sender>,
}

struct Sender {
    /// Set when more was queued (or the destination came online) while the task was busy:
    /// it looks at the queue again before stopping, and cuts its backoff short.
    woken: bool,
    wake: Arc<Event>,
}

/// How one destination's attempts go, for the host's status display and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestinationStatus {
    /// Transactions the destination acknowledged.
    pub sent_transactions: u64,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Why the last attempt failed, while `failures` is not 0.
    pub last_error: Option<String>,
}

impl Server {
    /// Makes sure a sender runs for each of `destinations` (called after a commit queued
    /// something for them).
    pub(crate) fn wake_senders(&self, destinations: impl IntoIterator<Item = OwnedServerName>) {
        for destination in destinations {
            if destination == self.server_name() {
                continue;
            }
            let mut senders = lock(&self.0.senders);
            if let Some(sender) = senders.running.get_mut(&destination) {
                sender.woken = true;
                sender.wake.notify(usize::MAX);
                continue;
            }
            let wake = Arc::new(Event::new());
            senders
                .running
                .insert(destination.clone(), Sender { woken: false, wake: wake.clone() });
            drop(senders);
            let server = self.clone();
            self.runtime()
                .spawn(Box::pin(async move { server.run_sender(destination, wake).await }));
        }
    }

    /// The host saw `destination` come online: anything queued for it goes now.
    pub fn destination_online(&self, destination: &ServerName) {
        self.wake_senders([destination.to_owned()]);
    }

    /// `origin` has just reached us, so it is online: a sender backing off from it tries again
    /// now (Synapse does the same on inbound requests). Cheap when nothing waits for `origin`:
    /// a sender runs only while its queue holds something.
    pub(crate) fn heard_from(&self, origin: &ServerName) {
        let mut senders = lock(&self.0.senders);
        if let Some(sender) = senders.running.get_mut(origin) {
            sender.woken = true;
            sender.wake.notify(usize::MAX);
        }
    }

    /// Starts the senders of every destination with queued items (after a restart).
    pub(crate) async fn resume_senders(&self) -> Result<()> {
        let destinations = self.store().outbound_destinations().await?;
        self.wake_senders(
            destinations.into_iter().filter_map(|name| OwnedServerName::try_from(name).ok()),
        );
        Ok(())
    }

    async fn run_sender(&self, destination: OwnedServerName, wake: Arc<Event>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let sent = self.send_next_transaction(&destination).await;
            match sent {
                Ok(true) => backoff = FIRST_BACKOFF,
                Ok(false) => {
                    // Nothing queued: stop, unless something was queued while we looked.
                    let mut senders = lock(&self.0.senders);
                    match senders.running.get_mut(&destination) {
                        Some(sender) if sender.woken => sender.woken = false,
                        _ => {
                            senders.running.remove(&destination);
                            return;
                        }
                    }
                }
                Err(error) => {
                    self.note_failure(&destination, &error);
                    let listener = wake.listen();
                    let already_woken = {
                        let mut senders = lock(&self.0.senders);
                        senders
                            .running
                            .get_mut(&destination)
                            .map(|sender| std::mem::take(&mut sender.woken))
                            .unwrap_or(false)
                    };
                    if !already_woken {
                        let sleep = self.runtime().sleep(jitter(backoff));
                        match select(sleep, listener).await {
                            Either::Left(_) => backoff = (backoff * 2).min(MAX_BACKOFF),
                            // Woken: the destination is back or more is queued; try now.
                            Either::Right(_) => backoff = FIRST_BACKOFF,
                        }
                    }
                }
            }
        }
    }

    /// Sends the oldest queued items for `destination` as one transaction; `Ok(false)` when
    /// nothing is queued.
    async fn send_next_transaction(&self, destination: &ServerName) -> Result<bool> {
        let queued = self.store().outbound(destination.as_str(), MAX_PDUS + MAX_EDUS).await?;
        if queued.is_empty() {
            return Ok(false);
        }
        let mut seqs = Vec::new();
        let mut pdus = Vec::new();
        let mut edus = Vec::new();
        for (seq, item) in queued {
            match item {
                OutboundItem::Pdu { event_id } => {
                    if pdus.len() == MAX_PDUS {
                        break;
                    }
                    // Just sent, the event is usually still parsed in memory: no store read.
                    if let Ok(Some(pdu)) = self.parsed_pdu(&event_id).await
                        && let Ok(text) = pdu.to_canonical_string()
                        && let Ok(raw) = RawValue::from_string(text)
                    {
                        pdus.push(raw);
                    } else if let Some(stored) = self.store().event(event_id.as_str()).await? {
                        pdus.push(stored.pdu);
                    }
                    // An event gone from the store (never, today) is simply not sent.
                }
                OutboundItem::Edu { edu_type, content } => {
                    if edus.len() == MAX_EDUS {
                        break;
                    }
                    let edu = format!(
                        r#"{{"edu_type":{},"content":{}}}"#,
                        serde_json::to_string(&edu_type)
                            .map_err(|error| ServerError::Internal(error.to_string()))?,
                        content.get()
                    );
                    let raw = RawValue::from_string(edu)
                        .map_err(|error| ServerError::Internal(error.to_string()))?;
                    edus.push(Raw::from_json(raw));
                }
            }
            seqs.push(seq);
        }
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else { return Ok(false) };
        // The same items make the same transaction ID, so a retry of a transaction the
        // destination did receive is recognised there.
        let transaction_id = OwnedTransactionId::from(format!("{first}-{last}-{}", seqs.len()));
        let mut request = send_transaction_message::v1::Request::new(
            transaction_id,
            self.server_name().to_owned(),
            MilliSecondsSinceUnixEpoch(UInt::new_saturating(now_ms())),
        );
        request.pdus = pdus;
        request.edus = edus;
        self.federation_request(destination, request).await?;

        let mut txn = self.store().transaction();
        txn.remove_outbound(destination.as_str(), &seqs);
        self.store().commit(txn).await?;
        let mut statuses = lock(&self.0.destination_status);
        let status = statuses.entry(destination.to_owned()).or_default();
        status.sent_transactions += 1;
        status.failures = 0;
        status.last_error = None;
        Ok(true)
    }

    fn note_failure(&self, destination: &ServerName, error: &ServerError) {
        let mut statuses = lock(&self.0.destination_status);
        let status = statuses.entry(destination.to_owned()).or_default();
        status.failures += 1;
        status.last_error = Some(error.to_string());
    }

    /// How sending to `destination` goes.
    pub fn destination_status(&self, destination: &ServerName) -> DestinationStatus {
        lock(&self.0.destination_status).get(destination).cloned().unwrap_or_default()
    }
}

/// `delay` ± 20%, so that destinations failing together do not retry in lockstep.
fn jitter(delay: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let factor = 0.8 + 0.4 * f64::from(byte[0]) / 255.0;
    delay.mul_f64(factor)
}
