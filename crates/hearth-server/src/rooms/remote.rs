//! The room engine for events from other servers, once the federation layer has fetched what
//! they depend on: the [checks on receipt](https://spec.matrix.org/v1.16/server-server-api/#checks-performed-on-receipt-of-a-pdu)
//! that need the room's state (auth against the state before the event, soft failure against
//! the current state), and storing them with their state, in one transaction each.
//!
//! The room's DAG may fork here (two servers sending at once): an event's prev events leave the
//! forward extremities, the event joins them, and the current state is resolved (state
//! resolution v2) over the states after every extremity.

use std::collections::{BTreeMap, BTreeSet};

use hearth_core::{
    Pdu, RoomVersion, StateMap, auth,
    ruma::{
        EventId, OwnedEventId, OwnedRoomId, RoomId, ServerName, UserId, events::StateEventType,
    },
    state_res::{self, EventSource},
};
use hearth_store::{MembershipRecord, RejectedEvent, StoredEvent, Txn};

use super::{RoomWriter, membership_of, relates_to};
use crate::{Server, ServerError, error::Result};

/// What became of an event from another server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored in the timeline; the room's state follows it.
    Stored,
    /// Valid in its own history but not against the room's current state (a banned user's
    /// message, say): stored, never shown, never built upon.
    SoftFailed,
    /// Refused by the auth rules; remembered so that it is not fetched or checked again.
    Rejected(String),
    /// Already stored.
    Known,
}

/// The events the store already holds among `ids`, parsed, plus those in `extra`.
pub(crate) struct EventsAt<'a> {
    pub(crate) server: &'a Server,
    pub(crate) extra: &'a BTreeMap<OwnedEventId, Pdu>,
}

impl EventSource for EventsAt<'_> {
    async fn fetch_events(
        &self,
        ids: &[OwnedEventId],
    ) -> std::result::Result<Vec<Pdu>, hearth_core::CoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(pdu) = self.extra.get(id) {
                found.push(pdu.clone());
                continue;
            }
            match self.server.parsed_pdu(id).await {
                Ok(Some(pdu)) => found.push(pdu),
                Ok(None) => {}
                Err(error) => return Err(hearth_core::CoreError::EventSource(error.to_string())),
            }
        }
        Ok(found)
    }
}

impl Server {
    /// Whether an event is stored or was rejected: either way, nothing more to do with it.
    pub(crate) async fn is_known_event(&self, event_id: &EventId) -> Result<bool> {
        if self.store().event(event_id.as_str()).await?.is_some() {
            return Ok(true);
        }
        Ok(self.store().rejected_event(event_id.as_str()).await?.is_some())
    }

    /// The reason an event was rejected, if it was.
    pub(crate) async fn rejection(&self, event_id: &EventId) -> Result<Option<String>> {
        Ok(self.store().rejected_event(event_id.as_str()).await?.map(|rejected| rejected.reason))
    }

    /// Remembers that `pdu` failed the checks on receipt.
    pub(crate) async fn reject_event(&self, pdu: &Pdu, reason: &str) -> Result<()> {
        let mut txn = self.store().transaction();
        txn.put_rejected_event(
            pdu.event_id().as_str(),
            &RejectedEvent { room_id: pdu.room_id().to_owned(), reason: reason.to_owned() },
        )?;
        self.store().commit(txn).await?;
        Ok(())
    }

    /// Stores events known only as the auth or state of others ("outliers": no place in the
    /// timeline, no state of their own), already verified and checked against their own auth
    /// events by the caller. `states` gives, for some of them, the state before and after them
    /// (prev events whose state a remote server told us), so that events built on them can be
    /// placed.
    pub(crate) async fn store_outliers(
        &self,
        pdus: &[Pdu],
        states: &BTreeMap<OwnedEventId, StateMap>,
    ) -> Result<()> {
        let _guard = self.write_lock().await;
        let mut txn = self.store().transaction();
        let mut any = false;
        for pdu in pdus {
            if self.store().event(pdu.event_id().as_str()).await?.is_some() {
                continue;
            }
            let (state_before, state_after) = match states.get(pdu.event_id()) {
                Some(before) => {
                    let (before_group, chain) = txn.add_state_group(None, before, before)?;
                    let after_group = match pdu.state_key_pair() {
                        Some(key) => {
                            let mut after = before.clone();
                            after.insert(key.clone(), pdu.event_id().to_owned());
                            let changes = StateMap::from([(key, pdu.event_id().to_owned())]);
                            txn.add_state_group(Some((before_group, chain)), &changes, &after)?.0
                        }
                        None => before_group,
                    };
                    (before_group, after_group)
                }
                None => (0, 0),
            };
            let stored = StoredEvent { state_before, state_after, ..outlier(pdu)? };
            txn.put_event(pdu.event_id().as_str(), &stored, false)?;
            any = true;
        }
        if any {
            self.store().commit(txn).await?;
        }
        Ok(())
    }

    /// The state before `pdu` from its prev events' stored states (resolved when they differ);
    /// `None` if a prev event is missing or its state is unknown.
    pub(crate) async fn state_from_prev_events(&self, pdu: &Pdu) -> Result<Option<StateMap>> {
        let mut groups = BTreeSet::new();
        for prev in pdu.prev_events() {
            let Some(stored) = self.store().event(prev.as_str()).await? else { return Ok(None) };
            if stored.state_after == 0 {
                // An outlier: we hold the event but not the room's state at it. (Only the empty
                // state has group 0, and no event leaves the state empty.)
                return Ok(None);
            }
            groups.insert(stored.state_after);
        }
        let mut states = Vec::with_capacity(groups.len());
        for group in groups {
            states.push((*self.state_map(group).await?).clone());
        }
        let resolved = self.resolve(pdu.room_version(), &states, &BTreeMap::new()).await?;
        Ok(Some(resolved))
    }

    /// State resolution v2 over `states`, loading events from the store (and `extra`).
    pub(crate) async fn resolve(
        &self,
        version: RoomVersion,
        states: &[StateMap],
        extra: &BTreeMap<OwnedEventId, Pdu>,
    ) -> Result<StateMap> {
        let source = EventsAt { server: self, extra };
        Ok(state_res::resolve_state(version, states, &source).await?)
    }

    /// Checks `pdu` against `state` (the auth rules' state-dependent part).
    async fn check_against(&self, pdu: &Pdu, state: &StateMap) -> Result<(), String> {
        let mut events = BTreeMap::new();
        for key in auth_keys(pdu) {
            if let Some(id) = state.get(&key) {
                match self.parsed_pdu(id).await {
                    Ok(Some(event)) => {
                        events.insert(key, event);
                    }
                    Ok(None) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
        }
        auth::check_against_state(pdu, |kind, state_key| {
            events.get(&(kind.clone(), state_key.to_owned())).cloned()
        })
        .map_err(|error| error.to_string())
    }

    /// Stores an event from another server whose auth events are stored and which passed the
    /// checks against them. `state_before` is the state before it when its prev events do not
    /// give it (see [`Server::state_from_prev_events`]). With `forward_from`, the event is also
    /// queued for the room's other servers (a join we accepted through `send_join`, an invite
    /// we had co-signed), except that one.
    pub(crate) async fn store_remote_event(
        &self,
        pdu: &Pdu,
        state_before: Option<StateMap>,
        forward_from: Option<&ServerName>,
    ) -> Result<Outcome> {
        if self.is_known_event(pdu.event_id()).await? {
            return Ok(Outcome::Known);
        }
        let state_before = match state_before {
            Some(state) => state,
            None => self.state_from_prev_events(pdu).await?.ok_or_else(|| {
                ServerError::Internal(format!("the state before {} is unknown", pdu.event_id()))
            })?,
        };
        self.store_new_remote_event(pdu, state_before, forward_from).await
    }

    /// [`Server::store_remote_event`] for an event the caller found neither stored nor
    /// rejected, with the state before it known: the receive path has read both already.
    pub(crate) async fn store_new_remote_event(
        &self,
        pdu: &Pdu,
        state_before: StateMap,
        forward_from: Option<&ServerName>,
    ) -> Result<Outcome> {
        if let Err(reason) = self.check_against(pdu, &state_before).await {
            self.reject_event(pdu, &reason).await?;
            return Ok(Outcome::Rejected(reason));
        }

        let _guard = self.write_lock().await;
        if self.store().event(pdu.event_id().as_str()).await?.is_some() {
            return Ok(Outcome::Known);
        }
        let mut writer = self.room_writer(pdu.room_id()).await?;
        let soft_failed = self.check_against(pdu, &writer.state).await.is_err();
        let mut txn = self.store().transaction();
        let outcome = self
            .stage_remote(&mut txn, &mut writer, pdu, &state_before, soft_failed, forward_from)
            .await?;
        txn.put_room(pdu.room_id(), &writer.record)?;
        self.store().commit(txn).await?;
        self.remember_committed([writer]);
        Ok(outcome)
    }

    async fn stage_remote(
        &self,
        txn: &mut Txn,
        writer: &mut RoomWriter,
        pdu: &Pdu,
        state_before: &StateMap,
        soft_failed: bool,
        forward_from: Option<&ServerName>,
    ) -> Result<Outcome> {
        let event_id = pdu.event_id().to_owned();
        let stream = txn.next_stream();
        let before_group = self.state_group_for(txn, writer, state_before).await?;
        let mut after_state = state_before.clone();
        let after_group = match pdu.state_key_pair() {
            Some(key) => {
                after_state.insert(key.clone(), event_id.clone());
                let chain = self.chain_of(before_group, writer).await?;
                let changes = StateMap::from([(key, event_id.clone())]);
                txn.add_state_group(Some((before_group, chain)), &changes, &after_state)?.0
            }
            None => before_group,
        };
        let stored = StoredEvent {
            room_id: pdu.room_id().to_owned(),
            stream,
            pdu: raw(pdu)?,
            state_before: before_group,
            state_after: after_group,
            redacted_by: None,
            transaction: None,
            backfill: None,
        };
        txn.put_event(event_id.as_str(), &stored, !soft_failed)?;
        if soft_failed {
            return Ok(Outcome::SoftFailed);
        }
        if let Some(parent) = relates_to(pdu) {
            txn.add_relation(parent.as_str(), stream, event_id.as_str())?;
        }
        if let Some(target) = pdu.redacts()
            && self.may_redact(pdu, target).await?
        {
            self.apply_redaction(txn, writer, target, &event_id).await?;
        }
        if forward_from.is_some() {
            self.queue_for_room(txn, writer, pdu, forward_from).await?;
        }

        // The event replaces its prev events among the forward extremities; the room's state
        // is then the resolution of the states after each extremity.
        let mut extremities: Vec<OwnedEventId> = writer
            .record
            .extremities
            .iter()
            .filter(|id| !pdu.prev_events().contains(id))
            .cloned()
            .collect();
        extremities.push(event_id.clone());
        let new_state = if extremities.len() == 1 {
            after_state
        } else {
            let mut states = vec![after_state];
            for extremity in &extremities[..extremities.len() - 1] {
                let group = match self.store().event(extremity.as_str()).await? {
                    Some(stored) => stored.state_after,
                    None => continue,
                };
                states.push((*self.state_map(group).await?).clone());
            }
            let extra = BTreeMap::from([(event_id.clone(), pdu.clone())]);
            self.resolve(writer.version, &states, &extra).await?
        };
        if new_state != writer.state {
            let changes: StateMap = new_state
                .iter()
                .filter(|(key, id)| writer.state.get(*key) != Some(*id))
                .map(|(key, id)| (key.clone(), id.clone()))
                .collect();
            let parent = (writer.record.current_state != 0)
                .then_some((writer.record.current_state, writer.state_chain));
            let (group, chain) = if new_state.len() >= writer.state.len() {
                txn.add_state_group(parent, &changes, &new_state)?
            } else {
                // Entries disappeared (resolution dropped them): a delta cannot say that.
                txn.add_state_group(None, &changes, &new_state)?
            };
            self.update_memberships(txn, writer, &changes, stream, pdu).await?;
            writer.state = new_state;
            writer.state_chain = chain;
            writer.record.current_state = group;
        }
        // Keep extremities bounded: new local events name at most 20 prev events, and each
        // names all of them, so older ones merge on the next send.
        writer.record.extremities = extremities;
        writer.record.max_depth = writer.record.max_depth.max(u64::from(pdu.depth()));
        writer.record.last_stream = stream;
        writer.written.push((pdu.clone(), stream));
        Ok(Outcome::Stored)
    }

    /// Records the membership changes of a state change (in the current state, which after a
    /// state resolution may differ from what the event itself says).
    async fn update_memberships(
        &self,
        txn: &mut Txn,
        writer: &mut RoomWriter,
        changes: &StateMap,
        stream: u64,
        pdu: &Pdu,
    ) -> Result<()> {
        let room_id: OwnedRoomId = pdu.room_id().to_owned();
        for ((kind, state_key), member_event) in changes {
            if *kind != StateEventType::RoomMember {
                continue;
            }
            let Ok(target) = UserId::parse(state_key.as_str()) else { continue };
            let member = if member_event == pdu.event_id() {
                pdu.clone()
            } else {
                match self.parsed_pdu(member_event).await? {
                    Some(member) => member,
                    None => continue,
                }
            };
            let membership = membership_of(&member);
            let previous = self.store().membership(&target, &room_id).await?;
            let record = MembershipRecord {
                membership: membership.clone(),
                event_id: member_event.clone(),
                stream,
                forgotten: previous
                    .is_some_and(|previous| previous.forgotten && previous.membership != "join"),
            };
            txn.set_membership(&room_id, &target, &record)?;
            self.track_membership(writer, &target, &membership).await?;
        }
        Ok(())
    }

    /// The state group holding exactly `state`: the room's current one, or a new snapshot.
    async fn state_group_for(
        &self,
        txn: &mut Txn,
        writer: &RoomWriter,
        state: &StateMap,
    ) -> Result<u64> {
        if *state == writer.state {
            return Ok(writer.record.current_state);
        }
        Ok(txn.add_state_group(None, state, state)?.0)
    }

    /// The delta chain length of a state group.
    async fn chain_of(&self, group: u64, writer: &RoomWriter) -> Result<u32> {
        if group == writer.record.current_state {
            return Ok(writer.state_chain);
        }
        Ok(self.store().state_group(group).await?.map(|group| group.chain).unwrap_or(0))
    }

    /// Whether a redaction from another server may take effect on `target`: the same server
    /// sent both, or the redacting user has the room's `redact` power.
    async fn may_redact(&self, redaction: &Pdu, target: &EventId) -> Result<bool> {
        let Some(original) = self.parsed_pdu(target).await? else { return Ok(false) };
        if original.room_id() != redaction.room_id() {
            return Ok(false);
        }
        if original.sender().server_name() == redaction.sender().server_name() {
            return Ok(true);
        }
        let power = self.power_levels(redaction.room_id()).await?;
        Ok(power.user_level(redaction.sender()) >= power.redact)
    }

    /// Remembers an invite of a local user to a room this server is not in: the co-signed
    /// event (with the room's stripped state under `unsigned.invite_room_state`, which is all
    /// the invitee's client can see of the room) and the user's `invite` membership.
    pub(crate) async fn store_remote_invite(
        &self,
        invite: &Pdu,
        invitee: &UserId,
        stripped_state: Vec<serde_json::Value>,
    ) -> Result<()> {
        let mut json: serde_json::Value = serde_json::from_str(&invite.to_canonical_string()?)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        json["unsigned"] = serde_json::json!({ "invite_room_state": stripped_state });
        let text = serde_json::to_string(&json)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        let _guard = self.write_lock().await;
        let mut txn = self.store().transaction();
        let stream = txn.next_stream();
        let stored = StoredEvent {
            room_id: invite.room_id().to_owned(),
            stream,
            pdu: serde_json::value::RawValue::from_string(text)
                .map_err(|error| ServerError::Internal(error.to_string()))?,
            state_before: 0,
            state_after: 0,
            redacted_by: None,
            transaction: None,
            backfill: None,
        };
        txn.put_event(invite.event_id().as_str(), &stored, false)?;
        let record = MembershipRecord {
            membership: "invite".into(),
            event_id: invite.event_id().to_owned(),
            stream,
            forgotten: false,
        };
        txn.set_membership(invite.room_id(), invitee, &record)?;
        self.store().commit(txn).await?;
        self.notifier().notify();
        Ok(())
    }

    /// Records that a local user declined an invite to a room this server is not in: their
    /// membership becomes `leave` (with the leave event, when the inviting server took one).
    pub(crate) async fn store_declined_invite(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        leave: Option<&Pdu>,
    ) -> Result<()> {
        let _guard = self.write_lock().await;
        let Some(previous) = self.store().membership(user_id, room_id).await? else {
            return Ok(());
        };
        let mut txn = self.store().transaction();
        let stream = txn.next_stream();
        let event_id = match leave {
            Some(leave) => {
                let stored = StoredEvent {
                    room_id: room_id.to_owned(),
                    stream,
                    pdu: raw(leave)?,
                    state_before: 0,
                    state_after: 0,
                    redacted_by: None,
                    transaction: None,
                    backfill: None,
                };
                txn.put_event(leave.event_id().as_str(), &stored, false)?;
                leave.event_id().to_owned()
            }
            // Nothing was sent: the membership still names the invite it ends.
            None => previous.event_id,
        };
        let record =
            MembershipRecord { membership: "leave".into(), event_id, stream, forgotten: false };
        txn.set_membership(room_id, user_id, &record)?;
        self.store().commit(txn).await?;
        self.notifier().notify();
        Ok(())
    }

    /// Whether `room_id` is a room this server takes part in.
    pub(crate) async fn knows_room(&self, room_id: &RoomId) -> Result<bool> {
        Ok(self.store().room(room_id).await?.is_some())
    }

    /// Stores a room this server joins through another one: the room's state before our join
    /// and its auth chain (`events`, each already checked by the caller), and our join, in one
    /// transaction. The join then heads the room's timeline here; older history is fetched
    /// when a client pages back.
    pub(crate) async fn store_joined_room(
        &self,
        version: RoomVersion,
        join: &Pdu,
        state: &StateMap,
        events: &BTreeMap<OwnedEventId, Pdu>,
    ) -> Result<()> {
        let _guard = self.write_lock().await;
        let room_id = join.room_id().to_owned();
        let mut txn = self.store().transaction();
        for (event_id, pdu) in events {
            if self.store().event(event_id.as_str()).await?.is_some() {
                continue;
            }
            txn.put_event(event_id.as_str(), &outlier(pdu)?, false)?;
        }
        let (before_group, chain) = txn.add_state_group(None, state, state)?;
        let join_key = join
            .state_key_pair()
            .ok_or_else(|| ServerError::Internal("a join without a state key".into()))?;
        let mut after = state.clone();
        after.insert(join_key.clone(), join.event_id().to_owned());
        let changes = StateMap::from([(join_key, join.event_id().to_owned())]);
        let (after_group, after_chain) =
            txn.add_state_group(Some((before_group, chain)), &changes, &after)?;
        let stream = txn.next_stream();
        let stored = StoredEvent {
            room_id: room_id.clone(),
            stream,
            pdu: raw(join)?,
            state_before: before_group,
            state_after: after_group,
            redacted_by: None,
            transaction: None,
            backfill: None,
        };
        txn.put_event(join.event_id().as_str(), &stored, true)?;

        let mut joined = BTreeSet::new();
        for ((kind, state_key), event_id) in &after {
            if *kind != StateEventType::RoomMember {
                continue;
            }
            let Ok(target) = UserId::parse(state_key.as_str()) else { continue };
            let member =
                if event_id == join.event_id() { Some(join) } else { events.get(event_id) };
            let Some(member) = member else { continue };
            let membership = membership_of(member);
            if membership == "join" {
                joined.insert(target.clone());
            }
            let record = MembershipRecord {
                membership,
                event_id: event_id.clone(),
                stream,
                forgotten: false,
            };
            txn.set_membership(&room_id, &target, &record)?;
        }
        let record = hearth_store::RoomRecord {
            version: version.as_str().to_owned(),
            current_state: after_group,
            extremities: vec![join.event_id().to_owned()],
            max_depth: u64::from(join.depth()),
            last_stream: stream,
        };
        txn.put_room(&room_id, &record)?;
        self.store().commit(txn).await?;

        let mut writer = RoomWriter::new(Some(room_id), version, record);
        writer.state = after;
        writer.state_chain = after_chain;
        writer.written.push((join.clone(), stream));
        writer.joined = Some(joined);
        self.remember_committed([writer]);
        Ok(())
    }
}

/// The state entries the auth rules look at for `pdu`.
pub(crate) fn auth_keys(pdu: &Pdu) -> Vec<(StateEventType, String)> {
    let mut keys = ruma_auth_types(pdu);
    keys.push((StateEventType::RoomCreate, String::new()));
    keys
}

fn ruma_auth_types(pdu: &Pdu) -> Vec<(StateEventType, String)> {
    hearth_core::ruma::state_res::auth_types_for_event(
        pdu.kind(),
        pdu.sender(),
        pdu.state_key(),
        pdu.content(),
        &pdu.room_version().rules().authorization,
    )
    .unwrap_or_default()
}

/// A PDU stored with no place in the timeline and no state of its own: an outlier, until it is
/// placed (backfilled history) or given a state.
pub(crate) fn outlier(pdu: &Pdu) -> Result<StoredEvent> {
    Ok(StoredEvent {
        room_id: pdu.room_id().to_owned(),
        stream: 0,
        pdu: raw(pdu)?,
        state_before: 0,
        state_after: 0,
        redacted_by: None,
        transaction: None,
        backfill: None,
    })
}

/// The stored form of a PDU.
fn raw(pdu: &Pdu) -> Result<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(pdu.to_canonical_string()?)
        .map_err(|error| ServerError::Internal(error.to_string()))
}
