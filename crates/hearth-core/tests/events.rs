//! PDU building, parsing, verification and authorization in every supported room version.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hearth_core::{
    CoreError, Pdu, RoomVersion, ServerIdentity, auth, json,
    pdu::room_id_for_create_event,
    ruma::CanonicalJsonValue,
    signing::{self, EventVerification},
    testing::TestRoom,
};
use serde_json::json;

fn room_with_message(version: RoomVersion) -> (TestRoom, Pdu) {
    let mut room = TestRoom::create(version, "alice", 1).unwrap();
    let create = room.create_id.clone();
    let ma = room.join("alice", &create, 2).unwrap();
    let message = room
        .add("alice", "m.room.message", None, json!({"msgtype": "m.text", "body": "hi"}), &[ma], 3)
        .unwrap();
    let pdu = room.events[&message].clone();
    (room, pdu)
}

#[test]
fn built_events_parse_back_identically_and_verify() {
    for version in RoomVersion::ALL {
        let (room, message) = room_with_message(version);
        for pdu in room.events.values() {
            let text = pdu.to_canonical_string().unwrap();
            let parsed = Pdu::parse(version, text.as_bytes()).unwrap();
            assert_eq!(parsed.event_id(), pdu.event_id());
            assert_eq!(parsed.json(), pdu.json());
            assert_eq!(parsed.verify().unwrap(), EventVerification::Valid);
        }
        assert_eq!(message.depth(), 3u32.into());
        assert_eq!(message.prev_events().len(), 1);
        assert!(message.json().contains_key("hashes"));
        assert!(!message.json().contains_key("event_id"));
    }
}

#[test]
fn v12_room_id_is_the_create_event_hash() {
    let (room, message) = room_with_message(RoomVersion::V12);
    let create = &room.events[&room.create_id];
    assert!(!create.json().contains_key("room_id"));
    assert_eq!(room_id_for_create_event(create.event_id()).unwrap(), room.room_id);
    assert_eq!(message.room_id(), room.room_id);
    // The create event is implied by the room ID, not listed.
    assert!(!message.auth_events().contains(&room.create_id));
    assert_eq!(auth::create_event_id(&message).unwrap(), room.create_id);

    let (v11, message) = room_with_message(RoomVersion::V11);
    assert!(message.auth_events().contains(&v11.create_id));
}

#[test]
fn event_ids_are_url_safe_reference_hashes() {
    let (_, message) = room_with_message(RoomVersion::V12);
    let id = message.event_id().as_str();
    assert_eq!(id.len(), 44);
    assert!(id[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    // Unsigned data and signatures are outside the hash.
    let mut object = message.json().clone();
    object.insert("unsigned".into(), json::parse_value(br#"{"age": 5}"#).unwrap());
    object.remove("signatures");
    assert_eq!(signing::event_id(&object, RoomVersion::V12).unwrap(), message.event_id());
}

#[test]
fn a_tampered_event_fails_verification() {
    let (_, message) = room_with_message(RoomVersion::V12);
    let mut object = message.json().clone();
    object.insert("origin_server_ts".into(), CanonicalJsonValue::Integer(4u32.into()));
    let tampered = Pdu::from_canonical(RoomVersion::V12, object).unwrap();
    assert!(matches!(tampered.verify(), Err(CoreError::BadSignature(_))));

    // Content is covered by the hash, not the signature: the event survives, redacted.
    let mut object = message.json().clone();
    object.insert("content".into(), json::parse_value(br#"{"body": "changed"}"#).unwrap());
    let tampered = Pdu::from_canonical(RoomVersion::V12, object).unwrap();
    assert_eq!(tampered.verify().unwrap(), EventVerification::ContentHashMismatch);
    let redacted = tampered.redacted().unwrap();
    assert_eq!(redacted.event_id(), message.event_id());
    assert_eq!(redacted.content().get(), "{}");
}

#[test]
fn a_signature_from_the_wrong_server_fails() {
    let (_, message) = room_with_message(RoomVersion::V12);
    let impostor = ServerIdentity::generate().unwrap();
    let mut object = message.json().clone();
    object.remove("signatures");
    signing::sign_json(impostor.server_name().as_str(), impostor.key(), &mut object).unwrap();
    let forged = Pdu::from_canonical(RoomVersion::V12, object).unwrap();
    assert!(matches!(forged.verify(), Err(CoreError::BadSignature(_))));
}

#[test]
fn redaction_keeps_the_signature_valid() {
    for version in RoomVersion::ALL {
        let (_, message) = room_with_message(version);
        let redacted = message.redacted().unwrap();
        assert_eq!(redacted.event_id(), message.event_id());
        assert_eq!(redacted.content().get(), "{}");
        // Signatures hold; the content hash no longer matches, as the spec expects.
        assert_eq!(redacted.verify().unwrap(), EventVerification::ContentHashMismatch);
    }
}

#[test]
fn events_failing_the_auth_rules_are_refused() {
    for version in RoomVersion::ALL {
        let (mut room, message) = room_with_message(version);
        let tip = message.event_id().to_owned();
        // Mallory never joined.
        let error = room
            .add(
                "mallory",
                "m.room.message",
                None,
                json!({"body": "hi"}),
                std::slice::from_ref(&tip),
                9,
            )
            .unwrap_err();
        assert!(matches!(error, CoreError::NotAuthorized(_)), "{version}: {error}");
        // The room is invite-only by default: an uninvited join fails too.
        let error = room.join("mallory", &tip, 9).unwrap_err();
        assert!(matches!(error, CoreError::NotAuthorized(_)), "{version}: {error}");
    }
}

#[test]
fn redaction_events_name_their_target_where_the_version_says() {
    for version in RoomVersion::ALL {
        let (room, message) = room_with_message(version);
        let tip = message.event_id().to_owned();
        let mut builder = hearth_core::PduBuilder::new(
            version,
            Some(room.room_id.clone()),
            room.user("alice").unwrap(),
            "m.room.redaction".into(),
            Default::default(),
            hearth_core::ruma::MilliSecondsSinceUnixEpoch(5u32.into()),
        );
        builder.redacts = Some(tip.clone());
        builder.prev_events = vec![tip.clone()];
        let pdu = builder.build(&room.identity).unwrap();
        assert_eq!(pdu.redacts(), Some(&*tip));
        let in_content = pdu.json()["content"].as_object().unwrap().contains_key("redacts");
        assert_eq!(in_content, version != RoomVersion::V10, "{version}");
    }
}
