//! Send-to-device messaging
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#send-to-device-messaging)).

use std::collections::BTreeMap;

use hearth_core::ruma::{
    OwnedServerName, UserId, api::client::to_device::send_event_to_device,
    to_device::DeviceIdOrAllDevices,
};
use hearth_store::{OutboundItem, ToDeviceRecord};
use serde_json::{Value, json};

use crate::{Authed, Server, ServerError, error::Result};

/// `PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3sendtodeviceeventtypetxnid)):
/// queued for local devices (one or `*`) and, as `m.direct_to_device` EDUs, for other servers'
/// users; idempotent per transaction ID.
pub(crate) async fn send_event_to_device(
    server: Server,
    authed: Authed,
    request: send_event_to_device::v3::Request,
) -> Result<send_event_to_device::v3::Response> {
    let sender = authed.user_id.as_str();
    let own_device = authed.device_id.as_str();
    let txn_key = format!("sendToDevice:{}", request.txn_id);
    let _guard = server.write_lock().await;
    if server.store().transaction_event(sender, own_device, &txn_key).await?.is_some() {
        return Ok(send_event_to_device::v3::Response::new());
    }
    let event_type = request.event_type.to_string();
    let mut txn = server.store().transaction();
    // Messages for other servers' users travel as one `m.direct_to_device` EDU per server.
    let mut remote: BTreeMap<OwnedServerName, BTreeMap<&UserId, Value>> = BTreeMap::new();
    for (user_id, devices) in &request.messages {
        if user_id.server_name() != server.server_name() {
            let mut by_device = serde_json::Map::new();
            for (target, content) in devices {
                let content: Value = serde_json::from_str(content.json().get())
                    .map_err(|error| ServerError::BadJson(error.to_string()))?;
                by_device.insert(target.to_string(), content);
            }
            remote
                .entry(user_id.server_name().to_owned())
                .or_default()
                .insert(user_id, Value::Object(by_device));
            continue;
        }
        let user = user_id.as_str();
        for (target, content) in devices {
            let content: Value = serde_json::from_str(content.json().get())
                .map_err(|error| ServerError::BadJson(error.to_string()))?;
            let targets: Vec<String> = match target {
                DeviceIdOrAllDevices::DeviceId(device_id) => {
                    if server.store().device(user, device_id.as_str()).await?.is_none() {
                        continue;
                    }
                    vec![device_id.to_string()]
                }
                DeviceIdOrAllDevices::AllDevices => {
                    server.store().devices(user).await?.into_iter().map(|(id, _)| id).collect()
                }
            };
            let message = ToDeviceRecord {
                sender: sender.to_owned(),
                event_type: event_type.clone(),
                content,
            };
            for device_id in targets {
                txn.put_to_device(user, &device_id, &message)?;
            }
        }
    }
    for (destination, messages) in &remote {
        let content = serde_json::value::to_raw_value(&json!({
            "sender": sender,
            "type": event_type,
            "message_id": request.txn_id,
            "messages": messages,
        }))
        .map_err(|error| ServerError::Internal(error.to_string()))?;
        let edu = OutboundItem::Edu { edu_type: "m.direct_to_device".into(), content };
        txn.queue_outbound(destination.as_str(), &edu)?;
    }
    txn.put_transaction(sender, own_device, &txn_key, "")?;
    server.store().commit(txn).await?;
    server.notifier().notify();
    server.wake_senders(remote.into_keys());
    Ok(send_event_to_device::v3::Response::new())
}
