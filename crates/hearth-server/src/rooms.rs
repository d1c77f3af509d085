//! The room engine for local events: builds, authorises and persists events sent by this
//! server's users, one transaction per logical write (a message, or a whole `createRoom`).

pub(crate) mod remote;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use hearth_core::{
    Pdu, PduBuilder, RoomVersion, StateMap, auth,
    ruma::{
        CanonicalJsonObject, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
        OwnedServerName, OwnedUserId, RoomId, UInt, UserId,
        events::{StateEventType, TimelineEventType},
    },
};
use hearth_store::{
    MembershipRecord, OutboundItem, RoomRecord, StoredEvent, TransactionOrigin, Txn,
};

use crate::{Server, ServerError, cache::FifoCache, error::Result, lock, platform::now_ms};

/// Full states kept decoded; when full, the oldest is dropped and re-read from the store.
const STATE_CACHE: usize = 256;
/// Parsed events kept; when full, the oldest is dropped.
const PDU_CACHE: usize = 8192;

/// Unread counts kept (one per user and room); when full, the oldest is dropped and counted
/// again from the user's receipt.
const UNREAD_CACHE: usize = 4096;
/// Room records (with their state chain length) kept; every send reads one. When full, the
/// oldest is dropped and read again.
const ROOM_CACHE: usize = 1024;
/// Access tokens kept resolved; every request reads one. When full, the oldest is dropped and
/// read again.
const TOKEN_CACHE: usize = 1024;
/// Joined members of rooms (every send reads them to know which servers to federate it to).
/// When full, the oldest is dropped and read again.
const JOINED_CACHE: usize = 1024;

pub(crate) struct Caches {
    states: FifoCache<u64, Arc<StateMap>>,
    pdus: FifoCache<OwnedEventId, Pdu>,
    rooms: FifoCache<OwnedRoomId, (RoomRecord, u32)>,
    pub(crate) unread: FifoCache<(OwnedUserId, OwnedRoomId), crate::client::push::UnreadCount>,
    /// Written only by `forget_tokens` (cleared after devices are deleted).
    pub(crate) tokens: FifoCache<String, crate::Authed>,
    joined: FifoCache<OwnedRoomId, Arc<BTreeSet<OwnedUserId>>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            states: FifoCache::new(STATE_CACHE),
            pdus: FifoCache::new(PDU_CACHE),
            rooms: FifoCache::new(ROOM_CACHE),
            unread: FifoCache::new(UNREAD_CACHE),
            tokens: FifoCache::new(TOKEN_CACHE),
            joined: FifoCache::new(JOINED_CACHE),
        }
    }
}

/// An event a local user asks to send.
#[derive(Clone, Debug)]
pub(crate) struct NewEvent {
    pub(crate) kind: TimelineEventType,
    pub(crate) state_key: Option<String>,
    pub(crate) content: CanonicalJsonObject,
    pub(crate) redacts: Option<OwnedEventId>,
    pub(crate) transaction: Option<TransactionOrigin>,
}

impl NewEvent {
    pub(crate) fn new(kind: TimelineEventType, content: CanonicalJsonObject) -> Self {
        NewEvent { kind, state_key: None, content, redacts: None, transaction: None }
    }

    pub(crate) fn state(
        kind: TimelineEventType,
        state_key: impl Into<String>,
        content: CanonicalJsonObject,
    ) -> Self {
        NewEvent { state_key: Some(state_key.into()), ..NewEvent::new(kind, content) }
    }
}

/// Sends waiting for the next group commit. Each waiting request holds one entry, so the queue
/// is as long as the number of sends in flight; beyond this many, a send is refused with
/// `M_LIMIT_EXCEEDED` rather than queued.
pub(crate) const MAX_QUEUED_SENDS: usize = 10_000;

/// A send waiting for the next group commit.
pub(crate) struct PendingSend {
    room_id: OwnedRoomId,
    sender: OwnedUserId,
    events: Vec<NewEvent>,
    reply: futures_channel::oneshot::Sender<Result<Vec<OwnedEventId>>>,
}

/// A room being written to inside one transaction.
#[derive(Clone)]
struct RoomWriter {
    room_id: Option<OwnedRoomId>,
    version: RoomVersion,
    record: RoomRecord,
    state_chain: u32,
    state: StateMap,
    /// Parsed current-state events, for the auth checks.
    state_pdus: BTreeMap<OwnedEventId, Pdu>,
    written: Vec<(Pdu, u64)>,
    /// Events redacted by this write: their cached parsed form is dropped after the commit.
    redacted: Vec<OwnedEventId>,
    /// The room's joined members as of this write (loaded on first need).
    joined: Option<BTreeSet<OwnedUserId>>,
    /// Servers this write queued events for: their senders are woken after the commit.
    destinations: BTreeSet<OwnedServerName>,
}

impl RoomWriter {
    fn new(room_id: Option<OwnedRoomId>, version: RoomVersion, record: RoomRecord) -> Self {
        RoomWriter {
            room_id,
            version,
            record,
            state_chain: 0,
            state: StateMap::new(),
            state_pdus: BTreeMap::new(),
            written: Vec::new(),
            redacted: Vec::new(),
            joined: None,
            destinations: BTreeSet::new(),
        }
    }
}

impl Server {
    /// The full state of a state group.
    pub(crate) async fn state_map(&self, group: u64) -> Result<Arc<StateMap>> {
        if let Some(state) = self.caches().states.get(&group) {
            return Ok(state);
        }
        let state = Arc::new(self.store().state(group).await?);
        self.caches().states.insert(group, state.clone());
        Ok(state)
    }

    /// A room's record and current state; `M_NOT_FOUND` for a room this server is not in.
    pub(crate) async fn current_state(
        &self,
        room_id: &RoomId,
    ) -> Result<(RoomRecord, Arc<StateMap>)> {
        let (record, _) = self.room_entry(room_id).await?;
        let state = self.state_map(record.current_state).await?;
        Ok((record, state))
    }

    /// A room's record and the length of its current state group's delta chain (cached; the
    /// write path replaces the cached entry after each commit).
    async fn room_entry(&self, room_id: &RoomId) -> Result<(RoomRecord, u32)> {
        let seen = {
            let caches = self.caches();
            if let Some(entry) = caches.rooms.get(&room_id.to_owned()) {
                return Ok(entry);
            }
            caches.rooms.version()
        };
        let record = self
            .store()
            .room(room_id)
            .await?
            .ok_or_else(|| ServerError::NotFound(format!("unknown room {room_id}")))?;
        let chain = self
            .store()
            .state_group(record.current_state)
            .await?
            .map(|group| group.chain)
            .unwrap_or(0);
        self.caches().rooms.fill(seen, room_id.to_owned(), (record.clone(), chain));
        Ok((record, chain))
    }

    /// A stored event, parsed (the parsed form is cached; the stored record is read each time).
    pub(crate) async fn pdu(&self, event_id: &EventId) -> Result<Option<(Pdu, StoredEvent)>> {
        let seen = self.caches().pdus.version();
        let Some(stored) = self.store().event(event_id.as_str()).await? else { return Ok(None) };
        if let Some(pdu) = self.caches().pdus.get(&event_id.to_owned()) {
            return Ok(Some((pdu, stored)));
        }
        let version = self.room_version(&stored.room_id).await?;
        let pdu = Pdu::parse(version, stored.pdu.get().as_bytes())?;
        self.caches().pdus.fill(seen, event_id.to_owned(), pdu.clone());
        Ok(Some((pdu, stored)))
    }

    /// A stored event, parsed, from the cache when it is there: for the auth checks and state
    /// lookups, which need the event and not where it is stored.
    pub(crate) async fn parsed_pdu(&self, event_id: &EventId) -> Result<Option<Pdu>> {
        if let Some(pdu) = self.caches().pdus.get(&event_id.to_owned()) {
            return Ok(Some(pdu));
        }
        Ok(self.pdu(event_id).await?.map(|(pdu, _)| pdu))
    }

    pub(crate) async fn room_version(&self, room_id: &RoomId) -> Result<RoomVersion> {
        let (record, _) = self.room_entry(room_id).await?;
        record.version.parse::<RoomVersion>().map_err(ServerError::from)
    }

    /// The current state event of a room under `(kind, state_key)`.
    pub(crate) async fn state_event(
        &self,
        room_id: &RoomId,
        kind: &StateEventType,
        state_key: &str,
    ) -> Result<Option<Pdu>> {
        let (_, state) = self.current_state(room_id).await?;
        let Some(event_id) = state.get(&(kind.clone(), state_key.to_owned())) else {
            return Ok(None);
        };
        self.parsed_pdu(event_id).await
    }

    /// Sends `events` into an existing room as `sender`, all in one transaction: either every
    /// event is authorised and stored, or none is.
    pub(crate) async fn send_events(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<OwnedEventId>> {
        // Group commit: every send queues itself, and whoever holds the write lock stores all
        // queued sends in one transaction. Idle, a send commits alone at once; busy, the sends
        // that arrive during one commit share the next, so one fsync serves many events.
        let (reply, mut result) = futures_channel::oneshot::channel();
        self.queue_send(PendingSend {
            room_id: room_id.to_owned(),
            sender: sender.to_owned(),
            events,
            reply,
        })?;
        let guard = self.write_lock().await;
        if let Ok(Some(done)) = result.try_recv() {
            return done;
        }
        let batch = self.take_sends();
        self.commit_sends(batch).await;
        drop(guard);
        result.await.unwrap_or_else(|_| {
            Err(ServerError::Internal("the write was interrupted before it was stored".into()))
        })
    }

    /// The timestamp of a new create event: now, but strictly after the previous one this
    /// process made. From room version 12 the room ID is the create event's hash, so two rooms
    /// created by one user with the same content in the same millisecond would otherwise get
    /// the same ID.
    fn create_timestamp(&self) -> u64 {
        let now = now_ms();
        let previous = self
            .0
            .last_create_ts
            .fetch_update(
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
                |last| Some(now.max(last + 1)),
            )
            .unwrap_or(now);
        now.max(previous + 1)
    }

    /// Loads a room's writer: its record, current state and state chain length.
    async fn room_writer(&self, room_id: &RoomId) -> Result<RoomWriter> {
        let (record, state_chain) = self.room_entry(room_id).await?;
        let state = self.state_map(record.current_state).await?;
        let version = record.version.parse::<RoomVersion>()?;
        let mut writer = RoomWriter::new(Some(room_id.to_owned()), version, record);
        writer.state_chain = state_chain;
        writer.state = (*state).clone();
        Ok(writer)
    }

    /// Stores queued sends in one transaction (called with the write lock held). Each send
    /// succeeds or fails on its own: a send whose event is refused is rolled back to where the
    /// transaction stood before it, and the others go ahead.
    async fn commit_sends(&self, batch: Vec<PendingSend>) {
        let mut txn = self.store().transaction();
        let mut writers: BTreeMap<OwnedRoomId, RoomWriter> = BTreeMap::new();
        // Client transaction IDs used earlier in this batch (not yet visible in the store).
        let mut batch_transactions: BTreeMap<(OwnedUserId, String, String), OwnedEventId> =
            BTreeMap::new();
        // Which client transactions already produced an event, for the whole batch in one read.
        let origins: Vec<(&str, &str, &str)> = batch
            .iter()
            .filter_map(|pending| {
                let origin = pending.events.first()?.transaction.as_ref()?;
                Some((pending.sender.as_str(), origin.device_id.as_str(), origin.txn_id.as_str()))
            })
            .collect();
        let stored_transactions = match self.store().transaction_events(&origins).await {
            Ok(events) => origins
                .iter()
                .zip(events)
                .map(|(&(user, device, txn_id), event)| {
                    ((user.to_owned(), device.to_owned(), txn_id.to_owned()), event)
                })
                .collect::<BTreeMap<_, _>>(),
            Err(error) => {
                let message = error.to_string();
                for pending in batch {
                    let _ = pending.reply.send(Err(ServerError::Internal(message.clone())));
                }
                return;
            }
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        for pending in batch {
            let outcome = self
                .stage_send(
                    &mut txn,
                    &mut writers,
                    &mut batch_transactions,
                    &stored_transactions,
                    &pending,
                )
                .await;
            outcomes.push((pending.reply, outcome));
        }
        let mut stored = Ok(());
        for (room_id, writer) in &writers {
            if let Err(error) = txn.put_room(room_id, &writer.record) {
                stored = Err(ServerError::from(error));
            }
        }
        if stored.is_ok() {
            stored = self.store().commit(txn).await.map_err(ServerError::from);
        }
        match stored {
            Ok(()) => {
                self.remember_committed(writers.into_values());
                for (reply, outcome) in outcomes {
                    // A sender that went away no longer needs its answer.
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for (reply, outcome) in outcomes {
                    let _ = reply
                        .send(outcome.and_then(|_| Err(ServerError::Internal(message.clone()))));
                }
            }
        }
    }

    async fn stage_send(
        &self,
        txn: &mut Txn,
        writers: &mut BTreeMap<OwnedRoomId, RoomWriter>,
        batch_transactions: &mut BTreeMap<(OwnedUserId, String, String), OwnedEventId>,
        stored_transactions: &BTreeMap<(String, String, String), Option<String>>,
        pending: &PendingSend,
    ) -> Result<Vec<OwnedEventId>> {
        // A client transaction that already produced an event returns that event.
        let origin = pending.events.first().and_then(|event| event.transaction.clone());
        if let Some(origin) = &origin {
            let key = (pending.sender.clone(), origin.device_id.clone(), origin.txn_id.clone());
            if let Some(existing) = batch_transactions.get(&key) {
                return Ok(vec![existing.clone()]);
            }
            let stored_key =
                (pending.sender.to_string(), origin.device_id.clone(), origin.txn_id.clone());
            if let Some(Some(existing)) = stored_transactions.get(&stored_key).cloned() {
                let existing = OwnedEventId::try_from(existing)
                    .map_err(|error| ServerError::Internal(error.to_string()))?;
                return Ok(vec![existing]);
            }
        }
        if !writers.contains_key(&pending.room_id) {
            let writer = self.room_writer(&pending.room_id).await?;
            writers.insert(pending.room_id.clone(), writer);
        }
        let writer = writers
            .get_mut(&pending.room_id)
            .ok_or_else(|| ServerError::Internal("room writer vanished".into()))?;
        let savepoint = txn.savepoint();
        let before = writer.clone();
        let mut ids = Vec::with_capacity(pending.events.len());
        for event in &pending.events {
            match self.append(txn, writer, &pending.sender, event.clone()).await {
                Ok(pdu) => ids.push(pdu.event_id().to_owned()),
                Err(error) => {
                    txn.rollback_to(savepoint);
                    *writer = before;
                    return Err(error);
                }
            }
        }
        if let (Some(origin), Some(first)) = (origin, ids.first()) {
            batch_transactions
                .insert((pending.sender.clone(), origin.device_id, origin.txn_id), first.clone());
        }
        Ok(ids)
    }

    fn queue_send(&self, pending: PendingSend) -> Result<()> {
        let mut queue = lock(&self.0.send_queue);
        if queue.len() >= MAX_QUEUED_SENDS {
            return Err(ServerError::LimitExceeded("too many events waiting to be stored".into()));
        }
        queue.push_back(pending);
        Ok(())
    }

    fn take_sends(&self) -> Vec<PendingSend> {
        lock(&self.0.send_queue).drain(..).collect()
    }

    /// Creates a room: `events` starts with the `m.room.create` event and carries the whole
    /// initial state; stored in one transaction.
    pub(crate) async fn create_room_events(
        &self,
        version: RoomVersion,
        sender: &UserId,
        events: Vec<NewEvent>,
        legacy_room_id: Option<OwnedRoomId>,
        extra: impl FnOnce(&mut Txn, &RoomId) -> Result<()>,
    ) -> Result<OwnedRoomId> {
        let _guard = self.write_lock().await;
        let record = RoomRecord {
            version: version.as_str().to_owned(),
            current_state: 0,
            extremities: Vec::new(),
            max_depth: 0,
            last_stream: 0,
        };
        let mut writer = RoomWriter::new(legacy_room_id, version, record);
        // A new room has no members yet: nothing to read.
        writer.joined = Some(BTreeSet::new());
        let mut txn = self.store().transaction();
        for event in events {
            self.append(&mut txn, &mut writer, sender, event).await?;
        }
        let room_id = writer
            .room_id
            .clone()
            .ok_or_else(|| ServerError::Internal("room created without a create event".into()))?;
        extra(&mut txn, &room_id)?;
        self.finish(txn, writer).await?;
        Ok(room_id)
    }

    async fn finish(&self, mut txn: Txn, writer: RoomWriter) -> Result<Vec<OwnedEventId>> {
        let room_id =
            writer.room_id.clone().ok_or_else(|| ServerError::Internal("no room".into()))?;
        txn.put_room(&room_id, &writer.record)?;
        self.store().commit(txn).await?;
        let ids = writer.written.iter().map(|(pdu, _)| pdu.event_id().to_owned()).collect();
        self.remember_committed([writer]);
        Ok(ids)
    }

    /// After a commit: keeps the rooms' new current state and events decoded, wakes syncs and
    /// the federation senders of the servers events were queued for.
    fn remember_committed(&self, writers: impl IntoIterator<Item = RoomWriter>) {
        let mut caches = self.caches();
        let mut destinations = BTreeSet::new();
        for writer in writers {
            destinations.extend(writer.destinations);
            if let Some(room_id) = writer.room_id {
                caches.rooms.insert(room_id.clone(), (writer.record.clone(), writer.state_chain));
                if let Some(joined) = writer.joined {
                    caches.joined.insert(room_id, Arc::new(joined));
                }
            }
            caches.states.insert(writer.record.current_state, Arc::new(writer.state));
            for (pdu, _) in writer.written {
                caches.pdus.insert(pdu.event_id().to_owned(), pdu);
            }
            for event_id in &writer.redacted {
                caches.pdus.remove(event_id);
            }
        }
        drop(caches);
        self.notifier().notify();
        self.wake_senders(destinations);
    }

    /// A room's joined members (cached; writers replace the entry after each commit).
    pub(crate) async fn joined_members(
        &self,
        room_id: &RoomId,
    ) -> Result<Arc<BTreeSet<OwnedUserId>>> {
        let seen = {
            let caches = self.caches();
            if let Some(joined) = caches.joined.get(&room_id.to_owned()) {
                return Ok(joined);
            }
            caches.joined.version()
        };
        let joined: Arc<BTreeSet<OwnedUserId>> = Arc::new(
            self.store()
                .room_members(room_id)
                .await?
                .into_iter()
                .filter(|(_, membership)| membership == "join")
                .map(|(user_id, _)| user_id)
                .collect(),
        );
        self.caches().joined.fill(seen, room_id.to_owned(), joined.clone());
        Ok(joined)
    }

    /// The other servers with a member joined to a room (this one left out).
    pub(crate) async fn other_servers_in_room(
        &self,
        room_id: &RoomId,
    ) -> Result<BTreeSet<OwnedServerName>> {
        Ok(self
            .joined_members(room_id)
            .await?
            .iter()
            .map(|member| member.server_name().to_owned())
            .filter(|server| server != self.server_name())
            .collect())
    }

    /// Keeps the writer's joined members current with a membership change of `target`.
    async fn track_membership(
        &self,
        writer: &mut RoomWriter,
        target: &UserId,
        membership: &str,
    ) -> Result<()> {
        let joined = self.writer_joined(writer).await?;
        if membership == "join" {
            joined.insert(target.to_owned());
        } else {
            joined.remove(target);
        }
        Ok(())
    }

    async fn writer_joined<'w>(
        &self,
        writer: &'w mut RoomWriter,
    ) -> Result<&'w mut BTreeSet<OwnedUserId>> {
        if writer.joined.is_none() {
            let room_id = writer
                .room_id
                .clone()
                .ok_or_else(|| ServerError::Internal("members of a room without ID".into()))?;
            writer.joined = Some((*self.joined_members(&room_id).await?).clone());
        }
        writer.joined.as_mut().ok_or_else(|| ServerError::Internal("members not loaded".into()))
    }

    /// Queues `pdu` for every other server with a member joined to the room (before or after
    /// the event, so a server whose last user leaves still hears of the leave), except `skip`
    /// (the server it came from). Called with the joined set as it was before the event.
    async fn queue_for_room(
        &self,
        txn: &mut Txn,
        writer: &mut RoomWriter,
        pdu: &Pdu,
        skip: Option<&hearth_core::ruma::ServerName>,
    ) -> Result<()> {
        let own = self.server_name().to_owned();
        let mut servers: BTreeSet<OwnedServerName> = self
            .writer_joined(writer)
            .await?
            .iter()
            .map(|user| user.server_name().to_owned())
            .collect();
        if *pdu.kind() == TimelineEventType::RoomMember
            && let Some(target) = pdu.state_key().and_then(|key| UserId::parse(key).ok())
            && membership_of(pdu) == "join"
        {
            servers.insert(target.server_name().to_owned());
        }
        servers.remove(&own);
        if let Some(skip) = skip {
            servers.remove(skip);
        }
        for server in servers {
            txn.queue_outbound(
                server.as_str(),
                &OutboundItem::Pdu { event_id: pdu.event_id().to_owned() },
            )?;
            writer.destinations.insert(server);
        }
        Ok(())
    }

    /// A new event by `sender` on top of the writer's room: its prev events are the forward
    /// extremities, its auth events come from the current state.
    fn builder(
        &self,
        writer: &RoomWriter,
        sender: &UserId,
        kind: TimelineEventType,
        state_key: Option<String>,
        content: CanonicalJsonObject,
        redacts: Option<OwnedEventId>,
    ) -> Result<PduBuilder> {
        let room_id = match (&writer.room_id, writer.version.room_id_from_create_event()) {
            (None, true) => None,
            (room_id, _) => Some(
                room_id.clone().ok_or_else(|| ServerError::Internal("missing room ID".into()))?,
            ),
        };
        let created =
            if kind == TimelineEventType::RoomCreate { self.create_timestamp() } else { now_ms() };
        let mut builder = PduBuilder::new(
            writer.version,
            room_id,
            sender.to_owned(),
            kind,
            content,
            MilliSecondsSinceUnixEpoch(UInt::new_saturating(created)),
        );
        builder.state_key = state_key;
        builder.redacts = redacts;
        builder.prev_events = writer.record.extremities.clone();
        builder.prev_depth = UInt::new_saturating(writer.record.max_depth);
        let auth_keys = builder.auth_types()?;
        builder.auth_events =
            auth_keys.iter().filter_map(|key| writer.state.get(key).cloned()).collect();
        Ok(builder)
    }

    /// An event by a local user on top of a room's current state, signed but not stored: an
    /// invite for a user of another server, which that server must co-sign before it is sent.
    pub(crate) async fn build_event(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        event: NewEvent,
    ) -> Result<Pdu> {
        let writer = self.room_writer(room_id).await?;
        let builder = self.builder(
            &writer,
            sender,
            event.kind,
            event.state_key,
            event.content,
            event.redacts,
        )?;
        Ok(builder.build(self.identity())?)
    }

    /// Builds, authorises and stages one event on top of the writer's current room state.
    async fn append(
        &self,
        txn: &mut Txn,
        writer: &mut RoomWriter,
        sender: &UserId,
        event: NewEvent,
    ) -> Result<Pdu> {
        let NewEvent { kind, state_key, content, redacts, transaction } = event;
        let builder = self.builder(writer, sender, kind.clone(), state_key, content, redacts)?;
        let auth_keys = builder.auth_types()?;
        let pdu = builder.build(self.identity())?;

        // The auth rules look at the current state entries they need; load those parsed.
        let mut needed: Vec<(StateEventType, String)> = auth_keys;
        needed.push((StateEventType::RoomCreate, String::new()));
        for key in &needed {
            if let Some(id) = writer.state.get(key)
                && !writer.state_pdus.contains_key(id)
            {
                let loaded =
                    match writer.written.iter().find(|(written, _)| written.event_id() == id) {
                        Some((written, _)) => Some(written.clone()),
                        None => self.parsed_pdu(id).await?,
                    };
                if let Some(loaded) = loaded {
                    writer.state_pdus.insert(id.clone(), loaded);
                }
            }
        }
        if kind != TimelineEventType::RoomCreate || writer.room_id.is_some() {
            auth::check_against_state(&pdu, |kind, state_key| {
                writer
                    .state
                    .get(&(kind.clone(), state_key.to_owned()))
                    .and_then(|id| writer.state_pdus.get(id).cloned())
            })?;
        }
        if kind == TimelineEventType::RoomCreate {
            // A room ID derived from the create event must be new: never overwrite a room.
            if writer.room_id.is_none() && self.store().room(pdu.room_id()).await?.is_some() {
                return Err(ServerError::Internal(format!(
                    "room {} exists already",
                    pdu.room_id()
                )));
            }
            writer.room_id = Some(pdu.room_id().to_owned());
        }

        let event_id = pdu.event_id().to_owned();
        let room_id = pdu.room_id().to_owned();
        let stream = txn.next_stream();
        let state_before = writer.record.current_state;
        let mut state_after = state_before;
        if let Some(key) = pdu.state_key_pair() {
            let mut changes = StateMap::new();
            changes.insert(key.clone(), event_id.clone());
            writer.state.insert(key, event_id.clone());
            let parent = (writer.record.current_state != 0)
                .then_some((writer.record.current_state, writer.state_chain));
            let (group, chain) = txn.add_state_group(parent, &changes, &writer.state)?;
            writer.state_chain = chain;
            state_after = group;
            writer.state_pdus.insert(event_id.clone(), pdu.clone());
        }
        let stored = StoredEvent {
            room_id: room_id.clone(),
            stream,
            pdu: serde_json::value::RawValue::from_string(pdu.to_canonical_string()?)
                .map_err(|error| ServerError::Internal(error.to_string()))?,
            state_before,
            state_after,
            redacted_by: None,
            transaction,
            backfill: None,
        };
        txn.put_event(event_id.as_str(), &stored, true)?;
        if let Some(origin) = &stored.transaction {
            txn.put_transaction(
                sender.as_str(),
                &origin.device_id,
                &origin.txn_id,
                event_id.as_str(),
            )?;
        }

        if kind != TimelineEventType::RoomCreate {
            self.queue_for_room(txn, writer, &pdu, None).await?;
        }
        if kind == TimelineEventType::RoomMember
            && let Some(target) = pdu.state_key()
            && let Ok(target) = UserId::parse(target)
        {
            let membership = membership_of(&pdu);
            self.track_membership(writer, &target, &membership).await?;
            let previous = self.store().membership(&target, &room_id).await?;
            let record = MembershipRecord {
                membership,
                event_id: event_id.clone(),
                stream,
                forgotten: previous
                    .is_some_and(|previous| previous.forgotten && previous.membership != "join"),
            };
            txn.set_membership(&room_id, &target, &record)?;
        }
        if let Some(parent) = relates_to(&pdu) {
            txn.add_relation(parent.as_str(), stream, event_id.as_str())?;
        }
        if let Some(target) = pdu.redacts() {
            self.apply_redaction(txn, writer, target, &event_id).await?;
        }

        writer.record.extremities = vec![event_id];
        writer.record.max_depth = u64::from(pdu.depth());
        writer.record.last_stream = stream;
        writer.record.current_state = state_after;
        writer.written.push((pdu.clone(), stream));
        Ok(pdu)
    }

    /// Replaces the stored JSON of a redacted event with its redacted form
    /// ([redactions](https://spec.matrix.org/v1.16/client-server-api/#redactions)).
    async fn apply_redaction(
        &self,
        txn: &mut Txn,
        writer: &mut RoomWriter,
        target: &EventId,
        redaction: &EventId,
    ) -> Result<()> {
        let Some((pdu, mut stored)) = self.pdu(target).await? else { return Ok(()) };
        if Some(&stored.room_id) != writer.room_id.as_ref() {
            return Ok(());
        }
        let redacted = pdu.redacted()?;
        stored.pdu = serde_json::value::RawValue::from_string(redacted.to_canonical_string()?)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        stored.redacted_by = Some(redaction.to_owned());
        txn.put_event(target.as_str(), &stored, false)?;
        writer.redacted.push(target.to_owned());
        Ok(())
    }
}

/// The `membership` of an `m.room.member` event.
pub(crate) fn membership_of(pdu: &Pdu) -> String {
    #[derive(serde::Deserialize)]
    struct Content {
        membership: String,
    }
    serde_json::from_str::<Content>(pdu.content().get())
        .map(|content| content.membership)
        .unwrap_or_default()
}

/// The event this one relates to (`m.relates_to.event_id`), for relations and threads.
fn relates_to(pdu: &Pdu) -> Option<OwnedEventId> {
    #[derive(serde::Deserialize)]
    struct Relation {
        event_id: OwnedEventId,
    }
    #[derive(serde::Deserialize)]
    struct Content {
        #[serde(rename = "m.relates_to")]
        relates_to: Option<Relation>,
    }
    serde_json::from_str::<Content>(pdu.content().get())
        .ok()?
        .relates_to
        .map(|relation| relation.event_id)
}

/// A room's power levels as the server reads them for checks the auth rules do not cover
/// (redacting others' events, notification levels).
#[derive(Debug)]
pub(crate) struct PowerLevels {
    content: serde_json::Value,
    /// From room version 12 the creators outrank everyone.
    creators: Vec<String>,
    /// The `redact` level.
    pub(crate) redact: i64,
}

impl PowerLevels {
    pub(crate) fn user_level(&self, user_id: &UserId) -> i64 {
        if self.creators.iter().any(|creator| creator == user_id.as_str()) {
            return i64::MAX;
        }
        self.content
            .get("users")
            .and_then(|users| users.get(user_id.as_str()))
            .and_then(serde_json::Value::as_i64)
            .or_else(|| self.content.get("users_default").and_then(serde_json::Value::as_i64))
            .unwrap_or(0)
    }
}

impl Server {
    /// The event under `(kind, "")` in a room state, parsed.
    async fn current_state_pdu(
        &self,
        state: &StateMap,
        kind: StateEventType,
    ) -> Result<Option<Pdu>> {
        match state.get(&(kind, String::new())) {
            Some(event_id) => self.parsed_pdu(event_id).await,
            None => Ok(None),
        }
    }

    /// The current power levels of a room (the spec's defaults when there is no event).
    pub(crate) async fn power_levels(&self, room_id: &RoomId) -> Result<PowerLevels> {
        // One read of the room's current state serves the version, create and power levels.
        let (record, state) = self.current_state(room_id).await?;
        let version = record.version.parse::<RoomVersion>()?;
        let create = self.current_state_pdu(&state, StateEventType::RoomCreate).await?;
        let mut creators = Vec::new();
        if let Some(create) = &create
            && version.room_id_from_create_event()
        {
            creators.push(create.sender().to_string());
            let content: serde_json::Value =
                serde_json::from_str(create.content().get()).unwrap_or_default();
            if let Some(additional) =
                content.get("additional_creators").and_then(serde_json::Value::as_array)
            {
                creators.extend(
                    additional.iter().filter_map(serde_json::Value::as_str).map(str::to_owned),
                );
            }
        }
        let event = self.current_state_pdu(&state, StateEventType::RoomPowerLevels).await?;
        let content: serde_json::Value = match &event {
            Some(event) => serde_json::from_str(event.content().get()).unwrap_or_default(),
            // Without power levels the creator has 100 and everyone else 0.
            None => match &create {
                Some(create) => serde_json::json!({ "users": { create.sender().as_str(): 100 } }),
                None => serde_json::json!({}),
            },
        };
        let redact = content.get("redact").and_then(serde_json::Value::as_i64).unwrap_or(50);
        Ok(PowerLevels { content, creators, redact })
    }
}
