//! Self-certifying server names and peer IDs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hearth_core::{
    CoreError, PeerId, ServerIdentity, identity::verify_key_for_server, json, ruma::ServerName,
    signing,
};

#[test]
fn server_name_is_the_lowercase_hex_of_the_public_key() {
    let identity = ServerIdentity::generate().unwrap();
    let name = identity.server_name().as_str();
    assert_eq!(name.len(), 64);
    assert!(name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let key = verify_key_for_server(identity.server_name()).unwrap();
    assert_eq!(key.to_bytes(), identity.public_key());
}

#[test]
fn an_identity_survives_a_round_trip_through_its_seed() {
    let identity = ServerIdentity::generate().unwrap();
    let again = ServerIdentity::from_seed(&identity.seed()).unwrap();
    assert_eq!(again.server_name(), identity.server_name());
    assert_ne!(ServerIdentity::generate().unwrap().server_name(), identity.server_name());
    assert_eq!(ServerIdentity::from_seed(&[1; 31]).unwrap_err(), CoreError::InvalidKeySeed(31));
    assert!(!format!("{identity:?}").contains(&format!("{:?}", identity.seed())));
}

#[test]
fn names_that_are_not_keys_are_refused_clearly() {
    let cases = [
        ("example.org", "a Hearth server name is 64 hex characters"),
        (&"A".repeat(64)[..], "not lowercase hex"),
        (&"g".repeat(64)[..], "not lowercase hex"),
        (&"0".repeat(62)[..], "a Hearth server name is 64 hex characters"),
    ];
    for (name, reason) in cases {
        let server = ServerName::parse(name).unwrap();
        assert_eq!(
            verify_key_for_server(&server).unwrap_err(),
            CoreError::InvalidServerKey { name: name.to_owned(), reason },
        );
    }
    // 64 hex digits that do not decode to a curve point.
    let not_a_point = ServerName::parse(format!("02{}", "0".repeat(62))).unwrap();
    let error = verify_key_for_server(&not_a_point).unwrap_err();
    assert!(
        matches!(error, CoreError::InvalidServerKey { reason: "not an ed25519 public key", .. }),
        "{error}"
    );
}

#[test]
fn peer_id_matches_libp2p_encoding() {
    // The seed-7 key's peer ID as libp2p prints it; the prefix `12D3KooW` is every ed25519 peer.
    let identity = ServerIdentity::from_seed(&[7; 32]).unwrap();
    let peer_id = identity.peer_id();
    let text = peer_id.to_string();
    assert!(text.starts_with("12D3KooW"), "{text}");
    assert_eq!(PeerId::parse(&text).unwrap(), peer_id);
    assert_eq!(PeerId::from_bytes(peer_id.as_bytes()).unwrap(), peer_id);
    assert_eq!(peer_id.public_key(), identity.public_key());
    assert_eq!(PeerId::for_server(identity.server_name()).unwrap(), peer_id);
}

#[test]
fn a_peer_claiming_another_servers_name_is_refused() {
    let honest = ServerIdentity::generate().unwrap();
    let impostor = ServerIdentity::generate().unwrap();
    honest.peer_id().check_claim(honest.server_name()).unwrap();
    assert_eq!(
        impostor.peer_id().check_claim(honest.server_name()),
        Err(CoreError::PeerIdMismatch { server_name: honest.server_name().to_string() })
    );
    assert!(matches!(
        PeerId::parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"),
        Err(CoreError::InvalidPeerId(_))
    ));
    assert!(matches!(PeerId::parse("not base58 0OIl"), Err(CoreError::InvalidPeerId(_))));
}

#[test]
fn json_signed_by_a_server_verifies_by_its_name_alone() {
    let identity = ServerIdentity::generate().unwrap();
    let mut object = json::parse_object(br#"{"server_name": "x", "valid_until_ts": 1}"#).unwrap();
    signing::sign_json(identity.server_name().as_str(), identity.key(), &mut object).unwrap();
    signing::verify_server_json(identity.server_name(), &object).unwrap();

    let other = ServerIdentity::generate().unwrap();
    assert!(matches!(
        signing::verify_server_json(other.server_name(), &object),
        Err(CoreError::BadSignature(_))
    ));
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn peer_id_is_the_one_libp2p_derives_from_the_same_key() {
    for seed in [[7u8; 32], [42; 32], [255; 32]] {
        let identity = ServerIdentity::from_seed(&seed).unwrap();
        let mut secret = seed;
        let keypair = libp2p_identity::Keypair::ed25519_from_bytes(&mut secret).unwrap();
        let libp2p_peer = keypair.public().to_peer_id();
        assert_eq!(identity.peer_id().to_string(), libp2p_peer.to_string());
        assert_eq!(identity.peer_id().as_bytes(), libp2p_peer.to_bytes());
    }
}
