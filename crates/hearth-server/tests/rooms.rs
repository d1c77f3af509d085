//! Rooms end to end through the handlers: create, invite, join, chat, paginate, redact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, request, server};
use serde_json::json;

#[tokio::test]
async fn two_users_chat_in_a_room() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({ "name": "Chat", "invite": [bob.user_id] })).await;

    let sync = bob.sync(&server, None, "").await;
    assert!(sync["rooms"]["invite"][&room].is_object(), "{sync}");
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();

    let first = alice.send_text(&server, &room, "hello bob").await;
    bob.send_text(&server, &room, "hi alice").await;

    let sync = bob.sync(&server, Some(&since), "").await;
    let timeline = &sync["rooms"]["join"][&room]["timeline"]["events"];
    let bodies: Vec<&str> =
        timeline.as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert_eq!(bodies, ["hello bob", "hi alice"], "{sync}");

    let messages = alice
        .get(&server, &format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&room)))
        .await
        .ok();
    let kinds: Vec<&str> =
        messages["chunk"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"m.room.message"));
    assert_eq!(kinds.last(), Some(&"m.room.create"));

    let path = format!("/_matrix/client/v3/rooms/{}/redact/{}/r1", enc(&room), enc(&first));
    alice.put(&server, &path, json!({ "reason": "oops" })).await.ok();
    let event = bob
        .get(&server, &format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&first)))
        .await
        .ok();
    assert_eq!(event["content"], json!({}), "{event}");
    assert!(event["unsigned"]["redacted_because"].is_object(), "{event}");

    // Bob may not redact Alice's event: default power levels need 50.
    let second = alice.send_text(&server, &room, "keep this").await;
    let path = format!("/_matrix/client/v3/rooms/{}/redact/{}/r2", enc(&room), enc(&second));
    let reply = bob.put(&server, &path, json!({})).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn transaction_ids_are_idempotent_per_device() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = alice.create_room(&server, json!({})).await;
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/same", enc(&room));
    let first =
        alice.put(&server, &path, json!({ "body": "once", "msgtype": "m.text" })).await.ok();
    let again =
        alice.put(&server, &path, json!({ "body": "once", "msgtype": "m.text" })).await.ok();
    assert_eq!(first["event_id"], again["event_id"]);
    let sync = alice.sync(&server, None, "").await;
    let timeline = sync["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap().clone();
    let sent: Vec<_> = timeline.iter().filter(|e| e["type"] == "m.room.message").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["unsigned"]["transaction_id"], "same");
}

#[tokio::test]
async fn bad_requests_get_matrix_errors() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let reply = request(&server, "GET", "/_matrix/client/v3/account/whoami", None, None).await;
    assert_eq!((reply.status, reply.errcode()), (401, "M_MISSING_TOKEN"));
    let reply =
        request(&server, "GET", "/_matrix/client/v3/account/whoami", Some("nope"), None).await;
    assert_eq!((reply.status, reply.errcode()), (401, "M_UNKNOWN_TOKEN"));
    let reply = request(&server, "GET", "/_matrix/client/v3/no/such/endpoint", None, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_UNRECOGNIZED"));
    let reply =
        request(&server, "DELETE", "/_matrix/client/v3/account/whoami", Some(&alice.token), None)
            .await;
    assert_eq!((reply.status, reply.errcode()), (405, "M_UNRECOGNIZED"));
    let reply = common::raw(
        &server,
        "POST",
        "/_matrix/client/v3/createRoom",
        Some(&alice.token),
        b"{not json".to_vec(),
        None,
    )
    .await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_NOT_JSON"));
    let reply = alice
        .post(&server, "/_matrix/client/v3/createRoom", json!({ "invite": "not-a-list" }))
        .await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_BAD_JSON"));
    let reply = alice
        .post(
            &server,
            &format!("/_matrix/client/v3/rooms/{}/join", enc("not-a-room-id")),
            json!({}),
        )
        .await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_INVALID_PARAM"));
    let big = vec![b' '; 2 * 1024 * 1024];
    let reply = common::raw(
        &server,
        "POST",
        "/_matrix/client/v3/createRoom",
        Some(&alice.token),
        big,
        None,
    )
    .await;
    assert_eq!((reply.status, reply.errcode()), (413, "M_TOO_LARGE"));
    let reply =
        alice.post(&server, "/_matrix/client/v3/createRoom", json!({ "room_version": "1" })).await;
    assert_eq!((reply.status, reply.errcode()), (400, "M_UNSUPPORTED_ROOM_VERSION"));
    let reply = alice
        .get(&server, &format!("/_matrix/client/v3/rooms/{}/messages?dir=b", enc("!unknown:x")))
        .await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
}

#[tokio::test]
async fn kick_ban_and_unban_follow_power_and_membership() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let room = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
    for user in [&bob, &carol] {
        user.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({}))
            .await
            .ok();
    }
    let base = format!("/_matrix/client/v3/rooms/{}", enc(&room));
    let membership = |user: &common::User| {
        let path = format!("{base}/state/m.room.member/{}", enc(&user.user_id));
        let alice = alice.clone();
        let server = server.clone();
        async move { alice.get(&server, &path).await.ok()["membership"].as_str().unwrap().to_owned() }
    };

    // Bob has no power to kick.
    let reply =
        bob.post(&server, &format!("{base}/kick"), json!({ "user_id": carol.user_id })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    alice
        .post(
            &server,
            &format!("{base}/kick"),
            json!({ "user_id": carol.user_id, "reason": "bye" }),
        )
        .await
        .ok();
    assert_eq!(membership(&carol).await, "leave");
    // Kicking someone who is not in the room is refused before any event is made.
    let reply =
        alice.post(&server, &format!("{base}/kick"), json!({ "user_id": carol.user_id })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));

    // Unbanning someone who is not banned is refused; a ban keeps them out until unbanned.
    let reply =
        alice.post(&server, &format!("{base}/unban"), json!({ "user_id": bob.user_id })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    alice.post(&server, &format!("{base}/ban"), json!({ "user_id": bob.user_id })).await.ok();
    assert_eq!(membership(&bob).await, "ban");
    let reply =
        bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    alice.post(&server, &format!("{base}/unban"), json!({ "user_id": bob.user_id })).await.ok();
    assert_eq!(membership(&bob).await, "leave");
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    assert_eq!(membership(&bob).await, "join");
}

#[tokio::test]
async fn identical_rooms_created_at_once_get_distinct_ids() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        ids.insert(alice.create_room(&server, json!({ "name": "same" })).await);
    }
    assert_eq!(ids.len(), 20, "{ids:?}");
}

#[tokio::test]
async fn history_visibility_hides_what_came_before_joining() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let bodies = |reply: serde_json::Value| -> Vec<String> {
        reply["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect()
    };
    for (visibility, bob_sees_before) in [("joined", false), ("invited", false), ("shared", true)] {
        let state = json!([{ "type": "m.room.history_visibility", "content": { "history_visibility": visibility } }]);
        let room = alice.create_room(&server, json!({ "initial_state": state })).await;
        let before = alice.send_text(&server, &room, "before").await;
        alice
            .post(
                &server,
                &format!("/_matrix/client/v3/rooms/{}/invite", enc(&room)),
                json!({ "user_id": bob.user_id }),
            )
            .await
            .ok();
        bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
        alice.send_text(&server, &room, "after").await;

        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", enc(&room));
        let expected: Vec<&str> =
            if bob_sees_before { vec!["after", "before"] } else { vec!["after"] };
        assert_eq!(bodies(bob.get(&server, &path).await.ok()), expected, "{visibility}");
        assert_eq!(
            bodies(alice.get(&server, &path).await.ok()),
            ["after", "before"],
            "{visibility}"
        );
        let event = bob
            .get(
                &server,
                &format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&before)),
            )
            .await;
        assert_eq!(event.status == 200, bob_sees_before, "{visibility}: {}", event.body);
        let sync = bob.sync(&server, None, "").await;
        let timeline = &sync["rooms"]["join"][&room]["timeline"]["events"];
        let seen: Vec<&str> = timeline
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["content"]["body"].as_str())
            .collect();
        assert_eq!(seen, expected.iter().rev().copied().collect::<Vec<_>>(), "{visibility}");
    }
}

#[tokio::test]
async fn state_events_carry_what_they_replaced() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = alice.create_room(&server, json!({ "name": "first" })).await;
    let path = format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(&room));
    alice.put(&server, &path, json!({ "name": "second" })).await.ok();
    let event = alice.get(&server, &format!("{path}?format=event")).await.ok();
    assert_eq!(event["content"]["name"], "second");
    assert_eq!(event["unsigned"]["prev_content"]["name"], "first", "{event}");
    assert!(event["unsigned"]["replaces_state"].as_str().unwrap().starts_with('$'));
    // The first name replaced nothing.
    let messages = alice
        .get(&server, &format!("/_matrix/client/v3/rooms/{}/messages?dir=f&limit=50", enc(&room)))
        .await
        .ok();
    let first = messages["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.room.name")
        .unwrap()
        .clone();
    assert_eq!(first["content"]["name"], "first");
    assert!(first["unsigned"].get("prev_content").is_none(), "{first}");
}
