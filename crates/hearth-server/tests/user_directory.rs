//! User directory search through the handlers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, server};
use serde_json::{Value, json};

fn ids(reply: &Value) -> Vec<&str> {
    reply["results"].as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn search_matches_ids_and_display_names_case_insensitively() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", enc(&carol.user_id));
    carol.put(&server, &path, json!({ "displayname": "Bobby Tables" })).await.ok();

    let search = "/_matrix/client/v3/user_directory/search";
    let reply = alice.post(&server, search, json!({ "search_term": "BOB" })).await.ok();
    let mut found = ids(&reply);
    found.sort_unstable();
    assert_eq!(found, [bob.user_id.as_str(), carol.user_id.as_str()], "{reply}");
    assert_eq!(reply["limited"], false);
    let carol_result = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == carol.user_id.as_str())
        .unwrap();
    assert_eq!(carol_result["display_name"], "Bobby Tables");

    let reply = alice.post(&server, search, json!({ "search_term": "bob", "limit": 1 })).await.ok();
    assert_eq!(ids(&reply).len(), 1, "{reply}");
    assert_eq!(reply["limited"], true);

    let reply = alice.post(&server, search, json!({ "search_term": "zzz" })).await.ok();
    assert!(ids(&reply).is_empty(), "{reply}");
}
