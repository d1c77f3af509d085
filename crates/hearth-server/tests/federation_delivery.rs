//! `GET /_hearth/client/v1/rooms/{roomId}/delivery`: which of a room's other servers are
//! reachable, how many of the room's events wait for each, and which events have not reached
//! which server; a message to an offline server waits there until it comes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{User, enc, network::network, register};
use hearth_server::Server;
use serde_json::{Value, json};

fn delivery_path(room_id: &str) -> String {
    format!("/_hearth/client/v1/rooms/{}/delivery", enc(room_id))
}

/// Polls `user`'s delivery status until `done` says yes (5 s at most).
async fn delivery_until(
    server: &Server,
    user: &User,
    room_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = user.get(server, &delivery_path(room_id)).await.ok();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {what}: {last}");
}

/// alice (first server) creates a room, invites bob (second server), who joins.
async fn shared_room(a: &Server, b: &Server) -> (User, User, String) {
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({ "name": "across" })).await;
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(a, &invite, json!({ "user_id": bob.user_id })).await.ok();
    let join = format!("/_matrix/client/v3/join/{}", enc(&room_id));
    for _ in 0..100 {
        if bob.post(b, &join, json!({})).await.status == 200 {
            return (alice, bob, room_id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bob could not join");
}

#[tokio::test]
async fn a_message_to_an_offline_server_waits_until_it_returns() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, room_id) = shared_room(a, b).await;
    let b_name = b.server_name().as_str();

    // Everything so far reached bob's server.
    let status = delivery_until(a, &alice, &room_id, "all delivered", |status| {
        status["servers"][0]["queued"] == 0 && status["undelivered"] == json!({})
    })
    .await;
    assert_eq!(
        status,
        json!({
            "servers": [{ "server_name": b_name, "reachable": true, "queued": 0 }],
            "undelivered": {},
            "truncated": false,
        })
    );

    // Gone from the relays: unreachable before anything is even tried.
    network.set_online(b, false);
    let status = alice.get(a, &delivery_path(&room_id)).await.ok();
    assert_eq!(
        status["servers"],
        json!([{ "server_name": b_name, "reachable": false, "queued": 0 }])
    );
    let first = alice.send_text(a, &room_id, "while you were away").await;
    let second = alice.send_text(a, &room_id, "still away?").await;
    let status = delivery_until(a, &alice, &room_id, "the send failing", |status| {
        status["servers"][0]["last_error"].is_string()
    })
    .await;
    let server = &status["servers"][0];
    assert_eq!(server["server_name"], b_name);
    assert_eq!(server["reachable"], false, "{status}");
    assert_eq!(server["queued"], 2, "{status}");
    assert!(server["last_error"].as_str().unwrap().contains("offline"), "{status}");
    assert_eq!(status["undelivered"], json!({ first.clone(): [b_name], second.clone(): [b_name] }));
    assert_eq!(status["truncated"], false);
    // Only the room's own events: a typing notice queued for bob's server is not one.
    let typing =
        format!("/_matrix/client/v3/rooms/{}/typing/{}", enc(&room_id), enc(&alice.user_id));
    alice.put(a, &typing, json!({ "typing": true, "timeout": 10000 })).await.ok();
    let status = alice.get(a, &delivery_path(&room_id)).await.ok();
    assert_eq!(status["servers"][0]["queued"], 2, "{status}");

    // Back online (the host says so when the peer reconnects): delivered.
    network.set_online(b, true);
    a.destination_online(b.server_name());
    let status = delivery_until(a, &alice, &room_id, "delivered", |status| {
        status["undelivered"] == json!({})
    })
    .await;
    assert_eq!(
        status["servers"],
        json!([{ "server_name": b_name, "reachable": true, "queued": 0 }])
    );
    // And bob has the messages; his own server's view lists alice's server.
    let messages = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=10", enc(&room_id));
    let chunk = bob.get(b, &messages).await.ok()["chunk"].clone();
    let ids: Vec<&str> =
        chunk.as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()), "{ids:?}");
    let status = bob.get(b, &delivery_path(&room_id)).await.ok();
    assert_eq!(status["servers"][0]["server_name"], a.server_name().as_str());
}

#[tokio::test]
async fn only_members_see_a_rooms_delivery() {
    let (_network, servers) = network(1).await;
    let a = &servers[0];
    let alice = register(a, "alice").await;
    let eve = register(a, "eve").await;
    let room_id = alice.create_room(a, json!({ "preset": "public_chat" })).await;

    // Alone in the room: no other server, nothing waiting.
    let status = alice.get(a, &delivery_path(&room_id)).await.ok();
    assert_eq!(status, json!({ "servers": [], "undelivered": {}, "truncated": false }));

    // Not joined (the room is public, it exists): forbidden; an unknown room looks the same.
    let reply = eve.get(a, &delivery_path(&room_id)).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    let reply = eve.get(a, &delivery_path("!unknown:example.org")).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    // Having left: forbidden too.
    let join = format!("/_matrix/client/v3/rooms/{}/join", enc(&room_id));
    eve.post(a, &join, json!({})).await.ok();
    eve.get(a, &delivery_path(&room_id)).await.ok();
    let leave = format!("/_matrix/client/v3/rooms/{}/leave", enc(&room_id));
    eve.post(a, &leave, json!({})).await.ok();
    let reply = eve.get(a, &delivery_path(&room_id)).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));

    // Not a room ID; no token.
    let reply = alice.get(a, "/_hearth/client/v1/rooms/not-a-room/delivery").await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_INVALID_PARAM"));
    let reply = common::request(a, "GET", &delivery_path(&room_id), None, None).await;
    assert_eq!((reply.status, reply.errcode()), (401, "M_MISSING_TOKEN"));
    let reply =
        common::request(a, "POST", &delivery_path(&room_id), Some(&alice.token), None).await;
    assert_eq!(reply.status, 405);
}
