//! Events as clients see them
//! ([client event format](https://spec.matrix.org/v1.16/client-server-api/#room-event-format)):
//! the PDU without its federation fields, with `event_id` and `unsigned`.

use hearth_core::ruma::{EventId, serde::Raw};
use hearth_store::StoredEvent;
use serde_json::{Map, Value, json, value::RawValue};

use crate::{Authed, Server, ServerError, error::Result, platform::now_ms};

/// PDU fields a client never sees.
const FEDERATION_FIELDS: &[&str] =
    &["auth_events", "prev_events", "hashes", "signatures", "depth", "origin"];

impl Server {
    /// An event in the client format, for `viewer` (who alone sees its own transaction ID).
    pub(crate) async fn client_event(
        &self,
        event_id: &EventId,
        stored: &StoredEvent,
        viewer: Option<&Authed>,
    ) -> Result<Value> {
        let mut event: Map<String, Value> = serde_json::from_str(stored.pdu.get())
            .map_err(|error| ServerError::Internal(format!("stored event: {error}")))?;
        for field in FEDERATION_FIELDS {
            event.remove(*field);
        }
        event.insert("event_id".into(), json!(event_id));
        // Clients still read `redacts` at the top level in rooms where it moved into content.
        if let Some(redacts) =
            event.get("content").and_then(|content| content.get("redacts")).cloned()
        {
            event.entry("redacts").or_insert(redacts);
        }
        let mut unsigned = Map::new();
        let origin_ts = event.get("origin_server_ts").and_then(Value::as_u64).unwrap_or(0);
        unsigned.insert("age".into(), json!(now_ms().saturating_sub(origin_ts)));
        if let (Some(origin), Some(viewer)) = (&stored.transaction, viewer)
            && origin.device_id == viewer.device_id.as_str()
            && event.get("sender").and_then(Value::as_str) == Some(viewer.user_id.as_str())
        {
            unsigned.insert("transaction_id".into(), json!(origin.txn_id));
        }
        // A state event carries what it replaced, so clients can say what changed.
        if let (Some(kind), Some(state_key)) = (
            event.get("type").and_then(Value::as_str),
            event.get("state_key").and_then(Value::as_str),
        ) {
            let before = self.state_map(stored.state_before).await?;
            let key = (hearth_core::ruma::events::StateEventType::from(kind), state_key.to_owned());
            if let Some(previous_id) = before.get(&key)
                && let Some((previous, _)) = self.pdu(previous_id).await?
            {
                let content: Value =
                    serde_json::from_str(previous.content().get()).unwrap_or_default();
                unsigned.insert("prev_content".into(), content);
                unsigned.insert("replaces_state".into(), json!(previous_id));
                unsigned.insert("prev_sender".into(), json!(previous.sender()));
            }
        }
        if let Some(redaction_id) = &stored.redacted_by
            && let Some(redaction) = self.store().event(redaction_id.as_str()).await?
        {
            let because = Box::pin(self.client_event(redaction_id, &redaction, None)).await?;
            unsigned.insert("redacted_because".into(), because);
        }
        event.insert("unsigned".into(), Value::Object(unsigned));
        Ok(Value::Object(event))
    }

    /// [`Server::client_event`] as the raw JSON ruma's response types hold.
    pub(crate) async fn raw_client_event<T>(
        &self,
        event_id: &EventId,
        stored: &StoredEvent,
        viewer: Option<&Authed>,
    ) -> Result<Raw<T>> {
        to_raw(&self.client_event(event_id, stored, viewer).await?)
    }
}

/// Any value as `Raw<T>`.
pub(crate) fn to_raw<T>(value: &Value) -> Result<Raw<T>> {
    let raw: Box<RawValue> = serde_json::value::to_raw_value(value)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(Raw::from_json(raw))
}
