//! `/relations` (all three forms) and `/threads`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, register, server};
use serde_json::json;

#[tokio::test]
async fn relations_and_threads_are_listed() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let room = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    let root = alice.send_text(&server, &room, "root").await;
    let other_root = alice.send_text(&server, &room, "no thread here").await;

    let send = |user: common::User,
                kind: &'static str,
                txn: &'static str,
                content: serde_json::Value| {
        let server = server.clone();
        let room = room.clone();
        async move {
            let path = format!("/_matrix/client/v3/rooms/{}/send/{kind}/{txn}", enc(&room));
            user.put(&server, &path, content).await.ok()["event_id"].as_str().unwrap().to_owned()
        }
    };
    let reply = send(
        bob.clone(),
        "m.room.message",
        "r1",
        json!({
            "msgtype": "m.text", "body": "in thread",
            "m.relates_to": { "rel_type": "m.thread", "event_id": root },
        }),
    )
    .await;
    let reaction = send(
        alice.clone(),
        "m.reaction",
        "x1",
        json!({
            "m.relates_to": { "rel_type": "m.annotation", "event_id": root, "key": "👍" },
        }),
    )
    .await;

    let base = format!("/_matrix/client/v1/rooms/{}/relations/{}", enc(&room), enc(&root));
    let ids = |reply: serde_json::Value| -> Vec<String> {
        reply["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(alice.get(&server, &base).await.ok()),
        [reaction.as_str(), reply.as_str()],
        "newest first"
    );
    assert_eq!(
        ids(alice.get(&server, &format!("{base}?dir=f")).await.ok()),
        [reply.as_str(), reaction.as_str()]
    );
    assert_eq!(ids(alice.get(&server, &format!("{base}/m.thread")).await.ok()), [reply.as_str()]);
    assert_eq!(
        ids(alice.get(&server, &format!("{base}/m.annotation/m.reaction")).await.ok()),
        [reaction.as_str()]
    );
    assert!(
        ids(alice.get(&server, &format!("{base}/m.annotation/m.room.message")).await.ok())
            .is_empty()
    );
    let page = alice.get(&server, &format!("{base}?limit=1")).await.ok();
    assert_eq!(ids(page.clone()), [reaction.as_str()]);
    let next = page["next_batch"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(alice.get(&server, &format!("{base}?limit=1&from={next}")).await.ok()),
        [reply.as_str()]
    );

    let threads =
        alice.get(&server, &format!("/_matrix/client/v1/rooms/{}/threads", enc(&room))).await.ok();
    let chunk = threads["chunk"].as_array().unwrap();
    assert_eq!(chunk.len(), 1, "{threads}");
    assert_eq!(chunk[0]["event_id"], root.as_str());
    assert_eq!(chunk[0]["unsigned"]["m.relations"]["m.thread"]["count"], 1);
    assert_eq!(
        chunk[0]["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"],
        reply.as_str()
    );
    assert_ne!(chunk[0]["event_id"], other_root.as_str());

    let missing = alice
        .get(
            &server,
            &format!("/_matrix/client/v1/rooms/{}/relations/{}", enc(&room), enc("$nope")),
        )
        .await;
    assert_eq!((missing.status, missing.errcode()), (404, "M_NOT_FOUND"));
}
