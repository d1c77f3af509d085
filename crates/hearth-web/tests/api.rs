//! The JS API in headless Chromium: start on IndexedDB, answer requests, stop, start again.
#![cfg(target_family = "wasm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_web::Homeserver;
use js_sys::{JSON, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Request, RequestInit, Response};

wasm_bindgen_test_configure!(run_in_browser);

const ORIGIN: &str = "http://127.0.0.1:8080";

/// A database name no other test uses (tests share the browser profile).
fn database(test: &str) -> String {
    format!("hearth-web-test-{test}-{}", js_sys::Math::random())
}

async fn start(database: &str) -> Homeserver {
    let options = Object::new();
    Reflect::set(&options, &"database".into(), &database.into()).unwrap();
    Homeserver::start(options.unchecked_into()).await.map_err(JsValue::from).unwrap()
}

async fn request(
    homeserver: &Homeserver,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(&format!("{ORIGIN}{path}"), &init).unwrap();
    let response: Response =
        JsFuture::from(homeserver.handle_request(request)).await.unwrap().unchecked_into();
    let text = JsFuture::from(response.text().unwrap()).await.unwrap().as_string().unwrap();
    (response.status(), serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

#[wasm_bindgen_test]
async fn answers_matrix_requests_and_keeps_its_identity_across_restarts() {
    let name = database("restart");
    let homeserver = start(&name).await;
    let server_name = homeserver.server_name();
    assert_eq!(server_name.len(), 64);
    assert!(server_name.bytes().all(|byte| byte.is_ascii_hexdigit()));

    let (status, versions) = request(&homeserver, "GET", "/_matrix/client/versions", None).await;
    assert_eq!(status, 200);
    assert!(versions["versions"].as_array().is_some_and(|versions| !versions.is_empty()));

    let (status, registered) = request(
        &homeserver,
        "POST",
        "/_matrix/client/v3/register",
        Some(r#"{"username":"alice","password":"correct horse","auth":{"type":"m.login.dummy"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["user_id"], format!("@alice:{server_name}"));

    homeserver.stop().await;
    let (status, stopped) = request(&homeserver, "GET", "/_matrix/client/versions", None).await;
    assert_eq!((status, stopped["errcode"].as_str()), (503, Some("M_UNKNOWN")));

    // A second start on the same database (what a tab taking over does) finds the same server
    // and the account made before.
    let again = start(&name).await;
    assert_eq!(again.server_name(), server_name);
    let (status, login) = request(
        &again,
        "POST",
        "/_matrix/client/v3/login",
        Some(r#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"correct horse"}"#),
    )
    .await;
    assert_eq!(status, 200, "{login}");
}

#[wasm_bindgen_test]
async fn bad_input_gets_matrix_errors() {
    let homeserver = start(&database("errors")).await;
    let (status, error) =
        request(&homeserver, "POST", "/_matrix/client/v3/register", Some("{not json")).await;
    assert_eq!((status, error["errcode"].as_str()), (400, Some("M_NOT_JSON")));
    let (status, error) = request(&homeserver, "GET", "/_matrix/client/v3/nowhere", None).await;
    assert_eq!((status, error["errcode"].as_str()), (404, Some("M_UNRECOGNIZED")));
    let (status, error) =
        request(&homeserver, "GET", "/_matrix/client/v3/account/whoami", None).await;
    assert_eq!((status, error["errcode"].as_str()), (401, Some("M_MISSING_TOKEN")));
}

#[wasm_bindgen_test]
async fn start_refuses_options_without_a_database() {
    let error = Homeserver::start(Object::new().unchecked_into()).await.err().unwrap();
    let message = Reflect::get(&JsValue::from(error), &"message".into()).unwrap();
    assert!(
        message.as_string().unwrap().contains("options.database"),
        "{:?}",
        JSON::stringify(&message)
    );
}
