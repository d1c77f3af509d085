//! Profiles through the handlers: set, read back, and see the change in joined rooms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, request, server};
use serde_json::json;

#[tokio::test]
async fn profile_changes_are_readable_and_reach_member_events() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let room = alice.create_room(&server, json!({})).await;
    let profile = format!("/_matrix/client/v3/profile/{}", enc(&alice.user_id));

    // Registration sets the localpart as the display name; there is no avatar yet.
    let reply = request(&server, "GET", &format!("{profile}/displayname"), None, None).await.ok();
    assert_eq!(reply, json!({ "displayname": "alice" }));
    let reply = request(&server, "GET", &format!("{profile}/avatar_url"), None, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{}", reply.body);

    alice
        .put(&server, &format!("{profile}/displayname"), json!({ "displayname": "Alice" }))
        .await
        .ok();
    alice
        .put(&server, &format!("{profile}/avatar_url"), json!({ "avatar_url": "mxc://x/abc" }))
        .await
        .ok();

    let reply = request(&server, "GET", &format!("{profile}/displayname"), None, None).await.ok();
    assert_eq!(reply, json!({ "displayname": "Alice" }));
    let reply = request(&server, "GET", &profile, None, None).await.ok();
    assert_eq!(reply, json!({ "displayname": "Alice", "avatar_url": "mxc://x/abc" }));

    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.member/{}",
        enc(&room),
        enc(&alice.user_id)
    );
    let member = alice.get(&server, &path).await.ok();
    assert_eq!(member["membership"], "join", "{member}");
    assert_eq!(member["displayname"], "Alice", "{member}");
    assert_eq!(member["avatar_url"], "mxc://x/abc", "{member}");

    // Clearing the avatar reaches the member event too.
    alice.delete(&server, &format!("{profile}/avatar_url"), None).await.ok();
    let reply = request(&server, "GET", &profile, None, None).await.ok();
    assert_eq!(reply, json!({ "displayname": "Alice" }));
    let member = alice.get(&server, &path).await.ok();
    assert!(member.get("avatar_url").is_none(), "{member}");

    // Nobody else may change it.
    let bob = register(&server, "bob").await;
    let reply =
        bob.put(&server, &format!("{profile}/displayname"), json!({ "displayname": "Eve" })).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"));
    let reply =
        request(&server, "GET", "/_matrix/client/v3/profile/@nobody:elsewhere", None, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
}
