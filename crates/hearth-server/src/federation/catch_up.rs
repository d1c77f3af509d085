//! Catching up on a room after being away, with the spec's own requests: ask another server in
//! the room for its latest event
//! ([`timestamp_to_event`](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1timestamp_to_eventroomid)
//! at "now", backwards) and, when it is new to us, handle it like any incoming event, which
//! fills the gap before it with `get_missing_events` from that server.
//!
//! The servers' outbound queues already bring a returning server what each of them sent while
//! it was away; this covers what was sent by a server that is itself away by then (it reached
//! the others, but its queue for us waits until it is back) and what a queue lost. The requests
//! also tell each server that we are back, so that it retries its queue for us at once
//! ([`Server::heard_from`]) rather than at the end of a backoff grown to minutes.

use std::collections::{BTreeMap, BTreeSet};

use hearth_core::{
    Pdu,
    ruma::{
        MilliSecondsSinceUnixEpoch, OwnedRoomId, OwnedServerName, OwnedUserId, UInt,
        api::federation::event::get_event_by_timestamp,
        api::{Direction as ApiDirection, federation::event::get_event},
    },
};
use hearth_store::Direction;

use super::receive::Budget;
use crate::{Server, ServerError, error::Result, platform::now_ms};

/// Timeline entries read per page while looking for the event nearest a timestamp.
const PAGE: usize = 100;
/// The most timeline entries one `timestamp_to_event` looks at before answering `M_NOT_FOUND`.
const MAX_SCAN: usize = 5_000;
/// Local users whose rooms [`Server::network_online`] catches up on: a Hearth server has a
/// handful; beyond this many, the others' rooms catch up through the queues and later events.
const MAX_LOCAL_USERS: usize = 10_000;

/// `GET /_matrix/federation/v1/timestamp_to_event/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1timestamp_to_eventroomid)):
/// the event nearest `ts` in direction `dir` that the origin may see: backwards, the latest at
/// or before `ts`; forwards, the earliest at or after it. The timeline is walked from its end
/// (where catching up looks), at most [`MAX_SCAN`] entries.
pub(crate) async fn get_event_by_timestamp(
    server: Server,
    origin: OwnedServerName,
    request: get_event_by_timestamp::v1::Request,
) -> Result<get_event_by_timestamp::v1::Response> {
    let access = server.room_access(&origin, &request.room_id).await?;
    let target = request.ts;
    let mut found = None;
    let mut up_to = u64::MAX;
    let mut scanned = 0;
    'walk: while scanned < MAX_SCAN {
        let page =
            server.store().timeline(&request.room_id, 0, up_to, Direction::Backward, PAGE).await?;
        let Some((oldest, _)) = page.last() else { break };
        up_to = oldest.saturating_sub(1);
        scanned += page.len();
        for (_, event_id) in page {
            let Some((pdu, stored)) = server.pdu(&event_id).await? else { continue };
            let ts = pdu.origin_server_ts();
            let backward = request.dir == ApiDirection::Backward;
            let on_the_right_side = if backward { ts <= target } else { ts >= target };
            if !on_the_right_side {
                // Backwards, later entries were after it; forwards, everything from here on
                // is before it, and the earliest visible one after it is already kept.
                if backward {
                    continue;
                }
                break 'walk;
            }
            if access.may_see(&server, &stored).await? {
                found = Some((event_id, ts));
                if backward {
                    break 'walk;
                }
            }
        }
        if up_to == 0 {
            break;
        }
    }
    let (event_id, ts) = found.ok_or_else(|| {
        ServerError::NotFound(format!("no event near {} in {}", target.get(), request.room_id))
    })?;
    Ok(get_event_by_timestamp::v1::Response::new(event_id, ts))
}

impl Server {
    /// The host is reachable (again): at start, or when its network came back (a relay
    /// reservation made again). Everything queued is tried now rather than at the end of its
    /// backoff, and every room a local user is joined to catches up from each other server in
    /// it, one task per server (a server that is away costs only its own task's time).
    pub async fn network_online(&self) -> Result<()> {
        self.resume_senders().await?;
        for (from, rooms) in self.rooms_by_server().await? {
            let server = self.clone();
            self.runtime().spawn(Box::pin(async move {
                for room_id in rooms {
                    if let Err(error) = server.catch_up_room(&room_id, &from).await {
                        // Unreachable: the rest of its rooms would be too.
                        if matches!(error, ServerError::Unreachable(_)) {
                            break;
                        }
                    }
                }
            }));
        }
        Ok(())
    }

    /// For every other server, the rooms it shares with local users (joined on both sides).
    async fn rooms_by_server(&self) -> Result<BTreeMap<OwnedServerName, Vec<OwnedRoomId>>> {
        let mut rooms = BTreeSet::new();
        for (user_id, _) in self.store().users(MAX_LOCAL_USERS).await? {
            let Ok(user_id) = OwnedUserId::try_from(user_id) else { continue };
            for (room_id, membership) in self.store().memberships(&user_id).await? {
                if membership.membership == "join" {
                    rooms.insert(room_id);
                }
            }
        }
        let mut by_server: BTreeMap<OwnedServerName, Vec<OwnedRoomId>> = BTreeMap::new();
        for room_id in rooms {
            for server in self.other_servers_in_room(&room_id).await? {
                by_server.entry(server).or_default().push(room_id.clone());
            }
        }
        Ok(by_server)
    }

    /// Asks `from` for its latest event in `room_id` and, if it is new here, handles it as an
    /// incoming event from `from` (its gap filled from `from`). Failures are the caller's to
    /// ignore: catching up is best effort, the queues and later events do the rest.
    pub(crate) async fn catch_up_room(
        &self,
        room_id: &OwnedRoomId,
        from: &OwnedServerName,
    ) -> Result<()> {
        let now = MilliSecondsSinceUnixEpoch(UInt::new_saturating(now_ms()));
        let request =
            get_event_by_timestamp::v1::Request::new(room_id.clone(), now, ApiDirection::Backward);
        let latest = self.federation_request(from, request).await?.event_id;
        if self.is_known_event(&latest).await? {
            return Ok(());
        }
        let version = self.room_version(room_id).await?;
        let response = self.federation_request(from, get_event::v1::Request::new(latest)).await?;
        let pdu = Pdu::parse(version, response.pdu.get().as_bytes())?;
        if pdu.room_id() != room_id {
            return Err(ServerError::Forbidden(format!(
                "{from} answered with another room's event"
            )));
        }
        self.receive_pdu(from, pdu, &mut Budget::new(), false).await?;
        Ok(())
    }
}
