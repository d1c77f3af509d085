//! The media repository through the handlers: upload, download on both paths, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{raw, register, server, server_with};
use hearth_server::{Config, Registration};

/// Splits `mxc://server/id` into its parts.
fn mxc_parts(uri: &str) -> (String, String) {
    let rest = uri.strip_prefix("mxc://").expect(uri);
    let (server_name, media_id) = rest.split_once('/').expect(uri);
    (server_name.to_owned(), media_id.to_owned())
}

#[tokio::test]
async fn upload_then_download_on_both_paths() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    // Larger than the 1 MiB JSON body limit: uploads have their own limit.
    let bytes: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let reply = raw(
        &server,
        "POST",
        "/_matrix/media/v3/upload?filename=cat.png",
        Some(&alice.token),
        bytes.clone(),
        Some("image/png"),
    )
    .await;
    let body = reply.ok();
    let uri = body["content_uri"].as_str().unwrap();
    let (server_name, media_id) = mxc_parts(uri);
    assert_eq!(server_name, server.server_name().as_str());

    for path in [
        format!("/_matrix/client/v1/media/download/{server_name}/{media_id}"),
        format!("/_matrix/client/v1/media/thumbnail/{server_name}/{media_id}?width=32&height=32"),
    ] {
        let reply = raw(&server, "GET", &path, Some(&alice.token), Vec::new(), None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.content_type.as_deref(), Some("image/png"), "{path}");
        assert!(reply.bytes == bytes, "{path}: different bytes");
        // The authenticated paths need a token.
        let reply = raw(&server, "GET", &path, None, Vec::new(), None).await;
        assert_eq!((reply.status, reply.errcode()), (401, "M_MISSING_TOKEN"), "{path}");
    }
    for path in [
        format!("/_matrix/media/v3/download/{server_name}/{media_id}"),
        format!("/_matrix/media/v3/thumbnail/{server_name}/{media_id}?width=32&height=32"),
    ] {
        let reply = raw(&server, "GET", &path, None, Vec::new(), None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.content_type.as_deref(), Some("image/png"), "{path}");
        assert!(reply.bytes == bytes, "{path}: different bytes");
    }

    // The file name is kept, and the one in the path wins.
    let path = format!("/_matrix/client/v1/media/download/{server_name}/{media_id}");
    let response = server
        .handle(
            http::Request::get(&path)
                .header("authorization", format!("Bearer {}", alice.token))
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains("inline") && disposition.contains("cat.png"), "{disposition}");
    let path = format!("/_matrix/media/v3/download/{server_name}/{media_id}/dog.png");
    let response = server.handle(http::Request::get(&path).body(Vec::new()).unwrap()).await;
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains("dog.png"), "{disposition}");
}

#[tokio::test]
async fn unknown_media_is_not_found_and_remote_media_needs_the_network() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let local = server.server_name().as_str().to_owned();
    for path in [
        format!("/_matrix/client/v1/media/download/{local}/nothing"),
        format!("/_matrix/client/v1/media/download/{local}/not%20an%20id"),
        format!("/_matrix/media/v3/download/{local}/nothing"),
        format!("/_matrix/media/v3/thumbnail/{local}/nothing?width=1&height=1"),
        "/_matrix/media/v3/download/elsewhere.example/abc?allow_remote=false".to_owned(),
    ] {
        let reply = raw(&server, "GET", &path, Some(&alice.token), Vec::new(), None).await;
        assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{path}");
    }
    // Another server's file is fetched over federation, which this server has none of (see
    // federation_media.rs for servers that federate).
    let path = "/_matrix/client/v1/media/download/elsewhere.example/abc";
    let reply = raw(&server, "GET", path, Some(&alice.token), Vec::new(), None).await;
    assert_eq!((reply.status, reply.errcode()), (502, "M_UNKNOWN"), "{}", reply.body);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let server = server_with(Config {
        max_upload_bytes: 10,
        registration: Registration::Open,
        ..Config::default()
    })
    .await;
    let alice = register(&server, "alice").await;
    let upload = |bytes: Vec<u8>| {
        let server = server.clone();
        let token = alice.token.clone();
        async move {
            raw(
                &server,
                "POST",
                "/_matrix/media/v3/upload",
                Some(&token),
                bytes,
                Some("text/plain"),
            )
            .await
        }
    };
    let reply = upload(vec![b'x'; 11]).await;
    assert_eq!((reply.status, reply.errcode()), (413, "M_TOO_LARGE"), "{}", reply.body);
    let reply = upload(vec![b'x'; 10]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    for path in ["/_matrix/client/v1/media/config", "/_matrix/media/v3/config"] {
        let reply = raw(&server, "GET", path, Some(&alice.token), Vec::new(), None).await;
        assert_eq!(reply.ok()["m.upload.size"], 10, "{path}");
    }
}

#[tokio::test]
async fn risky_content_is_served_as_an_attachment() {
    let server = server().await;
    let alice = register(&server, "alice").await;
    let reply = raw(
        &server,
        "POST",
        "/_matrix/media/v3/upload",
        Some(&alice.token),
        b"<script>alert(1)</script>".to_vec(),
        Some("text/html"),
    )
    .await;
    let (server_name, media_id) = mxc_parts(reply.ok()["content_uri"].as_str().unwrap());
    let path = format!("/_matrix/media/v3/download/{server_name}/{media_id}");
    let response = server.handle(http::Request::get(&path).body(Vec::new()).unwrap()).await;
    assert_eq!(response.headers()["content-type"], "text/html");
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
}
