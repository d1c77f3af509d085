//! Property tests: signing, verification, redaction and canonical JSON over generated input.
//!
//! Native only: proptest's runner needs a clock and an entropy source that wasm32 lacks; the
//! same properties are checked on fixed inputs in the browser by `events.rs`.
#![cfg(not(target_family = "wasm"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use hearth_core::{
    Pdu, RoomVersion, json,
    ruma::{CanonicalJsonObject, CanonicalJsonValue, Int},
    signing::EventVerification,
    testing::TestRoom,
};
use proptest::prelude::*;

fn canonical_value() -> impl Strategy<Value = CanonicalJsonValue> {
    let leaf = prop_oneof![
        Just(CanonicalJsonValue::Null),
        any::<bool>().prop_map(CanonicalJsonValue::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53))
            .prop_map(|i| CanonicalJsonValue::Integer(Int::new(i).unwrap())),
        any::<String>().prop_map(CanonicalJsonValue::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(CanonicalJsonValue::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(CanonicalJsonValue::Object),
        ]
    })
}

fn content() -> impl Strategy<Value = CanonicalJsonObject> {
    prop::collection::btree_map("[a-z_]{1,8}", canonical_value(), 0..5)
}

/// A message in a real room, signed by the test server, with generated content.
fn signed_message(version: RoomVersion, content: CanonicalJsonObject) -> Pdu {
    let mut room = TestRoom::create(version, "alice", 1).unwrap();
    let create = room.create_id.clone();
    let join = room.join("alice", &create, 2).unwrap();
    let content = serde_json::to_value(CanonicalJsonValue::Object(content)).unwrap();
    let id = room.add("alice", "m.room.message", None, content, &[join], 3).unwrap();
    room.events[&id].clone()
}

fn version() -> impl Strategy<Value = RoomVersion> {
    prop::sample::select(RoomVersion::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn canonical_json_is_a_fixed_point(value in canonical_value()) {
        let once = json::encode(&value).unwrap();
        let reparsed = json::parse_value(once.as_bytes()).unwrap();
        prop_assert_eq!(&reparsed, &value);
        prop_assert_eq!(json::encode(&reparsed).unwrap(), once);
    }

    #[test]
    fn pretty_printed_json_canonicalises_to_the_same_bytes(value in canonical_value()) {
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let canonical = json::encode(&json::parse_value(pretty.as_bytes()).unwrap()).unwrap();
        prop_assert_eq!(canonical, json::encode(&value).unwrap());
    }

    #[test]
    fn signed_events_verify(version in version(), content in content()) {
        let pdu = signed_message(version, content);
        prop_assert_eq!(pdu.verify().unwrap(), EventVerification::Valid);
        let reparsed = Pdu::parse(version, pdu.to_canonical_string().unwrap().as_bytes()).unwrap();
        prop_assert_eq!(reparsed.verify().unwrap(), EventVerification::Valid);
    }

    #[test]
    fn any_mutation_of_a_signed_event_fails_verification(
        version in version(),
        content in content(),
        field in prop::sample::select(vec![
            "content", "origin_server_ts", "depth", "type", "prev_events", "auth_events",
            "hashes", "signatures",
        ]),
        replacement in canonical_value(),
    ) {
        let pdu = signed_message(version, content);
        let mut object = pdu.json().clone();
        let original = object.get(field).cloned();
        prop_assume!(original.as_ref() != Some(&replacement));
        object.insert(field.to_owned(), replacement);
        // A mutation may already break the event format; if it parses, it must not verify.
        if let Ok(mutated) = Pdu::from_canonical(version, object) {
            prop_assert_ne!(mutated.verify().ok(), Some(EventVerification::Valid));
        }
    }

    #[test]
    fn redaction_keeps_the_event_signature_valid(version in version(), content in content()) {
        let pdu = signed_message(version, content);
        let redacted = pdu.redacted().unwrap();
        prop_assert_eq!(redacted.event_id(), pdu.event_id());
        // Signatures must hold after redaction; only the content hash may stop matching.
        prop_assert!(redacted.verify().is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_pdu_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        hearth_core::testing::exercise_untrusted_pdu(&bytes);
    }

    #[test]
    fn mutated_real_events_never_panic(
        version in version(),
        content in content(),
        cut in 0usize..2048,
        byte in any::<u8>(),
    ) {
        let mut bytes = signed_message(version, content).to_canonical_string().unwrap().into_bytes();
        let at = cut % bytes.len();
        bytes[at] = byte;
        hearth_core::testing::exercise_untrusted_pdu(&bytes);
        bytes.truncate(at);
        hearth_core::testing::exercise_untrusted_pdu(&bytes);
    }
}
