//! Access tokens stop working the moment their device goes, although resolved tokens are cached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{User, register, request};
use serde_json::json;

const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

async fn login(server: &hearth_server::Server, device_id: &str) -> User {
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": "alice" },
        "password": "password",
        "device_id": device_id,
    });
    let reply = request(server, "POST", "/_matrix/client/v3/login", None, Some(body)).await.ok();
    User {
        user_id: reply["user_id"].as_str().unwrap().to_owned(),
        token: reply["access_token"].as_str().unwrap().to_owned(),
        device_id: reply["device_id"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn a_token_is_refused_once_its_device_is_logged_out_replaced_or_deleted() {
    let server = common::server().await;
    let first = register(&server, "alice").await;
    // Each token is used once first, so that it sits resolved in the cache.
    first.get(&server, WHOAMI).await.ok();
    let phone = login(&server, "PHONE").await;
    phone.get(&server, WHOAMI).await.ok();

    // Logging in again as the same device replaces its token.
    let phone_again = login(&server, "PHONE").await;
    assert_eq!(phone.get(&server, WHOAMI).await.errcode(), "M_UNKNOWN_TOKEN");
    assert_eq!(phone_again.get(&server, WHOAMI).await.ok()["device_id"], "PHONE");

    // POST /logout.
    first.post(&server, "/_matrix/client/v3/logout", json!({})).await.ok();
    let reply = first.get(&server, WHOAMI).await;
    assert_eq!((reply.status, reply.errcode()), (401, "M_UNKNOWN_TOKEN"));

    // POST /logout/all takes the remaining device with it.
    let laptop = login(&server, "LAPTOP").await;
    laptop.get(&server, WHOAMI).await.ok();
    phone_again.post(&server, "/_matrix/client/v3/logout/all", json!({})).await.ok();
    for user in [&laptop, &phone_again] {
        assert_eq!(user.get(&server, WHOAMI).await.errcode(), "M_UNKNOWN_TOKEN");
    }
    // A fresh login works after all that.
    login(&server, "TABLET").await.get(&server, WHOAMI).await.ok();
}
