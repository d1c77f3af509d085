//! The server-server API's entry points: the self-certifying key, and `X-Matrix` request
//! authentication (a request is from the server whose key is its name, or it is refused).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use hearth_core::{
    ServerIdentity,
    ruma::{CanonicalJsonObject, ServerName},
    signing,
};
use hearth_server::Server;
use serde_json::{Value, json};

/// Sends a federation request signed by `from` for `destination` (with `tamper` applied to the
/// signed request before it is sent).
async fn federation_get(
    server: &Server,
    from: &ServerIdentity,
    destination: &ServerName,
    path: &str,
    tamper: impl FnOnce(&mut http::Request<Vec<u8>>),
) -> (u16, Value) {
    let mut request = http::Request::builder().method("GET").uri(path).body(Vec::new()).unwrap();
    hearth_server::sign_request(from, destination, &mut request).unwrap();
    tamper(&mut request);
    let response = server.handle(request).await;
    let status = response.status().as_u16();
    (status, serde_json::from_slice(response.body()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_server_key_is_the_server_name_and_signed_by_it() {
    let server = common::server().await;
    let reply = common::request(&server, "GET", "/_matrix/key/v2/server", None, None).await;
    let keys = reply.ok();
    let name = server.server_name().as_str();
    assert_eq!(keys["server_name"], name);
    let key = keys["verify_keys"]["ed25519:hearth"]["key"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(key).unwrap();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(hex, name, "the key is the name");
    assert!(keys["valid_until_ts"].as_u64().unwrap() > 1_700_000_000_000);
    let object: CanonicalJsonObject = serde_json::from_value(keys.clone()).unwrap();
    signing::verify_server_json(server.server_name(), &object).unwrap();

    let version =
        common::request(&server, "GET", "/_matrix/federation/v1/version", None, None).await.ok();
    assert_eq!(version["server"]["name"], "Hearth");
}

#[tokio::test]
async fn a_signed_request_from_another_server_is_answered() {
    let server = common::server().await;
    let alice = common::register(&server, "alice").await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", common::enc(&alice.user_id));
    alice.put(&server, &path, json!({ "displayname": "Alice" })).await.ok();
    let remote = ServerIdentity::generate().unwrap();

    let query =
        format!("/_matrix/federation/v1/query/profile?user_id={}", common::enc(&alice.user_id));
    let (status, profile) =
        federation_get(&server, &remote, server.server_name(), &query, |_| {}).await;
    assert_eq!((status, &profile["displayname"]), (200, &json!("Alice")));
    let (status, profile) = federation_get(
        &server,
        &remote,
        server.server_name(),
        &format!("{query}&field=avatar_url"),
        |_| {},
    )
    .await;
    assert_eq!((status, profile.get("displayname")), (200, None));

    let stranger = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        common::enc(&format!("@bob:{}", remote.server_name()))
    );
    let (status, error) =
        federation_get(&server, &remote, server.server_name(), &stranger, |_| {}).await;
    assert_eq!((status, error["errcode"].as_str()), (400, Some("M_INVALID_PARAM")));
}

#[tokio::test]
async fn unsigned_misaddressed_tampered_or_impersonating_requests_are_refused() {
    let server = common::server().await;
    let alice = common::register(&server, "alice").await;
    let query =
        format!("/_matrix/federation/v1/query/profile?user_id={}", common::enc(&alice.user_id));
    let remote = ServerIdentity::generate().unwrap();
    let other = ServerIdentity::generate().unwrap();
    let unauthorized = |(status, body): (u16, Value)| {
        assert_eq!((status, body["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{body}");
    };

    // No signature at all.
    let reply = common::request(&server, "GET", &query, None, None).await;
    assert_eq!((reply.status, reply.errcode()), (401, "M_UNAUTHORIZED"));
    // Signed for another destination.
    unauthorized(federation_get(&server, &remote, other.server_name(), &query, |_| {}).await);
    // The signed request changed on the way (another user asked for).
    unauthorized(
        federation_get(&server, &remote, server.server_name(), &query, |request| {
            *request.uri_mut() = format!("{query}&field=displayname").parse().unwrap();
        })
        .await,
    );
    // Signed by one server, claiming to be another (whose key is its name).
    unauthorized(
        federation_get(&server, &remote, server.server_name(), &query, |request| {
            let header = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .replace(remote.server_name().as_str(), other.server_name().as_str());
            request.headers_mut().insert("authorization", header.parse().unwrap());
        })
        .await,
    );
    // An origin that is not a key cannot sign anything.
    unauthorized(
        federation_get(&server, &remote, server.server_name(), &query, |request| {
            let header = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .replace(remote.server_name().as_str(), "matrix.example.org");
            request.headers_mut().insert("authorization", header.parse().unwrap());
        })
        .await,
    );
    // Not an X-Matrix header.
    unauthorized(
        federation_get(&server, &remote, server.server_name(), &query, |request| {
            request.headers_mut().insert("authorization", "X-Matrix nonsense".parse().unwrap());
        })
        .await,
    );
}

#[tokio::test]
async fn a_peer_cannot_pass_off_another_servers_request() {
    let server = common::server().await;
    let alice = common::register(&server, "alice").await;
    let path =
        format!("/_matrix/federation/v1/query/profile?user_id={}", common::enc(&alice.user_id));
    let signer = ServerIdentity::generate().unwrap();
    let relaying_peer = ServerIdentity::generate().unwrap();
    let signed = || {
        let mut request =
            http::Request::builder().method("GET").uri(path.as_str()).body(Vec::new()).unwrap();
        hearth_server::sign_request(&signer, server.server_name(), &mut request).unwrap();
        request
    };
    let relayed = server.handle_from_peer(relaying_peer.server_name(), signed()).await;
    assert_eq!(relayed.status(), 401);
    let body: Value = serde_json::from_slice(relayed.body()).unwrap();
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");
    let direct = server.handle_from_peer(signer.server_name(), signed()).await;
    assert_eq!(direct.status(), 200);
}
