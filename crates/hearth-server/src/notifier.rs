//! Wakes long-polling `/sync` requests when anything they might return changes.

use std::sync::atomic::{AtomicU64, Ordering};

use event_listener::{Event, EventListener};

/// Everything that can change a sync response calls [`Notifier::notify`]; waiting syncs
/// re-check and go back to sleep if nothing concerns them.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    event: Event,
    /// Changes that are not in the store's stream (typing, presence): part of the sync token.
    ephemeral: AtomicU64,
}

impl Notifier {
    /// Registers interest before the caller checks for news, so a change between the check
    /// and the wait is not missed.
    pub(crate) fn listen(&self) -> EventListener {
        self.event.listen()
    }

    pub(crate) fn notify(&self) {
        self.event.notify(usize::MAX);
    }

    /// Allocates the position of an in-memory change. Callers hold the ephemeral state's lock
    /// while they allocate and apply the change, and call [`Notifier::notify`] after releasing
    /// it; readers take the position under the same lock, so a position they see always comes
    /// with its change.
    pub(crate) fn advance_ephemeral(&self) -> u64 {
        self.ephemeral.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub(crate) fn ephemeral(&self) -> u64 {
        self.ephemeral.load(Ordering::Acquire)
    }
}
