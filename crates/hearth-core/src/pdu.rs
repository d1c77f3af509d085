//! A [PDU](https://spec.matrix.org/v1.16/server-server-api/#pdus): an event as servers store and
//! exchange it, parsed once and kept with its exact canonical JSON.

use std::sync::Arc;

use ruma::{
    CanonicalJsonObject, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    OwnedUserId, RoomId, UInt, UserId,
    events::{StateEventType, TimelineEventType},
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{CoreError, RoomVersion, json, signing};

/// The [largest event](https://spec.matrix.org/v1.16/client-server-api/#size-limits) allowed,
/// in bytes of canonical JSON, signatures included.
pub const MAX_PDU_BYTES: usize = 65_536;

/// A parsed, immutable PDU. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pdu(Arc<PduInner>);

#[derive(Debug)]
struct PduInner {
    version: RoomVersion,
    event_id: OwnedEventId,
    /// The `room_id` field; absent only from a v12 create event.
    room_id_field: Option<OwnedRoomId>,
    room_id: OwnedRoomId,
    sender: OwnedUserId,
    kind: TimelineEventType,
    state_key: Option<String>,
    content: Box<RawValue>,
    prev_events: Vec<OwnedEventId>,
    auth_events: Vec<OwnedEventId>,
    depth: UInt,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    redacts: Option<OwnedEventId>,
    json: CanonicalJsonObject,
}

/// The fields every PDU of the supported room versions has.
#[derive(Deserialize)]
struct PduFields {
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    #[serde(rename = "type")]
    kind: TimelineEventType,
    state_key: Option<String>,
    content: Box<RawValue>,
    prev_events: Vec<OwnedEventId>,
    auth_events: Vec<OwnedEventId>,
    depth: UInt,
    origin_server_ts: MilliSecondsSinceUnixEpoch,
    redacts: Option<OwnedEventId>,
}

/// `redacts` lives in `content` from room version 11.
#[derive(Deserialize)]
struct RedactsInContent {
    redacts: Option<OwnedEventId>,
}

impl Pdu {
    /// Parses a PDU received from the network (the federation format, without `event_id`):
    /// size limit, canonical JSON, the room version's event format. Signatures are not checked
    /// here: see [`Pdu::verify`].
    pub fn parse(version: RoomVersion, bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() > 4 * MAX_PDU_BYTES {
            // Far too large even with insignificant whitespace: do not spend time parsing it.
            return Err(CoreError::EventTooLarge { size: bytes.len() });
        }
        Self::from_canonical(version, json::parse_object(bytes)?)
    }

    /// A PDU from canonical JSON.
    pub fn from_canonical(
        version: RoomVersion,
        mut object: CanonicalJsonObject,
    ) -> Result<Self, CoreError> {
        // Servers do not send `event_id` from room version 3 on; a stale one must not be
        // trusted or hashed.
        object.remove("event_id");
        let text = json::encode(&object)?;
        if text.len() > MAX_PDU_BYTES {
            return Err(CoreError::EventTooLarge { size: text.len() });
        }
        ruma::state_res::check_pdu_format(&object, &version.rules().event_format)
            .map_err(CoreError::MalformedEvent)?;
        let fields: PduFields = serde_json::from_str(&text)
            .map_err(|error| CoreError::MalformedEvent(error.to_string()))?;
        let event_id = signing::event_id(&object, version)?;

        let room_id = match (&fields.room_id, version.room_id_from_create_event()) {
            (Some(room_id), _) => room_id.clone(),
            (None, true) if fields.kind == TimelineEventType::RoomCreate => {
                room_id_for_create_event(&event_id)?
            }
            (None, _) => return Err(CoreError::MalformedEvent("missing `room_id`".into())),
        };
        if version.room_id_from_create_event()
            && fields.kind == TimelineEventType::RoomCreate
            && fields.room_id.is_some()
        {
            return Err(CoreError::MalformedEvent(
                "a v12 create event must not have a `room_id`".into(),
            ));
        }

        let redacts = if version.rules().redaction.content_field_redacts {
            let in_content: RedactsInContent = serde_json::from_str(fields.content.get())
                .map_err(|error| CoreError::MalformedEvent(format!("content: {error}")))?;
            in_content.redacts.or(fields.redacts)
        } else {
            fields.redacts
        };

        Ok(Self(Arc::new(PduInner {
            version,
            event_id,
            room_id_field: fields.room_id,
            room_id,
            sender: fields.sender,
            kind: fields.kind,
            state_key: fields.state_key,
            content: fields.content,
            prev_events: fields.prev_events,
            auth_events: fields.auth_events,
            depth: fields.depth,
            origin_server_ts: fields.origin_server_ts,
            redacts,
            json: object,
        })))
    }

    /// Checks the signatures of the servers the room version requires and the content hash.
    pub fn verify(&self) -> Result<signing::EventVerification, CoreError> {
        signing::verify_event(&self.0.json, self.0.version)
    }

    /// This event redacted, as stored after a valid `m.room.redaction` or a content hash
    /// mismatch. The event ID stays the same: the reference hash covers only redacted fields.
    pub fn redacted(&self) -> Result<Self, CoreError> {
        let redacted = signing::redact(self.0.json.clone(), self.0.version)?;
        Self::from_canonical(self.0.version, redacted)
    }

    /// The room version the event was parsed under.
    pub fn room_version(&self) -> RoomVersion {
        self.0.version
    }

    /// The event ID (the reference hash).
    pub fn event_id(&self) -> &EventId {
        &self.0.event_id
    }

    /// The room ID; for a v12 create event, the one its hash defines.
    pub fn room_id(&self) -> &RoomId {
        &self.0.room_id
    }

    /// The sender.
    pub fn sender(&self) -> &UserId {
        &self.0.sender
    }

    /// The event type.
    pub fn kind(&self) -> &TimelineEventType {
        &self.0.kind
    }

    /// The state key, for state events.
    pub fn state_key(&self) -> Option<&str> {
        self.0.state_key.as_deref()
    }

    /// `(type, state_key)` for state events.
    pub fn state_key_pair(&self) -> Option<(StateEventType, String)> {
        let state_key = self.0.state_key.clone()?;
        Some((self.0.kind.to_string().into(), state_key))
    }

    /// The content, as raw JSON.
    pub fn content(&self) -> &RawValue {
        &self.0.content
    }

    /// The parents in the room DAG.
    pub fn prev_events(&self) -> &[OwnedEventId] {
        &self.0.prev_events
    }

    /// The events that authorise this one.
    pub fn auth_events(&self) -> &[OwnedEventId] {
        &self.0.auth_events
    }

    /// The depth in the room DAG.
    pub fn depth(&self) -> UInt {
        self.0.depth
    }

    /// When the sending server created the event.
    pub fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.0.origin_server_ts
    }

    /// For a redaction, the event it redacts.
    pub fn redacts(&self) -> Option<&EventId> {
        self.0.redacts.as_deref()
    }

    /// The PDU in the federation format (no `event_id`), canonical JSON.
    pub fn json(&self) -> &CanonicalJsonObject {
        &self.0.json
    }

    /// The PDU as canonical JSON text, as sent over federation.
    pub fn to_canonical_string(&self) -> Result<String, CoreError> {
        json::encode(&self.0.json)
    }
}

impl PartialEq for Pdu {
    fn eq(&self, other: &Self) -> bool {
        self.0.event_id == other.0.event_id
    }
}

impl Eq for Pdu {}

/// The room ID a v12 create event defines: `!` and its reference hash.
pub fn room_id_for_create_event(create_event_id: &EventId) -> Result<OwnedRoomId, CoreError> {
    let hash = create_event_id.as_str().trim_start_matches('$');
    OwnedRoomId::try_from(format!("!{hash}"))
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))
}

/// A PDU as ruma's state resolution and auth checks see it. Rejection is decided by the caller
/// (the room engine keeps rejected events out of what it hands in), so this is never rejected.
impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &OwnedEventId {
        &self.0.event_id
    }

    fn room_id(&self) -> Option<&RoomId> {
        self.0.room_id_field.as_deref()
    }

    fn sender(&self) -> &UserId {
        &self.0.sender
    }

    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.0.origin_server_ts
    }

    fn event_type(&self) -> &TimelineEventType {
        &self.0.kind
    }

    fn content(&self) -> &RawValue {
        &self.0.content
    }

    fn state_key(&self) -> Option<&str> {
        self.0.state_key.as_deref()
    }

    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.0.prev_events.iter())
    }

    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.0.auth_events.iter())
    }

    fn redacts(&self) -> Option<&OwnedEventId> {
        self.0.redacts.as_ref()
    }

    fn rejected(&self) -> bool {
        false
    }
}
