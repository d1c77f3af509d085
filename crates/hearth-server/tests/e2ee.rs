//! End-to-end encryption through the handlers: keys, claims, to-device, device lists, backups
//! and device deletion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{User, enc, register, server};
use hearth_server::Server;
use serde_json::{Value, json};

fn device_keys(user: &User) -> Value {
    json!({
        "user_id": user.user_id,
        "device_id": user.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{}", user.device_id): "curvekey",
            format!("ed25519:{}", user.device_id): "edkey",
        },
        "signatures": { &user.user_id: { format!("ed25519:{}", user.device_id): "sig" } },
    })
}

async fn upload(server: &Server, user: &User, body: Value) -> Value {
    user.post(server, "/_matrix/client/v3/keys/upload", body).await.ok()
}

async fn claim(server: &Server, by: &User, of: &User) -> Value {
    let body = json!({ "one_time_keys": { &of.user_id: { &of.device_id: "signed_curve25519" } } });
    by.post(server, "/_matrix/client/v3/keys/claim", body).await.ok()
}

fn next_batch(sync: &Value) -> String {
    sync["next_batch"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn keys_upload_query_and_claim() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;

    let reply = upload(
        &server,
        &alice,
        json!({
            "device_keys": device_keys(&alice),
            "one_time_keys": { "signed_curve25519:AAAAAQ": { "key": "otk1", "signatures": {} } },
            "fallback_keys": {
                "signed_curve25519:AAAAAg": { "key": "fb1", "fallback": true, "signatures": {} }
            },
        }),
    )
    .await;
    assert_eq!(reply["one_time_key_counts"]["signed_curve25519"], 1, "{reply}");
    let reply = upload(&server, &bob, json!({ "device_keys": device_keys(&bob) })).await;
    assert_eq!(reply["one_time_key_counts"]["signed_curve25519"], 0, "{reply}");

    let body = json!({ "device_keys": { &alice.user_id: [], &bob.user_id: [bob.device_id] } });
    let query = bob.post(&server, "/_matrix/client/v3/keys/query", body).await.ok();
    let keys = &query["device_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(keys["keys"][format!("curve25519:{}", alice.device_id)], "curvekey", "{query}");
    assert_eq!(query["device_keys"][&bob.user_id][&bob.device_id]["user_id"], bob.user_id);

    // The one-time key is handed out once, then the fallback key (marked used).
    let first = claim(&server, &bob, &alice).await;
    let claimed = &first["one_time_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(claimed["signed_curve25519:AAAAAQ"]["key"], "otk1", "{first}");
    let second = claim(&server, &bob, &alice).await;
    let claimed = &second["one_time_keys"][&alice.user_id][&alice.device_id];
    assert_eq!(claimed["signed_curve25519:AAAAAg"]["key"], "fb1", "{second}");

    let sync = alice.sync(&server, None, "").await;
    assert_eq!(sync["device_one_time_keys_count"]["signed_curve25519"], 0, "{sync}");
    assert_eq!(sync["device_unused_fallback_key_types"], json!([]), "{sync}");
}

#[tokio::test]
async fn cross_signing_keys_need_no_auth_the_first_time() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let master =
        json!({ "user_id": alice.user_id, "usage": ["master"], "keys": { "ed25519:mk": "mk" } });
    let body = json!({ "master_key": master });
    let path = "/_matrix/client/v3/keys/device_signing/upload";
    alice.post(&server, path, body.clone()).await.ok();
    // Replacing it needs the password.
    assert_eq!(alice.post(&server, path, body).await.status, 401);

    let query = alice
        .post(
            &server,
            "/_matrix/client/v3/keys/query",
            json!({ "device_keys": { &alice.user_id: [] } }),
        )
        .await
        .ok();
    assert_eq!(query["master_keys"][&alice.user_id]["keys"]["ed25519:mk"], "mk", "{query}");
}

#[tokio::test]
async fn to_device_messages_arrive_once() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let since = next_batch(&bob.sync(&server, None, "").await);

    let body = json!({ "messages": { &bob.user_id: { "*": { "secret": "hi" } } } });
    let path = "/_matrix/client/v3/sendToDevice/m.test/txn1";
    alice.put(&server, path, body.clone()).await.ok();
    // Same transaction ID: not queued again.
    alice.put(&server, path, body).await.ok();

    let sync = bob.sync(&server, Some(&since), "").await;
    let events = sync["to_device"]["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{sync}");
    assert_eq!(events[0]["content"]["secret"], "hi");
    assert_eq!(events[0]["sender"], alice.user_id);
    assert_eq!(events[0]["type"], "m.test");

    // Syncing from the new token acknowledges and removes them.
    let sync = bob.sync(&server, Some(&next_batch(&sync)), "").await;
    assert!(sync["to_device"]["events"].as_array().is_none_or(Vec::is_empty), "{sync}");
    let sync = bob.sync(&server, Some(&since), "").await;
    assert!(sync["to_device"]["events"].as_array().is_none_or(Vec::is_empty), "{sync}");
}

#[tokio::test]
async fn device_list_changes_reach_room_members() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let room = alice.create_room(&server, json!({ "invite": [bob.user_id] })).await;
    bob.post(&server, &format!("/_matrix/client/v3/join/{}", enc(&room)), json!({})).await.ok();
    let since = next_batch(&bob.sync(&server, None, "").await);

    upload(&server, &alice, json!({ "device_keys": device_keys(&alice) })).await;
    upload(&server, &carol, json!({ "device_keys": device_keys(&carol) })).await;

    let sync = bob.sync(&server, Some(&since), "").await;
    assert_eq!(sync["device_lists"]["changed"], json!([alice.user_id]), "{sync}");
    let now = next_batch(&sync);
    let path = format!("/_matrix/client/v3/keys/changes?from={}&to={}", enc(&since), enc(&now));
    let changes = bob.get(&server, &path).await.ok();
    assert_eq!(changes["changed"], json!([alice.user_id]), "{changes}");
}

#[tokio::test]
async fn room_key_backup_versions_and_keys() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let algorithm = json!({
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": { "public_key": "pk", "signatures": {} },
    });
    assert_eq!(alice.get(&server, "/_matrix/client/v3/room_keys/version").await.status, 404);
    let created =
        alice.post(&server, "/_matrix/client/v3/room_keys/version", algorithm.clone()).await.ok();
    let version = created["version"].as_str().unwrap().to_owned();
    let info = alice.get(&server, "/_matrix/client/v3/room_keys/version").await.ok();
    assert_eq!(info["version"], version, "{info}");
    assert_eq!(info["auth_data"]["public_key"], "pk", "{info}");
    assert_eq!(info["count"], 0, "{info}");

    let data = json!({
        "first_message_index": 0, "forwarded_count": 0, "is_verified": true,
        "session_data": { "ephemeral": "e", "ciphertext": "c", "mac": "m" },
    });
    let room = "!room:hearth.test";
    let path = format!("/_matrix/client/v3/room_keys/keys/{}/sess1?version={version}", enc(room));
    let put = alice.put(&server, &path, data).await.ok();
    assert_eq!(put["count"], 1, "{put}");
    let etag = put["etag"].clone();

    let keys = alice
        .get(&server, &format!("/_matrix/client/v3/room_keys/keys?version={version}"))
        .await
        .ok();
    assert_eq!(keys["rooms"][room]["sessions"]["sess1"]["session_data"]["mac"], "m", "{keys}");
    let info =
        alice.get(&server, &format!("/_matrix/client/v3/room_keys/version/{version}")).await.ok();
    assert_eq!(info["count"], 1, "{info}");
    assert_eq!(info["etag"], etag, "{info}");

    // A newer version makes the old one the wrong one to write to.
    alice.post(&server, "/_matrix/client/v3/room_keys/version", algorithm.clone()).await.ok();
    let wrong = alice
        .put(
            &server,
            &path,
            json!({
                "first_message_index": 0, "forwarded_count": 0, "is_verified": true,
                "session_data": { "ephemeral": "e", "ciphertext": "c", "mac": "m" },
            }),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(wrong.errcode(), "M_WRONG_ROOM_KEYS_VERSION");
    assert_ne!(wrong.body["current_version"], version, "{}", wrong.body);

    let path = format!("/_matrix/client/v3/room_keys/keys?version={version}");
    let deleted = alice.delete(&server, &path, None).await.ok();
    assert_eq!(deleted["count"], 0, "{deleted}");

    // A deleted version is gone, and its number is not handed out again.
    let latest = alice.get(&server, "/_matrix/client/v3/room_keys/version").await.ok();
    let latest = latest["version"].as_str().unwrap().to_owned();
    let path = format!("/_matrix/client/v3/room_keys/version/{latest}");
    alice.delete(&server, &path, None).await.ok();
    assert_eq!(alice.get(&server, &path).await.status, 404);
    let again = alice.post(&server, "/_matrix/client/v3/room_keys/version", algorithm).await.ok();
    assert_ne!(again["version"], latest, "{again}");
    assert_ne!(again["version"], version, "{again}");
}

#[tokio::test]
async fn deleting_a_device_needs_the_password() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let login = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": "alice" },
        "password": "password",
    });
    let other =
        common::request(&server, "POST", "/_matrix/client/v3/login", None, Some(login)).await.ok();
    let other_device = other["device_id"].as_str().unwrap().to_owned();
    let other_user = User {
        user_id: alice.user_id.clone(),
        token: other["access_token"].as_str().unwrap().to_owned(),
        device_id: other_device.clone(),
    };
    upload(&server, &other_user, json!({ "device_keys": device_keys(&other_user) })).await;

    let devices = alice.get(&server, "/_matrix/client/v3/devices").await.ok();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2, "{devices}");

    let path = format!("/_matrix/client/v3/devices/{}", enc(&other_device));
    let first = alice.delete(&server, &path, Some(json!({}))).await;
    assert_eq!(first.status, 401, "{}", first.body);
    let session = first.body["session"].as_str().unwrap().to_owned();
    let auth = json!({ "auth": {
        "type": "m.login.password", "session": session,
        "identifier": { "type": "m.id.user", "user": alice.user_id },
        "password": "password",
    }});
    alice.delete(&server, &path, Some(auth)).await.ok();

    assert_eq!(alice.get(&server, &path).await.status, 404);
    assert_eq!(other_user.get(&server, "/_matrix/client/v3/account/whoami").await.status, 401);
    let body = json!({ "device_keys": { &alice.user_id: [] } });
    let query = alice.post(&server, "/_matrix/client/v3/keys/query", body).await.ok();
    assert_eq!(query["device_keys"][&alice.user_id], json!({}), "{query}");
}

#[tokio::test]
async fn signatures_and_device_names_show_in_queries() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    upload(&server, &alice, json!({ "device_keys": device_keys(&alice) })).await;
    let master =
        json!({ "user_id": alice.user_id, "usage": ["master"], "keys": { "ed25519:mk": "mk" } });
    let path = "/_matrix/client/v3/keys/device_signing/upload";
    alice.post(&server, path, json!({ "master_key": master })).await.ok();

    let mut signed_device = device_keys(&alice);
    signed_device["signatures"][&alice.user_id]["ed25519:ssk"] = json!("device-sig");
    let mut signed_master = master.clone();
    signed_master["signatures"] = json!({ &alice.user_id: { "ed25519:DEV": "master-sig" } });
    let body = json!({ &alice.user_id: { &alice.device_id: signed_device, "mk": signed_master } });
    alice.post(&server, "/_matrix/client/v3/keys/signatures/upload", body).await.ok();

    let path = format!("/_matrix/client/v3/devices/{}", enc(&alice.device_id));
    alice.put(&server, &path, json!({ "display_name": "Laptop" })).await.ok();
    assert_eq!(alice.get(&server, &path).await.ok()["display_name"], "Laptop");

    let body = json!({ "device_keys": { &alice.user_id: [] } });
    let query = alice.post(&server, "/_matrix/client/v3/keys/query", body).await.ok();
    let device = &query["device_keys"][&alice.user_id][&alice.device_id];
    let signatures = &device["signatures"][&alice.user_id];
    assert_eq!(signatures["ed25519:ssk"], "device-sig", "{query}");
    assert_eq!(signatures[format!("ed25519:{}", alice.device_id)], "sig", "{query}");
    assert_eq!(device["unsigned"]["device_display_name"], "Laptop", "{query}");
    let master = &query["master_keys"][&alice.user_id];
    assert_eq!(master["signatures"][&alice.user_id]["ed25519:DEV"], "master-sig", "{query}");
}
