//! The [authorization rules](https://spec.matrix.org/v1.16/server-server-api/#authorisation-rules)
//! of each supported room version, through ruma-state-res.
//!
//! The [checks on receipt of a PDU](https://spec.matrix.org/v1.16/server-server-api/#checks-performed-on-receipt-of-a-pdu)
//! apply them three times: against the event's own auth events ([`check_auth_events`]), against
//! the state before the event and against the current state ([`check_against_state`], the last
//! one deciding a soft failure).

use std::collections::BTreeMap;

use ruma::{
    EventId, OwnedEventId,
    events::{StateEventType, TimelineEventType},
};

use crate::{CoreError, Pdu, pdu::room_id_for_create_event};

/// Checks an event against the rules using only its `auth_events` (and, from v12, the create
/// event its room ID names). `fetch_event` must return every event it is asked for that the
/// caller has accepted; a missing one fails the check.
pub fn check_auth_events(
    pdu: &Pdu,
    fetch_event: impl Fn(&EventId) -> Option<Pdu>,
) -> Result<(), CoreError> {
    let rules = &pdu.room_version().rules().authorization;
    ruma::state_res::check_state_independent_auth_rules(rules, pdu, &fetch_event)
        .map_err(CoreError::NotAuthorized)?;

    let mut state: BTreeMap<(StateEventType, String), Pdu> = BTreeMap::new();
    for id in pdu.auth_events() {
        let event = fetch_event(id).ok_or_else(|| CoreError::MissingEvent(id.clone()))?;
        if let Some(key) = event.state_key_pair() {
            state.insert(key, event);
        }
    }
    if rules.room_create_event_id_as_room_id && *pdu.kind() != TimelineEventType::RoomCreate {
        let create_id = create_event_id(pdu)?;
        let create = fetch_event(&create_id).ok_or(CoreError::MissingEvent(create_id))?;
        state.insert((StateEventType::RoomCreate, String::new()), create);
    }
    check_against_state(pdu, |kind, state_key| {
        state.get(&(kind.clone(), state_key.to_owned())).cloned()
    })
}

/// Checks an event against a room state (the state before it, or the current state).
pub fn check_against_state(
    pdu: &Pdu,
    fetch_state: impl Fn(&StateEventType, &str) -> Option<Pdu>,
) -> Result<(), CoreError> {
    ruma::state_res::check_state_dependent_auth_rules(
        &pdu.room_version().rules().authorization,
        pdu,
        fetch_state,
    )
    .map_err(CoreError::NotAuthorized)
}

/// The ID of the create event of the room a v12 event is in: its room ID is that event's hash.
pub fn create_event_id(pdu: &Pdu) -> Result<OwnedEventId, CoreError> {
    if *pdu.kind() == TimelineEventType::RoomCreate {
        return Ok(pdu.event_id().to_owned());
    }
    let hash = pdu.room_id().as_str().trim_start_matches('!');
    let id = OwnedEventId::try_from(format!("${hash}"))
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))?;
    // Round trip guards against room IDs that are not hashes (v10/v11 style).
    if room_id_for_create_event(&id)? != pdu.room_id() {
        return Err(CoreError::MalformedEvent("room ID is not a create event hash".into()));
    }
    Ok(id)
}
