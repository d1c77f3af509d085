//! State resolution fixtures (see `fixtures/state_res/README.md`), run in every supported room
//! version, plus the benchmark's synthetic room.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_family = "wasm")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::BTreeMap;

use hearth_core::{
    RoomVersion, StateMap, resolve_state,
    ruma::{OwnedEventId, events::StateEventType},
    testing::{TestRoom, block_on, forked_room},
};
use serde_json::{Map, Value};

/// The fixtures, embedded so that the same test runs in the browser, which has no file system.
const FIXTURES: &[(&str, &str)] = &[
    ("concurrent_joins", include_str!("fixtures/state_res/concurrent_joins.json")),
    ("ban_vs_power_levels", include_str!("fixtures/state_res/ban_vs_power_levels.json")),
    ("topic_vs_ban", include_str!("fixtures/state_res/topic_vs_ban.json")),
    ("join_rules_vs_join", include_str!("fixtures/state_res/join_rules_vs_join.json")),
    ("power_level_race", include_str!("fixtures/state_res/power_level_race.json")),
    (
        "ts_tiebreak_power_levels_bob_newer",
        include_str!("fixtures/state_res/ts_tiebreak_power_levels_bob_newer.json"),
    ),
    (
        "ts_tiebreak_power_levels_carol_newer",
        include_str!("fixtures/state_res/ts_tiebreak_power_levels_carol_newer.json"),
    ),
    ("ts_tiebreak_topic_bob", include_str!("fixtures/state_res/ts_tiebreak_topic_bob.json")),
    ("ts_tiebreak_topic_carol", include_str!("fixtures/state_res/ts_tiebreak_topic_carol.json")),
];

#[test]
fn fixtures_resolve_to_their_expected_state_in_every_room_version() {
    for (name, text) in FIXTURES {
        let fixture: Value = serde_json::from_str(text).unwrap();
        for version in RoomVersion::ALL {
            run_fixture(name, &fixture, version);
        }
    }
}

#[test]
fn every_fixture_file_is_listed() {
    #[cfg(not(target_family = "wasm"))]
    {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state_res");
        let on_disk = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
            .filter(|name| name.ends_with(".json"))
            .count();
        assert_eq!(on_disk, FIXTURES.len());
    }
}

fn run_fixture(name: &str, fixture: &Value, version: RoomVersion) {
    let context = format!("{name} (room version {version})");
    let mut room = TestRoom::create(version, "alice", 1).unwrap();
    let server = room.identity.server_name().to_string();
    let mut ids: BTreeMap<String, OwnedEventId> =
        BTreeMap::from([("CREATE".to_owned(), room.create_id.clone())]);

    for event in fixture["events"].as_array().unwrap() {
        let id = event["id"].as_str().unwrap();
        let prev: Vec<OwnedEventId> = event["prev"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| ids[p.as_str().unwrap()].clone())
            .collect();
        let kind = event["type"].as_str().unwrap();
        let mut content = expand_users(&event["content"], &server);
        if kind == "m.room.power_levels"
            && version.rules().authorization.explicitly_privilege_room_creators
        {
            let creator = format!("@alice:{server}");
            content["users"].as_object_mut().unwrap().remove(&creator);
        }
        let state_key = event.get("state_key").map(|key| expand_users(key, &server));
        let added = room.add(
            event["sender"].as_str().unwrap(),
            kind,
            state_key.as_ref().and_then(Value::as_str),
            content,
            &prev,
            event["ts"].as_u64().unwrap(),
        );
        let added = added.unwrap_or_else(|error| panic!("{context}: event {id}: {error}"));
        ids.insert(id.to_owned(), added);
    }

    let tips: Vec<StateMap> = fixture["resolve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tip| room.state_at(&ids[tip.as_str().unwrap()]).unwrap().clone())
        .collect();
    let resolved = block_on(resolve_state(version, &tips, &room.events))
        .unwrap_or_else(|error| panic!("{context}: {error}"));

    let names: BTreeMap<&OwnedEventId, &str> = ids.iter().map(|(n, id)| (id, n.as_str())).collect();
    let actual: BTreeMap<String, String> = resolved
        .iter()
        .map(|((kind, key), id)| {
            let key = key.replace(&format!(":{server}"), "");
            (format!("{kind}|{key}"), names.get(id).copied().unwrap_or("?").to_owned())
        })
        .collect();
    let expected: BTreeMap<String, String> = fixture["expected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, name)| (key.clone(), name.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(actual, expected, "{context}");
}

/// `@name` stands for that user on the test server, in strings and in object keys.
fn expand_users(value: &Value, server: &str) -> Value {
    let expand = |s: &str| {
        if s.starts_with('@') && !s.contains(':') { format!("{s}:{server}") } else { s.to_owned() }
    };
    match value {
        Value::String(s) => Value::String(expand(s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| expand_users(v, server)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| (expand(k), expand_users(v, server))).collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

#[test]
fn the_last_of_equally_powerful_forks_wins_the_benchmark_room() {
    // 5 admins at power 100 each fork, lower their own level to 99 and write the same keys.
    // Power events tie on power and sort by time: the last fork's power levels apply last, and
    // its events then sit deepest in the mainline, so every contested key is the last fork's.
    let (room, tips) = forked_room(RoomVersion::V12, 20, 5, 10).unwrap();
    let resolved = block_on(resolve_state(RoomVersion::V12, &tips, &room.events)).unwrap();
    let last = tips.last().unwrap();
    let power_levels = (StateEventType::RoomPowerLevels, String::new());
    assert_eq!(resolved[&power_levels], last[&power_levels]);
    for k in 1..10 {
        let key = (StateEventType::from("org.hearth.bench"), format!("key{k}"));
        assert_eq!(resolved[&key], last[&key], "key{k}");
    }
    assert_eq!(resolved.len(), last.len());
}
