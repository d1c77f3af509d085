//! History from before a remote join: a server that joins a room through another pages back
//! past its own join through `/messages`, and gets the room's earlier events from the other
//! server (`GET /_matrix/federation/v1/backfill/{roomId}`), in order, each once, down to the
//! room's creation; `/context` and `/event` work on them; `joined` history stays hidden; an
//! offline server means a shorter history now and the rest later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{User, enc, network::network, register};
use hearth_server::Server;
use serde_json::{Value, json};

/// Invites `bob` (of `b`) to `room_id` and joins him through `a`.
async fn join_through(a: &Server, alice: &User, b: &Server, bob: &User, room_id: &str) {
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(room_id));
    alice.post(a, &invite, json!({ "user_id": bob.user_id })).await.ok();
    let join = format!("/_matrix/client/v3/join/{}", enc(room_id));
    for _ in 0..100 {
        if bob.post(b, &join, json!({})).await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bob could not join");
}

/// The room's `prev_batch` in `user`'s first sync.
async fn prev_batch(server: &Server, user: &User, room_id: &str) -> String {
    let sync = user.sync(server, None, "").await;
    sync["rooms"]["join"][room_id]["timeline"]["prev_batch"].as_str().unwrap().to_owned()
}

/// Every page of `/messages` from `from` in `dir`, `limit` at a time, until `end` is left out
/// (or, forward, a page is empty; 30 pages at most): the events and the `end` token of each
/// page.
async fn pages(
    server: &Server,
    user: &User,
    room_id: &str,
    from: &str,
    dir: &str,
    limit: u32,
) -> (Vec<Value>, Vec<String>) {
    let mut events = Vec::new();
    let mut ends = Vec::new();
    let mut from = from.to_owned();
    for _ in 0..30 {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir={dir}&limit={limit}&from={from}",
            enc(room_id)
        );
        let page = user.get(server, &path).await.ok();
        let chunk = page["chunk"].as_array().unwrap();
        if chunk.is_empty() && dir == "f" {
            // Forward, the end of the room is an empty page (`end` stays, for new events).
            return (events, ends);
        }
        events.extend(chunk.iter().cloned());
        match page["end"].as_str() {
            Some(end) => {
                ends.push(end.to_owned());
                from = end.to_owned();
            }
            None => return (events, ends),
        }
    }
    panic!("/messages never ended");
}

fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|event| event["type"] == "m.room.message")
        .map(|event| event["content"]["body"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| event["event_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_later_member_pages_back_through_the_whole_history() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({ "name": "history", "preset": "public_chat" })).await;
    let sent: Vec<String> = (1..=130).map(|n| format!("before {n}")).collect();
    for body in &sent {
        alice.send_text(a, &room_id, body).await;
    }
    join_through(a, &alice, b, &bob, &room_id).await;
    let after = alice.send_text(a, &room_id, "after the join").await;
    // bob's server has alice's later message (it came in a transaction).
    let event = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room_id), enc(&after));
    for _ in 0..100 {
        if bob.get(b, &event).await.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Back from the sync's prev_batch (the sync had the join and the message after it), 40 at
    // a time: everything alice's server has, newest first, each once, down to the room's
    // creation, where `end` is left out.
    let from = prev_batch(b, &bob, &room_id).await;
    let (back, ends) = pages(b, &bob, &room_id, &from, "b", 40).await;
    let mut expected: Vec<String> = sent.clone();
    expected.reverse();
    let got = bodies(&back);
    assert_eq!(got, expected, "the history before bob's join, newest first");
    let all_ids = ids(&back);
    let unique: std::collections::BTreeSet<&String> = all_ids.iter().collect();
    assert_eq!(unique.len(), all_ids.len(), "an event came twice");
    assert_eq!(back.last().unwrap()["type"], "m.room.create", "the history ends with the creation");
    assert!(
        ends.iter().any(|end| end.starts_with('b')),
        "tokens into the backfilled part: {ends:?}"
    );

    // Again: the same history, now from bob's server alone (nothing fetched twice).
    let (again, _) = pages(b, &bob, &room_id, &from, "b", 100).await;
    assert_eq!(ids(&again), all_ids);

    // Forward from a token inside the backfilled part: the newer events, oldest first, across
    // into the timeline.
    let inside = ends.iter().find(|end| end.starts_with('b')).unwrap().clone();
    let (forward, _) = pages(b, &bob, &room_id, &inside, "f", 25).await;
    let position = all_ids.iter().position(|id| *id == ids(&forward)[0]).unwrap();
    let mut newer: Vec<String> = all_ids[..=position].to_vec();
    newer.reverse();
    assert_eq!(ids(&forward)[..newer.len()], newer[..], "forward retraces the same events");

    // A backfilled message is an event like any other: /event and /context around it.
    let middle = back.iter().find(|event| event["content"]["body"] == "before 65").unwrap();
    let middle_id = middle["event_id"].as_str().unwrap();
    let event = bob
        .get(b, &format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room_id), enc(middle_id)))
        .await;
    assert_eq!(event.ok()["content"]["body"], "before 65");
    let context = bob
        .get(
            b,
            &format!(
                "/_matrix/client/v3/rooms/{}/context/{}?limit=4",
                enc(&room_id),
                enc(middle_id)
            ),
        )
        .await
        .ok();
    assert_eq!(bodies(context["events_before"].as_array().unwrap()), ["before 64", "before 63"]);
    assert_eq!(bodies(context["events_after"].as_array().unwrap()), ["before 66", "before 67"]);

    // Sync never sends history: an incremental sync after all this is empty for the room.
    let since = bob.sync(b, None, "").await["next_batch"].as_str().unwrap().to_owned();
    let later = bob.sync(b, Some(&since), "").await;
    assert!(later["rooms"]["join"].get(&room_id).is_none(), "{later}");
}

#[tokio::test]
async fn joined_history_stays_hidden() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice
        .create_room(
            a,
            json!({
                "initial_state": [{
                    "type": "m.room.history_visibility", "state_key": "",
                    "content": { "history_visibility": "joined" },
                }],
            }),
        )
        .await;
    alice.send_text(a, &room_id, "members only").await;
    join_through(a, &alice, b, &bob, &room_id).await;

    let from = prev_batch(b, &bob, &room_id).await;
    let (back, _) = pages(b, &bob, &room_id, &from, "b", 50).await;
    assert!(bodies(&back).is_empty(), "{back:?}");
    assert!(back.iter().all(|event| event["type"] != "m.room.create"), "{back:?}");
}

#[tokio::test]
async fn an_offline_server_gives_its_history_once_back() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({ "preset": "public_chat" })).await;
    alice.send_text(a, &room_id, "an early word").await;
    join_through(a, &alice, b, &bob, &room_id).await;
    let from = prev_batch(b, &bob, &room_id).await;

    network.set_online(a, false);
    let path =
        format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50&from={from}", enc(&room_id));
    let page = bob.get(b, &path).await.ok();
    assert!(bodies(page["chunk"].as_array().unwrap()).is_empty(), "{page}");
    assert!(page.get("end").is_none(), "nothing more for now: {page}");

    network.set_online(a, true);
    let (back, _) = pages(b, &bob, &room_id, &from, "b", 50).await;
    assert_eq!(bodies(&back), ["an early word"]);
}
