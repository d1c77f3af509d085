//! Creating rooms.

use hearth_core::{
    RoomVersion,
    ruma::{
        CanonicalJsonObject, CanonicalJsonValue, OwnedRoomId, OwnedUserId, RoomAliasId,
        api::client::room::{Visibility, create_room},
        events::TimelineEventType,
    },
};
use hearth_store::AliasRecord;
use serde_json::{Map, Value, json};

use crate::{Authed, Server, ServerError, error::Result, rooms::NewEvent};

/// `POST /_matrix/client/v3/createRoom`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3createroom)).
///
/// Events follow the spec's order: create, the creator's join, power levels (with the
/// override), the canonical alias, the preset's join rules, history visibility and guest
/// access, `initial_state`, name, topic, then invites. All are stored in one transaction with
/// the alias and the directory entry, so a failing event leaves no half-made room. Users of
/// other servers are invited once the room exists, through their server (`PUT /invite`, which
/// must sign the event): an invitee whose server cannot be reached fails the request, as it
/// would fail `/invite`, but the room stays (the client sees it in /sync and can invite again).
pub(crate) async fn create_room(
    server: Server,
    authed: Authed,
    request: create_room::v3::Request,
) -> Result<create_room::v3::Response> {
    let version = match &request.room_version {
        Some(version) => version.as_str().parse::<RoomVersion>().map_err(|_| {
            ServerError::UnsupportedRoomVersion(format!("room version {version} is not supported"))
        })?,
        None => RoomVersion::default(),
    };
    let sender = authed.user_id.clone();
    let alias = match &request.room_alias_name {
        Some(name) => {
            let alias = RoomAliasId::parse(format!("#{name}:{}", server.server_name())).map_err(
                |error| ServerError::InvalidParam(format!("invalid alias name: {error}")),
            )?;
            if server.store().alias(alias.as_str()).await?.is_some() {
                return Err(ServerError::RoomInUse);
            }
            Some(alias)
        }
        None => None,
    };
    let preset = request.preset.clone().unwrap_or(match request.visibility {
        Visibility::Public => create_room::v3::RoomPreset::PublicChat,
        _ => create_room::v3::RoomPreset::PrivateChat,
    });
    let is_public_preset = preset == create_room::v3::RoomPreset::PublicChat;

    let mut events = Vec::new();
    let mut create_content = match &request.creation_content {
        Some(raw) => serde_json::from_str::<Map<String, Value>>(raw.json().get())
            .map_err(|error| ServerError::BadJson(format!("creation_content: {error}")))?,
        None => Map::new(),
    };
    create_content.insert("room_version".into(), json!(version.as_str()));
    if version == RoomVersion::V10 {
        create_content.insert("creator".into(), json!(sender));
    }
    events.push(NewEvent::state(
        TimelineEventType::RoomCreate,
        "",
        object(Value::Object(create_content))?,
    ));
    let profile = server.user_record(&sender).await?;
    let join = super::membership::join_content(&profile);
    events.push(NewEvent::state(TimelineEventType::RoomMember, sender.as_str(), object(join)?));

    let mut power_levels = default_power_levels(version, &sender);
    if preset == create_room::v3::RoomPreset::TrustedPrivateChat {
        for invitee in &request.invite {
            power_levels["users"][invitee.as_str()] = json!(100);
        }
    }
    if let Some(raw) = &request.power_level_content_override {
        let overrides: Map<String, Value> =
            serde_json::from_str(raw.json().get()).map_err(|error| {
                ServerError::BadJson(format!("power_level_content_override: {error}"))
            })?;
        for (key, value) in overrides {
            power_levels[key] = value;
        }
    }
    events.push(NewEvent::state(TimelineEventType::RoomPowerLevels, "", object(power_levels)?));
    if let Some(alias) = &alias {
        events.push(NewEvent::state(
            TimelineEventType::RoomCanonicalAlias,
            "",
            object(json!({ "alias": alias }))?,
        ));
    }
    let join_rule = if is_public_preset { "public" } else { "invite" };
    events.push(NewEvent::state(
        TimelineEventType::RoomJoinRules,
        "",
        object(json!({ "join_rule": join_rule }))?,
    ));
    events.push(NewEvent::state(
        TimelineEventType::RoomHistoryVisibility,
        "",
        object(json!({ "history_visibility": "shared" }))?,
    ));
    if !is_public_preset {
        events.push(NewEvent::state(
            TimelineEventType::RoomGuestAccess,
            "",
            object(json!({ "guest_access": "can_join" }))?,
        ));
    }
    for raw in &request.initial_state {
        #[derive(serde::Deserialize)]
        struct InitialState {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            state_key: String,
            content: Value,
        }
        let state: InitialState = serde_json::from_str(raw.json().get())
            .map_err(|error| ServerError::BadJson(format!("initial_state: {error}")))?;
        let kind = TimelineEventType::from(state.kind);
        if matches!(kind, TimelineEventType::RoomCreate | TimelineEventType::RoomMember) {
            return Err(ServerError::BadJson(format!("initial_state cannot set {kind}")));
        }
        events.push(NewEvent::state(kind, state.state_key, object(state.content)?));
    }
    if let Some(name) = &request.name {
        events.push(NewEvent::state(
            TimelineEventType::RoomName,
            "",
            object(json!({ "name": name }))?,
        ));
    }
    if let Some(topic) = &request.topic {
        events.push(NewEvent::state(
            TimelineEventType::RoomTopic,
            "",
            object(json!({ "topic": topic }))?,
        ));
    }
    let (local_invites, remote_invites): (Vec<_>, Vec<_>) =
        request.invite.iter().partition(|invitee| invitee.server_name() == server.server_name());
    for invitee in local_invites {
        let mut content = json!({ "membership": "invite" });
        if request.is_direct {
            content["is_direct"] = json!(true);
        }
        events.push(NewEvent::state(
            TimelineEventType::RoomMember,
            invitee.as_str(),
            object(content)?,
        ));
    }

    let public = request.visibility == Visibility::Public;
    let room_id = server
        .create_room_events(
            version,
            &sender,
            events,
            new_room_id(&server, version)?,
            |txn, room_id| {
                if let Some(alias) = &alias {
                    txn.put_alias(
                        alias.as_str(),
                        &AliasRecord { room_id: room_id.to_owned(), creator: sender.to_string() },
                    )?;
                }
                if public {
                    txn.set_public(room_id, true);
                }
                Ok(())
            },
        )
        .await?;
    for invitee in remote_invites {
        server.invite_remote_user(&sender, &room_id, invitee, None, request.is_direct).await?;
    }
    Ok(create_room::v3::Response::new(room_id))
}

/// The ID of a new room before version 12 (from version 12 the create event's reference hash
/// names the room): `!`, 18 random letters, `:` and this server's name.
pub(crate) fn new_room_id(server: &Server, version: RoomVersion) -> Result<Option<OwnedRoomId>> {
    if version.room_id_from_create_event() {
        return Ok(None);
    }
    let mut buffer = [0u8; 18];
    getrandom::fill(&mut buffer).map_err(|error| ServerError::Internal(error.to_string()))?;
    let localpart: String = buffer
        .iter()
        .map(|byte| char::from(if byte % 2 == 0 { b'a' } else { b'A' } + (byte / 2) % 26))
        .collect();
    OwnedRoomId::try_from(format!("!{localpart}:{}", server.server_name()))
        .map(Some)
        .map_err(|error| ServerError::Internal(error.to_string()))
}

/// The power levels a new room starts with (the spec's defaults for `createRoom`). From room
/// version 12 the creators hold unlimited power by virtue of being creators and must not be
/// listed in `users`.
fn default_power_levels(version: RoomVersion, creator: &OwnedUserId) -> Value {
    let mut users = Map::new();
    if !version.room_id_from_create_event() {
        users.insert(creator.to_string(), json!(100));
    }
    json!({
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": { "room": 50 },
    })
}

/// A JSON value as the canonical JSON object an event's content must be (no floats).
pub(crate) fn object(value: Value) -> Result<CanonicalJsonObject> {
    match CanonicalJsonValue::try_from(value) {
        Ok(CanonicalJsonValue::Object(object)) => Ok(object),
        Ok(_) => Err(ServerError::BadJson("event content must be a JSON object".into())),
        Err(error) => Err(ServerError::BadJson(format!("event content: {error}"))),
    }
}
