//! The notifications list
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#listing-notifications)): events
//! in the user's joined rooms whose push actions (the same evaluation as the unread counts in
//! `push.rs`) notify them.

use hearth_core::ruma::{
    MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, UInt,
    api::client::push::get_notifications::{self, v3::Notification},
    events::TimelineEventType,
    push::Action,
    serde::Raw,
};
use hearth_store::Direction;
use serde_json::Value;

use crate::{
    Authed, Server,
    client::message::{parse_token, token},
    error::Result,
    events::to_raw,
};

/// How many events back from `from` each room's walk looks at most: older notifications are
/// reached by paginating.
const MAX_SCANNED_PER_ROOM: usize = 1_000;

/// Notifications per page when the client does not say.
const DEFAULT_LIMIT: usize = 20;

/// The most notifications per page, whatever the client asks.
const MAX_LIMIT: usize = 100;

/// `GET /_matrix/client/v3/notifications`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3notifications)):
/// newest first across the user's joined rooms; `only=highlight` keeps highlights; `from` is
/// the `next_token` of the previous page. Events from before the user's join, and their own
/// events, never count. At most [`MAX_SCANNED_PER_ROOM`] events per room are evaluated per
/// request.
pub(crate) async fn get_notifications(
    server: Server,
    authed: Authed,
    request: get_notifications::v3::Request,
) -> Result<get_notifications::v3::Response> {
    let user_id = &authed.user_id;
    let limit = request
        .limit
        .map_or(DEFAULT_LIMIT, |limit| usize::try_from(u64::from(limit)).unwrap_or(MAX_LIMIT))
        .clamp(1, MAX_LIMIT);
    let up_to = match request.from.as_deref() {
        Some(from) => parse_token(from)?.min(server.store().current_stream()),
        None => server.store().current_stream(),
    };
    let only_highlight = request.only.as_deref() == Some("highlight");
    let rules = server.push_rules(user_id).await?;

    // (stream, room, event, actions, read) of every notification found, all rooms together.
    let mut found: Vec<(u64, OwnedRoomId, OwnedEventId, Vec<Action>, bool)> = Vec::new();
    for (room_id, membership) in server.store().memberships(user_id).await? {
        if membership.membership != "join" {
            continue;
        }
        let events = server
            .store()
            .timeline(&room_id, 0, up_to, Direction::Backward, MAX_SCANNED_PER_ROOM)
            .await?;
        if events.is_empty() {
            continue;
        }
        let context = server.push_context(user_id, &room_id).await?;
        let read_up_to = server.read_up_to(user_id, &room_id).await?;
        let mut room_found = 0;
        for (stream, event_id) in events {
            let Some((pdu, stored)) = server.pdu(&event_id).await? else { continue };
            if pdu.sender() == user_id {
                // The user's own join ends the walk: nothing before it notified them.
                if pdu.state_key() == Some(user_id.as_str())
                    && *pdu.kind() == TimelineEventType::RoomMember
                    && !server.joined_before(user_id, stored.state_before).await?
                {
                    break;
                }
                continue;
            }
            let actions = rules.get_actions(&Raw::<Value>::from_json(stored.pdu), &context).await;
            let notify = actions.iter().any(Action::should_notify);
            if !notify || (only_highlight && !actions.iter().any(Action::is_highlight)) {
                continue;
            }
            found.push((stream, room_id.clone(), event_id, actions.to_vec(), stream <= read_up_to));
            room_found += 1;
            // No room contributes more than one page.
            if room_found > limit {
                break;
            }
        }
    }
    found.sort_by_key(|found| std::cmp::Reverse(found.0));
    let next_token = match found.get(limit) {
        // The next page starts below the last one shown.
        Some(_) => found.get(limit - 1).map(|last| token(last.0 - 1)),
        None => None,
    };
    found.truncate(limit);

    let mut notifications = Vec::with_capacity(found.len());
    for (_, room_id, event_id, actions, read) in found {
        let Some(stored) = server.store().event(event_id.as_str()).await? else { continue };
        let mut event = server.client_event(&event_id, &stored, Some(&authed)).await?;
        let ts = MilliSecondsSinceUnixEpoch(UInt::new_saturating(
            event.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0),
        ));
        if let Some(object) = event.as_object_mut() {
            // The sync format: the room is named beside the event.
            object.remove("room_id");
        }
        notifications.push(Notification::new(actions, to_raw(&event)?, read, room_id, ts));
    }
    let mut response = get_notifications::v3::Response::new(notifications);
    response.next_token = next_token;
    Ok(response)
}
