//! The space hierarchy through the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{User, enc, register, server};
use hearth_server::Server;
use serde_json::{Value, json};

/// Adds `child` to `parent` as an `m.space.child`.
async fn add_child(server: &Server, user: &User, parent: &str, child: &str, content: Value) {
    let path =
        format!("/_matrix/client/v3/rooms/{}/state/m.space.child/{}", enc(parent), enc(child));
    user.put(server, &path, content).await.ok();
}

fn hierarchy_path(room: &str, query: &str) -> String {
    format!("/_matrix/client/v1/rooms/{}/hierarchy?{query}", enc(room))
}

fn room_ids(reply: &Value) -> Vec<String> {
    reply["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["room_id"].as_str().unwrap().to_owned())
        .collect()
}

struct Space {
    space: String,
    a: String,
    b: String,
    grandchild: String,
    private: String,
}

/// A public space with public children A and B (B suggested), A's public child, a private
/// child only Alice is in, and a child whose `via` is empty (not a child at all).
async fn space(server: &Server, alice: &User) -> Space {
    // Two version 12 rooms created by one user in the same millisecond get the same create
    // event, hence the same room ID: the rooms here are created a few milliseconds apart.
    let create = |body: Value| async move {
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        alice.create_room(server, body).await
    };
    let public = |name: &str| json!({ "preset": "public_chat", "name": name });
    let space = create(
            json!({ "preset": "public_chat", "name": "Space", "creation_content": { "type": "m.space" } }),
        )
        .await;
    let a = create(public("A")).await;
    let b = create(public("B")).await;
    let grandchild = create(public("Grandchild")).await;
    let private = create(json!({ "name": "Private" })).await;
    let unlinked = create(public("Unlinked")).await;
    let via = json!([server.server_name().as_str()]);
    add_child(server, alice, &space, &a, json!({ "via": via, "order": "a" })).await;
    add_child(server, alice, &space, &b, json!({ "via": via, "order": "b", "suggested": true }))
        .await;
    add_child(server, alice, &space, &private, json!({ "via": via, "order": "c" })).await;
    add_child(server, alice, &space, &unlinked, json!({ "via": [] })).await;
    add_child(server, alice, &a, &grandchild, json!({ "via": via })).await;
    Space { space, a, b, grandchild, private }
}

#[tokio::test]
async fn hierarchy_walks_children_breadth_first() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let Space { space, a, b, grandchild, private } = space(&server, &alice).await;
    let (space, a, b, grandchild, private) =
        (space.as_str(), a.as_str(), b.as_str(), grandchild.as_str(), private.as_str());

    // Bob is in no room: he sees the public ones, not the private child.
    let reply = bob.get(&server, &hierarchy_path(space, "")).await.ok();
    assert_eq!(room_ids(&reply), [space, a, b, grandchild], "{reply}");
    assert!(reply.get("next_batch").is_none(), "{reply}");
    let root = &reply["rooms"][0];
    assert_eq!(root["name"], "Space");
    assert_eq!(root["room_type"], "m.space");
    // (ruma leaves out `join_rule` when it is `public`, the default.)
    assert!(root.get("join_rule").is_none_or(|rule| rule == "public"), "{root}");
    assert_eq!(root["num_joined_members"], 1);
    let children: Vec<&str> = root["children_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            assert_eq!(event["type"], "m.space.child");
            assert!(event["origin_server_ts"].is_u64(), "{event}");
            event["state_key"].as_str().unwrap()
        })
        .collect();
    assert_eq!(children, [a, b, private], "{root}");

    // Alice is in the private child, so she sees it (after A and B, by `order`).
    let reply = alice.get(&server, &hierarchy_path(space, "")).await.ok();
    assert_eq!(room_ids(&reply), [space, a, b, private, grandchild], "{reply}");
    assert_eq!(reply["rooms"][3]["join_rule"], "invite", "{reply}");

    // A private room Bob is not in cannot be the root either.
    let reply = bob.get(&server, &hierarchy_path(private, "")).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn hierarchy_depth_suggestions_and_pages() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let Space { space, a, b, grandchild, .. } = space(&server, &alice).await;
    let (space, a, b, grandchild) = (space.as_str(), a.as_str(), b.as_str(), grandchild.as_str());

    let reply = bob.get(&server, &hierarchy_path(space, "max_depth=1")).await.ok();
    assert_eq!(room_ids(&reply), [space, a, b], "{reply}");

    let reply = bob.get(&server, &hierarchy_path(space, "suggested_only=true")).await.ok();
    assert_eq!(room_ids(&reply), [space, b], "{reply}");

    // One room per page, following `next_batch` to the end.
    let mut pages = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let query = match &from {
            Some(from) => format!("limit=1&from={}", enc(from)),
            None => "limit=1".to_owned(),
        };
        let reply = bob.get(&server, &hierarchy_path(space, &query)).await.ok();
        pages.push(room_ids(&reply));
        match reply["next_batch"].as_str() {
            Some(next) => from = Some(next.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not end: {pages:?}");
    }
    assert_eq!(pages, [[space], [a], [b], [grandchild]]);

    // A token only continues the walk it was made for.
    let reply = bob.get(&server, &hierarchy_path(space, "limit=1")).await.ok();
    let next = reply["next_batch"].as_str().unwrap();
    let query = format!("limit=1&max_depth=1&from={}", enc(next));
    let reply = bob.get(&server, &hierarchy_path(space, &query)).await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_INVALID_PARAM"));
}
