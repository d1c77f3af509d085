//! Rooms across servers, in process: two or three homeservers whose federation requests reach
//! each other's `Server::handle_from_peer` directly (the hosts carry them over libp2p; see the
//! native and browser end-to-end tests for that). Invites, joins, declines, messages both ways,
//! typing, receipts, presence, the peer list, and a server that was unreachable catching up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{User, enc, network::network, register};
use hearth_server::Server;
use serde_json::{Value, json};

/// Polls `user`'s sync until `found` says yes (5 s at most).
async fn eventually(
    server: &Server,
    user: &User,
    what: &str,
    found: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let sync = user.sync(server, None, "").await;
        if found(&sync) {
            return sync;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never saw {what}", user.user_id);
}

fn timeline_bodies(sync: &Value, room_id: &str) -> Vec<String> {
    sync["rooms"]["join"][room_id]["timeline"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn messages(server: &Server, user: &User, room_id: &str) -> Vec<String> {
    let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(room_id));
    let reply = user.get(server, &path).await.ok();
    let mut bodies: Vec<String> = reply["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
        .collect();
    bodies.reverse();
    bodies
}

/// alice on the first server creates a private room and invites bob on the second, who joins.
async fn shared_room(servers: &[Server]) -> (User, User, String) {
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({ "name": "across" })).await;
    alice
        .post(
            a,
            &format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id)),
            json!({ "user_id": bob.user_id }),
        )
        .await
        .ok();
    let sync =
        eventually(b, &bob, "the invite", |sync| !sync["rooms"]["invite"][&room_id].is_null())
            .await;
    let invite_state =
        sync["rooms"]["invite"][&room_id]["invite_state"]["events"].as_array().unwrap().clone();
    assert!(
        invite_state
            .iter()
            .any(|event| event["type"] == "m.room.name" && event["content"]["name"] == "across"),
        "the invite shows the room's name: {invite_state:?}"
    );
    bob.post(b, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await.ok();
    (alice, bob, room_id)
}

#[tokio::test]
async fn a_user_invited_from_another_server_joins_and_both_talk() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, room_id) = shared_room(&servers).await;

    // bob's server now holds the room's state: the name and both members.
    let state = bob.get(b, &format!("/_matrix/client/v3/rooms/{}/state", enc(&room_id))).await.ok();
    let members: Vec<&str> = state
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| {
            event["type"] == "m.room.member" && event["content"]["membership"] == "join"
        })
        .filter_map(|event| event["state_key"].as_str())
        .collect();
    assert!(
        members.contains(&alice.user_id.as_str()) && members.contains(&bob.user_id.as_str()),
        "{members:?}"
    );
    // alice's server saw bob join.
    eventually(a, &alice, "bob's join", |sync| {
        sync["rooms"]["join"][&room_id]["timeline"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["state_key"] == bob.user_id.as_str()
                    && event["content"]["membership"] == "join"
            })
        })
    })
    .await;

    alice.send_text(a, &room_id, "hello from a").await;
    eventually(b, &bob, "alice's message", |sync| {
        timeline_bodies(sync, &room_id).contains(&"hello from a".to_owned())
    })
    .await;
    bob.send_text(b, &room_id, "hello from b").await;
    eventually(a, &alice, "bob's message", |sync| {
        timeline_bodies(sync, &room_id).contains(&"hello from b".to_owned())
    })
    .await;
    assert_eq!(messages(a, &alice, &room_id).await, ["hello from a", "hello from b"]);
    assert_eq!(messages(b, &bob, &room_id).await, ["hello from a", "hello from b"]);
}

#[tokio::test]
async fn typing_and_receipts_cross_servers() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, room_id) = shared_room(&servers).await;
    let event_id = alice.send_text(a, &room_id, "read me").await;
    eventually(b, &bob, "the message", |sync| {
        timeline_bodies(sync, &room_id).contains(&"read me".to_owned())
    })
    .await;

    bob.put(
        b,
        &format!("/_matrix/client/v3/rooms/{}/typing/{}", enc(&room_id), enc(&bob.user_id)),
        json!({ "typing": true, "timeout": 10000 }),
    )
    .await
    .ok();
    eventually(a, &alice, "bob typing", |sync| {
        sync["rooms"]["join"][&room_id]["ephemeral"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["type"] == "m.typing"
                    && event["content"]["user_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.contains(&json!(bob.user_id)))
            })
        })
    })
    .await;

    bob.post(
        b,
        &format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room_id), enc(&event_id)),
        json!({}),
    )
    .await
    .ok();
    eventually(a, &alice, "bob's receipt", |sync| {
        sync["rooms"]["join"][&room_id]["ephemeral"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["type"] == "m.receipt"
                    && !event["content"][&event_id]["m.read"][&bob.user_id].is_null()
            })
        })
    })
    .await;
}

#[tokio::test]
async fn a_server_that_was_offline_receives_what_it_missed() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, room_id) = shared_room(&servers).await;
    eventually(a, &alice, "bob's join", |sync| {
        sync["rooms"]["join"][&room_id]["summary"]["m.joined_member_count"] == 2
    })
    .await;

    network.set_online(b, false);
    for n in 0..5 {
        alice.send_text(a, &room_id, &format!("while away {n}")).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        a.destination_status(b.server_name()).failures > 0,
        "sending to the offline server failed"
    );
    network.set_online(b, true);
    a.destination_online(b.server_name());
    let expected: Vec<String> = (0..5).map(|n| format!("while away {n}")).collect();
    for _ in 0..100 {
        if messages(b, &bob, &room_id).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bob's server has {:?}", messages(b, &bob, &room_id).await);
}

#[tokio::test]
async fn joining_a_room_nobody_invited_you_to_is_refused() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let mallory = register(b, "mallory").await;
    let room_id = alice.create_room(a, json!({ "preset": "private_chat" })).await;
    let path = format!("/_matrix/client/v3/join/{}?via={}", enc(&room_id), a.server_name());
    let reply = mallory.post(b, &path, json!({})).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"), "{:?}", reply.body);
    // A public room is open to anyone.
    let public = alice.create_room(a, json!({ "preset": "public_chat" })).await;
    let path = format!("/_matrix/client/v3/join/{}?via={}", enc(&public), a.server_name());
    mallory.post(b, &path, json!({})).await.ok();
    mallory.send_text(b, &public, "hi all").await;
    eventually(a, &alice, "mallory's message", |sync| {
        timeline_bodies(sync, &public).contains(&"hi all".to_owned())
    })
    .await;
}

#[tokio::test]
async fn a_client_lists_the_peers_online_and_their_public_users() {
    let (network, servers) = network(3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let carol = register(c, "carol").await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(&bob.user_id));
    bob.put(b, &path, json!({ "displayname": "Bob" })).await.ok();
    // carol would rather not be listed.
    let path = format!(
        "/_matrix/client/v3/user/{}/account_data/org.hearth.discoverable",
        enc(&carol.user_id)
    );
    carol.put(c, &path, json!({ "discoverable": false })).await.ok();

    let listed = alice.get(a, "/_hearth/client/v1/peers").await.ok();
    let peers = listed["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2, "the two other servers, not this one: {listed}");
    let of = |server: &Server| {
        peers
            .iter()
            .find(|peer| peer["server_name"] == server.server_name().as_str())
            .unwrap()
            .clone()
    };
    assert_eq!(
        of(b)["users"],
        json!([{ "user_id": bob.user_id, "displayname": "Bob", "avatar_url": null }])
    );
    assert_eq!(of(c)["users"], json!([]));

    network.set_online(b, false);
    let listed = alice.get(a, "/_hearth/client/v1/peers").await.ok();
    assert_eq!(listed["peers"].as_array().unwrap().len(), 1, "{listed}");
    let anonymous = common::request(a, "GET", "/_hearth/client/v1/peers", None, None).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn an_invite_from_another_server_can_be_declined() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice.create_room(a, json!({ "name": "not for bob" })).await;
    let invite = format!("/_matrix/client/v3/rooms/{}/invite", enc(&room_id));
    alice.post(a, &invite, json!({ "user_id": bob.user_id })).await.ok();
    eventually(b, &bob, "the invite", |sync| !sync["rooms"]["invite"][&room_id].is_null()).await;

    bob.post(b, &format!("/_matrix/client/v3/rooms/{}/leave", enc(&room_id)), json!({})).await.ok();
    let sync = bob.sync(b, None, "").await;
    assert!(sync["rooms"]["invite"][&room_id].is_null(), "the invite is gone: {sync}");
    // alice's server took the leave: bob is out of the room there too.
    let state = alice
        .get(
            a,
            &format!(
                "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
                enc(&room_id),
                enc(&bob.user_id)
            ),
        )
        .await
        .ok();
    assert_eq!(state["membership"], "leave");
}

#[tokio::test]
async fn presence_crosses_to_servers_sharing_a_room() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, room_id) = shared_room(&servers).await;
    eventually(a, &alice, "bob's join", |sync| {
        sync["rooms"]["join"][&room_id]["summary"]["m.joined_member_count"] == 2
    })
    .await;
    let path = format!("/_matrix/client/v3/presence/{}/status", enc(&bob.user_id));
    bob.put(b, &path, json!({ "presence": "unavailable", "status_msg": "at lunch" })).await.ok();
    eventually(a, &alice, "bob's presence", |sync| {
        sync["presence"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["sender"] == bob.user_id.as_str()
                    && event["content"]["presence"] == "unavailable"
                    && event["content"]["status_msg"] == "at lunch"
            })
        })
    })
    .await;
}

#[tokio::test]
async fn a_join_through_one_server_reaches_the_others_in_the_room() {
    let (_network, servers) = network(3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let carol = register(c, "carol").await;
    let room_id = alice.create_room(a, json!({ "preset": "public_chat" })).await;
    let join = format!("/_matrix/client/v3/join/{}?via={}", enc(&room_id), a.server_name());
    carol.post(c, &join, json!({})).await.ok();
    bob.post(b, &join, json!({})).await.ok();
    // bob's join went to alice's server only; it passed it on to carol's.
    eventually(c, &carol, "bob's join", |sync| {
        sync["rooms"]["join"][&room_id]["timeline"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["state_key"] == bob.user_id.as_str()
                    && event["content"]["membership"] == "join"
            })
        })
    })
    .await;
}

#[tokio::test]
async fn create_room_invites_users_of_other_servers_to_a_direct_chat() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice
        .create_room(
            a,
            json!({ "is_direct": true, "preset": "trusted_private_chat", "invite": [bob.user_id] }),
        )
        .await;
    let sync =
        eventually(b, &bob, "the invite", |sync| !sync["rooms"]["invite"][&room_id].is_null())
            .await;
    let invite_state = sync["rooms"]["invite"][&room_id]["invite_state"]["events"].clone();
    let own_member = invite_state
        .as_array()
        .unwrap()
        .iter()
        .find(|event| {
            event["type"] == "m.room.member" && event["state_key"] == bob.user_id.as_str()
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        own_member["content"]["is_direct"], true,
        "the invite is marked direct: {invite_state}"
    );

    bob.post(b, &format!("/_matrix/client/v3/join/{}", enc(&room_id)), json!({})).await.ok();
    eventually(a, &alice, "bob's join", |sync| {
        sync["rooms"]["join"][&room_id]["timeline"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|event| {
                event["type"] == "m.room.member"
                    && event["state_key"] == bob.user_id.as_str()
                    && event["content"]["membership"] == "join"
            })
        })
    })
    .await;
}

#[tokio::test]
async fn a_signature_on_another_servers_users_key_is_seen_by_its_signer_only() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (alice, bob, _room) = shared_room(&servers).await;
    let carol = register(a, "carol").await;
    let master =
        json!({ "user_id": bob.user_id, "usage": ["master"], "keys": { "ed25519:bmk": "bmk" } });
    bob.post(b, "/_matrix/client/v3/keys/device_signing/upload", json!({ "master_key": master }))
        .await
        .ok();

    // alice verified bob: her user-signing key signs his master key, uploaded to her server.
    let mut signed = master.clone();
    signed["signatures"] = json!({
        &alice.user_id: { "ed25519:ausk": "alice-sig" },
        &bob.user_id: { "ed25519:forged": "not-alice's-to-give" },
    });
    let body = json!({ &bob.user_id: { "bmk": signed } });
    alice.post(a, "/_matrix/client/v3/keys/signatures/upload", body).await.ok();

    let query = json!({ "device_keys": { &bob.user_id: [] } });
    let seen = alice.post(a, "/_matrix/client/v3/keys/query", query.clone()).await.ok();
    let signatures = &seen["master_keys"][&bob.user_id]["signatures"];
    assert_eq!(signatures[&alice.user_id]["ed25519:ausk"], "alice-sig", "{seen}");
    assert!(signatures[&bob.user_id]["ed25519:forged"].is_null(), "only alice's own: {seen}");
    let other = carol.post(a, "/_matrix/client/v3/keys/query", query).await.ok();
    assert!(
        other["master_keys"][&bob.user_id]["signatures"][&alice.user_id].is_null(),
        "carol does not see alice's signature: {other}"
    );
}

#[tokio::test]
async fn a_client_lists_another_servers_public_rooms_and_joins_one() {
    let (_network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let room_id = alice
        .create_room(a, json!({ "name": "lobby", "preset": "public_chat", "visibility": "public" }))
        .await;

    let remote = a.server_name().to_string();
    let listed =
        bob.get(b, &format!("/_matrix/client/v3/publicRooms?server={}", enc(&remote))).await.ok();
    let rooms = listed["chunk"].as_array().cloned().unwrap_or_default();
    assert!(
        rooms.iter().any(|room| room["room_id"] == room_id.as_str() && room["name"] == "lobby"),
        "bob sees alice's public room: {listed}"
    );
    let filtered = bob
        .post(
            b,
            &format!("/_matrix/client/v3/publicRooms?server={}", enc(&remote)),
            json!({ "filter": { "generic_search_term": "nothing like it" } }),
        )
        .await
        .ok();
    assert_eq!(filtered["chunk"], json!([]), "the filter goes along: {filtered}");

    bob.post(
        b,
        &format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room_id), enc(&remote)),
        json!({}),
    )
    .await
    .ok();
    assert!(
        bob.sync(b, None, "").await["rooms"]["join"][&room_id].is_object(),
        "bob joined the listed room"
    );
}
