//! Ephemeral room and user data: typing notifications, receipts, read markers, presence.

use std::{collections::BTreeMap, time::Duration};

use hearth_core::ruma::{
    OwnedRoomId, OwnedUserId, RoomId, UserId,
    api::client::{
        presence::{get_presence, set_presence},
        read_marker::set_read_marker,
        receipt::create_receipt::{self, v3::ReceiptType},
        sync::sync_events,
        typing::create_typing_event::{self, v3::Typing},
    },
    events::receipt::ReceiptThread,
    presence::PresenceState,
    serde::Raw,
};
use hearth_store::{MembershipRecord, ReceiptChange};
use serde_json::{Map, Value, json};

use crate::{
    Authed, Server, ServerError, client::sync::SyncRequest, error::Result, events::to_raw,
    platform::now_ms,
};

/// A typing notification lasts at most this long unless renewed.
const MAX_TYPING: Duration = Duration::from_secs(120);

/// In-memory ephemeral state. Bounded by the number of local users and rooms: one entry per
/// typing user per room and one presence per user.
#[derive(Debug, Default)]
pub(crate) struct Ephemeral {
    /// Room → user → when their typing notification expires (ms since the epoch).
    typing: BTreeMap<OwnedRoomId, BTreeMap<OwnedUserId, u64>>,
    /// Room → the ephemeral position of its last typing change.
    typing_changed: BTreeMap<OwnedRoomId, u64>,
    presence: BTreeMap<OwnedUserId, Presence>,
}

#[derive(Clone, Debug)]
struct Presence {
    state: PresenceState,
    status_msg: Option<String>,
    last_active_ts: u64,
    changed: u64,
}

impl Ephemeral {
    /// Drops expired typing notifications; the rooms whose typing list changed.
    fn expire_typing(&mut self, now: u64) -> Vec<OwnedRoomId> {
        let mut changed = Vec::new();
        for (room_id, users) in &mut self.typing {
            let before = users.len();
            users.retain(|_, expires| *expires > now);
            if users.len() != before {
                changed.push(room_id.clone());
            }
        }
        self.typing.retain(|_, users| !users.is_empty());
        changed
    }

    /// When the next typing notification expires, if any.
    pub(crate) fn next_typing_expiry(&self) -> Option<u64> {
        self.typing.values().flat_map(|users| users.values().copied()).min()
    }
}

impl Server {
    /// Expires typing notifications whose time is up, waking syncs when that changes anything.
    pub(crate) fn expire_typing(&self) {
        let mut ephemeral = self.ephemeral();
        let changed = ephemeral.expire_typing(now_ms());
        if changed.is_empty() {
            return;
        }
        let position = self.notifier().advance_ephemeral();
        for room_id in changed {
            ephemeral.typing_changed.insert(room_id, position);
        }
        drop(ephemeral);
        self.notifier().notify();
    }

    /// The current ephemeral position, read under the ephemeral lock so that every change up
    /// to it has been applied (see `Notifier::advance_ephemeral`).
    pub(crate) fn ephemeral_position(&self) -> u64 {
        let _ephemeral = self.ephemeral();
        self.notifier().ephemeral()
    }

    /// The typing and receipt events of a room for a sync.
    pub(crate) async fn sync_room_ephemeral<T>(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
    ) -> Result<Vec<Raw<T>>> {
        let mut events = Vec::new();
        let typing_changed = {
            let ephemeral = self.ephemeral();
            let changed = ephemeral.typing_changed.get(room_id).copied().unwrap_or(0);
            let users: Vec<OwnedUserId> = ephemeral
                .typing
                .get(room_id)
                .map(|users| users.keys().cloned().collect())
                .unwrap_or_default();
            let send = match sync.since {
                None => !users.is_empty(),
                Some(since) => changed > since.ephemeral,
            };
            send.then_some(users)
        };
        if let Some(users) = typing_changed {
            events.push(to_raw(&json!({ "type": "m.typing", "content": { "user_ids": users } }))?);
        }
        let changes: Vec<ReceiptChange> = match sync.since {
            None => self
                .store()
                .receipts(room_id)
                .await?
                .into_iter()
                .map(|(change, _)| change)
                .collect(),
            Some(since) => {
                self.store().receipt_changes(room_id, since.stream, sync.now.stream).await?
            }
        };
        let mut content: Map<String, Value> = Map::new();
        for change in changes {
            // Private receipts are for their owner's eyes only.
            if change.receipt_type == "m.read.private"
                && change.user_id != sync.authed.user_id.as_str()
            {
                continue;
            }
            let Some(record) = self
                .store()
                .receipt(room_id, &change.receipt_type, &change.thread, &change.user_id)
                .await?
            else {
                continue;
            };
            let mut receipt = json!({ "ts": record.ts });
            if !change.thread.is_empty() {
                receipt["thread_id"] = json!(change.thread);
            }
            let by_type = content.entry(record.event_id.to_string()).or_insert_with(|| json!({}));
            by_type[&change.receipt_type][&change.user_id] = receipt;
        }
        if !content.is_empty() {
            events.push(to_raw(&json!({ "type": "m.receipt", "content": content }))?);
        }
        Ok(events)
    }

    /// Presence of the syncing user and of everyone sharing a room with them.
    pub(crate) async fn sync_presence(
        &self,
        sync: &SyncRequest<'_>,
        memberships: &[(OwnedRoomId, MembershipRecord)],
        response: &mut sync_events::v3::Response,
    ) -> Result<()> {
        let since = sync.since.map(|since| since.ephemeral);
        let changed: Vec<(OwnedUserId, Presence)> = self
            .ephemeral()
            .presence
            .iter()
            .filter(|(_, presence)| since.is_none_or(|since| presence.changed > since))
            .map(|(user, presence)| (user.clone(), presence.clone()))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut visible: std::collections::BTreeSet<OwnedUserId> =
            std::collections::BTreeSet::new();
        visible.insert(sync.authed.user_id.clone());
        for (room_id, membership) in memberships {
            if membership.membership == "join" {
                for (member, state) in self.store().room_members(room_id).await? {
                    if state == "join" {
                        visible.insert(member);
                    }
                }
            }
        }
        for (user_id, presence) in changed {
            if visible.contains(&user_id) {
                response.presence.events.push(to_raw(&presence_event(&user_id, &presence))?);
            }
        }
        Ok(())
    }

    /// `set_presence` on `/sync` marks the user online (or as asked) unless they said offline.
    pub(crate) async fn set_presence_from_sync(
        &self,
        authed: &Authed,
        state: &PresenceState,
    ) -> Result<()> {
        let current =
            self.ephemeral().presence.get(&authed.user_id).map(|presence| presence.state.clone());
        if current.as_ref() == Some(state) {
            if let Some(presence) = self.ephemeral().presence.get_mut(&authed.user_id) {
                presence.last_active_ts = now_ms();
            }
            return Ok(());
        }
        self.update_presence(&authed.user_id, state.clone(), None);
        Ok(())
    }

    fn update_presence(
        &self,
        user_id: &UserId,
        state: PresenceState,
        status_msg: Option<Option<String>>,
    ) {
        let mut ephemeral = self.ephemeral();
        let position = self.notifier().advance_ephemeral();
        let entry = ephemeral.presence.entry(user_id.to_owned()).or_insert(Presence {
            state: PresenceState::Offline,
            status_msg: None,
            last_active_ts: 0,
            changed: 0,
        });
        entry.state = state;
        if let Some(status_msg) = status_msg {
            entry.status_msg = status_msg;
        }
        entry.last_active_ts = now_ms();
        entry.changed = position;
        let content = presence_content(entry);
        drop(ephemeral);
        self.notifier().notify();
        if self.is_local(user_id) {
            // Other servers sharing a room with the user hear of it (queued in the background:
            // presence is best effort and must not slow the request that set it).
            let server = self.clone();
            let user_id = user_id.to_owned();
            self.runtime().spawn(Box::pin(async move {
                let _ = server.send_presence(&user_id, content).await;
            }));
        }
    }

    /// Presence of another server's user, from its `m.presence` EDU. At most
    /// `MAX_REMOTE_PRESENCE` other servers' users are kept; beyond, new ones are not shown.
    pub(crate) fn set_remote_presence(
        &self,
        user_id: &UserId,
        state: PresenceState,
        status_msg: Option<String>,
        last_active_ago: u64,
    ) {
        let mut ephemeral = self.ephemeral();
        if !ephemeral.presence.contains_key(user_id) {
            let remote = ephemeral.presence.keys().filter(|user| !self.is_local(user)).count();
            if remote >= MAX_REMOTE_PRESENCE {
                return;
            }
        }
        let position = self.notifier().advance_ephemeral();
        ephemeral.presence.insert(
            user_id.to_owned(),
            Presence {
                state,
                status_msg,
                last_active_ts: now_ms().saturating_sub(last_active_ago),
                changed: position,
            },
        );
        drop(ephemeral);
        self.notifier().notify();
    }
}

/// Other servers' users whose presence is kept in memory.
const MAX_REMOTE_PRESENCE: usize = 10_000;

/// A presence as the `content` of an `m.presence` event (and of the EDU's `push` entries,
/// with the user ID added).
fn presence_content(presence: &Presence) -> Value {
    let mut content = json!({
        "presence": presence.state.as_str(),
        "last_active_ago": now_ms().saturating_sub(presence.last_active_ts),
        "currently_active": presence.state == PresenceState::Online,
    });
    if let Some(status) = &presence.status_msg {
        content["status_msg"] = json!(status);
    }
    content
}

fn presence_event(user_id: &UserId, presence: &Presence) -> Value {
    json!({ "type": "m.presence", "sender": user_id, "content": presence_content(presence) })
}

/// `PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3roomsroomidtypinguserid)).
pub(crate) async fn create_typing_event(
    server: Server,
    authed: Authed,
    request: create_typing_event::v3::Request,
) -> Result<create_typing_event::v3::Response> {
    if request.user_id != authed.user_id {
        return Err(ServerError::Forbidden("you can only set your own typing state".into()));
    }
    let joined = server.store().membership(&authed.user_id, &request.room_id).await?;
    if joined.is_none_or(|record| record.membership != "join") {
        return Err(ServerError::Forbidden("you are not in this room".into()));
    }
    let expires = match request.state {
        Typing::Yes(timeout) => {
            let timeout = timeout.timeout.min(MAX_TYPING);
            Some(now_ms() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
        }
        _ => None,
    };
    server.set_typing(&request.room_id, &authed.user_id, expires);
    server.send_typing(&request.room_id, &authed.user_id, expires.is_some()).await?;
    Ok(create_typing_event::v3::Response::new())
}

impl Server {
    /// Records that `user_id` types in `room_id` until `expires` (ms since the epoch), or has
    /// stopped (`None`), and wakes syncs.
    pub(crate) fn set_typing(&self, room_id: &RoomId, user_id: &UserId, expires: Option<u64>) {
        self.expire_typing();
        let mut ephemeral = self.ephemeral();
        let position = self.notifier().advance_ephemeral();
        let users = ephemeral.typing.entry(room_id.to_owned()).or_default();
        match expires {
            Some(expires) => users.insert(user_id.to_owned(), expires),
            None => users.remove(user_id),
        };
        ephemeral.typing_changed.insert(room_id.to_owned(), position);
        drop(ephemeral);
        self.notifier().notify();
    }
}

impl Server {
    async fn set_receipt(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        receipt_type: &str,
        thread: &ReceiptThread,
        event_id: &hearth_core::ruma::EventId,
    ) -> Result<()> {
        let visible = self.visible_until(&authed.user_id, room_id).await?;
        let event = self.store().event(event_id.as_str()).await?;
        if !event.is_some_and(|event| event.room_id == room_id && event.stream <= visible) {
            return Err(ServerError::NotFound(format!("no event {event_id} in {room_id}")));
        }
        let thread = match thread {
            ReceiptThread::Unthreaded => String::new(),
            ReceiptThread::Main => "main".to_owned(),
            ReceiptThread::Thread(id) => id.to_string(),
            _ => String::new(),
        };
        let change = ReceiptChange {
            receipt_type: receipt_type.to_owned(),
            thread,
            user_id: authed.user_id.to_string(),
        };
        let ts = now_ms();
        let guard = self.write_lock().await;
        let mut txn = self.store().transaction();
        txn.put_receipt(room_id, &change, event_id.to_owned(), ts)?;
        self.store().commit(txn).await?;
        drop(guard);
        self.notifier().notify();
        if receipt_type == "m.read" {
            self.send_receipt(room_id, &authed.user_id, event_id, &change.thread, ts).await?;
        }
        Ok(())
    }
}

/// `POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid)).
pub(crate) async fn create_receipt(
    server: Server,
    authed: Authed,
    request: create_receipt::v3::Request,
) -> Result<create_receipt::v3::Response> {
    match request.receipt_type {
        ReceiptType::Read => {
            server
                .set_receipt(
                    &authed,
                    &request.room_id,
                    "m.read",
                    &request.thread,
                    &request.event_id,
                )
                .await?
        }
        ReceiptType::ReadPrivate => {
            server
                .set_receipt(
                    &authed,
                    &request.room_id,
                    "m.read.private",
                    &request.thread,
                    &request.event_id,
                )
                .await?
        }
        ReceiptType::FullyRead => {
            server.set_fully_read(&authed, &request.room_id, &request.event_id).await?
        }
        _ => return Err(ServerError::InvalidParam("unknown receipt type".into())),
    }
    Ok(create_receipt::v3::Response::new())
}

impl Server {
    async fn set_fully_read(
        &self,
        authed: &Authed,
        room_id: &RoomId,
        event_id: &hearth_core::ruma::EventId,
    ) -> Result<()> {
        self.visible_until(&authed.user_id, room_id).await?;
        let content = serde_json::value::to_raw_value(&json!({ "event_id": event_id }))
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        self.put_account_data(&authed.user_id, Some(room_id), "m.fully_read", content).await
    }
}

/// `POST /_matrix/client/v3/rooms/{roomId}/read_markers`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidread_markers)).
pub(crate) async fn set_read_marker(
    server: Server,
    authed: Authed,
    request: set_read_marker::v3::Request,
) -> Result<set_read_marker::v3::Response> {
    if let Some(fully_read) = &request.fully_read {
        server.set_fully_read(&authed, &request.room_id, fully_read).await?;
    }
    if let Some(read) = &request.read_receipt {
        server
            .set_receipt(&authed, &request.room_id, "m.read", &ReceiptThread::Unthreaded, read)
            .await?;
    }
    if let Some(private) = &request.private_read_receipt {
        server
            .set_receipt(
                &authed,
                &request.room_id,
                "m.read.private",
                &ReceiptThread::Unthreaded,
                private,
            )
            .await?;
    }
    Ok(set_read_marker::v3::Response::new())
}

/// `PUT /_matrix/client/v3/presence/{userId}/status`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3presenceuseridstatus)).
pub(crate) async fn set_presence(
    server: Server,
    authed: Authed,
    request: set_presence::v3::Request,
) -> Result<set_presence::v3::Response> {
    if request.user_id != authed.user_id {
        return Err(ServerError::Forbidden("you can only set your own presence".into()));
    }
    server.update_presence(&authed.user_id, request.presence, Some(request.status_msg));
    Ok(set_presence::v3::Response::new())
}

/// `GET /_matrix/client/v3/presence/{userId}/status`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3presenceuseridstatus)).
pub(crate) async fn get_presence(
    server: Server,
    _authed: Authed,
    request: get_presence::v3::Request,
) -> Result<get_presence::v3::Response> {
    let presence = server.ephemeral().presence.get(&request.user_id).cloned();
    let Some(presence) = presence else {
        if server.store().user(&request.user_id).await?.is_none() {
            return Err(ServerError::NotFound(format!("no such user {}", request.user_id)));
        }
        return Ok(get_presence::v3::Response::new(PresenceState::Offline));
    };
    let mut response = get_presence::v3::Response::new(presence.state.clone());
    response.status_msg = presence.status_msg.clone();
    response.currently_active = Some(presence.state == PresenceState::Online);
    response.last_active_ago =
        Some(Duration::from_millis(now_ms().saturating_sub(presence.last_active_ts)));
    Ok(response)
}
