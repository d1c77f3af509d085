//! Device management
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#device-management)).

use hearth_core::ruma::{
    MilliSecondsSinceUnixEpoch, OwnedDeviceId, UInt,
    api::client::device::{
        self, delete_device, delete_devices, get_device, get_devices, update_device,
    },
};
use hearth_store::DeviceRecord;

use crate::{Authed, Server, ServerError, error::Result};

fn to_device(device_id: OwnedDeviceId, record: DeviceRecord) -> device::Device {
    let mut device = device::Device::new(device_id);
    device.display_name = record.display_name;
    device.last_seen_ts = record.last_seen_ts.and_then(UInt::new).map(MilliSecondsSinceUnixEpoch);
    device
}

/// `GET /_matrix/client/v3/devices`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3devices)).
pub(crate) async fn get_devices(
    server: Server,
    authed: Authed,
    _request: get_devices::v3::Request,
) -> Result<get_devices::v3::Response> {
    let devices = server
        .store()
        .devices(authed.user_id.as_str())
        .await?
        .into_iter()
        .map(|(id, record)| to_device(id.into(), record))
        .collect();
    Ok(get_devices::v3::Response::new(devices))
}

/// `GET /_matrix/client/v3/devices/{deviceId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3devicesdeviceid)).
pub(crate) async fn get_device(
    server: Server,
    authed: Authed,
    request: get_device::v3::Request,
) -> Result<get_device::v3::Response> {
    let record = server
        .store()
        .device(authed.user_id.as_str(), request.device_id.as_str())
        .await?
        .ok_or_else(|| ServerError::NotFound("no such device".into()))?;
    Ok(get_device::v3::Response::new(to_device(request.device_id, record)))
}

/// `PUT /_matrix/client/v3/devices/{deviceId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3devicesdeviceid)).
pub(crate) async fn update_device(
    server: Server,
    authed: Authed,
    request: update_device::v3::Request,
) -> Result<update_device::v3::Response> {
    let user = authed.user_id.as_str();
    let _guard = server.write_lock().await;
    let mut record = server
        .store()
        .device(user, request.device_id.as_str())
        .await?
        .ok_or_else(|| ServerError::NotFound("no such device".into()))?;
    if let Some(name) = request.display_name {
        record.display_name = Some(name);
        let mut txn = server.store().transaction();
        txn.put_device(user, request.device_id.as_str(), &record)?;
        // The display name is part of what /keys/query returns.
        server.key_changed(&mut txn, &authed.user_id, request.device_id.as_str(), false).await?;
        server.commit(txn).await?;
        server.notifier().notify();
    }
    Ok(update_device::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/devices/{deviceId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3devicesdeviceid)):
/// protected by user-interactive authentication.
pub(crate) async fn delete_device(
    server: Server,
    authed: Authed,
    request: delete_device::v3::Request,
) -> Result<delete_device::v3::Response> {
    if server.store().device(authed.user_id.as_str(), request.device_id.as_str()).await?.is_none() {
        return Err(ServerError::NotFound("no such device".into()));
    }
    let flows = server.account_flows(&authed.user_id).await?;
    server.user_interactive_auth(request.auth.as_ref(), &flows, Some(&authed.user_id)).await?;
    server.delete_devices(&authed.user_id, &[request.device_id.to_string()]).await?;
    Ok(delete_device::v3::Response::new())
}

/// `POST /_matrix/client/v3/delete_devices`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3delete_devices)):
/// protected by user-interactive authentication; unknown devices are ignored.
pub(crate) async fn delete_devices(
    server: Server,
    authed: Authed,
    request: delete_devices::v3::Request,
) -> Result<delete_devices::v3::Response> {
    let flows = server.account_flows(&authed.user_id).await?;
    server.user_interactive_auth(request.auth.as_ref(), &flows, Some(&authed.user_id)).await?;
    let ids: Vec<String> = request.devices.iter().map(ToString::to_string).collect();
    server.delete_devices(&authed.user_id, &ids).await?;
    Ok(delete_devices::v3::Response::new())
}
