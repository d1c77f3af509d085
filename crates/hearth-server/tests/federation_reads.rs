//! What other servers read from this one: events, the state at an event, auth chains, missing
//! events, backfill, the room directory, and users' devices and keys; and what they may not.
//!
//! Most tests ask as a bare signing identity (a server with no member anywhere); the member
//! case wires two real servers so that one of the asking server's users joins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::{User, enc, federation, register, server};
use hearth_core::{Pdu, RoomVersion, ServerIdentity, platform::BoxFuture, ruma::OwnedServerName};
use hearth_server::{Config, Federation, Registration, Server, ServerError};
use hearth_store::{MemoryBackend, Store};
use serde_json::{Value, json};

/// The ID of an event in its federation form (a room version 12 room).
fn event_id(pdu: &Value) -> String {
    let bytes = serde_json::to_vec(pdu).unwrap();
    Pdu::parse(RoomVersion::V12, &bytes).unwrap().event_id().to_string()
}

fn event_ids(pdus: &Value) -> Vec<String> {
    pdus.as_array().unwrap().iter().map(event_id).collect()
}

async fn get(server: &Server, remote: &ServerIdentity, path: &str) -> Value {
    federation(server, remote, "GET", path, None).await.ok()
}

fn strings(ids: &Value) -> Vec<String> {
    ids.as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect()
}

/// A room with, in order: its initial state, message `one`, a topic change, message `two`.
struct Room {
    id: String,
    create: String,
    one: String,
    topic: String,
    two: String,
}

async fn room(server: &Server, alice: &User, visibility: &str) -> Room {
    let state = json!([{
        "type": "m.room.history_visibility",
        "content": { "history_visibility": visibility },
    }]);
    let id = alice.create_room(server, json!({ "initial_state": state })).await;
    let one = alice.send_text(server, &id, "one").await;
    let path = format!("/_matrix/client/v3/rooms/{id}/state/m.room.topic/");
    let reply = alice.put(server, &path, json!({ "topic": "news" })).await.ok();
    let topic = reply["event_id"].as_str().unwrap().to_owned();
    let two = alice.send_text(server, &id, "two").await;
    let path = format!("/_matrix/client/v3/rooms/{id}/state/m.room.create/");
    let create = alice.get(server, &format!("{path}?format=event")).await.ok();
    let create = create["event_id"].as_str().unwrap().to_owned();
    Room { id, create, one, topic, two }
}

#[tokio::test]
async fn events_state_and_auth_chains_of_a_world_readable_room() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = room(&server, &alice, "world_readable").await;
    let remote = ServerIdentity::generate().unwrap();

    let reply =
        get(&server, &remote, &format!("/_matrix/federation/v1/event/{}", enc(&room.one))).await;
    assert_eq!(reply["origin"], server.server_name().as_str());
    assert_eq!(event_ids(&reply["pdus"]), [room.one.as_str()]);
    assert_eq!(reply["pdus"][0]["content"]["body"], "one");

    // The state before the topic change does not hold it; the state before the next event does.
    let state_ids = |at: &str| {
        format!("/_matrix/federation/v1/state_ids/{}?event_id={}", enc(&room.id), enc(at))
    };
    let before = get(&server, &remote, &state_ids(&room.topic)).await;
    let pdu_ids = strings(&before["pdu_ids"]);
    assert!(pdu_ids.contains(&room.create), "{before}");
    assert!(!pdu_ids.contains(&room.topic), "{before}");
    assert!(strings(&before["auth_chain_ids"]).contains(&room.create), "{before}");
    let after = get(&server, &remote, &state_ids(&room.two)).await;
    assert!(strings(&after["pdu_ids"]).contains(&room.topic), "{after}");
    assert_eq!(strings(&after["pdu_ids"]).len(), pdu_ids.len() + 1);

    let path =
        format!("/_matrix/federation/v1/state/{}?event_id={}", enc(&room.id), enc(&room.topic));
    let state = get(&server, &remote, &path).await;
    let mut pdus = event_ids(&state["pdus"]);
    let mut expected = pdu_ids.clone();
    pdus.sort();
    expected.sort();
    assert_eq!(pdus, expected);
    let mut chain = event_ids(&state["auth_chain"]);
    let mut chain_ids = strings(&before["auth_chain_ids"]);
    chain.sort();
    chain_ids.sort();
    assert_eq!(chain, chain_ids);

    // The auth chain of a message: the create event, alice's join, the power levels, and what
    // authorised those, but not the message.
    let path = format!("/_matrix/federation/v1/event_auth/{}/{}", enc(&room.id), enc(&room.one));
    let auth = get(&server, &remote, &path).await;
    let auth = event_ids(&auth["auth_chain"]);
    assert!(auth.contains(&room.create), "{auth:?}");
    assert!(!auth.contains(&room.one));
    assert!(auth.len() >= 3, "{auth:?}");
}

#[tokio::test]
async fn missing_events_and_backfill_walk_back_through_prev_events() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = room(&server, &alice, "world_readable").await;
    let remote = ServerIdentity::generate().unwrap();
    let path = format!("/_matrix/federation/v1/get_missing_events/{}", enc(&room.id));

    // Between `one` and `two` there is the topic only.
    let body = json!({ "earliest_events": [room.one], "latest_events": [room.two] });
    let reply = federation(&server, &remote, "POST", &path, Some(body)).await.ok();
    assert_eq!(event_ids(&reply["events"]), [room.topic.as_str()]);
    // With no earliest event, `limit` events back, oldest first.
    let body = json!({ "earliest_events": [], "latest_events": [room.two], "limit": 2 });
    let reply = federation(&server, &remote, "POST", &path, Some(body)).await.ok();
    assert_eq!(event_ids(&reply["events"]), [room.one.clone(), room.topic.clone()]);
    // As far back as the room is world-readable: the events before its history visibility
    // event (whose own state before is the default, `shared`) stay hidden.
    let body = json!({ "earliest_events": [], "latest_events": [room.two], "limit": 50 });
    let reply = federation(&server, &remote, "POST", &path, Some(body)).await.ok();
    let all = event_ids(&reply["events"]);
    assert_eq!(all.last(), Some(&room.topic));
    assert!(all.contains(&room.one) && !all.contains(&room.create), "{all:?}");
    // `min_depth` stops the walk.
    let path_one = format!("/_matrix/federation/v1/event/{}", enc(&room.one));
    let one = federation(&server, &remote, "GET", &path_one, None).await.ok();
    let body = json!({
        "earliest_events": [], "latest_events": [room.two], "limit": 50,
        "min_depth": one["pdus"][0]["depth"],
    });
    let reply = federation(&server, &remote, "POST", &path, Some(body)).await.ok();
    assert_eq!(event_ids(&reply["events"]), [room.one.clone(), room.topic.clone()]);

    let backfill =
        format!("/_matrix/federation/v1/backfill/{}?v={}&limit=3", enc(&room.id), enc(&room.two));
    let reply = federation(&server, &remote, "GET", &backfill, None).await.ok();
    assert_eq!(event_ids(&reply["pdus"]), [room.two.clone(), room.topic.clone(), room.one.clone()]);
    assert_eq!(reply["origin"], server.server_name().as_str());
}

#[tokio::test]
async fn a_server_with_no_member_may_not_read_a_private_room() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = room(&server, &alice, "shared").await;
    let remote = ServerIdentity::generate().unwrap();
    let (id, one) = (enc(&room.id), enc(&room.one));
    let forbidden = [
        ("GET", format!("/_matrix/federation/v1/event/{one}"), None),
        ("GET", format!("/_matrix/federation/v1/state/{id}?event_id={one}"), None),
        ("GET", format!("/_matrix/federation/v1/state_ids/{id}?event_id={one}"), None),
        ("GET", format!("/_matrix/federation/v1/event_auth/{id}/{one}"), None),
        ("GET", format!("/_matrix/federation/v1/backfill/{id}?v={one}&limit=10"), None),
        (
            "POST",
            format!("/_matrix/federation/v1/get_missing_events/{id}"),
            Some(json!({ "earliest_events": [], "latest_events": [room.two] })),
        ),
    ];
    for (method, path, body) in forbidden {
        let reply = federation(&server, &remote, method, &path, body).await;
        assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"), "{path}: {}", reply.body);
    }

    // Unknown rooms and events, and an event asked for in another room.
    let other = alice.create_room(&server, json!({})).await;
    let missing = enc("$unknown");
    let unknown_room = enc("!unknown:example.org");
    let not_found = [
        format!("/_matrix/federation/v1/event/{missing}"),
        format!("/_matrix/federation/v1/state_ids/{id}?event_id={missing}"),
        format!("/_matrix/federation/v1/state_ids/{unknown_room}?event_id={one}"),
        format!("/_matrix/federation/v1/event_auth/{}/{one}", enc(&other)),
        format!("/_matrix/federation/v1/backfill/{unknown_room}?v={one}&limit=10"),
    ];
    for path in not_found {
        let reply = federation(&server, &remote, "GET", &path, None).await;
        assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{path}: {}", reply.body);
    }
}

#[tokio::test]
async fn the_directory_answers_aliases_and_lists_public_rooms() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let remote = ServerIdentity::generate().unwrap();
    let body = json!({ "preset": "public_chat", "visibility": "public", "name": "Lobby" });
    let lobby = alice.create_room(&server, body).await;
    alice.create_room(&server, json!({ "name": "Hidden" })).await;
    let alias = format!("#lobby:{}", server.server_name());
    let path = format!("/_matrix/client/v3/directory/room/{}", enc(&alias));
    alice.put(&server, &path, json!({ "room_id": lobby })).await.ok();

    let query = format!("/_matrix/federation/v1/query/directory?room_alias={}", enc(&alias));
    let reply = federation(&server, &remote, "GET", &query, None).await.ok();
    assert_eq!(reply["room_id"], lobby.as_str());
    assert_eq!(reply["servers"], json!([server.server_name().as_str()]));
    let unknown = format!(
        "/_matrix/federation/v1/query/directory?room_alias={}",
        enc(&format!("#nowhere:{}", server.server_name()))
    );
    let reply = federation(&server, &remote, "GET", &unknown, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));

    let listed =
        federation(&server, &remote, "GET", "/_matrix/federation/v1/publicRooms", None).await.ok();
    assert_eq!(listed["chunk"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["chunk"][0]["room_id"], lobby.as_str());
    assert_eq!(listed["chunk"][0]["name"], "Lobby");
    let body = json!({ "filter": { "generic_search_term": "lob" }, "limit": 5 });
    let filtered =
        federation(&server, &remote, "POST", "/_matrix/federation/v1/publicRooms", Some(body))
            .await
            .ok();
    assert_eq!(filtered["chunk"][0]["room_id"], lobby.as_str(), "{filtered}");
    let body = json!({ "filter": { "generic_search_term": "nothing like it" } });
    let filtered =
        federation(&server, &remote, "POST", "/_matrix/federation/v1/publicRooms", Some(body))
            .await
            .ok();
    assert_eq!(filtered["chunk"], json!([]));
}

fn device_keys(user: &User) -> Value {
    json!({
        "user_id": user.user_id,
        "device_id": user.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{}", user.device_id): "curvekey",
            format!("ed25519:{}", user.device_id): "edkey",
        },
        "signatures": { &user.user_id: { format!("ed25519:{}", user.device_id): "sig" } },
    })
}

#[tokio::test]
async fn devices_and_keys_of_local_users() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let remote = ServerIdentity::generate().unwrap();
    let body = json!({
        "device_keys": device_keys(&alice),
        "one_time_keys": { "signed_curve25519:AAAAAQ": { "key": "otk1", "signatures": {} } },
    });
    alice.post(&server, "/_matrix/client/v3/keys/upload", body).await.ok();
    let master =
        json!({ "user_id": alice.user_id, "usage": ["master"], "keys": { "ed25519:mk": "mk" } });
    let path = "/_matrix/client/v3/keys/device_signing/upload";
    alice.post(&server, path, json!({ "master_key": master })).await.ok();
    let path = format!("/_matrix/client/v3/devices/{}", alice.device_id);
    alice.put(&server, &path, json!({ "display_name": "Laptop" })).await.ok();

    let path = format!("/_matrix/federation/v1/user/devices/{}", enc(&alice.user_id));
    let devices = federation(&server, &remote, "GET", &path, None).await.ok();
    assert_eq!(devices["user_id"], alice.user_id.as_str());
    assert!(devices["stream_id"].as_u64().is_some(), "{devices}");
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1, "{devices}");
    let device = &devices["devices"][0];
    assert_eq!(device["device_id"], alice.device_id.as_str());
    assert_eq!(device["device_display_name"], "Laptop");
    assert_eq!(device["keys"]["keys"][format!("ed25519:{}", alice.device_id)], "edkey");
    assert_eq!(devices["master_key"]["keys"]["ed25519:mk"], "mk");
    for stranger in
        [format!("@bob:{}", server.server_name()), format!("@bob:{}", remote.server_name())]
    {
        let path = format!("/_matrix/federation/v1/user/devices/{}", enc(&stranger));
        let reply = federation(&server, &remote, "GET", &path, None).await;
        assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{stranger}");
    }

    let elsewhere = format!("@carol:{}", remote.server_name());
    let body = json!({ "device_keys": { &alice.user_id: [], &elsewhere: [] } });
    let query =
        federation(&server, &remote, "POST", "/_matrix/federation/v1/user/keys/query", Some(body))
            .await
            .ok();
    let keys = &query["device_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(keys["keys"][format!("curve25519:{}", alice.device_id)], "curvekey", "{query}");
    assert_eq!(query["master_keys"][&alice.user_id]["keys"]["ed25519:mk"], "mk");
    assert!(query["device_keys"].get(&elsewhere).is_none(), "{query}");
    assert!(query.get("user_signing_keys").is_none(), "{query}");

    let body = json!({ "one_time_keys": {
        &alice.user_id: { &alice.device_id: "signed_curve25519" },
        &elsewhere: { "DEVICE": "signed_curve25519" },
    } });
    let claim = "/_matrix/federation/v1/user/keys/claim";
    let claimed = federation(&server, &remote, "POST", claim, Some(body.clone())).await.ok();
    let key = &claimed["one_time_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(key["signed_curve25519:AAAAAQ"]["key"], "otk1", "{claimed}");
    assert!(claimed["one_time_keys"].get(&elsewhere).is_none());
    // The key is used up.
    let claimed = federation(&server, &remote, "POST", claim, Some(body)).await.ok();
    assert_eq!(claimed["one_time_keys"][&alice.user_id], json!({}), "{claimed}");
}

/// A federation that reaches one other server, in memory.
struct Link(Server);

impl Federation for Link {
    fn request(
        &self,
        _destination: OwnedServerName,
        request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>> {
        let server = self.0.clone();
        Box::pin(async move { Ok(server.handle(request).await) })
    }
}

#[tokio::test]
async fn a_server_reads_a_private_room_while_its_user_is_joined() {
    let home = server().await;
    // The remote server's identity is kept to sign this test's requests as that server.
    let identity = ServerIdentity::generate().unwrap();
    let remote_signer = ServerIdentity::from_seed(&identity.seed()).unwrap();
    let store = Store::open(Arc::new(MemoryBackend::new())).await.unwrap();
    let config = Config { registration: Registration::Open, ..Config::default() };
    let remote = Server::new(store, identity, config, Arc::new(common::TokioRuntime));
    home.set_federation(Arc::new(Link(remote.clone()))).await.unwrap();
    remote.set_federation(Arc::new(Link(home.clone()))).await.unwrap();

    let alice = register(&home, "alice").await;
    let bob = register(&remote, "bob").await;
    let room_id = alice.create_room(&home, json!({ "preset": "private_chat" })).await;
    let before = alice.send_text(&home, &room_id, "before").await;
    let event = |id: &str| format!("/_matrix/federation/v1/event/{}", enc(id));
    let reply = federation(&home, &remote_signer, "GET", &event(&before), None).await;
    assert_eq!(reply.status, 403, "{}", reply.body);

    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(&home, &invite, json!({ "user_id": bob.user_id })).await.ok();
    bob.post(&remote, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await.ok();
    let during = alice.send_text(&home, &room_id, "during").await;

    // Joined: the whole room, history from before the join included.
    for id in [&before, &during] {
        federation(&home, &remote_signer, "GET", &event(id), None).await.ok();
    }
    // The state before `during` holds bob's membership, which the state before `before` lacked.
    let state_ids = |at: &str| {
        format!("/_matrix/federation/v1/state_ids/{}?event_id={}", enc(&room_id), enc(at))
    };
    let early = federation(&home, &remote_signer, "GET", &state_ids(&before), None).await.ok();
    let later = federation(&home, &remote_signer, "GET", &state_ids(&during), None).await.ok();
    let count = |state: &Value| state["pdu_ids"].as_array().unwrap().len();
    assert_eq!(count(&later), count(&early) + 1, "{later}");

    // Once bob has left, events from then on are hidden; those from while he was there are not.
    bob.post(&remote, &format!("/_matrix/client/v3/rooms/{}/leave", enc(&room_id)), json!({}))
        .await
        .ok();
    let members = format!("/_matrix/client/v3/rooms/{}/joined_members", enc(&room_id));
    for attempt in 0.. {
        let joined = alice.get(&home, &members).await.ok();
        if joined["joined"].get(&bob.user_id).is_none() {
            break;
        }
        assert!(attempt < 100, "the leave never reached the home server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = alice.send_text(&home, &room_id, "after").await;
    let reply = federation(&home, &remote_signer, "GET", &event(&after), None).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"), "{}", reply.body);
    federation(&home, &remote_signer, "GET", &event(&during), None).await.ok();
}
