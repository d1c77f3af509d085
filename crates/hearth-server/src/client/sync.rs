//! `GET /_matrix/client/v3/sync`
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3sync)): initial and
//! incremental sync with long polling.
//!
//! A sync token is `s{stream}_{ephemeral}`: everything in the store up to `stream` and every
//! in-memory change (typing, presence) up to `ephemeral` has been delivered. A token from
//! before a restart carries an ephemeral counter the new process has not reached; it is then
//! treated as 0, which re-sends the (small) current ephemeral state rather than missing any.

use std::{collections::BTreeSet, ops::Not as _, time::Duration};

use futures_util::future::{Either, select};
use hearth_core::ruma::{
    EventId, OwnedRoomId, OwnedUserId, RoomId, UInt,
    api::client::{
        filter::{FilterDefinition, RoomEventFilter},
        sync::sync_events::{
            self,
            v3::{
                Filter, InviteState, InvitedRoom, JoinedRoom, LeftRoom, State, StateEvents,
                Timeline,
            },
        },
    },
    events::{StateEventType, TimelineEventType},
    serde::Raw,
};
use hearth_store::{Direction, MembershipRecord};
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError, client::message::parse_token, error::Result, events::to_raw,
    filter, platform::now_ms,
};

/// The longest a client may make a sync wait.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Timeline events per room when the filter does not say.
const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// The most timeline events per room a filter may ask for.
const MAX_TIMELINE_LIMIT: usize = 5000;
/// State events shown to invitees ([stripped state](https://spec.matrix.org/v1.16/client-server-api/#stripped-state)).
pub(crate) const INVITE_STATE: &[StateEventType] = &[
    StateEventType::RoomCreate,
    StateEventType::RoomJoinRules,
    StateEventType::RoomName,
    StateEventType::RoomAvatar,
    StateEventType::RoomCanonicalAlias,
    StateEventType::RoomEncryption,
    StateEventType::RoomTopic,
];

/// A position in everything sync delivers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncToken {
    pub(crate) stream: u64,
    pub(crate) ephemeral: u64,
}

impl SyncToken {
    fn parse(token: &str, current_ephemeral: u64) -> Result<SyncToken> {
        let stream = parse_token(token)?;
        let ephemeral =
            token.split_once('_').and_then(|(_, ephemeral)| ephemeral.parse().ok()).unwrap_or(0);
        let ephemeral = if ephemeral > current_ephemeral { 0 } else { ephemeral };
        Ok(SyncToken { stream, ephemeral })
    }

    fn render(self) -> String {
        format!("s{}_{}", self.stream, self.ephemeral)
    }
}

/// What one sync request asked for.
pub(crate) struct SyncRequest<'a> {
    pub(crate) authed: &'a Authed,
    /// `None` for an initial sync.
    pub(crate) since: Option<SyncToken>,
    pub(crate) now: SyncToken,
    pub(crate) full_state: bool,
    pub(crate) filter: &'a FilterDefinition,
}

/// `GET /_matrix/client/v3/sync`: waits up to `timeout` for something new when incremental.
pub(crate) async fn sync_events(
    server: Server,
    authed: Authed,
    request: sync_events::v3::Request,
) -> Result<sync_events::v3::Response> {
    let filter = match &request.filter {
        None => FilterDefinition::default(),
        Some(Filter::FilterDefinition(definition)) => definition.clone(),
        Some(Filter::FilterId(id)) => {
            let raw = server
                .store()
                .filter(authed.user_id.as_str(), id)
                .await?
                .ok_or_else(|| ServerError::InvalidParam(format!("unknown filter {id}")))?;
            serde_json::from_str(raw.get())
                .map_err(|error| ServerError::Internal(format!("stored filter: {error}")))?
        }
        Some(_) => FilterDefinition::default(),
    };
    let since = request
        .since
        .as_deref()
        .map(|since| SyncToken::parse(since, server.ephemeral_position()))
        .transpose()?;
    server.set_presence_from_sync(&authed, &request.set_presence).await?;
    let timeout = request.timeout.unwrap_or_default().min(MAX_TIMEOUT);
    let deadline = server.runtime().sleep(timeout);
    let mut deadline = std::pin::pin!(deadline);
    loop {
        // Listen before looking, so a change landing in between still wakes us.
        let listener = server.notifier().listen();
        server.expire_typing();
        let now = SyncToken {
            stream: server.store().current_stream(),
            ephemeral: server.ephemeral_position(),
        };
        let sync = SyncRequest {
            authed: &authed,
            since,
            now,
            full_state: request.full_state,
            filter: &filter,
        };
        let response = server.sync_once(&sync).await?;
        if since.is_none() || request.full_state || timeout.is_zero() || !is_empty(&response) {
            return Ok(response);
        }
        // Typing notifications that run out must reach waiting clients too.
        let expiry = server.ephemeral().next_typing_expiry();
        let until_expiry = expiry.map(|at| Duration::from_millis(at.saturating_sub(now_ms()) + 1));
        let expiry = server.runtime().sleep(until_expiry.unwrap_or(MAX_TIMEOUT));
        match select(select(listener, expiry), deadline.as_mut()).await {
            Either::Left(_) => continue,
            Either::Right(_) => {
                let now = SyncToken {
                    stream: server.store().current_stream(),
                    ephemeral: server.ephemeral_position(),
                };
                let sync =
                    SyncRequest { authed: &authed, since, now, full_state: false, filter: &filter };
                return server.sync_once(&sync).await;
            }
        }
    }
}

fn is_empty(response: &sync_events::v3::Response) -> bool {
    response.rooms.join.is_empty()
        && response.rooms.invite.is_empty()
        && response.rooms.leave.is_empty()
        && response.account_data.events.is_empty()
        && response.to_device.events.is_empty()
        && response.device_lists.changed.is_empty()
        && response.device_lists.left.is_empty()
        && response.presence.events.is_empty()
}

impl Server {
    /// One sync response from `since` to `now`, possibly empty.
    pub(crate) async fn sync_once(
        &self,
        sync: &SyncRequest<'_>,
    ) -> Result<sync_events::v3::Response> {
        let mut response = sync_events::v3::Response::new(sync.now.render());
        let user_id = &sync.authed.user_id;
        let memberships = self.store().memberships(user_id).await?;
        let since_stream = sync.since.map(|since| since.stream);
        for (room_id, membership) in &memberships {
            if !room_allowed(sync.filter, room_id) {
                continue;
            }
            match membership.membership.as_str() {
                "join" => {
                    if let Some(room) = self.sync_joined_room(sync, room_id, membership).await? {
                        response.rooms.join.insert(room_id.clone(), room);
                    }
                }
                "invite" if since_stream.is_none_or(|since| membership.stream > since) => {
                    let invite_state = self.invite_state(room_id, membership).await?;
                    let mut room = InvitedRoom::new();
                    room.invite_state = InviteState::from(invite_state);
                    response.rooms.invite.insert(room_id.clone(), room);
                }
                "leave" | "ban" if !membership.forgotten => {
                    let include = match since_stream {
                        Some(since) => membership.stream > since,
                        None => sync.filter.room.include_leave,
                    };
                    if include {
                        response.rooms.leave.insert(
                            room_id.clone(),
                            self.sync_left_room(sync, room_id, membership).await?,
                        );
                    }
                }
                _ => {}
            }
        }
        self.sync_global_account_data(sync, &mut response).await?;
        self.sync_presence(sync, &memberships, &mut response).await?;
        self.sync_e2ee(sync, &memberships, &mut response).await?;
        Ok(response)
    }

    async fn sync_joined_room(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
        membership: &MembershipRecord,
    ) -> Result<Option<JoinedRoom>> {
        let record =
            self.store().room(room_id).await?.ok_or_else(|| {
                ServerError::Internal(format!("joined room {room_id} has no record"))
            })?;
        // A room joined since the last sync is sent whole, as in an initial sync.
        let since =
            sync.since.map(|since| since.stream).filter(|since| membership.stream <= *since);
        let since = if sync.full_state { None } else { since };
        let mut room = JoinedRoom::new();
        let changed = since.is_none_or(|since| record.last_stream > since);
        if changed {
            let timeline_filter = &sync.filter.room.timeline;
            let (timeline, first_state) =
                self.sync_timeline(sync, room_id, since, sync.now.stream, timeline_filter).await?;
            let state_filter = &sync.filter.room.state;
            room.state = State::Before(
                self.sync_state(sync, room_id, since, first_state, &timeline, state_filter).await?,
            );
            room.timeline = timeline;
            let (joined, invited, heroes) = self.summary(room_id, &sync.authed.user_id).await?;
            room.summary.joined_member_count = Some(UInt::from(joined));
            room.summary.invited_member_count = Some(UInt::from(invited));
            room.summary.heroes = heroes;
        }
        room.ephemeral.events = self.sync_room_ephemeral(sync, room_id).await?;
        room.account_data.events = self.sync_room_account_data(sync, room_id).await?;
        room.unread_notifications =
            self.unread_notifications(&sync.authed.user_id, room_id).await?;
        let empty =
            !changed && room.ephemeral.events.is_empty() && room.account_data.events.is_empty();
        // An initial sync lists every joined room, even a quiet one.
        if empty && sync.since.is_some() && !sync.full_state {
            return Ok(None);
        }
        Ok(Some(room))
    }

    async fn sync_left_room(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
        membership: &MembershipRecord,
    ) -> Result<LeftRoom> {
        if !self.knows_room(room_id).await? {
            // A declined invite to a room this server never joined: nothing to show but that
            // the user is out of it.
            return Ok(LeftRoom::new());
        }
        let since = sync.since.map(|since| since.stream);
        let up_to = membership.stream.min(sync.now.stream);
        let (timeline, first_state) =
            self.sync_timeline(sync, room_id, since, up_to, &sync.filter.room.timeline).await?;
        let mut room = LeftRoom::new();
        room.state = State::Before(
            self.sync_state(sync, room_id, since, first_state, &timeline, &sync.filter.room.state)
                .await?,
        );
        room.timeline = timeline;
        Ok(room)
    }

    /// Whether the room has history before `first` (the first event of a sync's timeline) that
    /// this server does not hold in its timeline: a room joined through another server starts
    /// here at the join, and its earlier history is fetched when a client pages back
    /// (`federation/backfill.rs`). Such a timeline is `limited`, so that the client knows to
    /// page back from `prev_batch` (matrix-js-sdk does so only then, for a room it knew as an
    /// invite). Only a membership event can start a room's timeline here other than its
    /// creation, so other events cost no store read.
    async fn history_precedes(
        &self,
        room_id: &RoomId,
        first_stream: u64,
        first: &EventId,
    ) -> Result<bool> {
        let Some(pdu) = self.parsed_pdu(first).await? else { return Ok(false) };
        if pdu.kind() != &TimelineEventType::RoomMember || pdu.prev_events().is_empty() {
            return Ok(false);
        }
        let earlier =
            self.store().timeline(room_id, 0, first_stream - 1, Direction::Backward, 1).await?;
        Ok(earlier.is_empty())
    }

    /// The newest events after `since` up to `up_to`; also the state group before the first
    /// one returned.
    async fn sync_timeline(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
        since: Option<u64>,
        up_to: u64,
        timeline_filter: &RoomEventFilter,
    ) -> Result<(Timeline, Option<u64>)> {
        let limit = timeline_filter
            .limit
            .map(|limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_TIMELINE_LIMIT))
            .unwrap_or(DEFAULT_TIMELINE_LIMIT)
            .clamp(1, MAX_TIMELINE_LIMIT);
        // One extra tells whether the timeline is limited.
        let mut entries = self
            .store()
            .timeline(room_id, since.unwrap_or(0), up_to, Direction::Backward, limit + 1)
            .await?;
        let mut limited = entries.len() > limit;
        entries.truncate(limit);
        entries.reverse();
        if !limited && let Some((first_stream, first_id)) = entries.first() {
            limited = self.history_precedes(room_id, *first_stream, first_id).await?;
        }
        let mut timeline = Timeline::new();
        timeline.limited = limited;
        let mut first_state = None;
        if let Some((first_stream, _)) = entries.first() {
            timeline.prev_batch = Some(crate::client::message::token(first_stream - 1));
        } else {
            timeline.prev_batch = Some(crate::client::message::token(up_to));
        }
        for (_, event_id) in entries {
            let Some((pdu, stored)) = self.pdu(&event_id).await? else { continue };
            if first_state.is_none() {
                first_state = Some(stored.state_before);
            }
            if !filter::matches(timeline_filter, &pdu)
                || !self.may_see_event(&sync.authed.user_id, &stored).await?
            {
                continue;
            }
            timeline
                .events
                .push(self.raw_client_event(&event_id, &stored, Some(sync.authed)).await?);
        }
        Ok((timeline, first_state))
    }

    /// The state to send with a timeline: everything before it for a fresh room; what changed
    /// between `since` and the start of the timeline otherwise. With lazy-loaded members, only
    /// the members who sent something in the timeline (and the syncing user).
    async fn sync_state(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
        since: Option<u64>,
        first_state: Option<u64>,
        timeline: &Timeline,
        state_filter: &RoomEventFilter,
    ) -> Result<StateEvents> {
        let start_state = match first_state {
            Some(group) => self.state_map(group).await?,
            // No timeline events: the state is the room's current state.
            None => self.current_state(room_id).await?.1,
        };
        let previous = match since {
            Some(since) => match self
                .store()
                .timeline(room_id, 0, since, Direction::Backward, 1)
                .await?
                .first()
            {
                Some((_, event_id)) => match self.store().event(event_id.as_str()).await? {
                    Some(stored) => Some(self.state_map(stored.state_after).await?),
                    None => None,
                },
                None => None,
            },
            None => None,
        };
        let lazy = state_filter.lazy_load_options.is_disabled().not();
        let mut senders: BTreeSet<String> = BTreeSet::new();
        if lazy {
            senders.insert(sync.authed.user_id.to_string());
            for event in &timeline.events {
                if let Ok(Some(sender)) = event.get_field::<String>("sender") {
                    senders.insert(sender);
                }
            }
        }
        let timeline_ids: BTreeSet<String> = timeline
            .events
            .iter()
            .filter_map(|event| event.get_field::<String>("event_id").ok().flatten())
            .collect();
        let mut events = StateEvents::new();
        for ((kind, state_key), event_id) in start_state.iter() {
            if previous.as_ref().is_some_and(|previous| {
                previous.get(&(kind.clone(), state_key.clone())) == Some(event_id)
            }) {
                continue;
            }
            if timeline_ids.contains(event_id.as_str()) {
                continue;
            }
            if lazy && *kind == StateEventType::RoomMember && !senders.contains(state_key) {
                continue;
            }
            let Some((pdu, stored)) = self.pdu(event_id).await? else { continue };
            if !filter::matches(state_filter, &pdu) {
                continue;
            }
            events.events.push(self.raw_client_event(event_id, &stored, Some(sync.authed)).await?);
        }
        Ok(events)
    }

    /// Joined and invited member counts, and up to five other members to name the room by
    /// ([room summary](https://spec.matrix.org/v1.16/client-server-api/#_matrixclientv3sync_roomsummary)).
    async fn summary(
        &self,
        room_id: &RoomId,
        user_id: &OwnedUserId,
    ) -> Result<(u32, u32, Vec<OwnedUserId>)> {
        let members = self.store().room_members(room_id).await?;
        let count = |wanted: &str| {
            members.iter().filter(|(_, membership)| membership == wanted).count() as u32
        };
        let heroes = members
            .iter()
            .filter(|(member, membership)| {
                member != user_id && matches!(membership.as_str(), "join" | "invite")
            })
            .take(5)
            .map(|(member, _)| member.clone())
            .collect();
        Ok((count("join"), count("invite"), heroes))
    }

    /// Stripped state for an invitee: the room's identifying state and the invite itself.
    async fn invite_state(
        &self,
        room_id: &RoomId,
        membership: &MembershipRecord,
    ) -> Result<Vec<Raw<hearth_core::ruma::events::AnyStrippedStateEvent>>> {
        let mut events = Vec::new();
        if !self.knows_room(room_id).await? {
            // An invite from another server: the stripped state it came with, and the invite.
            let Some(stored) = self.store().event(membership.event_id.as_str()).await? else {
                return Ok(events);
            };
            let invite: Value = serde_json::from_str(stored.pdu.get()).unwrap_or_default();
            if let Some(state) = invite["unsigned"]["invite_room_state"].as_array() {
                for event in state {
                    events.push(to_raw(event)?);
                }
            }
            events.push(to_raw(&json!({
                "type": invite["type"],
                "state_key": invite["state_key"],
                "sender": invite["sender"],
                "content": invite["content"],
            }))?);
            return Ok(events);
        }
        let (_, state) = self.current_state(room_id).await?;
        let mut ids: Vec<_> = INVITE_STATE
            .iter()
            .filter_map(|kind| state.get(&(kind.clone(), String::new())).cloned())
            .collect();
        ids.push(membership.event_id.clone());
        if let Some((invite, _)) = self.pdu(&membership.event_id).await?
            && let Some(inviter) =
                state.get(&(StateEventType::RoomMember, invite.sender().to_string()))
        {
            ids.push(inviter.clone());
        }
        for event_id in ids {
            let Some((pdu, _)) = self.pdu(&event_id).await? else { continue };
            let stripped = json!({
                "type": pdu.kind().to_string(),
                "state_key": pdu.state_key().unwrap_or_default(),
                "sender": pdu.sender(),
                "content": serde_json::from_str::<Value>(pdu.content().get()).unwrap_or_default(),
            });
            events.push(to_raw(&stripped)?);
        }
        Ok(events)
    }
}

fn room_allowed(filter: &FilterDefinition, room_id: &OwnedRoomId) -> bool {
    if filter.room.not_rooms.contains(room_id) {
        return false;
    }
    filter.room.rooms.as_ref().is_none_or(|rooms| rooms.contains(room_id))
}
