//! [EDUs](https://spec.matrix.org/v1.16/server-server-api/#edus) from other servers: typing,
//! receipts, send-to-device messages and device list updates for their users. Each is applied
//! only for users of the server that sent it, in rooms where those users are joined.

use std::collections::BTreeSet;

use hearth_core::ruma::{
    OwnedEventId, OwnedRoomId, OwnedServerName, OwnedUserId, ServerName, UserId,
};
use hearth_store::{ReceiptChange, ToDeviceRecord};
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

use crate::{Server, ServerError, error::Result, platform::now_ms};

#[derive(Deserialize)]
struct RawEdu<'a> {
    edu_type: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct Typing {
    room_id: OwnedRoomId,
    user_id: OwnedUserId,
    typing: bool,
}

#[derive(Deserialize)]
struct ReceiptData {
    event_ids: Vec<OwnedEventId>,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct DirectToDevice {
    sender: OwnedUserId,
    #[serde(rename = "type")]
    event_type: String,
    messages: std::collections::BTreeMap<OwnedUserId, std::collections::BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct DeviceListUpdate {
    user_id: OwnedUserId,
}

#[derive(Deserialize)]
struct PresenceUpdate {
    push: Vec<UserPresence>,
}

#[derive(Deserialize)]
struct UserPresence {
    user_id: OwnedUserId,
    presence: hearth_core::ruma::presence::PresenceState,
    status_msg: Option<String>,
    last_active_ago: Option<u64>,
}

/// Users one `m.presence` EDU may update; the rest are ignored.
const MAX_PRESENCE_PER_EDU: usize = 100;

/// How long a remote typing notification lasts: the spec's EDU has no timeout, so a lost
/// "stopped typing" must not leave the user typing for ever.
const REMOTE_TYPING_MS: u64 = 30_000;

impl Server {
    /// Applies one EDU from `origin`.
    pub(crate) async fn receive_edu(&self, origin: &ServerName, edu: &RawValue) -> Result<()> {
        let edu: RawEdu<'_> = serde_json::from_str(edu.get())
            .map_err(|error| ServerError::BadJson(format!("EDU: {error}")))?;
        let content = edu.content.get();
        let bad =
            |error: serde_json::Error| ServerError::BadJson(format!("{}: {error}", edu.edu_type));
        match edu.edu_type.as_str() {
            "m.typing" => {
                let typing: Typing = serde_json::from_str(content).map_err(bad)?;
                if typing.user_id.server_name() != origin
                    || !self.is_joined(&typing.user_id, &typing.room_id).await?
                {
                    return Ok(());
                }
                let expires = typing.typing.then(|| now_ms() + REMOTE_TYPING_MS);
                self.set_typing(&typing.room_id, &typing.user_id, expires);
            }
            "m.receipt" => {
                let rooms: std::collections::BTreeMap<
                    OwnedRoomId,
                    std::collections::BTreeMap<
                        String,
                        std::collections::BTreeMap<OwnedUserId, ReceiptData>,
                    >,
                > = serde_json::from_str(content).map_err(bad)?;
                for (room_id, by_type) in rooms {
                    for (receipt_type, by_user) in by_type {
                        if receipt_type != "m.read" {
                            continue;
                        }
                        for (user_id, receipt) in by_user {
                            if user_id.server_name() != origin
                                || !self.is_joined(&user_id, &room_id).await?
                            {
                                continue;
                            }
                            let Some(event_id) = receipt.event_ids.into_iter().next() else {
                                continue;
                            };
                            let thread = receipt
                                .data
                                .get("thread_id")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            let ts = receipt.data.get("ts").and_then(Value::as_u64).unwrap_or(0);
                            let change = ReceiptChange {
                                receipt_type: receipt_type.clone(),
                                thread,
                                user_id: user_id.to_string(),
                            };
                            let _guard = self.write_lock().await;
                            let mut txn = self.store().transaction();
                            txn.put_receipt(&room_id, &change, event_id, ts)?;
                            self.store().commit(txn).await?;
                        }
                    }
                }
                self.notifier().notify();
            }
            "m.direct_to_device" => {
                let message: DirectToDevice = serde_json::from_str(content).map_err(bad)?;
                if message.sender.server_name() != origin {
                    return Ok(());
                }
                let record = ToDeviceRecord {
                    sender: message.sender.to_string(),
                    event_type: message.event_type,
                    content: Value::Null,
                };
                let _guard = self.write_lock().await;
                let mut txn = self.store().transaction();
                for (user_id, devices) in &message.messages {
                    if user_id.server_name() != self.server_name() {
                        continue;
                    }
                    let user = user_id.as_str();
                    for (device, content) in devices {
                        let targets: Vec<String> = if device == "*" {
                            self.store()
                                .devices(user)
                                .await?
                                .into_iter()
                                .map(|(id, _)| id)
                                .collect()
                        } else if self.store().device(user, device).await?.is_some() {
                            vec![device.clone()]
                        } else {
                            continue;
                        };
                        let record = ToDeviceRecord { content: content.clone(), ..record.clone() };
                        for target in targets {
                            txn.put_to_device(user, &target, &record)?;
                        }
                    }
                }
                self.store().commit(txn).await?;
                self.notifier().notify();
            }
            "m.device_list_update" | "m.signing_key_update" => {
                let update: DeviceListUpdate = serde_json::from_str(content).map_err(bad)?;
                if update.user_id.server_name() != origin {
                    return Ok(());
                }
                // Local clients sharing a room with the user re-query their keys.
                let _guard = self.write_lock().await;
                let mut txn = self.store().transaction();
                txn.put_key_change(update.user_id.as_str())?;
                self.store().commit(txn).await?;
                self.notifier().notify();
            }
            "m.presence" => {
                let update: PresenceUpdate = serde_json::from_str(content).map_err(bad)?;
                for user in update.push.into_iter().take(MAX_PRESENCE_PER_EDU) {
                    if user.user_id.server_name() != origin
                        || !self.shares_a_room(&user.user_id).await?
                    {
                        continue;
                    }
                    self.set_remote_presence(
                        &user.user_id,
                        user.presence,
                        user.status_msg,
                        user.last_active_ago.unwrap_or(0),
                    );
                }
            }
            // Anything newer is ignored, as the spec asks of unknown EDUs.
            _ => {}
        }
        Ok(())
    }

    /// Whether another server's user is joined to a room this server is in.
    async fn shares_a_room(&self, user_id: &UserId) -> Result<bool> {
        Ok(self
            .store()
            .memberships(user_id)
            .await?
            .iter()
            .any(|(_, record)| record.membership == "join"))
    }

    /// Tells every other server sharing a room with a local user of their new presence.
    pub(crate) async fn send_presence(&self, user_id: &UserId, mut content: Value) -> Result<()> {
        content["user_id"] = serde_json::json!(user_id);
        let servers = self.servers_sharing_rooms(user_id).await?;
        let mut txn = self.store().transaction();
        queue_edu(&mut txn, &servers, "m.presence", &serde_json::json!({ "push": [content] }))?;
        self.commit(txn).await
    }

    /// The other servers with a member joined to a room `user_id` is joined to.
    async fn servers_sharing_rooms(&self, user_id: &UserId) -> Result<BTreeSet<OwnedServerName>> {
        let mut servers = BTreeSet::new();
        for (room_id, membership) in self.store().memberships(user_id).await? {
            if membership.membership == "join" {
                servers.extend(self.other_servers_in_room(&room_id).await?);
            }
        }
        Ok(servers)
    }

    async fn is_joined(&self, user_id: &UserId, room_id: &OwnedRoomId) -> Result<bool> {
        Ok(self
            .store()
            .membership(user_id, room_id)
            .await?
            .is_some_and(|record| record.membership == "join"))
    }
}

impl Server {
    /// Queues an EDU about `room_id` for every other server with a member joined to it.
    pub(crate) async fn queue_room_edu(
        &self,
        room_id: &hearth_core::ruma::RoomId,
        edu_type: &str,
        content: &Value,
    ) -> Result<()> {
        let servers = self.other_servers_in_room(room_id).await?;
        let mut txn = self.store().transaction();
        queue_edu(&mut txn, &servers, edu_type, content)?;
        self.commit(txn).await
    }

    /// Tells the room's other servers that `user_id` started or stopped typing.
    pub(crate) async fn send_typing(
        &self,
        room_id: &hearth_core::ruma::RoomId,
        user_id: &UserId,
        typing: bool,
    ) -> Result<()> {
        let content =
            serde_json::json!({ "room_id": room_id, "user_id": user_id, "typing": typing });
        self.queue_room_edu(room_id, "m.typing", &content).await
    }

    /// Tells the room's other servers of a local user's public read receipt.
    pub(crate) async fn send_receipt(
        &self,
        room_id: &hearth_core::ruma::RoomId,
        user_id: &UserId,
        event_id: &hearth_core::ruma::EventId,
        thread: &str,
        ts: u64,
    ) -> Result<()> {
        let mut data = serde_json::json!({ "ts": ts });
        if !thread.is_empty() {
            data["thread_id"] = serde_json::json!(thread);
        }
        let content = serde_json::json!({
            room_id.as_str(): { "m.read": { user_id.as_str(): {
                "event_ids": [event_id], "data": data,
            } } }
        });
        self.queue_room_edu(room_id, "m.receipt", &content).await
    }
}

/// Queues one EDU for each of `servers` in `txn` (commit it with [`Server::commit`]).
fn queue_edu(
    txn: &mut hearth_store::Txn,
    servers: &BTreeSet<OwnedServerName>,
    edu_type: &str,
    content: &Value,
) -> Result<()> {
    if servers.is_empty() {
        return Ok(());
    }
    let content = serde_json::value::to_raw_value(content)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    let item = hearth_store::OutboundItem::Edu { edu_type: edu_type.to_owned(), content };
    for server in servers {
        txn.queue_outbound(server.as_str(), &item)?;
    }
    Ok(())
}

impl Server {
    /// Commits `txn`, then wakes the senders of the destinations it queued something for.
    pub(crate) async fn commit(&self, txn: hearth_store::Txn) -> Result<()> {
        let destinations = txn.queued_destinations();
        self.store().commit(txn).await?;
        self.wake_senders(
            destinations
                .into_iter()
                .filter_map(|name| hearth_core::ruma::OwnedServerName::try_from(name).ok()),
        );
        Ok(())
    }

    /// Records that a local user's devices or keys changed: local clients sharing a room learn
    /// it from sync, and every other server sharing a room with the user gets an
    /// [`m.device_list_update`](https://spec.matrix.org/v1.16/server-server-api/#device-management)
    /// so that its clients query the keys again. Commit `txn` with [`Server::commit`].
    pub(crate) async fn key_changed(
        &self,
        txn: &mut hearth_store::Txn,
        user_id: &UserId,
        device_id: &str,
        deleted: bool,
    ) -> Result<()> {
        let stream = txn.put_key_change(user_id.as_str())?;
        let servers = self.servers_sharing_rooms(user_id).await?;
        let content = serde_json::json!({
            "user_id": user_id,
            "device_id": device_id,
            "stream_id": stream,
            "prev_id": [],
            "deleted": deleted,
        });
        queue_edu(txn, &servers, "m.device_list_update", &content)?;
        Ok(())
    }
}
