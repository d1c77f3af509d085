//! A hostile peer: a server that joins a room properly, then sends events with bad signatures,
//! wrong content hashes, forged senders, events that fail the auth rules, and malformed,
//! oversized, misattributed or repeated transactions. Each is refused (or, for a wrong content
//! hash, kept redacted as the spec says) and counted, and the room's state is unharmed: the
//! local user still sends and reads, and a valid event from the same peer still goes through.
//!
//! The peer is driven by the test with its own [`ServerIdentity`]; the server under test has no
//! network, so what it sends back to the peer fails and is retried in the background.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{Reply, User, enc, register};
use hearth_core::{
    Pdu, PduBuilder, RoomVersion, ServerIdentity,
    ruma::{
        CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedUserId, UInt,
        events::TimelineEventType,
    },
    signing,
};
use hearth_server::Server;
use serde_json::{Value, json};

/// The hostile server, its user (joined to the room) and the room it joined.
struct Evil {
    identity: ServerIdentity,
    user: OwnedUserId,
    room_id: String,
    version: RoomVersion,
    next_txn: std::cell::Cell<u32>,
}

/// A room with a local user in it, and the hostile server's user joined to it.
struct Setup {
    server: Server,
    alice: User,
    evil: Evil,
}

// A native test: the system clock is there.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}

fn object(value: Value) -> CanonicalJsonObject {
    match CanonicalJsonValue::try_from(value).unwrap() {
        CanonicalJsonValue::Object(object) => object,
        other => panic!("not an object: {other:?}"),
    }
}

fn to_value(object: &CanonicalJsonObject) -> Value {
    serde_json::to_value(object).unwrap()
}

/// Hashes and signs an event as `identity` (whatever it claims inside).
fn sign_as(
    identity: &ServerIdentity,
    version: RoomVersion,
    mut event: CanonicalJsonObject,
) -> Value {
    for field in ["signatures", "hashes", "unsigned", "event_id"] {
        event.remove(field);
    }
    signing::hash_and_sign_event(
        identity.server_name().as_str(),
        identity.key(),
        &mut event,
        version,
    )
    .unwrap();
    to_value(&event)
}

fn event_id(version: RoomVersion, event: &Value) -> String {
    let pdu = Pdu::from_canonical(version, object(event.clone())).unwrap();
    pdu.event_id().to_string()
}

/// Joins `user` (of `identity`'s server) to the room: `make_join`, the template signed,
/// `send_join`. Returns the room's version.
async fn join_room(
    server: &Server,
    identity: &ServerIdentity,
    room_id: &str,
    user: &OwnedUserId,
) -> RoomVersion {
    let path = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=10&ver=11&ver=12",
        enc(room_id),
        enc(user.as_str())
    );
    let template = common::federation(server, identity, "GET", &path, None).await.ok();
    let version: RoomVersion = template["room_version"].as_str().unwrap().parse().unwrap();
    let mut join = object(template["event"].clone());
    let content = json!({ "membership": "join", "displayname": user.localpart() });
    join.insert("content".into(), CanonicalJsonValue::Object(object(content)));
    let join = sign_as(identity, version, join);
    let join_id = event_id(version, &join);
    let path = format!("/_matrix/federation/v2/send_join/{}/{}", enc(room_id), enc(&join_id));
    let answer = common::federation(server, identity, "PUT", &path, Some(join)).await.ok();
    assert!(!answer["state"].as_array().unwrap().is_empty(), "{answer}");
    version
}

impl Setup {
    async fn new() -> Setup {
        let server = common::server().await;
        let alice = register(&server, "alice").await;
        let room_id = alice.create_room(&server, json!({ "preset": "public_chat" })).await;
        alice.send_text(&server, &room_id, "before anyone came").await;

        let identity = ServerIdentity::generate().unwrap();
        let user = OwnedUserId::try_from(format!("@mallory:{}", identity.server_name())).unwrap();
        let version = join_room(&server, &identity, &room_id, &user).await;

        let evil = Evil { identity, user, room_id, version, next_txn: std::cell::Cell::new(0) };
        let setup = Setup { server, alice, evil };
        let members = setup.state().await;
        assert!(members.contains_key(&("m.room.member".into(), setup.evil.user.to_string())));
        setup
    }

    /// The room's current state as alice sees it: (type, state key) → event ID.
    async fn state(&self) -> BTreeMap<(String, String), String> {
        let path = format!("/_matrix/client/v3/rooms/{}/state", enc(&self.evil.room_id));
        let state = self.alice.get(&self.server, &path).await.ok();
        state
            .as_array()
            .unwrap()
            .iter()
            .map(|event| {
                let key = (
                    event["type"].as_str().unwrap().to_owned(),
                    event["state_key"].as_str().unwrap().to_owned(),
                );
                (key, event["event_id"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// The message bodies in the room, oldest first.
    async fn bodies(&self) -> Vec<String> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000",
            enc(&self.evil.room_id)
        );
        let reply = self.alice.get(&self.server, &path).await.ok();
        let mut bodies: Vec<String> = reply["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
            .collect();
        bodies.reverse();
        bodies
    }

    /// An event as alice's client API shows it (status and body).
    async fn client_event(&self, event_id: &str) -> Reply {
        let path =
            format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&self.evil.room_id), enc(event_id));
        self.alice.get(&self.server, &path).await
    }

    /// An unsigned event by `sender` on top of the room as it is now: prev events and depth
    /// from a `make_join` template, auth events chosen from the current state.
    async fn draft(
        &self,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> CanonicalJsonObject {
        let evil = &self.evil;
        let path = format!(
            "/_matrix/federation/v1/make_join/{}/{}?ver=10&ver=11&ver=12",
            enc(&evil.room_id),
            enc(evil.user.as_str())
        );
        let template =
            common::federation(&self.server, &evil.identity, "GET", &path, None).await.ok();
        let mut builder = PduBuilder::new(
            evil.version,
            Some(evil.room_id.as_str().try_into().unwrap()),
            sender.try_into().unwrap(),
            TimelineEventType::from(kind),
            object(content.clone()),
            MilliSecondsSinceUnixEpoch(UInt::new_saturating(now_ms())),
        );
        builder.state_key = state_key.map(str::to_owned);
        let state = self.state().await;
        let auth_events: Vec<&String> = builder
            .auth_types()
            .unwrap()
            .into_iter()
            .filter_map(|(kind, state_key)| state.get(&(kind.to_string(), state_key)))
            .collect();
        let mut event = json!({
            "room_id": evil.room_id,
            "sender": sender,
            "type": kind,
            "content": content,
            "prev_events": template["event"]["prev_events"],
            "auth_events": auth_events,
            "depth": template["event"]["depth"],
            "origin_server_ts": now_ms(),
        });
        if let Some(state_key) = state_key {
            event["state_key"] = json!(state_key);
        }
        object(event)
    }

    /// A message from the hostile server's user, signed by it.
    async fn message(&self, body: &str) -> Value {
        let draft = self
            .draft(
                self.evil.user.as_str(),
                "m.room.message",
                None,
                json!({ "msgtype": "m.text", "body": body }),
            )
            .await;
        sign_as(&self.evil.identity, self.evil.version, draft)
    }

    /// `PUT /send/{txnId}` from the hostile server with a fresh transaction ID.
    async fn send(&self, pdus: Vec<Value>) -> Reply {
        let txn = self.evil.next_txn.get();
        self.evil.next_txn.set(txn + 1);
        self.send_as(&format!("t{txn}"), self.evil.identity.server_name().as_str(), pdus, vec![])
            .await
    }

    async fn send_as(&self, txn: &str, origin: &str, pdus: Vec<Value>, edus: Vec<Value>) -> Reply {
        let body = json!({
            "origin": origin,
            "origin_server_ts": now_ms(),
            "pdus": pdus,
            "edus": edus,
        });
        let path = format!("/_matrix/federation/v1/send/{txn}");
        common::federation(&self.server, &self.evil.identity, "PUT", &path, Some(body)).await
    }

    /// After a hostile case: the state is what it was, alice still sends and reads.
    async fn still_healthy(&self, state_before: &BTreeMap<(String, String), String>, case: &str) {
        assert_eq!(&self.state().await, state_before, "{case}: the room's state changed");
        let body = format!("alice after {case}");
        self.alice.send_text(&self.server, &self.evil.room_id, &body).await;
        assert_eq!(self.bodies().await.last(), Some(&body), "{case}");
    }
}

/// Changes the first character of `server`'s signature on `event`: still base64, no longer
/// a signature.
fn alter_signature(event: &mut Value, server: &str) {
    let signature = &mut event["signatures"][server]["ed25519:hearth"];
    let text = signature.as_str().unwrap().to_owned();
    let flipped = if text.starts_with('A') { "B" } else { "A" };
    *signature = json!(format!("{flipped}{}", &text[1..]));
}

/// The per-PDU result of a transaction answer: `None` when accepted, the error otherwise.
#[track_caller]
fn pdu_error(reply: &Value, event_id: &str) -> Option<String> {
    let result = &reply["pdus"][event_id];
    assert!(result.is_object(), "no result for {event_id} in {reply}");
    result.get("error").map(|error| error.as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_valid_event_from_the_peer_is_accepted() {
    let setup = Setup::new().await;
    let refused = setup.server.refused_events();
    let message = setup.message("hello from mallory").await;
    let id = event_id(setup.evil.version, &message);
    let reply = setup.send(vec![message]).await.ok();
    assert_eq!(pdu_error(&reply, &id), None);
    assert_eq!(setup.bodies().await.last().map(String::as_str), Some("hello from mallory"));
    assert_eq!(setup.server.refused_events(), refused);
}

#[tokio::test]
async fn an_event_with_a_bad_signature_is_refused_and_not_stored() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let refused = setup.server.refused_events();
    let genuine = setup.message("signed, then altered").await;
    let id = event_id(setup.evil.version, &genuine);
    let mut forged = genuine.clone();
    alter_signature(&mut forged, setup.evil.identity.server_name().as_str());
    // The event ID is the reference hash, which leaves signatures out: the same ID.
    assert_eq!(event_id(setup.evil.version, &forged), id);

    let reply = setup.send(vec![forged]).await.ok();
    assert!(pdu_error(&reply, &id).is_some_and(|error| error.contains("signature")), "{reply}");
    assert_eq!(setup.server.refused_events(), refused + 1);
    assert_eq!(setup.client_event(&id).await.status, 404);
    setup.still_healthy(&state, "a bad signature").await;

    // A forgery is not remembered: the genuine event with the same ID still goes through.
    let reply = setup.send(vec![genuine]).await.ok();
    assert_eq!(pdu_error(&reply, &id), None);
    assert!(setup.bodies().await.contains(&"signed, then altered".to_owned()));
}

#[tokio::test]
async fn an_event_whose_content_changed_after_signing_is_kept_redacted() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let mut message = setup.message("what was signed").await;
    let id = event_id(setup.evil.version, &message);
    message["content"]["body"] = json!("what was sent");
    // The reference hash covers the redacted event: the content is not part of the ID.
    assert_eq!(event_id(setup.evil.version, &message), id);

    let reply = setup.send(vec![message]).await.ok();
    assert_eq!(pdu_error(&reply, &id), None, "kept, redacted, per the spec");
    let event = setup.client_event(&id).await.ok();
    assert_eq!(event["type"], "m.room.message");
    assert_eq!(event["content"], json!({}), "the altered content is not shown: {event}");
    let bodies = setup.bodies().await;
    assert!(!bodies.iter().any(|body| body.starts_with("what was")), "{bodies:?}");
    setup.still_healthy(&state, "a wrong content hash").await;
}

#[tokio::test]
async fn an_event_claiming_another_servers_sender_is_refused() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let refused = setup.server.refused_events();
    let draft = setup
        .draft(
            &setup.alice.user_id,
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": "alice never said this" }),
        )
        .await;

    // Signed by the hostile server under its own name: the sender's server did not sign.
    let signed_as_self = sign_as(&setup.evil.identity, setup.evil.version, draft.clone());
    let id = event_id(setup.evil.version, &signed_as_self);
    // Signed by the hostile key under the name of alice's server: not that server's key.
    let mut signed_as_alice = signed_as_self.clone();
    let signatures = signed_as_alice["signatures"].as_object_mut().unwrap();
    let ours = signatures.remove(setup.evil.identity.server_name().as_str()).unwrap();
    signatures.insert(setup.server.server_name().to_string(), ours);
    // Sent by a third server, whose key the hostile server does not have either.
    let third = ServerIdentity::generate().unwrap();
    let mut draft = draft;
    draft.insert(
        "sender".into(),
        CanonicalJsonValue::String(format!("@eve:{}", third.server_name())),
    );
    let third_party = sign_as(&setup.evil.identity, setup.evil.version, draft);
    let third_id = event_id(setup.evil.version, &third_party);

    for (case, event, id) in [
        ("signed as itself", signed_as_self, &id),
        ("signed under alice's server's name", signed_as_alice, &id),
        ("a third server's user", third_party, &third_id),
    ] {
        let before = setup.server.refused_events();
        let reply = setup.send(vec![event]).await.ok();
        assert!(pdu_error(&reply, id).is_some(), "{case}: {reply}");
        assert_eq!(setup.server.refused_events(), before + 1, "{case}");
        assert_eq!(setup.client_event(id).await.status, 404, "{case}");
        setup.still_healthy(&state, case).await;
    }
    assert!(!setup.bodies().await.contains(&"alice never said this".to_owned()));
    assert_eq!(setup.server.refused_events(), refused + 3);
}

#[tokio::test]
async fn events_that_fail_the_auth_rules_are_refused() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let evil = &setup.evil;
    let mallory = evil.user.as_str();
    let sign = |draft| sign_as(&evil.identity, evil.version, draft);

    // mallory (power 0) makes themself an admin.
    let power_levels = sign(
        setup
            .draft(
                mallory,
                "m.room.power_levels",
                Some(""),
                json!({ "users": { mallory: 100, setup.alice.user_id.as_str(): 0 } }),
            )
            .await,
    );
    let power_levels_id = event_id(evil.version, &power_levels);
    // A user of the hostile server who never joined speaks.
    let stranger = format!("@stranger:{}", evil.identity.server_name());
    let stranger_message = sign(
        setup
            .draft(
                &stranger,
                "m.room.message",
                None,
                json!({ "msgtype": "m.text", "body": "who am I" }),
            )
            .await,
    );
    let stranger_id = event_id(evil.version, &stranger_message);

    let before = setup.server.refused_events();
    let reply = setup.send(vec![power_levels, stranger_message]).await.ok();
    assert!(pdu_error(&reply, &power_levels_id).is_some(), "{reply}");
    assert!(pdu_error(&reply, &stranger_id).is_some(), "{reply}");
    assert_eq!(setup.server.refused_events(), before + 2);
    assert_eq!(setup.client_event(&power_levels_id).await.status, 404);
    assert_eq!(setup.client_event(&stranger_id).await.status, 404);
    setup.still_healthy(&state, "failed auth").await;

    // mallory's own member event (which mallory may change) citing the rejected power levels
    // as an auth event, then citing an event that does not exist.
    let rename = |name: &str| json!({ "membership": "join", "displayname": name });
    let mut citing_rejected =
        setup.draft(mallory, "m.room.member", Some(mallory), rename("Admin Mallory")).await;
    replace_auth_event(&mut citing_rejected, &state, "m.room.power_levels", &power_levels_id);
    let citing_rejected = sign(citing_rejected);
    let citing_rejected_id = event_id(evil.version, &citing_rejected);
    let mut citing_nothing =
        setup.draft(mallory, "m.room.member", Some(mallory), rename("Ghost Mallory")).await;
    let nowhere = format!("${}", "A".repeat(43));
    replace_auth_event(&mut citing_nothing, &state, "m.room.power_levels", &nowhere);
    let citing_nothing = sign(citing_nothing);
    let citing_nothing_id = event_id(evil.version, &citing_nothing);
    let other_room =
        setup.alice.create_room(&setup.server, json!({ "preset": "public_chat" })).await;
    let path = format!("/_matrix/client/v3/rooms/{}/state", enc(&other_room));
    let other_state = setup.alice.get(&setup.server, &path).await.ok();
    let other_power_levels = other_state
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["type"] == "m.room.power_levels")
        .unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut citing_elsewhere =
        setup.draft(mallory, "m.room.member", Some(mallory), rename("Cross Mallory")).await;
    replace_auth_event(&mut citing_elsewhere, &state, "m.room.power_levels", &other_power_levels);
    let citing_elsewhere = sign(citing_elsewhere);
    let citing_elsewhere_id = event_id(evil.version, &citing_elsewhere);

    for (case, event, id) in [
        ("an auth event that was rejected", citing_rejected, &citing_rejected_id),
        ("an auth event that does not exist", citing_nothing, &citing_nothing_id),
        ("an auth event of another room", citing_elsewhere, &citing_elsewhere_id),
    ] {
        let before = setup.server.refused_events();
        let reply = setup.send(vec![event]).await.ok();
        assert!(pdu_error(&reply, id).is_some(), "{case}: {reply}");
        assert_eq!(setup.server.refused_events(), before + 1, "{case}");
        assert_eq!(setup.client_event(id).await.status, 404, "{case}");
        setup.still_healthy(&state, case).await;
    }

    // The same rename with the right auth events goes through.
    let genuine =
        sign(setup.draft(mallory, "m.room.member", Some(mallory), rename("Mallory 2")).await);
    let genuine_id = event_id(evil.version, &genuine);
    let reply = setup.send(vec![genuine]).await.ok();
    assert_eq!(pdu_error(&reply, &genuine_id), None);
    let now = setup.state().await;
    assert_eq!(now.get(&("m.room.member".into(), mallory.into())), Some(&genuine_id));
}

/// Swaps the auth event of `kind` (as the state has it) for `replacement`.
fn replace_auth_event(
    draft: &mut CanonicalJsonObject,
    state: &BTreeMap<(String, String), String>,
    kind: &str,
    replacement: &str,
) {
    let current = &state[&(kind.to_owned(), String::new())];
    let Some(CanonicalJsonValue::Array(auth_events)) = draft.get_mut("auth_events") else {
        panic!("no auth events");
    };
    let slot = auth_events
        .iter_mut()
        .find(|id| id.as_str() == Some(current.as_str()))
        .expect("the auth event to replace");
    *slot = CanonicalJsonValue::String(replacement.to_owned());
}

#[tokio::test]
async fn oversized_and_misattributed_transactions_are_refused_whole() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let origin = setup.evil.identity.server_name().to_string();
    let refused = setup.server.refused_events();

    // 51 PDUs: one too many, none of them handled.
    let mut pdus = Vec::new();
    for n in 0..51 {
        pdus.push(setup.message(&format!("flood {n}")).await);
    }
    let reply = setup.send_as("big", &origin, pdus, vec![]).await;
    assert_eq!((reply.status, reply.errcode()), (413, "M_TOO_LARGE"), "{:?}", reply.body);

    // 101 EDUs (with one valid PDU): one too many, nothing handled.
    let typing = json!({
        "edu_type": "m.typing",
        "content": { "room_id": setup.evil.room_id, "user_id": setup.evil.user, "typing": true },
    });
    let with_edus = setup.message("with too many EDUs").await;
    let reply = setup.send_as("edus", &origin, vec![with_edus], vec![typing; 101]).await;
    assert_eq!((reply.status, reply.errcode()), (413, "M_TOO_LARGE"), "{:?}", reply.body);

    // A transaction whose `origin` is not the server that signed the request.
    let other = ServerIdentity::generate().unwrap();
    let misattributed = setup.message("from somebody else").await;
    let reply =
        setup.send_as("other", other.server_name().as_str(), vec![misattributed], vec![]).await;
    assert_eq!((reply.status, reply.errcode()), (403, "M_FORBIDDEN"), "{:?}", reply.body);
    assert_eq!(setup.server.refused_events(), refused + 3, "each refused transaction counts");

    // A body over the server's request limit (1 MiB): refused before it is even parsed.
    let mut heavy = Vec::new();
    for n in 0..20 {
        let mut message = setup.message(&format!("heavy {n}")).await;
        message["content"]["padding"] = json!("x".repeat(60_000));
        heavy.push(message);
    }
    let reply = setup.send_as("heavy", &origin, heavy, vec![]).await;
    assert_eq!((reply.status, reply.errcode()), (413, "M_TOO_LARGE"), "{:?}", reply.body);

    let bodies = setup.bodies().await;
    assert!(
        !bodies.iter().any(|body| body.starts_with("flood")
            || body.starts_with("heavy")
            || body == "with too many EDUs"
            || body == "from somebody else"),
        "{bodies:?}"
    );
    let sync = setup.alice.sync(&setup.server, None, "").await;
    let ephemeral = &sync["rooms"]["join"][&setup.evil.room_id]["ephemeral"]["events"];
    assert!(
        !ephemeral.to_string().contains(setup.evil.user.as_str()),
        "no typing from the refused EDUs: {ephemeral}"
    );
    setup.still_healthy(&state, "refused transactions").await;

    // The refused transaction IDs were not remembered: a valid retry is handled.
    let retry = setup.message("the retry").await;
    let retry_id = event_id(setup.evil.version, &retry);
    let reply = setup.send_as("big", &origin, vec![retry], vec![]).await.ok();
    assert_eq!(pdu_error(&reply, &retry_id), None);
    assert_eq!(setup.bodies().await.last().map(String::as_str), Some("the retry"));
}

#[tokio::test]
async fn malformed_transactions_and_pdus_are_refused() {
    let setup = Setup::new().await;
    let state = setup.state().await;

    // A body that is not JSON (signed as if it were an empty object, then replaced).
    let mut request = http::Request::builder()
        .method("PUT")
        .uri("/_matrix/federation/v1/send/garbage")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    hearth_server::sign_request(&setup.evil.identity, setup.server.server_name(), &mut request)
        .unwrap();
    *request.body_mut() = b"{\"origin\": not json".to_vec();
    let response = setup.server.handle(request).await;
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!((response.status().as_u16(), body["errcode"].as_str()), (400, Some("M_NOT_JSON")));

    // PDUs that are not events: not an object, fields missing, over 65,536 bytes.
    let mut missing_depth = setup
        .draft(
            setup.evil.user.as_str(),
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": "no depth" }),
        )
        .await;
    missing_depth.remove("depth");
    let missing_depth = sign_as(&setup.evil.identity, setup.evil.version, missing_depth);
    let mut missing_room = setup.message("no room").await;
    missing_room.as_object_mut().unwrap().remove("room_id");
    // (Signing refuses so large an event: it grows after signing.)
    let mut huge = setup.message("small").await;
    huge["content"]["body"] = json!("x".repeat(70_000));
    let mut too_many_prev = setup
        .draft(
            setup.evil.user.as_str(),
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": "too many prev events" }),
        )
        .await;
    let prev: Vec<CanonicalJsonValue> =
        (0..21).map(|n| CanonicalJsonValue::String(format!("${n:A>43}"))).collect();
    too_many_prev.insert("prev_events".into(), CanonicalJsonValue::Array(prev));
    let too_many_prev = sign_as(&setup.evil.identity, setup.evil.version, too_many_prev);
    let refused = setup.server.refused_events();
    let malformed = vec![
        json!(42),
        json!("an event"),
        json!([1, 2]),
        missing_depth,
        missing_room,
        huge,
        too_many_prev,
    ];
    let count = malformed.len() as u64;
    let valid = setup.message("valid among the malformed").await;
    let valid_id = event_id(setup.evil.version, &valid);
    let mut pdus = malformed;
    pdus.push(valid);
    let reply = setup.send(pdus).await.ok();
    assert_eq!(pdu_error(&reply, &valid_id), None, "{reply}");
    assert_eq!(setup.server.refused_events(), refused + count);
    let bodies = setup.bodies().await;
    assert_eq!(bodies.last().map(String::as_str), Some("valid among the malformed"));
    assert!(
        !bodies.iter().any(|body| body == "no depth"
            || body == "no room"
            || body == "too many prev events"
            || body.starts_with("xxx")),
        "{bodies:?}"
    );
    setup.still_healthy(&state, "malformed PDUs").await;

    // EDUs that are junk, or speak for alice (a user of another server than the sender):
    // dropped, and the rest of the transaction still applies.
    let speaking_for_alice = json!({
        "edu_type": "m.typing",
        "content": { "room_id": setup.evil.room_id, "user_id": setup.alice.user_id, "typing": true },
    });
    let mallory_typing = json!({
        "edu_type": "m.typing",
        "content": { "room_id": setup.evil.room_id, "user_id": setup.evil.user, "typing": true },
    });
    let edus =
        vec![json!(42), json!({ "edu_type": "m.typing" }), speaking_for_alice, mallory_typing];
    let valid = setup.message("valid among junk EDUs").await;
    let valid_id = event_id(setup.evil.version, &valid);
    let origin = setup.evil.identity.server_name().to_string();
    let reply = setup.send_as("junk-edus", &origin, vec![valid], edus).await.ok();
    assert_eq!(pdu_error(&reply, &valid_id), None, "{reply}");
    let sync = setup.alice.sync(&setup.server, None, "").await;
    let typing: Vec<Value> = sync["rooms"]["join"][&setup.evil.room_id]["ephemeral"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["type"] == "m.typing")
        .flat_map(|event| event["content"]["user_ids"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(typing, [json!(setup.evil.user)], "only mallory's own typing applies");
    assert_eq!(setup.bodies().await.last().map(String::as_str), Some("valid among junk EDUs"));
}

#[tokio::test]
async fn a_repeated_transaction_gets_the_same_answer_and_is_not_handled_again() {
    let setup = Setup::new().await;
    let origin = setup.evil.identity.server_name().to_string();
    let message = setup.message("only once").await;
    let message_id = event_id(setup.evil.version, &message);
    let mut forged = setup.message("forged once").await;
    forged["content"]["body"] = json!("forged once!");
    alter_signature(&mut forged, &origin);
    let forged_id = event_id(setup.evil.version, &forged);

    let refused = setup.server.refused_events();
    let pdus = vec![message, forged];
    let first = setup.send_as("again", &origin, pdus.clone(), vec![]).await.ok();
    assert_eq!(pdu_error(&first, &message_id), None);
    assert!(pdu_error(&first, &forged_id).is_some());
    assert_eq!(setup.server.refused_events(), refused + 1);

    let second = setup.send_as("again", &origin, pdus, vec![]).await.ok();
    assert_eq!(second, first);
    assert_eq!(setup.server.refused_events(), refused + 1, "not checked again");
    // Even with other contents, the transaction ID has its answer already.
    let late = setup.message("sneaked into a used transaction").await;
    let third = setup.send_as("again", &origin, vec![late], vec![]).await.ok();
    assert_eq!(third, first);
    let bodies = setup.bodies().await;
    assert_eq!(bodies.iter().filter(|body| *body == "only once").count(), 1, "{bodies:?}");
    assert!(!bodies.contains(&"sneaked into a used transaction".to_owned()));
}

#[tokio::test]
async fn events_misplaced_in_the_room_are_refused() {
    let setup = Setup::new().await;
    let state = setup.state().await;
    let evil = &setup.evil;
    let mallory = evil.user.as_str();
    let sign = |draft| sign_as(&evil.identity, evil.version, draft);
    let create_id = state[&("m.room.create".to_owned(), String::new())].clone();

    // mallory renames themself right after the room's creation, before they joined: the auth
    // events it cites (mallory's join) allow it, the state at its place in the room does not.
    let mut before_joining = setup
        .draft(
            mallory,
            "m.room.member",
            Some(mallory),
            json!({ "membership": "join", "displayname": "Founder" }),
        )
        .await;
    before_joining.insert("prev_events".into(), CanonicalJsonValue::Array(vec![create_id.into()]));
    before_joining.insert("depth".into(), CanonicalJsonValue::Integer(2u32.into()));
    let before_joining = sign(before_joining);
    let before_joining_id = event_id(evil.version, &before_joining);

    // A message after an event nobody has (and mallory's server does not answer for).
    let mut after_nothing = setup
        .draft(
            mallory,
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": "after nothing" }),
        )
        .await;
    let nowhere = format!("${}", "B".repeat(43));
    after_nothing.insert("prev_events".into(), CanonicalJsonValue::Array(vec![nowhere.into()]));
    let after_nothing = sign(after_nothing);
    let after_nothing_id = event_id(evil.version, &after_nothing);

    for (case, event, id) in [
        ("placed before its sender joined", before_joining, &before_joining_id),
        ("after an event nobody has", after_nothing, &after_nothing_id),
    ] {
        let before = setup.server.refused_events();
        let reply = setup.send(vec![event]).await.ok();
        assert!(pdu_error(&reply, id).is_some(), "{case}: {reply}");
        assert_eq!(setup.server.refused_events(), before + 1, "{case}");
        assert_eq!(setup.client_event(id).await.status, 404, "{case}");
        setup.still_healthy(&state, case).await;
    }

    // An event for a room this server is not in: nothing to answer for it, nothing stored.
    let mut elsewhere = setup
        .draft(mallory, "m.room.message", None, json!({ "msgtype": "m.text", "body": "elsewhere" }))
        .await;
    let other_room = format!("!elsewhere:{}", evil.identity.server_name());
    elsewhere.insert("room_id".into(), CanonicalJsonValue::String(other_room));
    let before = setup.server.refused_events();
    let reply = setup.send(vec![sign(elsewhere)]).await.ok();
    assert_eq!(reply["pdus"], json!({}), "{reply}");
    assert_eq!(setup.server.refused_events(), before + 1);
    setup.still_healthy(&state, "a PDU for another room").await;
}

#[tokio::test]
async fn an_event_at_the_largest_depth_does_not_stop_the_room() {
    let setup = Setup::new().await;
    let evil = &setup.evil;
    let mut deep = setup
        .draft(
            evil.user.as_str(),
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": "deep" }),
        )
        .await;
    deep.insert("depth".into(), CanonicalJsonValue::Integer(UInt::MAX.into()));
    let deep = sign_as(&evil.identity, evil.version, deep);
    let deep_id = event_id(evil.version, &deep);
    let reply = setup.send(vec![deep]).await.ok();
    assert_eq!(pdu_error(&reply, &deep_id), None, "a valid event, however deep");

    // Another server can still join: its template's depth is one JSON can carry.
    let other = ServerIdentity::generate().unwrap();
    let newcomer = OwnedUserId::try_from(format!("@newcomer:{}", other.server_name())).unwrap();
    join_room(&setup.server, &other, &evil.room_id, &newcomer).await;
    let state = setup.state().await;
    assert!(state.contains_key(&("m.room.member".into(), newcomer.to_string())));

    // alice's next event stays at the largest depth instead of starting again at 1.
    let id = setup.alice.send_text(&setup.server, &evil.room_id, "after the deep one").await;
    let path = format!("/_matrix/federation/v1/event/{}", enc(&id));
    let event = common::federation(&setup.server, &evil.identity, "GET", &path, None).await.ok();
    assert_eq!(event["pdus"][0]["depth"], json!(UInt::MAX), "{event}");
    setup.still_healthy(&state, "an event at the largest depth").await;
}

#[tokio::test]
async fn a_redaction_by_a_user_without_the_power_changes_nothing() {
    let setup = Setup::new().await;
    let evil = &setup.evil;
    let target = setup.alice.send_text(&setup.server, &evil.room_id, "alice's words").await;
    let state = setup.state().await;
    let mut redaction = setup
        .draft(evil.user.as_str(), "m.room.redaction", None, json!({ "redacts": target }))
        .await;
    // At the top level as well as in the content: whichever the room version reads.
    redaction.insert("redacts".into(), CanonicalJsonValue::String(target.clone()));
    let redaction = sign_as(&evil.identity, evil.version, redaction);
    // Room versions from 3 on may accept the event itself: the check is when it is applied.
    setup.send(vec![redaction]).await.ok();
    let event = setup.client_event(&target).await.ok();
    assert_eq!(event["content"]["body"], "alice's words", "mallory (power 0) cannot redact alice");
    assert!(setup.bodies().await.contains(&"alice's words".to_owned()));
    setup.still_healthy(&state, "an unauthorised redaction").await;
}
