//! Which rooms and events another server may read
//! ([spec](https://spec.matrix.org/v1.16/server-server-api/#retrieving-events)): a server with a
//! user joined to the room reads all of it; any other server reads the events whose history
//! visibility lets one of its users see them.

use hearth_core::{
    StateMap,
    ruma::{OwnedServerName, RoomId, ServerName, UserId, events::StateEventType},
};
use hearth_store::StoredEvent;
use serde_json::Value;

use crate::{Server, ServerError, error::Result, rooms::membership_of};

/// What a remote server may read of one room, decided once per request: the current-state
/// check is made when the request starts, the per-event check for each event it returns.
pub(crate) struct RoomAccess {
    origin: OwnedServerName,
    /// Whether one of the origin's users is joined to the room now.
    joined: bool,
}

impl Server {
    /// What `origin` may read of `room_id`; `M_NOT_FOUND` for a room this server is not in.
    /// Every federation read of a room's events starts here, and each event it returns passes
    /// [`RoomAccess::check`].
    pub(crate) async fn room_access(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
    ) -> Result<RoomAccess> {
        let (_, state) = self.current_state(room_id).await?;
        let joined = self.server_membership_in(&state, origin, &["join"]).await?;
        Ok(RoomAccess { origin: origin.to_owned(), joined })
    }

    /// Whether one of `origin`'s users has one of `memberships` in `state`. Only the origin's
    /// own member events are read.
    async fn server_membership_in(
        &self,
        state: &StateMap,
        origin: &ServerName,
        memberships: &[&str],
    ) -> Result<bool> {
        let members = state
            .range((StateEventType::RoomMember, String::new())..)
            .take_while(|((kind, _), _)| *kind == StateEventType::RoomMember);
        for ((_, state_key), event_id) in members {
            let from_origin = UserId::parse(state_key.as_str())
                .is_ok_and(|user_id| user_id.server_name() == origin);
            if !from_origin {
                continue;
            }
            if let Some(pdu) = self.parsed_pdu(event_id).await?
                && memberships.contains(&membership_of(&pdu).as_str())
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl RoomAccess {
    /// Whether the origin may read this event of the room: always while one of its users is
    /// joined; otherwise when the history visibility in the state before the event is
    /// `world_readable`, or `shared`/`invited` with one of its users joined or invited then,
    /// or `joined` with one of its users joined then.
    pub(crate) async fn may_see(&self, server: &Server, stored: &StoredEvent) -> Result<bool> {
        if self.joined {
            return Ok(true);
        }
        let state = server.state_map(stored.state_before).await?;
        let visibility = match state.get(&(StateEventType::RoomHistoryVisibility, String::new())) {
            Some(event_id) => server
                .parsed_pdu(event_id)
                .await?
                .and_then(|pdu| serde_json::from_str::<Value>(pdu.content().get()).ok())
                .and_then(|content| {
                    content.get("history_visibility").and_then(Value::as_str).map(str::to_owned)
                }),
            None => None,
        };
        // The spec's default is `shared`.
        let allowed: &[&str] = match visibility.as_deref().unwrap_or("shared") {
            "world_readable" => return Ok(true),
            "joined" => &["join"],
            _ => &["join", "invite"],
        };
        if server.server_membership_in(&state, &self.origin, allowed).await? {
            return Ok(true);
        }
        if stored.state_after == stored.state_before {
            return Ok(false);
        }
        let after = server.state_map(stored.state_after).await?;
        server.server_membership_in(&after, &self.origin, allowed).await
    }

    /// One event: [`RoomAccess::may_see`] or 403 `M_FORBIDDEN`.
    pub(crate) async fn check(&self, server: &Server, stored: &StoredEvent) -> Result<()> {
        if self.may_see(server, stored).await? { Ok(()) } else { Err(self.forbidden()) }
    }

    fn forbidden(&self) -> ServerError {
        ServerError::Forbidden(format!("{} may not see this room or event", self.origin))
    }
}
