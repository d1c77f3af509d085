//! Joining rooms across servers and inviting other servers' users
//! ([room joins](https://spec.matrix.org/v1.16/server-server-api/#joining-rooms),
//! [invites](https://spec.matrix.org/v1.16/server-server-api/#inviting-to-a-room)): both sides,
//! the resident server that is already in the room and the server whose user joins or is
//! invited.

use std::collections::BTreeMap;

use hearth_core::{
    Pdu, PduBuilder, RoomVersion, StateMap, auth,
    ruma::{
        CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedServerName, RoomId,
        RoomVersionId, ServerName, UInt, UserId,
        api::federation::membership::{
            RawStrippedState, create_invite, create_join_event, create_leave_event,
            prepare_join_event, prepare_leave_event,
        },
        events::{StateEventType, TimelineEventType},
    },
    signing,
};
use serde_json::{Value, json, value::RawValue};

use crate::{
    Server, ServerError,
    client::membership::join_content,
    error::Result,
    federation::receive::{Budget, checked_signatures, parse_all},
    platform::now_ms,
    rooms::{NewEvent, membership_of, remote::Outcome},
};

/// The room versions this server can join.
const SUPPORTED: [RoomVersion; 3] = [RoomVersion::V10, RoomVersion::V11, RoomVersion::V12];

/// `GET /_matrix/federation/v1/make_join/{roomId}/{userId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1make_joinroomiduserid)):
/// a join event template for a user of `origin`, on top of the room's current state.
pub(crate) async fn create_join_event_template(
    server: Server,
    origin: OwnedServerName,
    request: prepare_join_event::v1::Request,
) -> Result<prepare_join_event::v1::Response> {
    let user_id = &request.user_id;
    if user_id.server_name() != origin {
        return Err(ServerError::Forbidden(format!("{origin} cannot join {user_id} to rooms")));
    }
    let (record, state) = server.current_state(&request.room_id).await?;
    let version = record.version.parse::<RoomVersion>()?;
    if !request.ver.iter().any(|ver| ver.as_str() == version.as_str()) {
        return Err(ServerError::IncompatibleRoomVersion(format!(
            "the room is version {}, which {origin} does not support",
            version.as_str()
        )));
    }
    server.check_may_join(&request.room_id, user_id, &state).await?;
    let template = server.membership_template(&request.room_id, user_id, "join").await?;
    let mut response = prepare_join_event::v1::Response::new(to_raw(&template)?);
    response.room_version = Some(room_version_id(version)?);
    Ok(response)
}

/// `PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2send_joinroomideventid)):
/// accepts the signed join of a user of `origin`, sends it to the room's other servers, and
/// answers with the room's state before the join and its auth chain.
pub(crate) async fn create_join_event(
    server: Server,
    origin: OwnedServerName,
    request: create_join_event::v2::Request,
) -> Result<create_join_event::v2::Response> {
    let pdu = server
        .accept_own_membership(&origin, &request.room_id, &request.event_id, &request.pdu, "join")
        .await?;
    let stored = server
        .store()
        .event(pdu.event_id().as_str())
        .await?
        .ok_or_else(|| ServerError::Internal("the join was not stored".into()))?;
    let state = server.state_map(stored.state_before).await?;
    let (state_events, auth_chain) = server.state_with_auth_chain(&state).await?;
    let mut room_state = create_join_event::v2::RoomState::new();
    room_state.state = state_events;
    room_state.auth_chain = auth_chain;
    room_state.servers_in_room = Some(
        server
            .joined_members(&request.room_id)
            .await?
            .iter()
            .map(|user| user.server_name().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    );
    Ok(create_join_event::v2::Response::new(room_state))
}

/// `GET /_matrix/federation/v1/make_leave/{roomId}/{userId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1make_leaveroomiduserid)):
/// a leave event template for a user of `origin` who is invited to or joined the room (how an
/// invite is declined by a server that is not in the room).
pub(crate) async fn create_leave_event_template(
    server: Server,
    origin: OwnedServerName,
    request: prepare_leave_event::v1::Request,
) -> Result<prepare_leave_event::v1::Response> {
    let user_id = &request.user_id;
    if user_id.server_name() != origin {
        return Err(ServerError::Forbidden(format!("{origin} cannot act for {user_id}")));
    }
    let version = server.room_version(&request.room_id).await?;
    let template = server.membership_template(&request.room_id, user_id, "leave").await?;
    Ok(prepare_leave_event::v1::Response::new(Some(room_version_id(version)?), to_raw(&template)?))
}

/// `PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2send_leaveroomideventid)):
/// accepts the signed leave of a user of `origin` and sends it to the room's other servers.
pub(crate) async fn create_leave_event(
    server: Server,
    origin: OwnedServerName,
    request: create_leave_event::v2::Request,
) -> Result<create_leave_event::v2::Response> {
    server
        .accept_own_membership(&origin, &request.room_id, &request.event_id, &request.pdu, "leave")
        .await?;
    Ok(create_leave_event::v2::Response::new())
}

/// `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv2inviteroomideventid)):
/// a user of `origin` invites one of ours; we co-sign the invite and remember it (with the
/// room's stripped state) so the invitee's client shows it.
pub(crate) async fn create_invite(
    server: Server,
    origin: OwnedServerName,
    request: create_invite::v2::Request,
) -> Result<create_invite::v2::Response> {
    let version = request.room_version.as_str().parse::<RoomVersion>().map_err(|_| {
        ServerError::IncompatibleRoomVersion(format!(
            "room version {} is not supported here",
            request.room_version
        ))
    })?;
    let pdu = Pdu::parse(version, request.event.get().as_bytes())?;
    if pdu.event_id() != request.event_id || pdu.room_id() != request.room_id {
        return Err(ServerError::BadJson("the event does not match the request's path".into()));
    }
    let invitee = pdu
        .state_key()
        .and_then(|key| UserId::parse(key).ok())
        .filter(|_| *pdu.kind() == TimelineEventType::RoomMember && membership_of(&pdu) == "invite")
        .ok_or_else(|| ServerError::BadJson("an invite must be an m.room.member invite".into()))?;
    if pdu.sender().server_name() != origin {
        return Err(ServerError::Forbidden(format!("{origin} cannot invite as {}", pdu.sender())));
    }
    if invitee.server_name() != server.server_name() {
        return Err(ServerError::Forbidden(format!("{invitee} is not a user of this server")));
    }
    if server.store().user(&invitee).await?.is_none() {
        return Err(ServerError::NotFound(format!("no such user {invitee}")));
    }
    let pdu = checked_signatures(pdu).map_err(ServerError::Forbidden)?;

    let mut object = pdu.json().clone();
    signing::hash_and_sign_event(
        server.server_name().as_str(),
        server.identity().key(),
        &mut object,
        version,
    )?;
    let signed = Pdu::from_canonical(version, object)?;
    let signed_raw = to_raw(&serde_json::to_value(signed.json()).map_err(internal)?)?;

    if !server.knows_room(&request.room_id).await? {
        // The invitee's client sees the invite with the stripped state until it joins (the
        // event itself reaches us again over /send if we are in the room already).
        let stripped: Vec<Value> = request
            .invite_room_state
            .iter()
            .filter_map(|state| match state {
                RawStrippedState::Pdu(raw) => serde_json::from_str::<Value>(raw.get()).ok(),
                #[allow(deprecated)]
                RawStrippedState::Stripped(raw) => {
                    serde_json::from_str::<Value>(raw.json().get()).ok()
                }
                _ => None,
            })
            .map(|event| strip(&event))
            .collect();
        server.store_remote_invite(&signed, &invitee, stripped).await?;
    }
    Ok(create_invite::v2::Response::new(signed_raw))
}

impl Server {
    /// An unsigned `m.room.member` event template (`membership` for `user_id`, a user of
    /// another server) on top of the room's current state, for that server to fill and sign.
    async fn membership_template(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        membership: &str,
    ) -> Result<Value> {
        let (record, state) = self.current_state(room_id).await?;
        let version = record.version.parse::<RoomVersion>()?;
        let content = json!({ "membership": membership });
        let mut builder = PduBuilder::new(
            version,
            Some(room_id.to_owned()),
            user_id.to_owned(),
            TimelineEventType::RoomMember,
            crate::client::room::object(content.clone())?,
            MilliSecondsSinceUnixEpoch(UInt::new_saturating(now_ms())),
        );
        builder.state_key = Some(user_id.to_string());
        let auth_types = builder.auth_types()?;
        let auth_events: Vec<&OwnedEventId> =
            auth_types.iter().filter_map(|key| state.get(key)).collect();
        // Capped at the largest depth JSON allows, which a remote server's event may have reached.
        let depth = record.max_depth.saturating_add(1).min(u64::from(UInt::MAX));
        let prev_events: Vec<&OwnedEventId> =
            record.extremities.iter().take(hearth_core::builder::MAX_PREV_EVENTS).collect();
        Ok(json!({
            "room_id": room_id,
            "sender": user_id,
            "state_key": user_id,
            "type": "m.room.member",
            "content": content,
            "prev_events": prev_events,
            "auth_events": auth_events,
            "depth": depth,
            "origin_server_ts": now_ms(),
        }))
    }

    /// Takes a user's own signed membership event (`membership`: `join` or `leave`) sent by
    /// their server `origin` through `send_join`/`send_leave`: it must be the event the path
    /// names, that user's own, for a user of `origin`; it is then handled like any incoming
    /// event and, once stored, sent on to the room's other servers.
    async fn accept_own_membership(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &hearth_core::ruma::EventId,
        raw: &RawValue,
        membership: &str,
    ) -> Result<Pdu> {
        let version = self.room_version(room_id).await?;
        let pdu = Pdu::parse(version, raw.get().as_bytes())?;
        if pdu.event_id() != event_id || pdu.room_id() != room_id {
            return Err(ServerError::BadJson("the event does not match the request's path".into()));
        }
        if *pdu.kind() != TimelineEventType::RoomMember
            || pdu.state_key() != Some(pdu.sender().as_str())
            || membership_of(&pdu) != membership
        {
            return Err(ServerError::BadJson(format!(
                "expected the user's own {membership} event"
            )));
        }
        if pdu.sender().server_name() != origin {
            return Err(ServerError::Forbidden(format!(
                "{origin} cannot act for {}",
                pdu.sender()
            )));
        }
        match self.receive_pdu(origin, pdu.clone(), &mut Budget::new(), true).await? {
            Outcome::Stored | Outcome::Known => Ok(pdu),
            Outcome::SoftFailed => Err(ServerError::Forbidden(format!(
                "the {membership} is not allowed by the room's state"
            ))),
            Outcome::Rejected(reason) => Err(ServerError::Forbidden(reason)),
        }
    }

    /// Refuses a join the room's rules forbid: banned, or not invited to a room that is not
    /// public. (The auth rules check the event itself again on `send_join`.)
    async fn check_may_join(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        state: &StateMap,
    ) -> Result<()> {
        let membership = match state.get(&(StateEventType::RoomMember, user_id.to_string())) {
            Some(id) => self.parsed_pdu(id).await?.map(|pdu| membership_of(&pdu)),
            None => None,
        };
        if membership.as_deref() == Some("ban") {
            return Err(ServerError::Forbidden(format!("{user_id} is banned from {room_id}")));
        }
        let join_rule = match state.get(&(StateEventType::RoomJoinRules, String::new())) {
            Some(id) => self
                .parsed_pdu(id)
                .await?
                .and_then(|pdu| serde_json::from_str::<Value>(pdu.content().get()).ok())
                .and_then(|content| content["join_rule"].as_str().map(str::to_owned)),
            None => None,
        };
        let allowed = join_rule.as_deref() == Some("public")
            || matches!(membership.as_deref(), Some("invite" | "join"));
        if !allowed {
            return Err(ServerError::Forbidden(format!("{user_id} is not invited to {room_id}")));
        }
        Ok(())
    }

    /// The events of `state` and their full auth chain, as federation JSON.
    pub(crate) async fn state_with_auth_chain(
        &self,
        state: &StateMap,
    ) -> Result<(Vec<Box<RawValue>>, Vec<Box<RawValue>>)> {
        let mut state_events = Vec::with_capacity(state.len());
        let mut chain: BTreeMap<OwnedEventId, Pdu> = BTreeMap::new();
        let mut frontier: Vec<OwnedEventId> = Vec::new();
        for event_id in state.values() {
            let Some(pdu) = self.parsed_pdu(event_id).await? else { continue };
            state_events.push(federation_json(&pdu)?);
            frontier.extend(pdu.auth_events().iter().cloned());
        }
        while let Some(event_id) = frontier.pop() {
            if chain.contains_key(&event_id) {
                continue;
            }
            let Some(pdu) = self.parsed_pdu(&event_id).await? else { continue };
            frontier
                .extend(pdu.auth_events().iter().filter(|id| !chain.contains_key(*id)).cloned());
            chain.insert(event_id, pdu);
        }
        let auth_chain = chain.values().map(federation_json).collect::<Result<Vec<_>>>()?;
        Ok((state_events, auth_chain))
    }

    /// Joins `user_id` (a local user) to a room this server is not in, through the first of
    /// `servers` that answers: `make_join`, sign, `send_join`, then the room's state is checked
    /// and stored with our join.
    pub(crate) async fn join_remote_room(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        servers: &[OwnedServerName],
    ) -> Result<()> {
        let mut last_error =
            ServerError::NotFound(format!("no server to join {room_id} through is known"));
        for via in servers.iter().filter(|via| *via != self.server_name()) {
            match self.join_through(user_id, room_id, via).await {
                Ok(()) => return Ok(()),
                // A refusal is the room's answer: asking elsewhere would not change it.
                Err(error @ ServerError::Forbidden(_)) => return Err(error),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    async fn join_through(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        via: &ServerName,
    ) -> Result<()> {
        let mut request =
            prepare_join_event::v1::Request::new(room_id.to_owned(), user_id.to_owned());
        request.ver =
            SUPPORTED.iter().map(|version| room_version_id(*version)).collect::<Result<_>>()?;
        let template = self.federation_request(via, request).await?;
        let version = offered_version(via, template.room_version.as_ref())?;

        let join = self.sign_join_template(version, user_id, room_id, &template.event).await?;
        let request = create_join_event::v2::Request::new(
            room_id.to_owned(),
            join.event_id().to_owned(),
            federation_json(&join)?,
        );
        let response = self.federation_request(via, request).await?;
        let room_state = response.room_state;
        let mut everything = parse_all(version, room_id, &room_state.auth_chain);
        let state_events = parse_all(version, room_id, &room_state.state);
        everything.extend(state_events.iter().cloned());
        let (mut accepted, _refused) = self.check_batch(everything).await?;
        // Events we hold already (the invite that brought us here) were checked when they came.
        for event in &state_events {
            if !accepted.contains_key(event.event_id())
                && self.rejection(event.event_id()).await?.is_none()
                && self.store().event(event.event_id().as_str()).await?.is_some()
            {
                accepted.insert(event.event_id().to_owned(), event.clone());
            }
        }
        let mut state = StateMap::new();
        for event in &state_events {
            if let (Some(key), true) =
                (event.state_key_pair(), accepted.contains_key(event.event_id()))
            {
                state.insert(key, event.event_id().to_owned());
            }
        }
        if !state.contains_key(&(StateEventType::RoomCreate, String::new())) {
            return Err(ServerError::Unreachable(format!(
                "{via} sent a room state without its create event"
            )));
        }
        // Our join must be allowed by the state the resident server gave us.
        auth::check_against_state(&join, |kind, state_key| {
            state
                .get(&(kind.clone(), state_key.to_owned()))
                .and_then(|id| accepted.get(id))
                .cloned()
        })
        .map_err(|error| {
            ServerError::Forbidden(format!("{via}'s room state refuses the join: {error}"))
        })?;
        self.store_joined_room(version, &join, &state, &accepted).await
    }

    /// Fills in and signs the join template a resident server offered.
    async fn sign_join_template(
        &self,
        version: RoomVersion,
        user_id: &UserId,
        room_id: &RoomId,
        template: &RawValue,
    ) -> Result<Pdu> {
        let content = match self.store().user(user_id).await? {
            Some(user) => join_content(&user),
            None => json!({ "membership": "join" }),
        };
        self.sign_template(version, user_id, room_id, template, content)
    }

    /// Fills in a membership event template a resident server offered (our content, the time)
    /// and signs it, after checking it is our user's own membership event.
    fn sign_template(
        &self,
        version: RoomVersion,
        user_id: &UserId,
        room_id: &RoomId,
        template: &RawValue,
        content: Value,
    ) -> Result<Pdu> {
        let mut object = hearth_core::json::parse_object(template.get().as_bytes())?;
        let is = |field: &str, value: &str| {
            object.get(field).and_then(CanonicalJsonValue::as_str) == Some(value)
        };
        if !is("type", "m.room.member")
            || !is("sender", user_id.as_str())
            || !is("state_key", user_id.as_str())
            || !is("room_id", room_id.as_str())
        {
            return Err(ServerError::Unreachable(
                "the template is not our user's membership event".into(),
            ));
        }
        object.insert("content".into(), to_canonical(content)?);
        object.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(hearth_core::ruma::Int::new_saturating(
                i64::try_from(now_ms()).unwrap_or(i64::MAX),
            )),
        );
        object.remove("signatures");
        object.remove("hashes");
        object.remove("event_id");
        object.remove("unsigned");
        signing::hash_and_sign_event(
            self.server_name().as_str(),
            self.identity().key(),
            &mut object,
            version,
        )?;
        Ok(Pdu::from_canonical(version, object)?)
    }

    /// Declines an invite to a room this server is not in: a leave event through the inviting
    /// server (`make_leave`, sign, `send_leave`), then the user's membership here is `leave`.
    /// If that server cannot be reached the invite is still declined here (the user asked), and
    /// the inviter's side keeps the invite until it expires from their view.
    pub(crate) async fn decline_remote_invite(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        reason: Option<&str>,
    ) -> Result<()> {
        let Some(record) = self.store().membership(user_id, room_id).await? else {
            return Err(ServerError::NotFound(format!("not invited to {room_id}")));
        };
        let inviter_server = self
            .store()
            .event(record.event_id.as_str())
            .await?
            .and_then(|stored| serde_json::from_str::<Value>(stored.pdu.get()).ok())
            .and_then(|invite| invite["sender"].as_str().and_then(|s| UserId::parse(s).ok()))
            .map(|inviter| inviter.server_name().to_owned());
        let mut leave_event = None;
        if let Some(via) = inviter_server.filter(|via| via != self.server_name()) {
            let request =
                prepare_leave_event::v1::Request::new(room_id.to_owned(), user_id.to_owned());
            if let Ok(template) = self.federation_request(&via, request).await {
                let version = offered_version(&via, template.room_version.as_ref())?;
                let mut content = json!({ "membership": "leave" });
                if let Some(reason) = reason {
                    content["reason"] = json!(reason);
                }
                let leave =
                    self.sign_template(version, user_id, room_id, &template.event, content)?;
                let request = create_leave_event::v2::Request::new(
                    room_id.to_owned(),
                    leave.event_id().to_owned(),
                    federation_json(&leave)?,
                );
                if self.federation_request(&via, request).await.is_ok() {
                    leave_event = Some(leave);
                }
            }
        }
        self.store_declined_invite(user_id, room_id, leave_event.as_ref()).await
    }

    /// Invites a user of another server: our invite event, co-signed by their server, then
    /// stored and sent to the room like any of ours.
    pub(crate) async fn invite_remote_user(
        &self,
        sender: &UserId,
        room_id: &RoomId,
        invitee: &UserId,
        reason: Option<&str>,
        is_direct: bool,
    ) -> Result<()> {
        let mut content = json!({ "membership": "invite" });
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        if is_direct {
            content["is_direct"] = json!(true);
        }
        let event = NewEvent::state(
            TimelineEventType::RoomMember,
            invitee.as_str(),
            crate::client::room::object(content)?,
        );
        let invite = self.build_event(room_id, sender, event).await?;
        // Refuse here what the room would refuse, before bothering the other server.
        let (_, state) = self.current_state(room_id).await?;
        let mut invite_state = Vec::new();
        for kind in crate::client::sync::INVITE_STATE.iter().cloned() {
            if let Some(id) = state.get(&(kind, String::new()))
                && let Some(pdu) = self.parsed_pdu(id).await?
            {
                invite_state.push(RawStrippedState::Pdu(federation_json(&pdu)?));
            }
        }
        if let Some(id) = state.get(&(StateEventType::RoomMember, sender.to_string()))
            && let Some(pdu) = self.parsed_pdu(id).await?
        {
            invite_state.push(RawStrippedState::Pdu(federation_json(&pdu)?));
        }
        let request = create_invite::v2::Request::new(
            room_id.to_owned(),
            invite.event_id().to_owned(),
            room_version_id(invite.room_version())?,
            federation_json(&invite)?,
            invite_state,
        );
        let destination = invitee.server_name();
        let response = self.federation_request(destination, request).await?;
        let signed = Pdu::parse(invite.room_version(), response.event.get().as_bytes())?;
        if signed.event_id() != invite.event_id() {
            return Err(ServerError::Unreachable(format!(
                "{destination} returned another event than the invite"
            )));
        }
        let signed_by_invitee = signed
            .json()
            .get("signatures")
            .and_then(CanonicalJsonValue::as_object)
            .is_some_and(|signatures| signatures.contains_key(destination.as_str()));
        if !signed_by_invitee {
            return Err(ServerError::Unreachable(format!("{destination} did not sign the invite")));
        }
        let signed = checked_signatures(signed).map_err(ServerError::Unreachable)?;
        match self.store_remote_event(&signed, None, Some(self.server_name())).await? {
            Outcome::Stored | Outcome::Known => Ok(()),
            Outcome::SoftFailed => {
                Err(ServerError::Forbidden("the room's state changed; invite again".into()))
            }
            Outcome::Rejected(reason) => Err(ServerError::Forbidden(reason)),
        }
    }
}

/// The servers to try when joining `room_id` for `user_id`: those the client named, then the
/// server of whoever invited the user.
pub(crate) async fn join_candidates(
    server: &Server,
    user_id: &UserId,
    room_id: &RoomId,
    via: &[OwnedServerName],
) -> Result<Vec<OwnedServerName>> {
    let mut candidates: Vec<OwnedServerName> = via.to_vec();
    if let Some(record) = server.store().membership(user_id, room_id).await?
        && record.membership == "invite"
        && let Some(stored) = server.store().event(record.event_id.as_str()).await?
        && let Ok(event) = serde_json::from_str::<Value>(stored.pdu.get())
        && let Some(inviter) =
            event["sender"].as_str().and_then(|sender| UserId::parse(sender).ok())
    {
        candidates.push(inviter.server_name().to_owned());
    }
    candidates.dedup();
    Ok(candidates)
}

/// The room version of a template another server offered (version 1 when it says none, as
/// the spec's default); `M_INCOMPATIBLE_ROOM_VERSION` for one this server cannot take part in.
fn offered_version(via: &ServerName, offered: Option<&RoomVersionId>) -> Result<RoomVersion> {
    offered.map_or("1", RoomVersionId::as_str).parse::<RoomVersion>().map_err(|_| {
        ServerError::IncompatibleRoomVersion(format!(
            "{via} offers a room version this server does not support"
        ))
    })
}

/// A state event as stripped state: what an invitee sees of the room.
fn strip(event: &Value) -> Value {
    json!({
        "type": event["type"],
        "state_key": event["state_key"],
        "sender": event["sender"],
        "content": event["content"],
    })
}

fn federation_json(pdu: &Pdu) -> Result<Box<RawValue>> {
    RawValue::from_string(pdu.to_canonical_string()?).map_err(internal)
}

fn to_raw(value: &Value) -> Result<Box<RawValue>> {
    serde_json::value::to_raw_value(value).map_err(internal)
}

fn to_canonical(value: Value) -> Result<CanonicalJsonValue> {
    CanonicalJsonValue::try_from(value).map_err(|error| ServerError::BadJson(error.to_string()))
}

fn room_version_id(version: RoomVersion) -> Result<RoomVersionId> {
    RoomVersionId::try_from(version.as_str()).map_err(internal)
}

fn internal(error: impl std::fmt::Display) -> ServerError {
    ServerError::Internal(error.to_string())
}
