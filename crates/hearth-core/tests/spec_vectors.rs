//! Every example and test vector of the Matrix spec's appendices, reproduced exactly:
//! [canonical JSON](https://spec.matrix.org/v1.16/appendices/#canonical-json) and the
//! [cryptographic test vectors](https://spec.matrix.org/v1.16/appendices/#cryptographic-test-vectors).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::BTreeMap;

use base64::Engine;
use hearth_core::{
    Ed25519Key, RoomVersion, json,
    ruma::{
        CanonicalJsonObject,
        serde::{Base64, base64::Standard},
    },
    signing,
};

/// `SIGNING_KEY_SEED`, unpadded base64 as the spec prints it.
const SIGNING_KEY_SEED: &str = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
const SERVER_NAME: &str = "domain";
const KEY_ID: &str = "ed25519:1";

fn key() -> Ed25519Key {
    // The spec's seed has non-zero trailing bits, which a strict decoder refuses.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let seed = lenient.decode(SIGNING_KEY_SEED).unwrap();
    Ed25519Key::from_seed(&seed, KEY_ID).unwrap()
}

fn object(text: &str) -> CanonicalJsonObject {
    json::parse_object(text.as_bytes()).unwrap()
}

#[test]
fn canonical_json_examples() {
    let examples = [
        ("{}", "{}"),
        (r#"{ "one": 1, "two": "Two" }"#, r#"{"one":1,"two":"Two"}"#),
        (r#"{ "b": "2", "a": "1" }"#, r#"{"a":"1","b":"2"}"#),
        (r#"{"b":"2","a":"1"}"#, r#"{"a":"1","b":"2"}"#),
        (
            r#"{
                "auth": {
                    "success": true,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            { "medium": "email", "address": "john.doe@example.org" },
                            { "medium": "msisdn", "address": "123456789" }
                        ]
                    }
                }
            }"#,
            r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#,
        ),
        (r#"{ "a": "日本語" }"#, r#"{"a":"日本語"}"#),
        (r#"{ "本": 2, "日": 1 }"#, r#"{"日":1,"本":2}"#),
        (r#"{ "a": "\u65E5" }"#, r#"{"a":"日"}"#),
        (r#"{ "a": null }"#, r#"{"a":null}"#),
        (r#"{ "a": -0, "b": 1e10 }"#, r#"{"a":0,"b":10000000000}"#),
    ];
    for (input, expected) in examples {
        let canonical = json::encode(&json::parse_value(input.as_bytes()).unwrap()).unwrap();
        assert_eq!(canonical, expected, "input: {input}");
    }
}

#[test]
fn sign_empty_object() {
    let mut value = object("{}");
    signing::sign_json(SERVER_NAME, &key(), &mut value).unwrap();
    assert_eq!(
        value,
        object(
            r#"{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}"#
        )
    );
    signing::verify_json_with_keys(&public_keys(), &value).unwrap();
}

#[test]
fn sign_object_with_data() {
    let mut value = object(r#"{ "one": 1, "two": "Two" }"#);
    signing::sign_json(SERVER_NAME, &key(), &mut value).unwrap();
    assert_eq!(
        value,
        object(
            r#"{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}"#
        )
    );
    signing::verify_json_with_keys(&public_keys(), &value).unwrap();
}

// The event vectors predate room version 11, which stopped keeping `origin` through
// redaction (and so out of the signed form). Version 10 is the supported version they hold for.

#[test]
fn sign_minimal_event() {
    let mut event = object(
        r#"{
            "room_id": "!x:domain",
            "sender": "@a:domain",
            "origin": "domain",
            "origin_server_ts": 1000000,
            "signatures": {},
            "hashes": {},
            "type": "X",
            "content": {},
            "prev_events": [],
            "auth_events": [],
            "depth": 3,
            "unsigned": { "age_ts": 1000000 }
        }"#,
    );
    signing::hash_and_sign_event(SERVER_NAME, &key(), &mut event, RoomVersion::V10).unwrap();
    assert_eq!(
        event,
        object(
            r#"{
                "auth_events": [],
                "content": {},
                "depth": 3,
                "hashes": { "sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos" },
                "origin": "domain",
                "origin_server_ts": 1000000,
                "prev_events": [],
                "room_id": "!x:domain",
                "sender": "@a:domain",
                "signatures": { "domain": { "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg" } },
                "type": "X",
                "unsigned": { "age_ts": 1000000 }
            }"#
        )
    );
    assert_eq!(
        signing::content_hash(&event).unwrap(),
        "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    );
}

#[test]
fn sign_redactable_event() {
    let mut event = object(
        r#"{
            "content": { "body": "Here is the message content" },
            "event_id": "$0:domain",
            "origin": "domain",
            "origin_server_ts": 1000000,
            "type": "m.room.message",
            "room_id": "!r:domain",
            "sender": "@u:domain",
            "signatures": {},
            "unsigned": { "age_ts": 1000000 }
        }"#,
    );
    signing::hash_and_sign_event(SERVER_NAME, &key(), &mut event, RoomVersion::V10).unwrap();
    assert_eq!(
        event,
        object(
            r#"{
                "content": { "body": "Here is the message content" },
                "event_id": "$0:domain",
                "hashes": { "sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g" },
                "origin": "domain",
                "origin_server_ts": 1000000,
                "type": "m.room.message",
                "room_id": "!r:domain",
                "sender": "@u:domain",
                "signatures": { "domain": { "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA" } },
                "unsigned": { "age_ts": 1000000 }
            }"#
        )
    );
    // The signature covers the redacted form (hashes included), so it survives redaction.
    let redacted = signing::redact(event, RoomVersion::V10).unwrap();
    assert_eq!(redacted.get("content"), Some(&object("{}").into()));
    signing::verify_json_with_keys(&public_keys(), &redacted).unwrap();
}

fn public_keys() -> BTreeMap<String, BTreeMap<String, Base64<Standard>>> {
    let public = Base64::new(key().public_key().to_vec());
    BTreeMap::from([(SERVER_NAME.to_owned(), BTreeMap::from([(KEY_ID.to_owned(), public)]))])
}
