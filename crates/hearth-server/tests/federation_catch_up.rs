//! A server that comes back online gets what it missed at once: it announces itself
//! (`Server::network_online`) to the servers it shares rooms with, and a server retries its queue
//! for any server that reaches it (`Server::handle_from_peer`), instead of at the end of a backoff
//! that grows to minutes. Servers reach each other in memory, through `handle_from_peer` as the
//! libp2p hosts do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{User, enc, network::network, register};
use hearth_server::Server;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Polls `user`'s sync until `found` says yes, for at most `bound`.
async fn within(
    bound: Duration,
    server: &Server,
    user: &User,
    what: &str,
    found: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if found(&user.sync(server, None, "").await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} did not see {what} within {bound:?}", user.user_id);
}

fn timeline_has(sync: &Value, room_id: &str, body: &str) -> bool {
    sync["rooms"]["join"][room_id]["timeline"]["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|event| event["content"]["body"] == body))
}

#[tokio::test]
async fn a_server_back_online_is_sent_what_it_missed_at_once() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({})).await;
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(a, &invite, json!({ "user_id": bob.user_id })).await.ok();
    let wait = Duration::from_secs(5);
    within(wait, b, &bob, "the invite", |sync| !sync["rooms"]["invite"][&room_id].is_null()).await;
    bob.post(b, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await.ok();
    alice.send_text(a, &room_id, "before").await;
    within(wait, b, &bob, "the first message", |sync| timeline_has(sync, &room_id, "before")).await;

    network.set_online(b, false);
    alice.send_text(a, &room_id, "while b was away").await;
    // Four failed attempts (at once, then 0.5 s, 1 s and 2 s apart, ±20%): the next is about
    // 4 s away, at least 3.2 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.destination_status(b.server_name()).failures < 4 {
        assert!(Instant::now() < deadline, "a's sender never failed four times");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    network.set_online(b, true);
    b.network_online().await.unwrap();
    // Well inside the backoff: b's announcement woke a's queue for it.
    within(Duration::from_millis(1500), b, &bob, "the message it missed", |sync| {
        timeline_has(sync, &room_id, "while b was away")
    })
    .await;
    assert_eq!(a.destination_status(b.server_name()).failures, 0);
}

#[tokio::test]
async fn a_server_back_online_catches_up_from_a_third_when_the_sender_is_away() {
    let (network, servers) = network(3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let carol = register(c, "carol").await;
    let room_id = alice.create_room(a, json!({})).await;
    let wait = Duration::from_secs(5);
    for (server, user) in [(b, &bob), (c, &carol)] {
        let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
        alice.post(a, &invite, json!({ "user_id": user.user_id })).await.ok();
        within(wait, server, user, "the invite", |sync| {
            !sync["rooms"]["invite"][&room_id].is_null()
        })
        .await;
        user.post(server, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({}))
            .await
            .ok();
    }
    alice.send_text(a, &room_id, "before").await;
    for (server, user) in [(b, &bob), (c, &carol)] {
        within(wait, server, user, "the first message", |sync| {
            timeline_has(sync, &room_id, "before")
        })
        .await;
    }

    // C goes away; alice's message reaches B; then A goes away too, with it still queued for C.
    network.set_online(c, false);
    alice.send_text(a, &room_id, "while c was away").await;
    within(wait, b, &bob, "the message", |sync| timeline_has(sync, &room_id, "while c was away"))
        .await;
    network.set_online(a, false);

    // C comes back: B has nothing queued for it, but C asks B for the room's latest event
    // (timestamp_to_event) and fills the gap before it (get_missing_events).
    network.set_online(c, true);
    c.network_online().await.unwrap();
    within(wait, c, &carol, "the message sent while it was away", |sync| {
        timeline_has(sync, &room_id, "while c was away")
    })
    .await;
}

#[tokio::test]
async fn timestamp_to_event_finds_the_nearest_event_either_way() {
    let server = common::server().await;
    let alice = register(&server, "alice").await;
    let initial_state = json!([{
        "type": "m.room.history_visibility", "state_key": "",
        "content": { "history_visibility": "world_readable" }
    }]);
    let room_id = alice.create_room(&server, json!({ "initial_state": initial_state })).await;
    let first = alice.send_text(&server, &room_id, "first").await;
    let last = alice.send_text(&server, &room_id, "last").await;
    // Another server with no member in the room: it may read a world-readable room.
    let remote = hearth_core::ServerIdentity::generate().unwrap();
    let path = |ts: u64, dir: &str| {
        format!("/_matrix/federation/v1/timestamp_to_event/{}?ts={ts}&dir={dir}", enc(&room_id))
    };
    let now =
        u64::try_from(std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_millis() + 60_000)
            .unwrap();

    let latest = common::federation(&server, &remote, "GET", &path(now, "b"), None).await.ok();
    assert_eq!(latest["event_id"], last.as_str());
    let event = alice
        .get(&server, &format!("/_matrix/client/v3/rooms/{}/event/{first}", enc(&room_id)))
        .await
        .ok();
    let at_first = event["origin_server_ts"].as_u64().unwrap();
    let forward = common::federation(&server, &remote, "GET", &path(at_first, "f"), None).await;
    let forward = forward.ok();
    // The earliest event at or after the first message's time: the first message, or an event
    // of the room sent in the same millisecond.
    assert_eq!(forward["origin_server_ts"].as_u64(), Some(at_first), "{forward}");
    assert_eq!(common::federation(&server, &remote, "GET", &path(0, "b"), None).await.status, 404);
    assert_eq!(
        common::federation(&server, &remote, "GET", &path(now + 1, "f"), None).await.status,
        404
    );
}
