//! A small bounded cache: when full, the oldest insertion is evicted.
//!
//! Values that change (a room's record, an event once redacted, a token once its device is
//! deleted) are written by whoever commits the change, after the commit, with [`FifoCache::insert`]
//! or [`FifoCache::remove`]. A reader that missed reads the store and offers what it read with
//! [`FifoCache::fill`], which refuses it if any write happened since the reader looked: its read
//! may predate that write, and caching it would keep a stale value.

use std::collections::{BTreeMap, VecDeque};

#[derive(Debug)]
pub(crate) struct FifoCache<K: Ord + Clone, V: Clone> {
    capacity: usize,
    entries: BTreeMap<K, V>,
    order: VecDeque<K>,
    /// Bumped by every write (`insert`, `remove`, `clear`).
    version: u64,
}

impl<K: Ord + Clone, V: Clone> FifoCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        FifoCache { capacity, entries: BTreeMap::new(), order: VecDeque::new(), version: 0 }
    }

    /// What a reader notes before it reads the store on a miss, to hand to [`FifoCache::fill`].
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Caches a value read from the store, unless a write happened since `seen` (see the
    /// module's doc).
    pub(crate) fn fill(&mut self, seen: u64, key: K, value: V) {
        if seen == self.version {
            self.insert(key, value);
            // A fill is not a write: later fills of other readers stay valid.
            self.version = seen;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.version += 1;
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key).cloned()
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.version += 1;
        if self.entries.insert(key.clone(), value).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &K) {
        self.version += 1;
        if self.entries.remove(key).is_some() {
            self.order.retain(|queued| queued != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_when_full() {
        let mut cache = FifoCache::new(2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        cache.insert(1, "a2");
        cache.insert(3, "c");
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("b"));
        assert_eq!(cache.get(&3), Some("c"));
        cache.remove(&2);
        assert_eq!(cache.get(&2), None);
    }

    #[test]
    fn a_fill_after_a_write_is_refused() {
        let mut cache = FifoCache::new(4);
        // Two readers miss and read the store; meanwhile a writer commits and caches the new value.
        let (first, second) = (cache.version(), cache.version());
        cache.insert("room", "new");
        cache.fill(first, "room", "old");
        assert_eq!(cache.get(&"room"), Some("new"));
        // After a removal too (the writer dropped the entry).
        cache.remove(&"room");
        cache.fill(second, "room", "old");
        assert_eq!(cache.get(&"room"), None);
        // With no write in between, fills land, and one fill does not spoil another's.
        let (a, b) = (cache.version(), cache.version());
        cache.fill(a, "x", "1");
        cache.fill(b, "y", "2");
        assert_eq!((cache.get(&"x"), cache.get(&"y")), (Some("1"), Some("2")));
        cache.clear();
        assert_eq!(cache.get(&"x"), None);
    }
}
