//! Room aliases and the public room directory through the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, request, server};
use serde_json::{Value, json};

fn room_ids(reply: &Value) -> Vec<&str> {
    reply["chunk"].as_array().unwrap().iter().map(|r| r["room_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn aliases_are_created_resolved_and_deleted() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
    let other = alice.create_room(&server, json!({})).await;
    let alias = format!("#chat:{}", server.server_name());
    let path = format!("/_matrix/client/v3/directory/room/{}", enc(&alias));

    let reply = request(&server, "GET", &path, None, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));

    alice.put(&server, &path, json!({ "room_id": room })).await.ok();
    let reply = request(&server, "GET", &path, None, None).await.ok();
    assert_eq!(reply["room_id"], room.as_str(), "{reply}");
    assert_eq!(reply["servers"], json!([server.server_name().as_str()]));

    let reply = alice.put(&server, &path, json!({ "room_id": other })).await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_ROOM_IN_USE"));

    let list = format!("/_matrix/client/v3/rooms/{}/aliases", enc(&room));
    let reply = alice.get(&server, &list).await.ok();
    assert_eq!(reply["aliases"], json!([alias]));

    // Bob joined the room but neither made the alias nor has the power to remove it.
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    let reply = bob.delete(&server, &path, None).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));

    alice.delete(&server, &path, None).await.ok();
    let reply = request(&server, "GET", &path, None, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
    let reply = alice.get(&server, &list).await.ok();
    assert_eq!(reply["aliases"], json!([]));
}

#[tokio::test]
async fn public_rooms_list_published_rooms_only() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let public = alice
        .create_room(
            &server,
            json!({ "visibility": "public", "preset": "public_chat", "name": "Lobby", "topic": "Say hi" }),
        )
        .await;
    let private = alice.create_room(&server, json!({ "name": "Secret" })).await;

    let reply = request(&server, "GET", "/_matrix/client/v3/publicRooms", None, None).await.ok();
    assert_eq!(room_ids(&reply), [public.as_str()], "{reply}");
    let entry = &reply["chunk"][0];
    assert_eq!(entry["name"], "Lobby", "{entry}");
    assert_eq!(entry["topic"], "Say hi", "{entry}");
    assert_eq!(entry["num_joined_members"], 1, "{entry}");
    // `join_rule` defaults to `public` when absent (ruma leaves the default out).
    assert!(entry["join_rule"].is_null() || entry["join_rule"] == "public", "{entry}");

    let visibility = format!("/_matrix/client/v3/directory/list/room/{}", enc(&private));
    let reply = request(&server, "GET", &visibility, None, None).await.ok();
    assert_eq!(reply["visibility"], "private");
    alice.put(&server, &visibility, json!({ "visibility": "public" })).await.ok();
    let reply = request(&server, "GET", &visibility, None, None).await.ok();
    assert_eq!(reply["visibility"], "public");

    let search = "/_matrix/client/v3/publicRooms";
    let reply = alice
        .post(&server, search, json!({ "filter": { "generic_search_term": "secr" } }))
        .await
        .ok();
    assert_eq!(room_ids(&reply), [private.as_str()], "{reply}");

    let reply = alice.post(&server, search, json!({ "limit": 1 })).await.ok();
    assert_eq!(room_ids(&reply).len(), 1, "{reply}");
    let next = reply["next_batch"].as_str().unwrap().to_owned();
    let second = alice.post(&server, search, json!({ "limit": 1, "since": next })).await.ok();
    assert_eq!(room_ids(&second).len(), 1, "{second}");
    assert_ne!(room_ids(&second), room_ids(&reply));
    assert!(second["next_batch"].is_null(), "{second}");
}
