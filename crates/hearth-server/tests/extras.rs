//! Search, notifications, pushers and the endpoints for features the server does not offer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, server};
use serde_json::{Value, json};

fn bodies(results: &Value) -> Vec<String> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["result"]["content"]["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_finds_messages_in_joined_rooms_only_and_paginates() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({})).await;
    let private = bob.create_room(&server, json!({})).await;
    alice.send_text(&server, &room, "I like Pineapple pizza").await;
    alice.send_text(&server, &room, "nothing to see").await;
    let newest = alice.send_text(&server, &room, "more PINEAPPLE please").await;
    bob.send_text(&server, &private, "secret pineapple stash").await;

    let search = |term: &str, limit: u64, next_batch: Option<&str>| {
        let mut path = "/_matrix/client/v3/search".to_owned();
        if let Some(next_batch) = next_batch {
            path.push_str(&format!("?next_batch={next_batch}"));
        }
        let body = json!({ "search_categories": { "room_events": {
            "search_term": term,
            "filter": { "limit": limit },
            "event_context": { "before_limit": 1, "after_limit": 1 },
        } } });
        (path, body)
    };

    let (path, body) = search("pineapple", 10, None);
    let reply = alice.post(&server, &path, body).await.ok();
    let events = &reply["search_categories"]["room_events"];
    // Newest first, case-insensitive, and nothing from Bob's room Alice is not in.
    assert_eq!(
        bodies(&events["results"]),
        ["more PINEAPPLE please", "I like Pineapple pizza"],
        "{reply}"
    );
    assert_eq!(events["count"], 2, "{reply}");
    assert!(events["next_batch"].is_null(), "{reply}");
    assert_eq!(events["results"][0]["result"]["event_id"], newest.as_str());
    let before = &events["results"][0]["context"]["events_before"];
    assert_eq!(before[0]["content"]["body"], "nothing to see", "{reply}");

    // Bob finds his own message.
    let (path, body) = search("stash", 10, None);
    let reply = bob.post(&server, &path, body).await.ok();
    assert_eq!(
        bodies(&reply["search_categories"]["room_events"]["results"]),
        ["secret pineapple stash"]
    );

    // Naming Bob's room in the filter does not let Alice search it.
    let body = json!({ "search_categories": { "room_events": {
        "search_term": "stash", "filter": { "rooms": [private] },
    } } });
    let reply = alice.post(&server, "/_matrix/client/v3/search", body).await.ok();
    assert_eq!(reply["search_categories"]["room_events"]["count"], 0, "{reply}");

    // One result per page: the second page holds the older match, and is the last.
    let (path, body) = search("pineapple", 1, None);
    let first = alice.post(&server, &path, body).await.ok();
    let first = &first["search_categories"]["room_events"];
    assert_eq!(bodies(&first["results"]), ["more PINEAPPLE please"], "{first}");
    let next = first["next_batch"].as_str().expect("a next batch").to_owned();
    let (path, body) = search("pineapple", 1, Some(&next));
    let second = alice.post(&server, &path, body).await.ok();
    let second = &second["search_categories"]["room_events"];
    assert_eq!(bodies(&second["results"]), ["I like Pineapple pizza"], "{second}");
    assert!(second["next_batch"].is_null(), "{second}");
}

#[tokio::test]
async fn notifications_list_mentions_with_highlight() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({ "invite": [bob.user_id] })).await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    alice.send_text(&server, &room, "plain hello").await;
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/mention", enc(&room));
    let content =
        json!({ "msgtype": "m.text", "body": "look", "m.mentions": { "user_ids": [bob.user_id] } });
    let mention =
        alice.put(&server, &path, content).await.ok()["event_id"].as_str().unwrap().to_owned();
    bob.send_text(&server, &room, "my own").await;

    let all = bob.get(&server, "/_matrix/client/v3/notifications").await.ok();
    let list = all["notifications"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|n| n["event"]["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{all}");
    assert_eq!(ids[0], mention, "{all}");
    assert_eq!(list[1]["event"]["content"]["body"], "plain hello", "{all}");
    assert_eq!(list[0]["room_id"], room.as_str());
    assert_eq!(list[0]["read"], false, "{all}");
    let highlights = |n: &Value| {
        n["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["set_tweak"] == "highlight" && a["value"] != false)
    };
    assert!(highlights(&list[0]), "{all}");
    assert!(!highlights(&list[1]), "{all}");

    let only = bob.get(&server, "/_matrix/client/v3/notifications?only=highlight").await.ok();
    let list = only["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{only}");
    assert_eq!(list[0]["event"]["event_id"], mention.as_str());

    // One per page, then the next page from the token.
    let page = bob.get(&server, "/_matrix/client/v3/notifications?limit=1").await.ok();
    assert_eq!(page["notifications"].as_array().unwrap().len(), 1, "{page}");
    let from = page["next_token"].as_str().expect("a next token").to_owned();
    let next = bob
        .get(&server, &format!("/_matrix/client/v3/notifications?limit=1&from={from}"))
        .await
        .ok();
    assert_eq!(next["notifications"][0]["event"]["content"]["body"], "plain hello", "{next}");
    assert!(next["next_token"].is_null(), "{next}");

    // A receipt on the mention marks both read.
    let path = format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", enc(&room), enc(&mention));
    bob.post(&server, &path, json!({})).await.ok();
    let all = bob.get(&server, "/_matrix/client/v3/notifications").await.ok();
    assert_eq!(all["notifications"][0]["read"], true, "{all}");
    assert_eq!(all["notifications"][1]["read"], true, "{all}");
}

#[tokio::test]
async fn pushers_are_set_listed_and_deleted() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let pusher = |pushkey: &str, name: &str| {
        json!({
            "pushkey": pushkey, "kind": "http", "app_id": "im.example.app",
            "app_display_name": name, "device_display_name": "phone", "lang": "en",
            "data": { "url": "https://push.example.org/_matrix/push/v1/notify" },
        })
    };
    let list = |reply: Value| reply["pushers"].as_array().unwrap().clone();
    assert!(list(alice.get(&server, "/_matrix/client/v3/pushers").await.ok()).is_empty());

    alice.post(&server, "/_matrix/client/v3/pushers/set", pusher("key1", "App")).await.ok();
    alice.post(&server, "/_matrix/client/v3/pushers/set", pusher("key2", "App")).await.ok();
    // The same IDs again replace the first pusher.
    alice.post(&server, "/_matrix/client/v3/pushers/set", pusher("key1", "Renamed")).await.ok();
    let pushers = list(alice.get(&server, "/_matrix/client/v3/pushers").await.ok());
    let keys: Vec<(&str, &str)> = pushers
        .iter()
        .map(|p| (p["pushkey"].as_str().unwrap(), p["app_display_name"].as_str().unwrap()))
        .collect();
    assert_eq!(keys, [("key1", "Renamed"), ("key2", "App")]);
    assert_eq!(pushers[0]["data"]["url"], "https://push.example.org/_matrix/push/v1/notify");
    // Bob's pushers are his own.
    assert!(list(bob.get(&server, "/_matrix/client/v3/pushers").await.ok()).is_empty());

    let delete = json!({ "pushkey": "key1", "app_id": "im.example.app", "kind": null });
    alice.post(&server, "/_matrix/client/v3/pushers/set", delete).await.ok();
    let pushers = list(alice.get(&server, "/_matrix/client/v3/pushers").await.ok());
    let keys: Vec<&str> = pushers.iter().map(|p| p["pushkey"].as_str().unwrap()).collect();
    assert_eq!(keys, ["key2"]);
}

#[tokio::test]
async fn absent_features_answer_as_specified() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let threepids = alice.get(&server, "/_matrix/client/v3/account/3pid").await.ok();
    assert_eq!(threepids, json!({ "threepids": [] }));
    let protocols = alice.get(&server, "/_matrix/client/v3/thirdparty/protocols").await.ok();
    assert_eq!(protocols, json!({}));
    let turn = alice.get(&server, "/_matrix/client/v3/voip/turnServer").await;
    assert_eq!((turn.status, turn.errcode()), (404, "M_NOT_FOUND"), "{}", turn.body);
    // They need an access token like any other.
    let anonymous =
        common::request(&server, "GET", "/_matrix/client/v3/account/3pid", None, None).await;
    assert_eq!(anonymous.status, 401);
}
