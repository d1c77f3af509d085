//! Room upgrades
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#room-upgrades)).

use hearth_core::{
    RoomVersion,
    ruma::{
        RoomId, UserId, api::client::room::upgrade_room, events::StateEventType,
        events::TimelineEventType,
    },
};
use hearth_store::AliasRecord;
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError,
    client::room::{new_room_id, object},
    error::Result,
    rooms::NewEvent,
};

/// The state the replacement room inherits, in the order it is sent (after the create event,
/// the upgrading user's join and the power levels).
const COPIED_STATE: &[StateEventType] = &[
    StateEventType::RoomJoinRules,
    StateEventType::RoomHistoryVisibility,
    StateEventType::RoomGuestAccess,
    StateEventType::RoomName,
    StateEventType::RoomTopic,
    StateEventType::RoomAvatar,
    StateEventType::RoomEncryption,
    StateEventType::RoomServerAcl,
];

/// The power level needed to send the state event `kind`, from power levels `content`
/// (`None` when the room has none: then every state event needs 0).
fn state_level(content: Option<&Value>, kind: &str) -> i64 {
    match content {
        Some(content) => content
            .get("events")
            .and_then(|events| events.get(kind))
            .or_else(|| content.get("state_default"))
            .and_then(Value::as_i64)
            .unwrap_or(50),
        None => 0,
    }
}

/// The highest level power levels `content` names anywhere (at least 100): the level the
/// upgrading user is lent while the copied state is sent.
fn highest_level(content: &Value) -> i64 {
    let mut highest = 100;
    let mut visit = |value: &Value| {
        if let Some(level) = value.as_i64() {
            highest = highest.max(level);
        }
    };
    if let Some(object) = content.as_object() {
        for (key, value) in object {
            match key.as_str() {
                "users" | "events" | "notifications" => {
                    value.as_object().into_iter().flatten().for_each(|(_, level)| visit(level));
                }
                _ => visit(value),
            }
        }
    }
    highest
}

impl Server {
    async fn may_send_state(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        levels: Option<&Value>,
        kind: &str,
    ) -> Result<bool> {
        let power = self.power_levels(room_id).await?;
        Ok(power.user_level(user_id) >= state_level(levels, kind))
    }
}

/// `POST /_matrix/client/v3/rooms/{roomId}/upgrade`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidupgrade)).
///
/// Follows the spec's server behaviour: checks that the user may send `m.room.tombstone`,
/// creates the replacement room (its create event names the old room as `predecessor`, and in
/// room version 12 the upgrading user is its creator) with the old room's important state and
/// canonical alias, moves the local aliases and the directory listing, then sends the
/// tombstone into the old room and restricts it (`events_default` and `invite` raised to
/// `max(50, users_default + 1)`).
pub(crate) async fn upgrade_room(
    server: Server,
    authed: Authed,
    request: upgrade_room::v3::Request,
) -> Result<upgrade_room::v3::Response> {
    let version = request.new_version.as_str().parse::<RoomVersion>().map_err(|_| {
        ServerError::UnsupportedRoomVersion(format!(
            "room version {} is not supported",
            request.new_version
        ))
    })?;
    let old_room = &request.room_id;
    let sender = authed.user_id.clone();
    server.current_state(old_room).await?;
    let joined = server
        .store()
        .membership(&sender, old_room)
        .await?
        .is_some_and(|record| record.membership == "join");
    if !joined {
        return Err(ServerError::Forbidden(format!("you are not in room {old_room}")));
    }
    let old_levels = server.state_content(old_room, StateEventType::RoomPowerLevels, "").await?;
    if !server.may_send_state(old_room, &sender, old_levels.as_ref(), "m.room.tombstone").await? {
        return Err(ServerError::Forbidden(
            "your power level is too low to upgrade this room".into(),
        ));
    }

    // The replacement room's events: create, the upgrading user's join, power levels, the
    // copied state and the canonical alias.
    let old_create = server.state_content(old_room, StateEventType::RoomCreate, "").await?;
    let mut create = json!({
        "room_version": version.as_str(),
        "predecessor": { "room_id": old_room },
    });
    if let Some(kind) = old_create.as_ref().and_then(|content| content.get("type")) {
        create["type"] = kind.clone();
    }
    if version == RoomVersion::V10 {
        create["creator"] = json!(sender);
    }
    let v12 = version.room_id_from_create_event();
    if v12 && !request.additional_creators.is_empty() {
        create["additional_creators"] = json!(request.additional_creators);
    }
    let mut events = vec![NewEvent::state(TimelineEventType::RoomCreate, "", object(create)?)];
    let profile = server.user_record(&sender).await?;
    let join = super::membership::join_content(&profile);
    events.push(NewEvent::state(TimelineEventType::RoomMember, sender.as_str(), object(join)?));

    let mut levels = old_levels.clone().unwrap_or_else(|| json!({}));
    if !levels.get("users").is_some_and(Value::is_object) {
        levels["users"] = json!({});
    }
    // In version 12 the creators hold unlimited power as creators and must not be listed.
    let mut final_levels = None;
    if v12 {
        if let Some(users) = levels["users"].as_object_mut() {
            users.remove(sender.as_str());
            for creator in &request.additional_creators {
                users.remove(creator.as_str());
            }
        }
    } else {
        // Before version 12 the upgrading user keeps their level; one who was a creator of a
        // version 12 room gets the highest level named. One below it is lent that level while
        // the state is copied, and the copied levels are sent last.
        let own = server.power_levels(old_room).await?.user_level(&sender);
        let highest = highest_level(&levels);
        if own == i64::MAX {
            levels["users"][sender.as_str()] = json!(highest);
        } else if own < highest {
            let mut lent = levels.clone();
            lent["users"][sender.as_str()] = json!(highest);
            final_levels = Some(levels);
            levels = lent;
        }
    }
    events.push(NewEvent::state(TimelineEventType::RoomPowerLevels, "", object(levels)?));
    for kind in COPIED_STATE {
        if let Some(content) = server.state_content(old_room, kind.clone(), "").await? {
            let kind = TimelineEventType::from(kind.to_string());
            events.push(NewEvent::state(kind, "", object(content)?));
        }
    }
    let canonical_alias =
        server.state_content(old_room, StateEventType::RoomCanonicalAlias, "").await?;
    if let Some(content) = &canonical_alias {
        events.push(NewEvent::state(
            TimelineEventType::RoomCanonicalAlias,
            "",
            object(content.clone())?,
        ));
    }
    if let Some(levels) = final_levels {
        events.push(NewEvent::state(TimelineEventType::RoomPowerLevels, "", object(levels)?));
    }

    // Local aliases move with the room, as does the directory listing.
    let mut aliases = Vec::new();
    for alias in server.store().room_aliases(old_room).await? {
        if let Some(record) = server.store().alias(&alias).await? {
            aliases.push((alias, record));
        }
    }
    let published = server.store().is_public(old_room).await?;
    let new_room = server
        .create_room_events(
            version,
            &sender,
            events,
            new_room_id(&server, version)?,
            |txn, new_room| {
                for (alias, record) in &aliases {
                    txn.delete_alias(alias, old_room);
                    txn.put_alias(
                        alias,
                        &AliasRecord {
                            room_id: new_room.to_owned(),
                            creator: record.creator.clone(),
                        },
                    )?;
                }
                if published {
                    txn.set_public(old_room, false);
                    txn.set_public(new_room, true);
                }
                Ok(())
            },
        )
        .await?;

    // The old room: its canonical alias no longer points at it, the tombstone, then the
    // restriction, each only if the user may send it (the tombstone was checked above).
    let mut old_events = Vec::new();
    if canonical_alias.as_ref().is_some_and(|content| {
        content.get("alias").is_some() || content.get("alt_aliases").is_some()
    }) && server
        .may_send_state(old_room, &sender, old_levels.as_ref(), "m.room.canonical_alias")
        .await?
    {
        old_events.push(NewEvent::state(
            TimelineEventType::RoomCanonicalAlias,
            "",
            Default::default(),
        ));
    }
    old_events.push(NewEvent::state(
        TimelineEventType::RoomTombstone,
        "",
        object(json!({
            "body": "This room has been replaced",
            "replacement_room": new_room,
        }))?,
    ));
    if let Some(mut restricted) = old_levels.clone() {
        let users_default = restricted.get("users_default").and_then(Value::as_i64).unwrap_or(0);
        let level = 50.max(users_default.saturating_add(1));
        let power = server.power_levels(old_room).await?;
        let own = power.user_level(&sender);
        let raised =
            |field: &str| restricted.get(field).and_then(Value::as_i64).unwrap_or(0).max(level);
        let (events_default, invite) = (raised("events_default"), raised("invite"));
        if own >= level && own >= state_level(old_levels.as_ref(), "m.room.power_levels") {
            restricted["events_default"] = json!(events_default);
            restricted["invite"] = json!(invite);
            old_events.push(NewEvent::state(
                TimelineEventType::RoomPowerLevels,
                "",
                object(restricted)?,
            ));
        }
    }
    server.send_events(old_room, &sender, old_events).await?;
    Ok(upgrade_room::v3::Response::new(new_room))
}
