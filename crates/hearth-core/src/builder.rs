//! Building and signing new PDUs: [`PduBuilder`] fills in what the
//! [server-server API](https://spec.matrix.org/v1.16/server-server-api/#pdus) requires of an
//! event this server creates (prev_events, auth_events, depth, hashes, signatures) for room
//! versions 10, 11 and 12.

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    OwnedUserId, UInt,
    events::{StateEventType, TimelineEventType},
};
use serde_json::value::RawValue;

use crate::{CoreError, Pdu, RoomVersion, ServerIdentity, json, signing};

/// The [most prev_events](https://spec.matrix.org/v1.16/rooms/v1/#event-format) an event may
/// name: extremities beyond it are merged by later events.
pub const MAX_PREV_EVENTS: usize = 20;

/// A new event, before this server hashes and signs it.
#[derive(Clone, Debug)]
pub struct PduBuilder {
    /// The room version.
    pub version: RoomVersion,
    /// The room; `None` only for a v12 create event, whose hash becomes the room ID.
    pub room_id: Option<OwnedRoomId>,
    /// The sender, a user of this server.
    pub sender: OwnedUserId,
    /// The event type.
    pub kind: TimelineEventType,
    /// The state key, for state events.
    pub state_key: Option<String>,
    /// The content.
    pub content: CanonicalJsonObject,
    /// The forward extremities this event follows (at most [`MAX_PREV_EVENTS`] are used).
    pub prev_events: Vec<OwnedEventId>,
    /// The depth of the deepest prev event; the new event is one deeper.
    pub prev_depth: UInt,
    /// The auth events, chosen with [`auth_types`](PduBuilder::auth_types) from the state
    /// before the event.
    pub auth_events: Vec<OwnedEventId>,
    /// For `m.room.redaction`, the event redacted.
    pub redacts: Option<OwnedEventId>,
    /// Creation time.
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
}

impl PduBuilder {
    /// A builder for an event of `kind` with `content`, to be completed with the fields.
    pub fn new(
        version: RoomVersion,
        room_id: Option<OwnedRoomId>,
        sender: OwnedUserId,
        kind: TimelineEventType,
        content: CanonicalJsonObject,
        origin_server_ts: MilliSecondsSinceUnixEpoch,
    ) -> Self {
        Self {
            version,
            room_id,
            sender,
            kind,
            state_key: None,
            content,
            prev_events: Vec::new(),
            prev_depth: UInt::MIN,
            auth_events: Vec::new(),
            redacts: None,
            origin_server_ts,
        }
    }

    /// The state entries this event's `auth_events` must be taken from
    /// ([auth events selection](https://spec.matrix.org/v1.16/server-server-api/#auth-events-selection)).
    pub fn auth_types(&self) -> Result<Vec<(StateEventType, String)>, CoreError> {
        let content = RawValue::from_string(json::encode(&self.content)?)
            .map_err(|error| CoreError::MalformedEvent(error.to_string()))?;
        ruma::state_res::auth_types_for_event(
            &self.kind,
            &self.sender,
            self.state_key.as_deref(),
            &content,
            &self.version.rules().authorization,
        )
        .map_err(CoreError::MalformedEvent)
    }

    /// Hashes and signs the event as `identity`, which must be the sender's server.
    pub fn build(self, identity: &ServerIdentity) -> Result<Pdu, CoreError> {
        if self.sender.server_name() != identity.server_name() {
            return Err(CoreError::Signing(format!(
                "{} is not a user of this server",
                self.sender
            )));
        }
        let is_v12_create =
            self.version.room_id_from_create_event() && self.kind == TimelineEventType::RoomCreate;
        let mut object = CanonicalJsonObject::new();
        match (self.room_id, is_v12_create) {
            (None, true) => {}
            (Some(room_id), false) => {
                object.insert("room_id".into(), CanonicalJsonValue::String(room_id.into()));
            }
            (Some(_), true) => {
                return Err(CoreError::MalformedEvent(
                    "a v12 create event has no `room_id`: its hash is the room ID".into(),
                ));
            }
            (None, false) => return Err(CoreError::MalformedEvent("missing `room_id`".into())),
        }
        // At the largest depth JSON allows (a remote server may put an event there), events
        // stay there rather than start again at 1.
        let depth = if self.prev_events.is_empty() {
            UInt::from(1u32)
        } else {
            self.prev_depth.saturating_add(UInt::from(1u32))
        };
        let mut content = self.content;
        if let Some(redacts) = &self.redacts {
            let value = CanonicalJsonValue::String(redacts.to_string());
            if self.version.rules().redaction.content_field_redacts {
                content.insert("redacts".into(), value);
            } else {
                object.insert("redacts".into(), value);
            }
        }
        object.insert("sender".into(), CanonicalJsonValue::String(self.sender.into()));
        object.insert("type".into(), CanonicalJsonValue::String(self.kind.to_string()));
        if let Some(state_key) = self.state_key {
            object.insert("state_key".into(), CanonicalJsonValue::String(state_key));
        }
        object.insert("content".into(), CanonicalJsonValue::Object(content));
        object
            .insert("prev_events".into(), id_array(self.prev_events.iter().take(MAX_PREV_EVENTS)));
        object.insert("auth_events".into(), id_array(self.auth_events.iter()));
        object.insert("depth".into(), CanonicalJsonValue::Integer(depth.into()));
        object.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(self.origin_server_ts.get().into()),
        );

        signing::hash_and_sign_event(
            identity.server_name().as_str(),
            identity.key(),
            &mut object,
            self.version,
        )?;
        Pdu::from_canonical(self.version, object)
    }
}

fn id_array<'a>(ids: impl Iterator<Item = &'a OwnedEventId>) -> CanonicalJsonValue {
    CanonicalJsonValue::Array(ids.map(|id| CanonicalJsonValue::String(id.to_string())).collect())
}
