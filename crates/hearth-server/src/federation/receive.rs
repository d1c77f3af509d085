//! Receiving events from other servers: `PUT /send/{txnId}` and the
//! [checks on receipt of a PDU](https://spec.matrix.org/v1.16/server-server-api/#checks-performed-on-receipt-of-a-pdu),
//! fetching what an event depends on first (its auth chain, the events missing before it, or
//! the room's state at a gap) from the server that sent it.

use std::collections::BTreeMap;

use hearth_core::{
    Pdu, RoomVersion, StateMap, auth,
    ruma::{
        EventId, OwnedEventId, RoomId, ServerName, UInt,
        api::federation::{
            authorization::get_event_authorization,
            event::{get_event, get_missing_events, get_room_state},
            transactions::send_transaction_message,
        },
    },
    signing::EventVerification,
};
use serde_json::value::RawValue;

use crate::{Server, ServerError, error::Result, platform::now_ms, rooms::remote::Outcome};

/// The spec's limits on one transaction: more is refused whole.
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;
/// How many events handling one incoming event may fetch from other servers (gaps, auth
/// chains, state): bounds the work one event can cause.
const FETCH_BUDGET: usize = 5_000;
/// Events asked for at once to fill a gap before an event.
const MISSING_EVENTS_LIMIT: u32 = 50;

/// What handling one incoming event may still fetch.
pub(crate) struct Budget {
    events: usize,
    /// Whether a gap before the event may be filled with `get_missing_events` (not for events
    /// that themselves came from filling a gap: a gap in a gap is bridged with the state).
    fill_gaps: bool,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Budget { events: FETCH_BUDGET, fill_gaps: true }
    }

    fn spend(&mut self, count: usize) -> Result<()> {
        self.events = self.events.checked_sub(count).ok_or_else(|| {
            ServerError::LimitExceeded("handling this event needs too many other events".into())
        })?;
        Ok(())
    }
}

/// `PUT /_matrix/federation/v1/send/{txnId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv1sendtxnid)):
/// PDUs and EDUs from `origin`, each handled on its own; a transaction ID seen before gets the
/// answer it got then, without anything being processed again.
pub(crate) async fn send_transaction_message(
    server: Server,
    origin: hearth_core::ruma::OwnedServerName,
    request: send_transaction_message::v1::Request,
) -> Result<send_transaction_message::v1::Response> {
    if request.origin != origin {
        server.count_refused();
        return Err(ServerError::Forbidden(format!(
            "a transaction from {origin} claims to come from {}",
            request.origin
        )));
    }
    if request.pdus.len() > MAX_PDUS || request.edus.len() > MAX_EDUS {
        server.count_refused();
        return Err(ServerError::TooLarge(format!(
            "a transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    let transaction_id = request.transaction_id.as_str();
    if let Some(seen) = server.store().inbound_transaction(origin.as_str(), transaction_id).await? {
        return decode_response(&seen.response);
    }
    let mut results = BTreeMap::new();
    for raw in &request.pdus {
        match server.receive_raw_pdu(&origin, raw).await {
            Ok((event_id, outcome)) => {
                let result = match outcome {
                    Outcome::Rejected(reason) => Err(reason),
                    Outcome::Stored | Outcome::SoftFailed | Outcome::Known => Ok(()),
                };
                results.insert(event_id, result);
            }
            // Refused without being remembered (the auth events it cites could not be had
            // from its sender, say): it may be sent again, but this time it was refused.
            Err((Some(event_id), error)) => {
                server.count_refused();
                results.insert(event_id, Err(error.to_string()));
            }
            // Not even an event ID to answer with: nothing to report.
            Err((None, _)) => server.count_refused(),
        }
    }
    for edu in &request.edus {
        // EDUs are best effort: a bad one is dropped, the rest still apply.
        let _ = server.receive_edu(&origin, edu.json()).await;
    }
    let response = send_transaction_message::v1::Response::new(results);
    let encoded = encode_response(&response)?;
    let mut txn = server.store().transaction();
    txn.put_inbound_transaction(
        origin.as_str(),
        transaction_id,
        &hearth_store::InboundTransaction { received_ms: now_ms(), response: encoded },
    )?;
    server.store().commit(txn).await?;
    Ok(response)
}

fn encode_response(response: &send_transaction_message::v1::Response) -> Result<Box<RawValue>> {
    let results: serde_json::Map<String, serde_json::Value> = response
        .pdus
        .iter()
        .map(|(id, result)| {
            let value = match result {
                Ok(()) => serde_json::json!({}),
                Err(error) => serde_json::json!({ "error": error }),
            };
            (id.to_string(), value)
        })
        .collect();
    serde_json::value::to_raw_value(&results)
        .map_err(|error| ServerError::Internal(error.to_string()))
}

fn decode_response(raw: &RawValue) -> Result<send_transaction_message::v1::Response> {
    let results: BTreeMap<OwnedEventId, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|error| ServerError::Internal(format!("stored transaction: {error}")))?;
    Ok(send_transaction_message::v1::Response::new(
        results
            .into_iter()
            .map(|(id, value)| {
                let result = match value.get("error").and_then(serde_json::Value::as_str) {
                    Some(error) => Err(error.to_owned()),
                    None => Ok(()),
                };
                (id, result)
            })
            .collect(),
    ))
}

impl Server {
    /// Parses an incoming PDU under its room's version and handles it.
    async fn receive_raw_pdu(
        &self,
        origin: &ServerName,
        raw: &RawValue,
    ) -> std::result::Result<(OwnedEventId, Outcome), (Option<OwnedEventId>, ServerError)> {
        #[derive(serde::Deserialize)]
        struct RoomOf {
            room_id: Option<hearth_core::ruma::OwnedRoomId>,
        }
        let room_id = serde_json::from_str::<RoomOf>(raw.get())
            .ok()
            .and_then(|fields| fields.room_id)
            .ok_or_else(|| (None, ServerError::BadJson("a PDU without a room ID".into())))?;
        let version = match self.store().room(&room_id).await {
            Ok(Some(record)) => {
                record.version.parse::<RoomVersion>().map_err(|error| (None, error.into()))?
            }
            Ok(None) => {
                return Err((None, ServerError::NotFound(format!("not in room {room_id}"))));
            }
            Err(error) => return Err((None, error.into())),
        };
        // (The caller counts it refused.)
        let pdu = Pdu::parse(version, raw.get().as_bytes())
            .map_err(|error| (None, ServerError::from(error)))?;
        let event_id = pdu.event_id().to_owned();
        let outcome = self
            .receive_pdu(origin, pdu, &mut Budget::new(), false)
            .await
            .map_err(|error| (Some(event_id.clone()), error))?;
        Ok((event_id, outcome))
    }

    /// Handles one event from `origin` in a room this server is in: signatures and hashes,
    /// auth against its auth events (fetched if missing), the gap before it filled (or bridged
    /// with the room's state there), auth against the state before it, soft failure against
    /// the current state, then stored.
    ///
    /// With `forward`, a stored event is also queued, in the transaction that stores it, for the
    /// room's other servers but `origin` (a join or leave taken through `send_join`/`send_leave`,
    /// which only the resident server can pass on).
    pub(crate) async fn receive_pdu(
        &self,
        origin: &ServerName,
        pdu: Pdu,
        budget: &mut Budget,
        forward: bool,
    ) -> Result<Outcome> {
        if self.store().event(pdu.event_id().as_str()).await?.is_some() {
            return Ok(Outcome::Known);
        }
        if let Some(reason) = self.rejection(pdu.event_id()).await? {
            return Ok(Outcome::Rejected(reason));
        }
        let pdu = match checked_signatures(pdu) {
            Ok(pdu) => pdu,
            Err(reason) => {
                // A forged event is dropped, not remembered: its ID proves nothing.
                self.count_refused();
                return Ok(Outcome::Rejected(reason));
            }
        };
        if let Err(reason) = self.check_own_auth_events(origin, &pdu, budget).await? {
            self.count_refused();
            self.reject_event(&pdu, &reason).await?;
            return Ok(Outcome::Rejected(reason));
        }

        // Usually every prev event is stored with its state: no gap, and the state before the
        // event is theirs. Otherwise fill the gap, or bridge it with the sender's state.
        let state_before = match self.state_from_prev_events(&pdu).await? {
            Some(state) => state,
            None => {
                let missing = self.missing_prev_events(&pdu).await?;
                if !missing.is_empty() && budget.fill_gaps {
                    self.fill_gap(origin, &pdu, budget).await?;
                }
                match self.state_from_prev_events(&pdu).await? {
                    Some(state) => state,
                    None => self.state_across_gap(origin, &pdu, budget).await?,
                }
            }
        };
        // Neither stored nor rejected: checked above.
        let forward_from = forward.then_some(origin);
        let outcome = self.store_new_remote_event(&pdu, state_before, forward_from).await?;
        if matches!(outcome, Outcome::Rejected(_)) {
            self.count_refused();
        }
        Ok(outcome)
    }

    /// Checks `pdu` against its own auth events, fetching those we lack from `origin`.
    /// `Ok(Err(reason))` when the event fails the rules (or cites a rejected event).
    async fn check_own_auth_events(
        &self,
        origin: &ServerName,
        pdu: &Pdu,
        budget: &mut Budget,
    ) -> Result<std::result::Result<(), String>> {
        let mut wanted: Vec<OwnedEventId> = pdu.auth_events().to_vec();
        if pdu.room_version().room_id_from_create_event()
            && let Ok(create) = auth::create_event_id(pdu)
            && !wanted.contains(&create)
            && create != pdu.event_id()
        {
            wanted.push(create);
        }
        let mut events = BTreeMap::new();
        let mut missing = false;
        for id in &wanted {
            // A stored event was never rejected (rejected ones are not stored): only an auth
            // event we lack may be.
            match self.parsed_pdu(id).await? {
                Some(event) => {
                    events.insert(id.clone(), event);
                }
                None => {
                    if let Some(reason) = self.rejection(id).await? {
                        return Ok(Err(format!("auth event {id} was rejected: {reason}")));
                    }
                    missing = true;
                }
            }
        }
        if missing {
            self.fetch_auth_chain(origin, pdu, budget).await?;
            for id in &wanted {
                if events.contains_key(id) {
                    continue;
                }
                if let Some(reason) = self.rejection(id).await? {
                    return Ok(Err(format!("auth event {id} was rejected: {reason}")));
                }
                match self.parsed_pdu(id).await? {
                    Some(event) => {
                        events.insert(id.clone(), event);
                    }
                    None => return Ok(Err(format!("auth event {id} could not be found"))),
                }
            }
        }
        Ok(auth::check_auth_events(pdu, |id| events.get(id).cloned())
            .map_err(|error| error.to_string()))
    }

    /// Fetches the auth chain of `pdu` from `origin` and stores what passes as outliers.
    pub(crate) async fn fetch_auth_chain(
        &self,
        origin: &ServerName,
        pdu: &Pdu,
        budget: &mut Budget,
    ) -> Result<()> {
        let request = get_event_authorization::v1::Request::new(
            pdu.room_id().to_owned(),
            pdu.event_id().to_owned(),
        );
        let response = self.federation_request(origin, request).await?;
        budget.spend(response.auth_chain.len())?;
        let chain = parse_all(pdu.room_version(), pdu.room_id(), &response.auth_chain);
        self.accept_outliers(chain, &BTreeMap::new()).await
    }

    /// Checks events learned as the auth chain or state of another (signatures, hashes, their
    /// own auth events among themselves and the store), oldest first, and stores those that
    /// pass as outliers; the others are remembered as rejected. `states` gives the state before
    /// some of them (see [`Server::store_outliers`]).
    pub(crate) async fn accept_outliers(
        &self,
        pdus: Vec<Pdu>,
        states: &BTreeMap<OwnedEventId, StateMap>,
    ) -> Result<()> {
        let (accepted, rejected) = self.check_batch(pdus).await?;
        for (pdu, reason) in &rejected {
            self.reject_event(pdu, reason).await?;
        }
        let accepted: Vec<Pdu> = accepted.into_values().collect();
        self.store_outliers(&accepted, states).await
    }

    /// Checks a batch of events that may cite each other (an auth chain, a room's state):
    /// signatures and hashes, then each against its own auth events, found in the batch or the
    /// store, oldest first. Returns those that pass and those refused with why; events already
    /// stored or rejected are left out. A forged event is dropped without a reason.
    pub(crate) async fn check_batch(
        &self,
        mut pdus: Vec<Pdu>,
    ) -> Result<(BTreeMap<OwnedEventId, Pdu>, Vec<(Pdu, String)>)> {
        pdus.sort_by_key(|pdu| (pdu.depth(), pdu.origin_server_ts()));
        let mut accepted: BTreeMap<OwnedEventId, Pdu> = BTreeMap::new();
        let mut rejected = Vec::new();
        for pdu in pdus {
            if accepted.contains_key(pdu.event_id()) || self.is_known_event(pdu.event_id()).await? {
                continue;
            }
            let Ok(pdu) = checked_signatures(pdu) else {
                self.count_refused();
                continue;
            };
            let mut auth_events = BTreeMap::new();
            let mut wanted = pdu.auth_events().to_vec();
            if pdu.room_version().room_id_from_create_event()
                && let Ok(create) = auth::create_event_id(&pdu)
                && create != pdu.event_id()
            {
                wanted.push(create);
            }
            for id in wanted {
                let event = match accepted.get(&id) {
                    Some(event) => Some(event.clone()),
                    // A stored event of a room we are not in yet cannot be parsed (its version
                    // is unknown): it counts as absent.
                    None => self.parsed_pdu(&id).await.ok().flatten(),
                };
                if let Some(event) = event {
                    auth_events.insert(id, event);
                }
            }
            match auth::check_auth_events(&pdu, |id| auth_events.get(id).cloned()) {
                Ok(()) => {
                    accepted.insert(pdu.event_id().to_owned(), pdu);
                }
                Err(error) => {
                    self.count_refused();
                    rejected.push((pdu, error.to_string()));
                }
            }
        }
        Ok((accepted, rejected))
    }

    async fn missing_prev_events(&self, pdu: &Pdu) -> Result<Vec<OwnedEventId>> {
        let mut missing = Vec::new();
        for prev in pdu.prev_events() {
            if self.store().event(prev.as_str()).await?.is_none() {
                missing.push(prev.clone());
            }
        }
        Ok(missing)
    }

    /// Asks `origin` for the events between the room's forward extremities and `pdu`, and
    /// handles them oldest first.
    async fn fill_gap(&self, origin: &ServerName, pdu: &Pdu, budget: &mut Budget) -> Result<()> {
        let (record, _) = self.current_state(pdu.room_id()).await?;
        let mut request = get_missing_events::v1::Request::new(
            pdu.room_id().to_owned(),
            record.extremities.clone(),
            vec![pdu.event_id().to_owned()],
        );
        request.limit = UInt::from(MISSING_EVENTS_LIMIT);
        let response = match self.federation_request(origin, request).await {
            Ok(response) => response,
            // The gap is then bridged with the state at it.
            Err(_) => return Ok(()),
        };
        budget.spend(response.events.len())?;
        let mut events = parse_all(pdu.room_version(), pdu.room_id(), &response.events);
        events.sort_by_key(|event| (event.depth(), event.origin_server_ts()));
        let mut inner = Budget { events: budget.events, fill_gaps: false };
        for event in events {
            if event.event_id() == pdu.event_id() {
                continue;
            }
            Box::pin(self.receive_pdu(origin, event, &mut inner, false)).await?;
        }
        budget.events = inner.events;
        Ok(())
    }

    /// The state before `pdu` when some of its prev events are missing or stored without
    /// their state: each such prev event's state is asked of `origin` (`/state`), checked and
    /// stored, and the states of all prev events are resolved together.
    async fn state_across_gap(
        &self,
        origin: &ServerName,
        pdu: &Pdu,
        budget: &mut Budget,
    ) -> Result<StateMap> {
        let mut states = Vec::new();
        let mut extra = BTreeMap::new();
        for prev in pdu.prev_events() {
            let stored = self.store().event(prev.as_str()).await?;
            if let Some(stored) = &stored
                && stored.state_after != 0
            {
                states.push((*self.state_map(stored.state_after).await?).clone());
                continue;
            }
            let (prev_pdu, state_after) =
                self.remote_state_after(origin, pdu, prev, budget).await?;
            extra.insert(prev_pdu.event_id().to_owned(), prev_pdu);
            states.push(state_after);
        }
        self.resolve(pdu.room_version(), &states, &extra).await
    }

    /// The state after `prev` as `origin` sees it, checked and stored along with `prev`.
    async fn remote_state_after(
        &self,
        origin: &ServerName,
        pdu: &Pdu,
        prev: &EventId,
        budget: &mut Budget,
    ) -> Result<(Pdu, StateMap)> {
        let room_id = pdu.room_id();
        let version = pdu.room_version();
        let prev_pdu = match self.parsed_pdu(prev).await? {
            Some(known) => known,
            None => {
                let response = self
                    .federation_request(origin, get_event::v1::Request::new(prev.to_owned()))
                    .await?;
                budget.spend(1)?;
                let fetched = Pdu::parse(version, response.pdu.get().as_bytes())?;
                if fetched.event_id() != prev || fetched.room_id() != room_id {
                    return Err(ServerError::Forbidden(format!(
                        "{origin} answered with another event for {prev}"
                    )));
                }
                fetched
            }
        };
        let response = self
            .federation_request(
                origin,
                get_room_state::v1::Request::new(prev.to_owned(), room_id.to_owned()),
            )
            .await?;
        budget.spend(response.auth_chain.len() + response.pdus.len())?;
        let state_events = parse_all(version, room_id, &response.pdus);
        let mut everything = parse_all(version, room_id, &response.auth_chain);
        everything.extend(state_events.iter().cloned());
        self.accept_outliers(everything, &BTreeMap::new()).await?;

        let mut before = StateMap::new();
        for event in &state_events {
            if self.rejection(event.event_id()).await?.is_some() {
                continue;
            }
            if let Some(key) = event.state_key_pair() {
                before.insert(key, event.event_id().to_owned());
            }
        }
        self.accept_outliers(
            vec![prev_pdu.clone()],
            &BTreeMap::from([(prev.to_owned(), before.clone())]),
        )
        .await?;
        let mut after = before;
        if let Some(key) = prev_pdu.state_key_pair() {
            after.insert(key, prev.to_owned());
        }
        Ok((prev_pdu, after))
    }

    /// Counts an event or request refused as invalid (bad signature, failed auth, malformed).
    pub(crate) fn count_refused(&self) {
        self.0.refused_events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many events from other servers were refused as invalid since the server started.
    pub fn refused_events(&self) -> u64 {
        self.0.refused_events.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The event if its signatures hold, redacted if only its content hash does not
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#validating-hashes-and-signatures-on-received-events)).
pub(crate) fn checked_signatures(pdu: Pdu) -> std::result::Result<Pdu, String> {
    match pdu.verify() {
        Ok(EventVerification::Valid) => Ok(pdu),
        Ok(EventVerification::ContentHashMismatch) => {
            pdu.redacted().map_err(|error| error.to_string())
        }
        Err(error) => Err(format!("bad signature: {error}")),
    }
}

/// The events of a remote answer that parse under the room's version and are in the room;
/// the others are left out.
pub(crate) fn parse_all(
    version: RoomVersion,
    room_id: &RoomId,
    raws: &[Box<RawValue>],
) -> Vec<Pdu> {
    raws.iter()
        .filter_map(|raw| Pdu::parse(version, raw.get().as_bytes()).ok())
        .filter(|pdu| pdu.room_id() == room_id)
        .collect()
}
