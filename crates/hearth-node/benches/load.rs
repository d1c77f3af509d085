//! `cargo bench -p hearth-node --bench load`: hearth-node under load, printed as one JSON object
//! on the last line; `cargo xtask bench` collects it with the core's figures.
//!
//! Starts the release binary on a fresh data directory and plays, over plain HTTP/1.1 with one
//! keep-alive connection per user:
//!
//! - 20 users in one public room each send 50 messages concurrently (one request in flight per
//!   user) while a 21st user long-polls `/sync`: `send_events_per_s`, `send_p95_ms`,
//!   `sync_delivery_p95_ms` (a message's send start -> first seen in the watcher's `/sync`),
//!   `server_cpu_ms_per_send` (the server's user + system CPU over the send phase, per send).
//! - `initial_sync_ms`: the median of 5 fresh `/sync`s of a room with 1,000 messages, with a
//!   filter asking for all of them.
//! - `peak_rss_mb`: the server process's high-water mark (VmHWM) at the end; `rss_after_start_mb`
//!   and `rss_after_register_mb`: its resident size (VmRSS) once listening and once the 22
//!   accounts exist, to tell where the memory goes.
//!
//! The client runs on a current-thread tokio runtime, so it uses at most one core and leaves the
//! others to the server: a load generator that saturates the machine measures itself.

// A native benchmark, never built for wasm32: std's clocks are fine here.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const USERS: usize = 20;
const MESSAGES_PER_USER: usize = 50;
const HISTORY: usize = 1000;
const INITIAL_SYNCS: usize = 5;
/// How long the watcher may lag behind the last send before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// `/proc/PID/stat` counts CPU time in clock ticks of 1/100 s (USER_HZ on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

mod common;

use common::{Node, Result, User, encode, fail, ms, percentile, round, string_field, watch};

fn main() {
    // One thread for the whole client (see the module documentation).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => fail(&format!("cannot start the runtime: {error}")),
    };
    let data = match tempfile::tempdir() {
        Ok(data) => data,
        Err(error) => fail(&format!("cannot create a data directory: {error}")),
    };
    let mut node = match Node::start(data.path(), &[]) {
        Ok(node) => node,
        Err(error) => fail(&error),
    };
    let result = runtime.block_on(run(&node));
    // Stop the server whatever happened; a failed stop fails the run too.
    let stopped = node.stop();
    match (result, stopped) {
        (Ok(report), Ok(())) => println!("{report}"),
        (Err(error), _) | (Ok(_), Err(error)) => fail(&error),
    }
}

async fn run(node: &Node) -> Result<Value> {
    let rss_after_start = node.status_kb("VmRSS")?;

    let owner = User::register(&node.address, "owner").await?;
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        users.push(User::register(&node.address, &format!("user{i}")).await?);
    }
    let watcher = User::register(&node.address, "watcher").await?;
    let rss_after_register = node.status_kb("VmRSS")?;

    let created =
        owner.call("POST", "/_matrix/client/v3/createRoom", Some(json!({"preset": "public_chat"})));
    let room = string_field(&created.await?, "room_id")?;
    let enc = encode(&room);
    for user in users.iter().chain([&watcher]) {
        user.call("POST", &format!("/_matrix/client/v3/join/{enc}"), Some(json!({}))).await?;
    }

    // The watcher long-polls and notes when each message first appears. A limited timeline
    // would skip messages, so it asks for every one.
    let total = USERS * MESSAGES_PER_USER;
    let first = watcher.call("GET", "/_matrix/client/v3/sync?timeout=0", None).await?;
    let since = string_field(&first, "next_batch")?;
    let seen: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let watch = tokio::spawn(watch(watcher, room.clone(), since, Arc::clone(&seen), total));

    let cpu_before = node.cpu_ticks()?;
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (u, user) in users.into_iter().enumerate() {
        let path = format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message");
        senders.spawn(async move {
            let mut sent = Vec::with_capacity(MESSAGES_PER_USER);
            for m in 0..MESSAGES_PER_USER {
                let tag = format!("{u}-{m}");
                let body =
                    json!({"msgtype": "m.text", "body": format!("message {tag}"), "tag": tag});
                let t0 = Instant::now();
                user.call("PUT", &format!("{path}/{tag}"), Some(body)).await?;
                sent.push((tag, t0, t0.elapsed()));
            }
            Ok::<_, String>(sent)
        });
    }
    let mut sent_at = BTreeMap::new();
    let mut send_latencies = Vec::with_capacity(total);
    while let Some(joined) = senders.join_next().await {
        for (tag, t0, latency) in joined.map_err(|error| error.to_string())?? {
            sent_at.insert(tag, t0);
            send_latencies.push(ms(latency));
        }
    }
    let elapsed = started.elapsed();
    let cpu_ticks = node.cpu_ticks()? - cpu_before;

    let watched = tokio::time::timeout(DELIVERY_TIMEOUT, watch).await;
    let seen = std::mem::take(&mut *seen.lock().map_err(|error| error.to_string())?);
    match watched {
        Ok(joined) => joined.map_err(|error| error.to_string())??,
        Err(_) => return Err(format!("the watcher saw only {} of {total} messages", seen.len())),
    }
    let mut deliveries = Vec::with_capacity(total);
    for (tag, at) in &seen {
        let t0 = sent_at.get(tag).ok_or_else(|| format!("the watcher saw unknown tag {tag}"))?;
        deliveries.push(ms(at.saturating_duration_since(*t0)));
    }

    // A second room with 1,000 messages, then fresh initial syncs asking for all of them.
    let created = owner.call("POST", "/_matrix/client/v3/createRoom", Some(json!({})));
    let history = string_field(&created.await?, "room_id")?;
    let history_enc = encode(&history);
    for i in 0..HISTORY {
        let path = format!("/_matrix/client/v3/rooms/{history_enc}/send/m.room.message/h{i}");
        owner
            .call("PUT", &path, Some(json!({"msgtype": "m.text", "body": format!("history {i}")})))
            .await?;
    }
    let filter = json!({"room": {"rooms": [history], "timeline": {"limit": HISTORY}}});
    let path = format!("/_matrix/client/v3/sync?filter={}", encode(&filter.to_string()));
    let mut sync_times = Vec::with_capacity(INITIAL_SYNCS);
    for _ in 0..INITIAL_SYNCS {
        let t0 = Instant::now();
        let sync = owner.call("GET", &path, None).await?;
        sync_times.push(ms(t0.elapsed()));
        let events = sync["rooms"]["join"][&history]["timeline"]["events"].as_array();
        let got = events
            .map(|events| events.iter().filter(|e| e["type"] == "m.room.message").count())
            .unwrap_or(0);
        if got != HISTORY {
            return Err(format!("initial sync returned {got} of {HISTORY} messages"));
        }
    }

    let peak = node.status_kb("VmHWM")?;
    let sends = total as f64;
    Ok(json!({
        "send_events_per_s": round(sends / elapsed.as_secs_f64()),
        "send_p95_ms": round(percentile(&mut send_latencies, 95.0)),
        "sync_delivery_p95_ms": round(percentile(&mut deliveries, 95.0)),
        "initial_sync_ms": round(percentile(&mut sync_times, 50.0)),
        "peak_rss_mb": round(peak as f64 / 1024.0),
        "rss_after_start_mb": round(rss_after_start as f64 / 1024.0),
        "rss_after_register_mb": round(rss_after_register as f64 / 1024.0),
        "server_cpu_ms_per_send": round(cpu_ticks as f64 / TICKS_PER_SECOND * 1000.0 / sends),
    }))
}
