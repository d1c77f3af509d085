//! Delivery status for clients: Hearth's own endpoint (the Matrix spec has no notion of servers
//! that come and go). A client shows, per room, which other servers are in it, whether each is
//! reachable now, and which events still wait in the outbound queue for which server.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use hearth_core::ruma::{OwnedRoomId, OwnedServerName, RoomId, UserId};
use hearth_store::OutboundItem;
use http::Method;
use serde_json::{Map, Value, json};

use super::peers::json_response;
use crate::{Server, ServerError, error::Result, router::Router};

/// At most this many of a destination's newest queue items are read per request.
const MAX_QUEUE_SCAN: usize = 1_000;
/// At most this many events are listed as undelivered (the newest).
const MAX_UNDELIVERED: usize = 500;

pub(crate) fn routes(router: &mut Router) {
    router.raw(
        Method::GET,
        "/_hearth/client/v1/rooms/{roomId}/delivery",
        Arc::new(|server, incoming| {
            Box::pin(async move {
                let authed = server.authenticate(&incoming.request).await?;
                let room_id = incoming.path_args.first().map(String::as_str).unwrap_or("");
                let room_id = OwnedRoomId::try_from(room_id).map_err(|error| {
                    ServerError::InvalidParam(format!("invalid room ID {room_id:?}: {error}"))
                })?;
                json_response(&server.room_delivery(&authed.user_id, &room_id).await?)
            })
        }),
    );
}

impl Server {
    /// `GET /_hearth/client/v1/rooms/{roomId}/delivery`: for a member joined to the room (403
    /// `M_FORBIDDEN` otherwise, unknown rooms included),
    ///
    /// ```json
    /// {
    ///   "servers": [
    ///     {"server_name": "…", "reachable": false, "queued": 2, "last_error": "…"}
    ///   ],
    ///   "undelivered": {"$event": ["server", …]},
    ///   "truncated": false
    /// }
    /// ```
    ///
    /// - `servers`: every other server with a member joined to the room, by name. `reachable`
    ///   is what this server knows now: the server is registered at the relays (the host's
    ///   `Federation::peers`) and the last attempt to send to it did not fail (a sender keeps
    ///   retrying while it fails, so a failure is never stale). `queued` is how many of this
    ///   room's events wait to be sent to it; `last_error` (only while sending fails) is why the
    ///   last attempt failed.
    /// - `undelivered`: this room's events (ours, and those this server passes on, such as a
    ///   join it resolved) that wait to be sent, each with the servers it has not reached; an
    ///   event absent from it has reached every server in the room.
    /// - `truncated`: the answer is bounded, and was cut: only the newest 1,000 items of each
    ///   server's queue are read (so `queued` is then a lower bound), and only the newest 500
    ///   undelivered events are listed. While it is `true`, an event missing from
    ///   `undelivered` may still wait.
    ///
    /// A server that left the room is not listed, though events queued before it left still go.
    async fn room_delivery(&self, user_id: &UserId, room_id: &RoomId) -> Result<Value> {
        match self.store().membership(user_id, room_id).await? {
            Some(record) if record.membership == "join" => {}
            _ => return Err(ServerError::Forbidden(format!("you are not in room {room_id}"))),
        }
        let servers = self.other_servers_in_room(room_id).await?;
        let with_queue: BTreeSet<String> =
            self.store().outbound_destinations().await?.into_iter().collect();
        let online: BTreeSet<OwnedServerName> = if servers.is_empty() {
            BTreeSet::new()
        } else {
            self.federation().peers().await.into_iter().collect()
        };

        // The events waiting for each server, newest first.
        let mut truncated = false;
        let mut waiting: BTreeMap<&OwnedServerName, Vec<String>> = BTreeMap::new();
        for server in servers.iter().filter(|server| with_queue.contains(server.as_str())) {
            let items = self.store().outbound_newest(server.as_str(), MAX_QUEUE_SCAN).await?;
            truncated |= items.len() == MAX_QUEUE_SCAN;
            let events = items.into_iter().filter_map(|(_, item)| match item {
                OutboundItem::Pdu { event_id } => Some(event_id.to_string()),
                OutboundItem::Edu { .. } => None,
            });
            waiting.insert(server, events.collect());
        }
        // Which of them are this room's, with their timeline positions: one store read.
        let unique: Vec<&str> = waiting
            .values()
            .flatten()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let stored = self.store().events(&unique).await?;
        let in_room: BTreeMap<&str, u64> = unique
            .iter()
            .zip(&stored)
            .filter_map(|(event_id, stored)| {
                let stored = stored.as_ref()?;
                (stored.room_id == room_id).then_some((*event_id, stored.stream))
            })
            .collect();

        let mut undelivered: BTreeMap<&str, (u64, Vec<&str>)> = BTreeMap::new();
        let mut listed = Vec::with_capacity(servers.len());
        for server in &servers {
            let mut queued = 0u64;
            for event_id in waiting.get(server).into_iter().flatten() {
                if let Some((event_id, stream)) = in_room.get_key_value(event_id.as_str()) {
                    queued += 1;
                    undelivered
                        .entry(event_id)
                        .or_insert((*stream, Vec::new()))
                        .1
                        .push(server.as_str());
                }
            }
            let status = self.destination_status(server);
            let mut entry = json!({
                "server_name": server,
                "reachable": online.contains(server) && status.failures == 0,
                "queued": queued,
            });
            if status.failures > 0
                && let Some(error) = status.last_error
            {
                entry["last_error"] = json!(error);
            }
            listed.push(entry);
        }
        if undelivered.len() > MAX_UNDELIVERED {
            truncated = true;
            let mut streams: Vec<u64> = undelivered.values().map(|(stream, _)| *stream).collect();
            streams.sort_unstable_by(|a, b| b.cmp(a));
            let oldest_kept = streams.get(MAX_UNDELIVERED - 1).copied().unwrap_or(0);
            undelivered.retain(|_, (stream, _)| *stream >= oldest_kept);
        }
        let undelivered: Map<String, Value> = undelivered
            .into_iter()
            .map(|(event_id, (_, servers))| (event_id.to_owned(), json!(servers)))
            .collect();
        Ok(json!({ "servers": listed, "undelivered": undelivered, "truncated": truncated }))
    }
}
