//! [State resolution v2](https://spec.matrix.org/v1.16/rooms/v2/#state-resolution) (with the
//! v12 conflicted state subgraph) over an asynchronous event store.
//!
//! ruma-state-res calls back synchronously for every event it looks at, and a browser store
//! (IndexedDB) can only answer asynchronously. So this adapter first loads, level by level, the
//! auth closure of every event in the state sets, which is everything the algorithm can ask
//! for, and then runs ruma's `resolve` over that in-memory set.

#![allow(clippy::disallowed_types)] // ruma's `StateMap` and `EventIdSet` are hash-based.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
};

use ruma::{
    OwnedEventId,
    events::StateEventType,
    room_version_rules::StateResolutionV2Rules,
    state_res::{self, utils::event_id_set::EventIdSet},
};

use crate::{CoreError, Pdu, RoomVersion, platform::SendOutsideWasm};

/// A room state: `(type, state_key)` to the event ID holding it, ordered so that it serialises
/// and compares deterministically.
pub type StateMap = BTreeMap<(StateEventType, String), OwnedEventId>;

/// How many event IDs the adapter asks its source for at once.
const FETCH_BATCH: usize = 512;

/// Where the adapter loads events from: the store, or a map in tests.
pub trait EventSource {
    /// The events among `ids` the source has; unknown IDs are left out (state resolution
    /// ignores events it cannot see, as the spec says).
    fn fetch_events(
        &self,
        ids: &[OwnedEventId],
    ) -> impl Future<Output = Result<Vec<Pdu>, CoreError>> + SendOutsideWasm;
}

impl EventSource for BTreeMap<OwnedEventId, Pdu> {
    async fn fetch_events(&self, ids: &[OwnedEventId]) -> Result<Vec<Pdu>, CoreError> {
        Ok(ids.iter().filter_map(|id| self.get(id).cloned()).collect())
    }
}

/// Resolves the state of a room from the states of its forward extremities.
pub async fn resolve_state<S: EventSource>(
    version: RoomVersion,
    state_sets: &[StateMap],
    source: &S,
) -> Result<StateMap, CoreError> {
    let Some((first, rest)) = state_sets.split_first() else {
        return Ok(StateMap::new());
    };
    if rest.iter().all(|set| set == first) {
        return Ok(first.clone());
    }
    let rules = version.rules();
    let state_res_rules: StateResolutionV2Rules = rules
        .state_res
        .v2_rules()
        .copied()
        .ok_or_else(|| CoreError::StateResolution("room version uses state res v1".into()))?;

    let events = load_auth_closure(state_sets.iter().flat_map(|set| set.values()), source).await?;
    let auth_chains =
        state_sets.iter().map(|set| auth_chain(set.values(), &events)).collect::<Vec<_>>();
    let maps: Vec<state_res::StateMap<OwnedEventId>> = state_sets
        .iter()
        .map(|set| set.iter().map(|(key, id)| (key.clone(), id.clone())).collect())
        .collect();

    let resolved = state_res::resolve(
        &rules.authorization,
        &state_res_rules,
        &maps,
        auth_chains,
        |id| events.get(id).cloned(),
        |conflicted| Some(conflicted_state_subgraph(conflicted, &events)),
    )
    .map_err(|error| CoreError::StateResolution(error.to_string()))?;
    Ok(resolved.into_iter().collect())
}

/// Loads `roots` and, transitively, their auth events.
async fn load_auth_closure<'a, S: EventSource>(
    roots: impl Iterator<Item = &'a OwnedEventId>,
    source: &S,
) -> Result<BTreeMap<OwnedEventId, Pdu>, CoreError> {
    let mut loaded = BTreeMap::new();
    let mut asked = BTreeSet::new();
    let mut frontier: BTreeSet<OwnedEventId> = roots.cloned().collect();
    while !frontier.is_empty() {
        let wanted: Vec<OwnedEventId> =
            frontier.into_iter().filter(|id| asked.insert(id.clone())).collect();
        let mut next = BTreeSet::new();
        for batch in wanted.chunks(FETCH_BATCH) {
            for event in source.fetch_events(batch).await? {
                next.extend(event.auth_events().iter().filter(|id| !asked.contains(*id)).cloned());
                loaded.insert(event.event_id().to_owned(), event);
            }
        }
        frontier = next;
    }
    Ok(loaded)
}

/// The full auth chain of a state set: every event reachable through `auth_events`.
fn auth_chain<'a>(
    roots: impl Iterator<Item = &'a OwnedEventId>,
    events: &BTreeMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let mut chain = EventIdSet::new();
    let mut stack: Vec<&OwnedEventId> =
        roots.filter_map(|id| events.get(id)).flat_map(|event| event.auth_events()).collect();
    while let Some(id) = stack.pop() {
        if chain.insert(id.clone())
            && let Some(event) = events.get(id)
        {
            stack.extend(event.auth_events());
        }
    }
    chain
}

/// The v12 [conflicted state subgraph](https://spec.matrix.org/v1.16/rooms/v12/#state-resolution):
/// the events on some `auth_events` path from one conflicted event to another.
fn conflicted_state_subgraph(
    conflicted: &state_res::StateMap<Vec<OwnedEventId>>,
    events: &BTreeMap<OwnedEventId, Pdu>,
) -> EventIdSet<OwnedEventId> {
    let conflicted_ids: BTreeSet<&OwnedEventId> = conflicted.values().flatten().collect();
    // For each event reachable from a conflicted event: does it reach a conflicted event?
    let mut reaches: HashMap<&OwnedEventId, bool> = HashMap::new();
    let mut subgraph = EventIdSet::new();
    for start in &conflicted_ids {
        let Some(event) = events.get(*start) else { continue };
        for parent in event.auth_events() {
            if reaches_conflicted(parent, &conflicted_ids, events, &mut reaches) {
                subgraph.insert((*start).clone());
            }
        }
    }
    for (id, reaches) in reaches {
        if reaches {
            subgraph.insert(id.clone());
        }
    }
    subgraph
}

/// Whether `id` is conflicted or has a conflicted event among its auth ancestors, memoised;
/// iterative so that long auth chains cannot overflow the stack.
fn reaches_conflicted<'a>(
    id: &'a OwnedEventId,
    conflicted: &BTreeSet<&'a OwnedEventId>,
    events: &'a BTreeMap<OwnedEventId, Pdu>,
    memo: &mut HashMap<&'a OwnedEventId, bool>,
) -> bool {
    // Post-order walk: a node is decided once all its parents are.
    let mut stack: Vec<(&OwnedEventId, bool)> = vec![(id, false)];
    while let Some((node, parents_done)) = stack.pop() {
        if memo.contains_key(node) {
            continue;
        }
        let parents = events.get(node).map(Pdu::auth_events).unwrap_or_default();
        if parents_done {
            let result = conflicted.contains(node)
                || parents.iter().any(|parent| memo.get(parent).copied().unwrap_or(false));
            memo.insert(node, result);
        } else {
            stack.push((node, true));
            stack.extend(parents.iter().filter(|p| !memo.contains_key(*p)).map(|p| (p, false)));
        }
    }
    memo.get(id).copied().unwrap_or(false)
}
