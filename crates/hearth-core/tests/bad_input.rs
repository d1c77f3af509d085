//! Every kind of bad input is its own typed error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::BTreeMap;

use hearth_core::{CoreError, Pdu, RoomVersion, json, pdu::MAX_PDU_BYTES, testing::TestRoom};
use serde_json::json;

#[test]
fn floats_are_rejected() {
    assert_eq!(json::parse_value(b"1.5"), Err(CoreError::Float));
    assert_eq!(json::parse_object(br#"{"a": {"b": [0.25]}}"#), Err(CoreError::Float));
    assert_eq!(json::value_to_canonical(&json!({"a": 0.5})), Err(CoreError::Float));
    assert_eq!(json::value_to_canonical(&BTreeMap::from([("a", 2.5f64)])), Err(CoreError::Float));
}

#[test]
fn integers_outside_the_safe_range_are_rejected() {
    for text in ["9007199254740992", "-9007199254740992", "18446744073709551616", "1e16"] {
        assert_eq!(json::parse_value(text.as_bytes()), Err(CoreError::IntegerOutOfRange), "{text}");
    }
    assert_eq!(
        json::value_to_canonical(&json!({"a": u64::MAX})),
        Err(CoreError::IntegerOutOfRange)
    );
}

#[test]
fn non_string_keys_are_rejected() {
    assert_eq!(json::parse_value(br#"{1: "a"}"#), Err(CoreError::NonStringKey));
    assert_eq!(
        json::value_to_canonical(&BTreeMap::from([(1u8, "a")])),
        Err(CoreError::NonStringKey)
    );
}

#[test]
fn invalid_utf8_is_rejected() {
    assert_eq!(
        json::parse_value(b"{\"a\": \"\xff\"}"),
        Err(CoreError::InvalidUtf8 { valid_up_to: 7 })
    );
}

#[test]
fn malformed_json_is_rejected() {
    for text in ["", "{", r#"{"a":}"#, "[1,]", "{} {}", "nul"] {
        assert!(
            matches!(json::parse_value(text.as_bytes()), Err(CoreError::InvalidJson(_))),
            "{text:?}"
        );
    }
    assert_eq!(json::parse_object(b"[]"), Err(CoreError::NotAnObject));
    // Deep nesting is refused by the parser's recursion limit, not by a stack overflow.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert!(matches!(json::parse_value(deep.as_bytes()), Err(CoreError::InvalidJson(_))));
}

#[test]
fn unknown_room_versions_are_rejected() {
    for version in ["1", "9", "13", "org.example.custom", ""] {
        assert_eq!(
            version.parse::<RoomVersion>(),
            Err(CoreError::UnsupportedRoomVersion(version.to_owned()))
        );
    }
}

#[test]
fn oversized_events_are_rejected() {
    let room = TestRoom::create(RoomVersion::V12, "alice", 1).unwrap();
    let create = &room.events[&room.create_id];
    let mut event = create.json().clone();
    let padding = "x".repeat(MAX_PDU_BYTES);
    event.insert("padding".into(), padding.into());
    let bytes = json::encode(&event).unwrap();
    assert!(matches!(
        Pdu::parse(RoomVersion::V12, bytes.as_bytes()),
        Err(CoreError::EventTooLarge { size }) if size > MAX_PDU_BYTES
    ));
    // Far larger input is refused before parsing.
    let huge = vec![b' '; 5 * MAX_PDU_BYTES];
    assert!(matches!(Pdu::parse(RoomVersion::V12, &huge), Err(CoreError::EventTooLarge { .. })));
}

#[test]
fn events_missing_required_fields_are_malformed() {
    let room = TestRoom::create(RoomVersion::V12, "alice", 1).unwrap();
    let create = room.events[&room.create_id].json().clone();
    for field in ["type", "sender", "content", "depth", "prev_events", "auth_events"] {
        let mut event = create.clone();
        event.remove(field);
        let bytes = json::encode(&event).unwrap();
        assert!(
            matches!(
                Pdu::parse(RoomVersion::V12, bytes.as_bytes()),
                Err(CoreError::MalformedEvent(_))
            ),
            "without {field}"
        );
    }
    // A v12 create event may not name a room.
    let mut event = create;
    event.insert("room_id".into(), "!x:example.org".to_owned().into());
    let bytes = json::encode(&event).unwrap();
    assert!(matches!(
        Pdu::parse(RoomVersion::V12, bytes.as_bytes()),
        Err(CoreError::MalformedEvent(_))
    ));
}
