//! Room upgrades through the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{User, enc, register, server};
use hearth_server::Server;
use serde_json::{Value, json};

/// The content of the state event `kind` in `/state` of `room`, as `user` sees it.
async fn state_content(server: &Server, user: &User, room: &str, kind: &str) -> Option<Value> {
    let state = user.get(server, &format!("/_matrix/client/v3/rooms/{}/state", enc(room))).await;
    let state = state.ok();
    state
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == kind && event["state_key"] == "")
        .map(|event| event["content"].clone())
}

fn upgrade_path(room: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/upgrade", enc(room))
}

#[tokio::test]
async fn upgrade_moves_aliases_and_state_and_tombstones_the_old_room() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let alias = format!("#chat:{}", server.server_name());
    let old = alice
        .create_room(
            &server,
            json!({
                "preset": "public_chat",
                "visibility": "public",
                "room_alias_name": "chat",
                "name": "Chat",
                "topic": "About things",
                "room_version": "11",
            }),
        )
        .await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&old)), json!({})).await.ok();

    let reply = alice.post(&server, &upgrade_path(&old), json!({ "new_version": "12" })).await;
    let new = reply.ok()["replacement_room"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    // The alias and the directory listing now point to the new room.
    let resolved = alice
        .get(&server, &format!("/_matrix/client/v3/directory/room/{}", enc(&alias)))
        .await
        .ok();
    assert_eq!(resolved["room_id"], new.as_str(), "{resolved}");
    let listed = alice.get(&server, "/_matrix/client/v3/publicRooms").await.ok();
    let listed: Vec<&str> = listed["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [new.as_str()]);

    // The new room: predecessor, the upgrading user as its (v12) creator, copied state.
    let create = state_content(&server, &alice, &new, "m.room.create").await.unwrap();
    assert_eq!(create["predecessor"]["room_id"], old.as_str(), "{create}");
    assert_eq!(create["room_version"], "12");
    assert_eq!(state_content(&server, &alice, &new, "m.room.name").await.unwrap()["name"], "Chat");
    assert_eq!(
        state_content(&server, &alice, &new, "m.room.topic").await.unwrap()["topic"],
        "About things"
    );
    assert_eq!(
        state_content(&server, &alice, &new, "m.room.canonical_alias").await.unwrap()["alias"],
        alias.as_str()
    );
    assert_eq!(
        state_content(&server, &alice, &new, "m.room.join_rules").await.unwrap()["join_rule"],
        "public"
    );
    let levels = state_content(&server, &alice, &new, "m.room.power_levels").await.unwrap();
    assert!(levels["users"].get(&alice.user_id).is_none(), "a v12 creator is not listed: {levels}");

    // The old room: the tombstone, no canonical alias, and only the powerful may speak.
    let tombstone = state_content(&server, &bob, &old, "m.room.tombstone").await.unwrap();
    assert_eq!(tombstone["replacement_room"], new.as_str(), "{tombstone}");
    assert!(tombstone["body"].is_string());
    let old_alias = state_content(&server, &bob, &old, "m.room.canonical_alias").await.unwrap();
    assert!(old_alias.get("alias").is_none(), "{old_alias}");
    let old_levels = state_content(&server, &bob, &old, "m.room.power_levels").await.unwrap();
    assert_eq!(
        (old_levels["events_default"].as_i64(), old_levels["invite"].as_i64()),
        (Some(50), Some(50))
    );
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/late", enc(&old));
    let reply = bob.put(&server, &path, json!({ "msgtype": "m.text", "body": "hello?" })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn upgrade_to_an_older_version_keeps_the_user_powerful() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let old = alice.create_room(&server, json!({ "name": "Twelve" })).await;
    let reply = alice.post(&server, &upgrade_path(&old), json!({ "new_version": "11" })).await;
    let new = reply.ok()["replacement_room"].as_str().unwrap().to_owned();
    let create = state_content(&server, &alice, &new, "m.room.create").await.unwrap();
    assert_eq!(create["room_version"], "11", "{create}");
    // Alice created the old (v12) room, so she holds the highest level in the new one.
    let levels = state_content(&server, &alice, &new, "m.room.power_levels").await.unwrap();
    assert_eq!(levels["users"][&alice.user_id], 100, "{levels}");
    assert_eq!(
        state_content(&server, &alice, &new, "m.room.name").await.unwrap()["name"],
        "Twelve"
    );
}

#[tokio::test]
async fn upgrade_needs_power_and_a_known_version() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let old = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&old)), json!({})).await.ok();

    let reply = bob.post(&server, &upgrade_path(&old), json!({ "new_version": "12" })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"), "{:?}", reply.body);
    assert!(state_content(&server, &bob, &old, "m.room.tombstone").await.is_none());
    // Refused before anything was made: Bob is in no replacement room.
    let joined = bob.get(&server, "/_matrix/client/v3/joined_rooms").await.ok();
    assert_eq!(joined["joined_rooms"], json!([old]), "{joined}");

    let reply = alice.post(&server, &upgrade_path(&old), json!({ "new_version": "99" })).await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_UNSUPPORTED_ROOM_VERSION"));
    assert!(state_content(&server, &alice, &old, "m.room.tombstone").await.is_none());
}
