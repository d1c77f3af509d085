//! Synthetic rooms of real, signed events, for tests, fixtures, fuzzing and benchmarks.
//!
//! A [`TestRoom`] keeps every event and the state after it, so that a test can branch the DAG
//! anywhere and ask for the state at any tip.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use ruma::{
    CanonicalJsonObject, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, UInt,
    events::{StateEventType, TimelineEventType},
};
use serde_json::{Value, json};

use crate::{
    CoreError, Pdu, PduBuilder, RoomVersion, ServerIdentity, StateMap, auth, json as cjson,
    resolve_state,
};

/// The seed of the test server, so that every run builds byte-identical events.
pub const TEST_SEED: [u8; 32] = [7; 32];

/// A room being built event by event by users of one test server.
pub struct TestRoom {
    /// The server all test users live on.
    pub identity: ServerIdentity,
    /// The room version.
    pub version: RoomVersion,
    /// The room ID.
    pub room_id: OwnedRoomId,
    /// Every event, by ID.
    pub events: BTreeMap<OwnedEventId, Pdu>,
    /// The state after each event.
    pub state_after: BTreeMap<OwnedEventId, StateMap>,
    /// The create event.
    pub create_id: OwnedEventId,
}

impl TestRoom {
    /// A room created by `creator` (a localpart) at `ts`, with nothing but the create event.
    pub fn create(version: RoomVersion, creator: &str, ts: u64) -> Result<Self, CoreError> {
        let identity = ServerIdentity::from_seed(&TEST_SEED)?;
        let sender = user_id(&identity, creator)?;
        let mut content = json!({ "room_version": version.as_str() });
        if !version.rules().authorization.use_room_create_sender {
            content["creator"] = json!(sender);
        }
        let room_id = match version.room_id_from_create_event() {
            true => None,
            false => Some(
                OwnedRoomId::try_from(format!("!test:{}", identity.server_name()))
                    .map_err(|error| CoreError::MalformedEvent(error.to_string()))?,
            ),
        };
        let mut builder = PduBuilder::new(
            version,
            room_id,
            sender,
            TimelineEventType::RoomCreate,
            object(content)?,
            timestamp(ts),
        );
        builder.state_key = Some(String::new());
        let create = builder.build(&identity)?;
        auth::check_auth_events(&create, |_| None)?;
        let create_id = create.event_id().to_owned();
        let mut state = StateMap::new();
        state.insert((StateEventType::RoomCreate, String::new()), create_id.clone());
        Ok(Self {
            room_id: create.room_id().to_owned(),
            identity,
            version,
            events: BTreeMap::from([(create_id.clone(), create)]),
            state_after: BTreeMap::from([(create_id.clone(), state)]),
            create_id,
        })
    }

    /// The user ID of a localpart on the test server.
    pub fn user(&self, localpart: &str) -> Result<OwnedUserId, CoreError> {
        user_id(&self.identity, localpart)
    }

    /// Adds an event after `prev` (resolving their states if there are several), checked
    /// against its auth events and the state before it. Returns its ID.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        prev: &[OwnedEventId],
        ts: u64,
    ) -> Result<OwnedEventId, CoreError> {
        let state_before = self.state_before(prev)?;
        let mut builder = PduBuilder::new(
            self.version,
            Some(self.room_id.clone()),
            self.user(sender)?,
            kind.into(),
            object(content)?,
            timestamp(ts),
        );
        builder.state_key = state_key.map(str::to_owned);
        builder.prev_events = prev.to_vec();
        builder.prev_depth = prev
            .iter()
            .filter_map(|id| self.events.get(id))
            .map(Pdu::depth)
            .max()
            .unwrap_or(UInt::MIN);
        builder.auth_events =
            builder.auth_types()?.iter().filter_map(|key| state_before.get(key).cloned()).collect();
        let pdu = builder.build(&self.identity)?;
        auth::check_auth_events(&pdu, |id| self.events.get(id).cloned())?;
        auth::check_against_state(&pdu, |kind, key| {
            state_before
                .get(&(kind.clone(), key.to_owned()))
                .and_then(|id| self.events.get(id))
                .cloned()
        })?;
        let id = pdu.event_id().to_owned();
        let mut state_after = state_before;
        if let Some(key) = pdu.state_key_pair() {
            state_after.insert(key, id.clone());
        }
        self.events.insert(id.clone(), pdu);
        self.state_after.insert(id.clone(), state_after);
        Ok(id)
    }

    /// `localpart` joins (or tries to) after `prev`.
    pub fn join(
        &mut self,
        localpart: &str,
        prev: &OwnedEventId,
        ts: u64,
    ) -> Result<OwnedEventId, CoreError> {
        let user = self.user(localpart)?;
        let content = json!({ "membership": "join" });
        self.add(
            localpart,
            "m.room.member",
            Some(user.as_str()),
            content,
            std::slice::from_ref(prev),
            ts,
        )
    }

    /// The state before an event whose parents are `prev`.
    pub fn state_before(&self, prev: &[OwnedEventId]) -> Result<StateMap, CoreError> {
        let sets = prev
            .iter()
            .map(|id| {
                self.state_after.get(id).cloned().ok_or_else(|| CoreError::MissingEvent(id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        block_on(resolve_state(self.version, &sets, &self.events))
    }

    /// The state after an event.
    pub fn state_at(&self, id: &OwnedEventId) -> Result<&StateMap, CoreError> {
        self.state_after.get(id).ok_or_else(|| CoreError::MissingEvent(id.clone()))
    }
}

/// Runs a future over in-memory sources, which never waits, to completion.
///
/// # Panics
/// If the future waits: that is a test written against the wrong source.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("block_on is for in-memory event sources, which never wait"),
    }
}

fn user_id(identity: &ServerIdentity, localpart: &str) -> Result<OwnedUserId, CoreError> {
    OwnedUserId::try_from(format!("@{localpart}:{}", identity.server_name()))
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))
}

fn object(value: Value) -> Result<CanonicalJsonObject, CoreError> {
    match cjson::to_canonical(value)? {
        ruma::CanonicalJsonValue::Object(object) => Ok(object),
        _ => Err(CoreError::NotAnObject),
    }
}

fn timestamp(ts: u64) -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch(UInt::new_saturating(ts))
}

/// Everything the core does with an untrusted PDU, for the fuzzer and the property tests: parse
/// it in every room version, verify it, redact it, check its auth against nothing. Any input
/// must come back as a value or a [`CoreError`], never a panic.
pub fn exercise_untrusted_pdu(bytes: &[u8]) {
    for version in RoomVersion::ALL {
        let Ok(pdu) = Pdu::parse(version, bytes) else { continue };
        let _ = pdu.verify();
        let _ = pdu.redacted();
        let _ = auth::check_auth_events(&pdu, |_| None);
        let _ = auth::check_against_state(&pdu, |_, _| None);
        let _ = auth::create_event_id(&pdu);
        let _ = pdu.to_canonical_string();
    }
}

/// A room shaped like the benchmark's: `members` users joined one after another, then `forks`
/// concurrent branches of `per_fork` state events each, every branch writing the same state
/// keys (so everything conflicts) and its sender also changing the power levels once (so the
/// power-event sort has work). Returns the room and the state at each branch tip.
pub fn forked_room(
    version: RoomVersion,
    members: usize,
    forks: usize,
    per_fork: usize,
) -> Result<(TestRoom, Vec<StateMap>), CoreError> {
    let mut ts = 1;
    let mut room = TestRoom::create(version, "creator", ts)?;
    let mut tip = room.create_id.clone();
    let mut next = |room: &mut TestRoom,
                    tip: &mut OwnedEventId,
                    sender: &str,
                    kind: &str,
                    key: Option<&str>,
                    content: Value|
     -> Result<(), CoreError> {
        ts += 1;
        *tip = room.add(sender, kind, key, content, std::slice::from_ref(tip), ts)?;
        Ok(())
    };
    let creator = room.user("creator")?;
    next(
        &mut room,
        &mut tip,
        "creator",
        "m.room.member",
        Some(creator.as_str()),
        json!({"membership": "join"}),
    )?;
    let admins: Vec<String> = (0..forks).map(|i| format!("admin{i}")).collect();
    let mut users = serde_json::Map::new();
    for admin in &admins {
        users.insert(room.user(admin)?.to_string(), json!(100));
    }
    if !version.rules().authorization.explicitly_privilege_room_creators {
        users.insert(creator.to_string(), json!(100));
    }
    let power_levels = json!({ "users": users.clone(), "state_default": 50, "events_default": 0 });
    next(&mut room, &mut tip, "creator", "m.room.power_levels", Some(""), power_levels)?;
    next(
        &mut room,
        &mut tip,
        "creator",
        "m.room.join_rules",
        Some(""),
        json!({"join_rule": "public"}),
    )?;
    for i in 0..members {
        let name = admins.get(i).cloned().unwrap_or_else(|| format!("member{i}"));
        let user = room.user(&name)?;
        next(
            &mut room,
            &mut tip,
            &name,
            "m.room.member",
            Some(user.as_str()),
            json!({"membership": "join"}),
        )?;
    }
    let base = tip;
    let mut tips = Vec::with_capacity(forks);
    for admin in &admins {
        let mut fork_tip = base.clone();
        let mut fork_users = users.clone();
        fork_users.insert(room.user(admin)?.to_string(), json!(99));
        let pl = json!({ "users": fork_users, "state_default": 50, "events_default": 0 });
        next(&mut room, &mut fork_tip, admin, "m.room.power_levels", Some(""), pl)?;
        for k in 1..per_fork {
            let key = format!("key{k}");
            next(
                &mut room,
                &mut fork_tip,
                admin,
                "org.hearth.bench",
                Some(&key),
                json!({"by": admin}),
            )?;
        }
        tips.push(room.state_at(&fork_tip)?.clone());
    }
    Ok((room, tips))
}

/// The figures `cargo xtask bench` reports for the core, measured where this code runs.
#[derive(Debug, serde::Serialize)]
pub struct CoreBench {
    /// Events hashed and signed per second.
    pub sign_events_per_s: f64,
    /// Events whose signatures and content hash were verified per second.
    pub verify_events_per_s: f64,
    /// Events signed and then verified per second (one of each per event).
    pub sign_verify_events_per_s: f64,
    /// Event IDs (reference hashes) computed per second.
    pub event_id_per_s: f64,
    /// Milliseconds to resolve the synthetic room's forks (median of the runs).
    pub state_res_ms: f64,
    /// Events in the conflicted forks.
    pub state_res_conflicted_events: usize,
}

/// Measures the core: `events` sign/verify/event-ID operations and `runs` state resolutions of
/// a room with 1,000 members and 5 forks of 200 state events.
pub fn run_core_bench(events: usize, runs: usize) -> Result<CoreBench, CoreError> {
    use web_time::Instant;

    let identity = ServerIdentity::from_seed(&TEST_SEED)?;
    let sender = user_id(&identity, "bench")?;
    let room_id = OwnedRoomId::try_from(format!("!bench:{}", identity.server_name()))
        .map_err(|error| CoreError::MalformedEvent(error.to_string()))?;
    let template = object(json!({
        "room_id": room_id, "sender": sender, "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": "a message of ordinary length for a chat"},
        "prev_events": ["$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
        "auth_events": ["$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "$ccccccccccccccccccccccccccccccccccccccccccc"],
        "depth": 12, "origin_server_ts": 1_700_000_000_000u64,
    }))?;
    let version = RoomVersion::V12;

    let started = Instant::now();
    let mut signed = Vec::with_capacity(events);
    for i in 0..events {
        let mut event = template.clone();
        event.insert("depth".into(), ruma::CanonicalJsonValue::Integer(ruma::Int::from(i as u32)));
        crate::signing::hash_and_sign_event(
            identity.server_name().as_str(),
            identity.key(),
            &mut event,
            version,
        )?;
        signed.push(event);
    }
    let sign_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for event in &signed {
        crate::signing::verify_event(event, version)?;
    }
    let verify_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for event in &signed {
        crate::signing::event_id(event, version)?;
    }
    let event_id_s = started.elapsed().as_secs_f64();

    let (room, tips) = forked_room(version, 1000, 5, 200)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        block_on(resolve_state(version, &tips, &room.events))?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let per_s = |seconds: f64| if seconds > 0.0 { events as f64 / seconds } else { f64::INFINITY };
    Ok(CoreBench {
        sign_events_per_s: per_s(sign_s),
        verify_events_per_s: per_s(verify_s),
        sign_verify_events_per_s: per_s(sign_s + verify_s),
        event_id_per_s: per_s(event_id_s),
        state_res_ms: times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        state_res_conflicted_events: 5 * 200,
    })
}
