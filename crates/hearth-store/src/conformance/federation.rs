//! Conformance checks of the federation tables: the outbound queue, received transactions and
//! rejected events.

use std::sync::Arc;

use hearth_core::ruma::{owned_event_id, owned_room_id};
use serde_json::value::to_raw_value;

use crate::{Backend, InboundTransaction, OutboundItem, RejectedEvent, Store};

fn pdu(event_id: &str) -> OutboundItem {
    OutboundItem::Pdu { event_id: event_id.try_into().unwrap() }
}

/// Items as comparable JSON text.
fn json(items: &[(u64, OutboundItem)]) -> Vec<(u64, String)> {
    items.iter().map(|(seq, item)| (*seq, serde_json::to_string(item).unwrap())).collect()
}

pub async fn outbound_queue_per_destination(backend: Arc<dyn Backend>) {
    let store = Store::open(backend.clone()).await.unwrap();
    assert!(store.outbound_destinations().await.unwrap().is_empty());
    assert!(store.outbound("b.x", 10).await.unwrap().is_empty());

    // Destinations that prefix one another stay apart; a NUL in a name sorts after its end.
    let typing = OutboundItem::Edu {
        edu_type: "m.typing".into(),
        content: to_raw_value(&serde_json::json!({"typing": true})).unwrap(),
    };
    let mut txn = store.transaction();
    let b1 = txn.queue_outbound("b.x", &pdu("$1")).unwrap();
    let a1 = txn.queue_outbound("a.x", &pdu("$1")).unwrap();
    let b2 = txn.queue_outbound("b.x", &typing).unwrap();
    let axy = txn.queue_outbound("a.xy", &pdu("$2")).unwrap();
    let b3 = txn.queue_outbound("b.x", &pdu("$3")).unwrap();
    let nul = txn.queue_outbound("a.x\0", &pdu("$4")).unwrap();
    assert!(b1 < a1 && a1 < b2 && b2 < axy && axy < b3 && b3 < nul, "seqs increase");
    store.commit(txn).await.unwrap();
    assert_eq!(store.current_stream(), nul, "seqs are stream positions");

    assert_eq!(store.outbound_destinations().await.unwrap(), ["a.x", "a.x\0", "a.xy", "b.x"]);
    let queued = store.outbound("b.x", 10).await.unwrap();
    assert_eq!(
        json(&queued),
        [
            (b1, r#"{"pdu":{"event_id":"$1"}}"#.to_owned()),
            (b2, r#"{"edu":{"edu_type":"m.typing","content":{"typing":true}}}"#.to_owned()),
            (b3, r#"{"pdu":{"event_id":"$3"}}"#.to_owned()),
        ]
    );
    assert_eq!(json(&store.outbound("b.x", 2).await.unwrap()), json(&queued[..2]));
    assert_eq!(json(&store.outbound("a.x", 10).await.unwrap()), json(&[(a1, pdu("$1"))]));
    assert!(store.outbound("b.x", 0).await.unwrap().is_empty());
    // Newest first, for the delivery status; the neighbours' keys stay out of a backward scan.
    let newest: Vec<(u64, OutboundItem)> = queued.iter().rev().cloned().collect();
    assert_eq!(json(&store.outbound_newest("b.x", 10).await.unwrap()), json(&newest));
    assert_eq!(json(&store.outbound_newest("b.x", 2).await.unwrap()), json(&newest[..2]));
    assert_eq!(json(&store.outbound_newest("a.x", 10).await.unwrap()), json(&[(a1, pdu("$1"))]));
    assert!(store.outbound_newest("c.x", 10).await.unwrap().is_empty());
    assert!(store.outbound("c.x", 10).await.unwrap().is_empty());

    // Sent items go; the rest wait, across a restart.
    let mut txn = store.transaction();
    txn.remove_outbound("b.x", &[b1, b2, 12345]);
    txn.remove_outbound("a.x", &[a1]);
    store.commit(txn).await.unwrap();
    drop(store);
    let store = Store::open(backend).await.unwrap();
    assert_eq!(json(&store.outbound("b.x", 10).await.unwrap()), json(&queued[2..]));
    assert!(store.outbound("a.x", 10).await.unwrap().is_empty());
    assert_eq!(store.outbound_destinations().await.unwrap(), ["a.x\0", "a.xy", "b.x"]);
    let mut txn = store.transaction();
    assert!(txn.queue_outbound("a.x", &pdu("$5")).unwrap() > nul, "seqs go on increasing");
    store.commit(txn).await.unwrap();
    assert_eq!(store.outbound_destinations().await.unwrap(), ["a.x", "a.x\0", "a.xy", "b.x"]);
}

pub async fn inbound_transactions_are_remembered(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    assert!(store.inbound_transaction("a.x", "t1").await.unwrap().is_none());
    let response = |n: u32| InboundTransaction {
        received_ms: 1_700_000_000_000 + u64::from(n),
        response: to_raw_value(&serde_json::json!({"pdus": {"$e": {"n": n}}})).unwrap(),
    };
    let mut txn = store.transaction();
    txn.put_inbound_transaction("a.x", "t1", &response(1)).unwrap();
    txn.put_inbound_transaction("a.x", "t2", &response(2)).unwrap();
    txn.put_inbound_transaction("b.x", "t1", &response(3)).unwrap();
    store.commit(txn).await.unwrap();
    let found = store.inbound_transaction("a.x", "t1").await.unwrap().unwrap();
    assert_eq!(found.received_ms, 1_700_000_000_001);
    assert_eq!(found.response.get(), r#"{"pdus":{"$e":{"n":1}}}"#);
    let other = store.inbound_transaction("b.x", "t1").await.unwrap().unwrap();
    assert_eq!(other.response.get(), r#"{"pdus":{"$e":{"n":3}}}"#);
    assert!(store.inbound_transaction("a.x", "t3").await.unwrap().is_none());
    assert!(store.inbound_transaction("a.xt1", "").await.unwrap().is_none());
}

pub async fn rejected_events_are_remembered(backend: Arc<dyn Backend>) {
    let store = Store::open(backend).await.unwrap();
    assert!(store.rejected_event("$bad").await.unwrap().is_none());
    assert!(store.rejected_events(&[]).await.unwrap().is_empty());
    let bad = RejectedEvent { room_id: owned_room_id!("!r:x"), reason: "bad signature".into() };
    let worse = RejectedEvent { room_id: owned_room_id!("!s:x"), reason: "not allowed".into() };
    let mut txn = store.transaction();
    txn.put_rejected_event("$bad", &bad).unwrap();
    txn.put_rejected_event(owned_event_id!("$worse").as_str(), &worse).unwrap();
    store.commit(txn).await.unwrap();
    assert_eq!(store.rejected_event("$bad").await.unwrap(), Some(bad.clone()));
    assert_eq!(
        store.rejected_events(&["$worse", "$fine", "$bad", "$worse"]).await.unwrap(),
        [Some(worse.clone()), None, Some(bad), Some(worse)]
    );
}
