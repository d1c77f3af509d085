//! Push rules and notification counts through the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{User, enc, register, server};
use hearth_server::Server;
use serde_json::{Value, json};

async fn counts(server: &Server, user: &User, room: &str) -> (Value, Value) {
    let sync = user.sync(server, None, "").await;
    let unread = &sync["rooms"]["join"][room]["unread_notifications"];
    (unread["notification_count"].clone(), unread["highlight_count"].clone())
}

#[tokio::test]
async fn default_rules_are_readable_and_can_be_disabled() {
    let server = server().await;
    let alice = register(&server, "alice").await;

    let all = alice.get(&server, "/_matrix/client/v3/pushrules/").await.ok();
    let overrides = all["global"]["override"].as_array().unwrap();
    assert!(overrides.iter().any(|rule| rule["rule_id"] == ".m.rule.master"), "{all}");
    // Element reads the rules from the initial sync too.
    let sync = alice.sync(&server, None, "").await;
    let push_rules = sync["account_data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "m.push_rules")
        .expect("m.push_rules in the initial sync");
    assert!(push_rules["content"]["global"]["underride"].is_array(), "{push_rules}");

    let rule = "/_matrix/client/v3/pushrules/global/underride/.m.rule.message";
    assert_eq!(alice.get(&server, &format!("{rule}/enabled")).await.ok()["enabled"], true);
    alice.put(&server, &format!("{rule}/enabled"), json!({ "enabled": false })).await.ok();
    assert_eq!(alice.get(&server, &format!("{rule}/enabled")).await.ok()["enabled"], false);
    let reply = alice.get(&server, rule).await.ok();
    assert_eq!(reply["enabled"], false, "{reply}");

    alice.put(&server, &format!("{rule}/actions"), json!({ "actions": [] })).await.ok();
    assert_eq!(alice.get(&server, &format!("{rule}/actions")).await.ok()["actions"], json!([]));

    let custom = "/_matrix/client/v3/pushrules/global/content/cats";
    alice.put(&server, custom, json!({ "pattern": "cat*", "actions": ["notify"] })).await.ok();
    assert_eq!(alice.get(&server, custom).await.ok()["pattern"], "cat*");
    alice.delete(&server, custom, None).await.ok();
    let reply = alice.get(&server, custom).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
    let reply = alice.get(&server, "/_matrix/client/v3/pushrules/global/override/nope").await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
}

#[tokio::test]
async fn notification_counts_follow_messages_and_receipts() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({ "invite": [bob.user_id] })).await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    alice.send_text(&server, &room, "before").await;
    // A receipt on the newest event: nothing unread.
    let last = bob.send_text(&server, &room, "mine").await;
    let path = format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&last));
    bob.post(&server, &path, json!({})).await.ok();
    assert_eq!(counts(&server, &bob, &room).await, (json!(0), json!(0)));

    alice.send_text(&server, &room, "hello").await;
    // An intentional mention highlights (`.m.rule.is_user_mention`).
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/m1", enc(&room));
    let content =
        json!({ "msgtype": "m.text", "body": "look", "m.mentions": { "user_ids": [bob.user_id] } });
    alice.put(&server, &path, content).await.ok();
    assert_eq!(counts(&server, &bob, &room).await, (json!(2), json!(1)));
    // A room mention highlights when the sender may notify the room (Alice created it).
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/m2", enc(&room));
    let content = json!({ "msgtype": "m.text", "body": "all", "m.mentions": { "room": true } });
    let reply = alice.put(&server, &path, content).await.ok();
    let mention = reply["event_id"].as_str().unwrap().to_owned();
    assert_eq!(counts(&server, &bob, &room).await, (json!(3), json!(2)));
    bob.send_text(&server, &room, "reading").await;
    assert_eq!(counts(&server, &bob, &room).await, (json!(3), json!(2)));

    let path = format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&mention));
    bob.post(&server, &path, json!({})).await.ok();
    assert_eq!(counts(&server, &bob, &room).await, (json!(0), json!(0)));
}

#[tokio::test]
async fn messages_from_before_joining_do_not_count() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let carol = register(&server, "carol").await;
    let room = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
    alice.send_text(&server, &room, "old news").await;
    alice.send_text(&server, &room, "older news").await;
    carol.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    assert_eq!(counts(&server, &carol, &room).await, (json!(0), json!(0)));

    alice.send_text(&server, &room, "welcome").await;
    assert_eq!(counts(&server, &carol, &room).await, (json!(1), json!(0)));
    // A profile change is a join over a join: it does not hide what came before it.
    let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(&carol.user_id));
    carol.put(&server, &path, json!({ "displayname": "Carol" })).await.ok();
    assert_eq!(counts(&server, &carol, &room).await, (json!(1), json!(0)));
}
