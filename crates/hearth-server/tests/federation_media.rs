//! Media across servers: a file uploaded on one server is downloaded by a user of another
//! (over the federation media endpoints, `multipart/mixed`), kept there and served from the
//! copy while its server is offline; unknown files, unreachable servers, slow servers and
//! hostile answers from a fake peer each end in a clean Matrix error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{Reply, User, federation, network::network, raw, register, server_with};
use hearth_core::{
    ServerIdentity,
    platform::BoxFuture,
    ruma::{
        OwnedServerName,
        api::{IncomingResponseExt, federation::authenticated_media},
    },
};
use hearth_server::{Config, Federation, Registration, Server, ServerError};

/// Uploads `bytes` as `alice`; returns the media ID.
async fn upload(server: &Server, alice: &User, bytes: &[u8], name: &str, kind: &str) -> String {
    let path = format!("/_matrix/media/v3/upload?filename={name}");
    let reply = raw(server, "POST", &path, Some(&alice.token), bytes.to_vec(), Some(kind)).await;
    let uri = reply.ok()["content_uri"].as_str().unwrap().to_owned();
    uri.rsplit('/').next().unwrap().to_owned()
}

/// A GET with a token; the reply and its `Content-Disposition`.
async fn get(server: &Server, path: &str, token: Option<&str>) -> (Reply, Option<String>) {
    let mut request = http::Request::builder().method("GET").uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = server.handle(request.body(Vec::new()).unwrap()).await;
    let header = |name: &str| {
        response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = response.status().as_u16();
    let bytes = response.into_body();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (Reply { status, body, bytes, content_type }, disposition)
}

#[tokio::test]
async fn a_file_from_another_server_is_fetched_once_and_served_while_it_is_offline() {
    let (network, servers) = network(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let alice = register(a, "alice").await;
    let bob = register(b, "bob").await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let media_id = upload(a, &alice, &bytes, "cat.png", "image/png").await;
    let origin = a.server_name().as_str();

    let download = format!("/_matrix/client/v1/media/download/{origin}/{media_id}");
    let (reply, disposition) = get(b, &download, Some(&bob.token)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.bytes == bytes, "the same bytes");
    assert_eq!(reply.content_type.as_deref(), Some("image/png"));
    let disposition = disposition.unwrap();
    assert!(disposition.starts_with("inline") && disposition.contains("cat.png"), "{disposition}");

    // A's server goes away: B serves its copy, on every download path.
    network.set_online(a, false);
    for path in [
        download.clone(),
        format!("/_matrix/client/v1/media/download/{origin}/{media_id}/other.png"),
        format!("/_matrix/client/v1/media/thumbnail/{origin}/{media_id}?width=32&height=32"),
        format!("/_matrix/media/v3/download/{origin}/{media_id}"),
        format!("/_matrix/media/v3/download/{origin}/{media_id}?allow_remote=false"),
        format!("/_matrix/media/v3/thumbnail/{origin}/{media_id}?width=32&height=32"),
    ] {
        let (reply, disposition) = get(b, &path, Some(&bob.token)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(reply.bytes == bytes, "{path}: the same bytes");
        assert_eq!(reply.content_type.as_deref(), Some("image/png"), "{path}");
        let expected = if path.contains("other.png") { "other.png" } else { "cat.png" };
        assert!(disposition.unwrap().contains(expected), "{path}");
    }
    // Another file of the offline server: a bad gateway, not a missing file.
    let other = upload(a, &alice, b"second", "b.txt", "text/plain").await;
    let path = format!("/_matrix/client/v1/media/download/{origin}/{other}");
    let (reply, _) = get(b, &path, Some(&bob.token)).await;
    assert_eq!((reply.status, reply.errcode()), (502, "M_UNKNOWN"), "{}", reply.body);

    // Back online, the second file comes too, also on the legacy path (unless told not to).
    network.set_online(a, true);
    let legacy = format!("/_matrix/media/v3/download/{origin}/{other}");
    let (reply, _) = get(b, &format!("{legacy}?allow_remote=false"), None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
    let (reply, _) = get(b, &legacy, None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.bytes, b"second");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));

    // A file A does not have is missing on B too; so is an ID no server makes.
    for media_id in ["nosuchfile", "bad%2Fid", "a.b"] {
        let path = format!("/_matrix/client/v1/media/download/{origin}/{media_id}");
        let (reply, _) = get(b, &path, Some(&bob.token)).await;
        assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{media_id}");
    }
    // The copy is B's alone: A's name in B's store is not one of B's own files, nor is it
    // served to other servers.
    let path =
        format!("/_matrix/client/v1/media/download/{}/{}", b.server_name(), enc_copy(a, &media_id));
    let (reply, _) = get(b, &path, Some(&bob.token)).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
    let path = format!("/_matrix/federation/v1/media/download/{}", enc_copy(a, &media_id));
    let reply = federation(b, &ServerIdentity::generate().unwrap(), "GET", &path, None).await;
    assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"));
}

/// The store ID of B's copy of `a`'s file, percent-encoded as one path segment.
fn enc_copy(a: &Server, media_id: &str) -> String {
    common::enc(&format!("{}/{media_id}", a.server_name()))
}

#[tokio::test]
async fn the_federation_endpoints_answer_multipart_to_signed_requests() {
    let (_network, servers) = network(1).await;
    let a = &servers[0];
    let alice = register(a, "alice").await;
    let media_id = upload(a, &alice, b"\x00\x01binary", "f.bin", "application/x-thing").await;
    let peer = ServerIdentity::generate().unwrap();
    for endpoint in ["download", "thumbnail"] {
        let query = if endpoint == "thumbnail" { "?width=10&height=10" } else { "" };
        let path = format!("/_matrix/federation/v1/media/{endpoint}/{media_id}{query}");
        let mut request = http::Request::builder().uri(&path).body(Vec::new()).unwrap();
        hearth_server::sign_request(&peer, a.server_name(), &mut request).unwrap();
        let response = a.handle(request).await;
        assert_eq!(response.status(), 200, "{path}");
        let (parts, body) = response.into_parts();
        let content_type = parts.headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("multipart/mixed; boundary="), "{content_type}");
        // ruma's client reads it as the spec's two parts.
        let parsed = authenticated_media::get_content::v1::Response::try_from_http_response(
            http::Response::from_parts(parts, body.as_slice()),
        )
        .unwrap();
        let authenticated_media::FileOrLocation::File(content) = parsed.content else {
            panic!("a file part")
        };
        assert_eq!(content.file, b"\x00\x01binary");
        assert_eq!(content.content_type.as_deref(), Some("application/x-thing"));
        let disposition = content.content_disposition.unwrap();
        assert_eq!(disposition.filename.as_deref(), Some("f.bin"));

        // Unsigned: refused. Unknown: not found.
        let reply = raw(a, "GET", &path, None, Vec::new(), None).await;
        assert_eq!(reply.status, 401, "{path}");
        let path = format!("/_matrix/federation/v1/media/{endpoint}/unknown{query}");
        let reply = federation(a, &peer, "GET", &path, None).await;
        assert_eq!((reply.status, reply.errcode()), (404, "M_NOT_FOUND"), "{path}");
    }
}

/// A peer that answers every request with one canned response (after `delay`, or never), and
/// counts the requests.
struct Canned {
    response: Mutex<Option<http::Response<Vec<u8>>>>,
    delay: Option<Duration>,
    requests: Arc<AtomicUsize>,
}

impl Canned {
    fn new(content_type: &str, body: &[u8]) -> Canned {
        let response = http::Response::builder()
            .header("content-type", content_type)
            .body(body.to_vec())
            .unwrap();
        Canned {
            response: Mutex::new(Some(response)),
            delay: Some(Duration::ZERO),
            requests: Arc::default(),
        }
    }
}

impl Federation for Canned {
    fn request(
        &self,
        _destination: OwnedServerName,
        request: http::Request<Vec<u8>>,
    ) -> BoxFuture<'static, Result<http::Response<Vec<u8>>, ServerError>> {
        assert!(request.uri().path().starts_with("/_matrix/federation/v1/media/download/"));
        assert!(request.headers().contains_key("authorization"), "signed");
        self.requests.fetch_add(1, Ordering::SeqCst);
        let canned = self.response.lock().unwrap();
        let (parts, body) = canned.as_ref().unwrap().clone().into_parts();
        let response = http::Response::from_parts(parts, body);
        let delay = self.delay;
        Box::pin(async move {
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending::<()>().await,
            }
            Ok(response)
        })
    }
}

async fn small_server() -> (Server, User) {
    let config =
        Config { registration: Registration::Open, max_upload_bytes: 1000, ..Config::default() };
    let server = server_with(config).await;
    let bob = register(&server, "bob").await;
    (server, bob)
}

#[tokio::test]
async fn hostile_answers_from_a_peer_end_in_clean_errors_and_store_nothing() {
    let (b, bob) = small_server().await;
    let mixed = "multipart/mixed; boundary=xyz";
    let big = format!("--xyz\r\n\r\n{{}}\r\n--xyz\r\n\r\n{}\r\n--xyz--", "x".repeat(1001));
    let huge = vec![b'-'; 200_000];
    let cases: Vec<(&str, &[u8], u16, &str)> = vec![
        ("application/json", b"{}", 502, "M_UNKNOWN"),
        ("multipart/mixed", b"--xyz\r\n\r\n{}\r\n--xyz\r\n\r\nf\r\n--xyz--", 502, "M_UNKNOWN"),
        (mixed, b"", 502, "M_UNKNOWN"),
        // What makes ruma 0.17's parser panic.
        (mixed, b"\r\n--xyz\r\n--xyz\r\n--xyz", 502, "M_UNKNOWN"),
        (mixed, b"--xyz\r\n--xyz--", 502, "M_UNKNOWN"),
        (mixed, b"--xyz\r\n\r\n{}\r\n--xyz\r\n\r\nunterminated", 502, "M_UNKNOWN"),
        (mixed, b"--xyz\r\n\r\nnot json\r\n--xyz\r\n\r\nf\r\n--xyz--", 502, "M_UNKNOWN"),
        (
            mixed,
            b"--xyz\r\n\r\n{}\r\n--xyz\r\nLocation: http://x/y\r\n\r\n\r\n--xyz--",
            502,
            "M_UNKNOWN",
        ),
        (mixed, b"--xyz\r\n\xff\xfe: x\r\n\r\n{}\r\n--xyz\r\n\r\nf\r\n--xyz--", 502, "M_UNKNOWN"),
        (mixed, big.as_bytes(), 502, "M_TOO_LARGE"),
        (mixed, &huge, 502, "M_TOO_LARGE"),
    ];
    let path = "/_matrix/client/v1/media/download/fake.example/abc";
    for (content_type, body, status, errcode) in cases {
        b.set_federation(Arc::new(Canned::new(content_type, body))).await.unwrap();
        let (reply, _) = get(&b, path, Some(&bob.token)).await;
        assert_eq!(
            (reply.status, reply.errcode()),
            (status, errcode),
            "{content_type} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(80)]),
            reply.body
        );
    }
    // A peer's own errors: its 404 is ours, anything else a bad gateway.
    let error = |status: u16, errcode: &str| {
        let body = format!(r#"{{"errcode":"{errcode}","error":"x"}}"#);
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.into_bytes())
            .unwrap();
        Canned {
            response: Mutex::new(Some(response)),
            delay: Some(Duration::ZERO),
            requests: Arc::default(),
        }
    };
    for (answer, expected) in [
        (error(404, "M_NOT_FOUND"), (404, "M_NOT_FOUND")),
        (error(404, "M_UNRECOGNIZED"), (502, "M_UNKNOWN")),
        (error(500, "M_UNKNOWN"), (502, "M_UNKNOWN")),
    ] {
        b.set_federation(Arc::new(answer)).await.unwrap();
        let (reply, _) = get(&b, path, Some(&bob.token)).await;
        assert_eq!((reply.status, reply.errcode()), expected, "{}", reply.body);
    }

    // Nothing was kept: a good answer now is fetched and served.
    let good = b"--xyz\r\nContent-Type: application/json\r\n\r\n{}\r\n--xyz\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"ok.txt\"\r\n\r\nfine\r\n--xyz--";
    b.set_federation(Arc::new(Canned::new(mixed, good))).await.unwrap();
    let (reply, disposition) = get(&b, path, Some(&bob.token)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.bytes, b"fine");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert!(disposition.unwrap().contains("ok.txt"));
}

#[tokio::test]
async fn concurrent_downloads_of_one_remote_file_fetch_it_once() {
    let (b, bob) = small_server().await;
    let body = b"--xyz\r\n\r\n{}\r\n--xyz\r\nContent-Type: text/plain\r\n\r\nonce\r\n--xyz--";
    let mut canned = Canned::new("multipart/mixed; boundary=xyz", body);
    canned.delay = Some(Duration::from_millis(100));
    let requests = canned.requests.clone();
    b.set_federation(Arc::new(canned)).await.unwrap();
    let path = "/_matrix/client/v1/media/download/fake.example/shared";
    let replies =
        futures_util::future::join_all((0..8).map(|_| get(&b, path, Some(&bob.token)))).await;
    for (reply, _) in replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.bytes, b"once");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one fetch for eight downloads");
}

#[tokio::test]
async fn a_peer_that_never_answers_is_a_timeout_for_the_client() {
    let (b, bob) = small_server().await;
    let mut canned = Canned::new("multipart/mixed; boundary=xyz", b"");
    canned.delay = None;
    b.set_federation(Arc::new(canned)).await.unwrap();
    let path = "/_matrix/client/v1/media/download/fake.example/slow?timeout_ms=100";
    let (reply, _) = get(&b, path, Some(&bob.token)).await;
    assert_eq!((reply.status, reply.errcode()), (504, "M_NOT_YET_UPLOADED"), "{}", reply.body);
}
