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

/// `handleParts`: the request as the service worker posts it, the response as plain values.
#[wasm_bindgen_test]
async fn answers_requests_taken_apart() {
    let homeserver = start(&database("parts")).await;
    let answer = |method: &str, path: &str, headers: Vec<String>, body: Option<Vec<u8>>| {
        JsFuture::from(homeserver.handle_parts(
            method.to_owned(),
            format!("{ORIGIN}{path}"),
            headers,
            body,
        ))
    };
    let field = |wire: &JsValue, name: &str| Reflect::get(wire, &name.into()).unwrap();
    let json = |wire: &JsValue| {
        let body = js_sys::Uint8Array::new(&field(wire, "body")).to_vec();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };

    let body = br#"{"username":"bob","password":"correct horse","auth":{"type":"m.login.dummy"}}"#;
    let wire = answer(
        "POST",
        "/_matrix/client/v3/register",
        vec!["content-type".into(), "application/json".into()],
        Some(body.to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(field(&wire, "status").as_f64(), Some(200.0));
    let token = json(&wire)["access_token"].as_str().unwrap().to_owned();
    let headers = js_sys::Array::from(&field(&wire, "headers"));
    let content_type = headers
        .iter()
        .map(|pair| js_sys::Array::from(&pair))
        .find(|pair| pair.get(0).as_string().as_deref() == Some("content-type"))
        .map(|pair| pair.get(1).as_string().unwrap());
    assert_eq!(content_type.as_deref(), Some("application/json"));

    // Headers arrive as [name, value, name, value, …].
    let wire = answer(
        "GET",
        "/_matrix/client/v3/account/whoami",
        vec!["authorization".into(), format!("Bearer {token}")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(json(&wire)["user_id"], format!("@bob:{}", homeserver.server_name()));

    // Bad input is a Matrix error, never a rejected promise.
    let wire =
        answer("POST", "/_matrix/client/v3/register", vec![], Some(b"{".to_vec())).await.unwrap();
    assert_eq!(field(&wire, "status").as_f64(), Some(400.0));
    assert_eq!(json(&wire)["errcode"], "M_NOT_JSON");
    let wire =
        answer("GET", "/_matrix/client/versions", vec!["bad header".into(), "x".into()], None)
            .await
            .unwrap();
    assert_eq!(field(&wire, "status").as_f64(), Some(400.0));

    homeserver.stop().await;
    let wire = answer("GET", "/_matrix/client/versions", vec![], None).await.unwrap();
    assert_eq!(field(&wire, "status").as_f64(), Some(503.0));
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
