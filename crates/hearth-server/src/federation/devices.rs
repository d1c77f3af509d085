//! A local user's devices and end-to-end keys, as other servers ask for them
//! ([spec](https://spec.matrix.org/v1.16/server-server-api/#end-to-end-encryption)). The keys
//! are read and claimed by the same code as the client API's.

use std::collections::BTreeMap;

use hearth_core::ruma::{
    OwnedDeviceId, OwnedServerName, UInt,
    api::federation::{
        device::get_devices,
        keys::{claim_keys, get_keys},
    },
};

use crate::{Server, ServerError, error::Result};

/// `GET /_matrix/federation/v1/user/devices/{userId}`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1userdevicesuserid)):
/// a local user's devices that have keys, with their master and self-signing keys. The
/// `stream_id` is the server's stream position, which grows with every device list change.
pub(crate) async fn get_devices(
    server: Server,
    _origin: OwnedServerName,
    request: get_devices::v1::Request,
) -> Result<get_devices::v1::Response> {
    let user_id = &request.user_id;
    if !server.is_local(user_id) || server.store().user(user_id).await?.is_none() {
        return Err(ServerError::NotFound(format!("{user_id} is not a user of this server")));
    }
    let wanted = BTreeMap::from([(user_id.clone(), Vec::new())]);
    let mut keys = server.query_local_keys(&wanted, None).await?;
    let mut device_keys = keys.device_keys.remove(user_id).unwrap_or_default();
    let stream_id = UInt::new_saturating(server.store().current_stream());
    let mut response = get_devices::v1::Response::new(user_id.clone(), stream_id);
    for (device_id, record) in server.store().devices(user_id.as_str()).await? {
        let device_id = OwnedDeviceId::from(device_id);
        let Some(keys) = device_keys.remove(&device_id) else { continue };
        let mut device = get_devices::v1::UserDevice::new(device_id, keys);
        device.device_display_name = record.display_name;
        response.devices.push(device);
    }
    response.master_key = keys.master_keys.remove(user_id);
    response.self_signing_key = keys.self_signing_keys.remove(user_id);
    Ok(response)
}

/// `POST /_matrix/federation/v1/user/keys/query`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1userkeysquery)):
/// device, master and self-signing keys of this server's users; others are ignored.
pub(crate) async fn get_keys(
    server: Server,
    _origin: OwnedServerName,
    request: get_keys::v1::Request,
) -> Result<get_keys::v1::Response> {
    let keys = server.query_local_keys(&request.device_keys, None).await?;
    let mut response = get_keys::v1::Response::new(keys.device_keys);
    response.master_keys = keys.master_keys;
    response.self_signing_keys = keys.self_signing_keys;
    Ok(response)
}

/// `POST /_matrix/federation/v1/user/keys/claim`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#post_matrixfederationv1userkeysclaim)):
/// one one-time key (or the fallback key) per named device of this server's users; others are
/// ignored.
pub(crate) async fn claim_keys(
    server: Server,
    _origin: OwnedServerName,
    request: claim_keys::v1::Request,
) -> Result<claim_keys::v1::Response> {
    Ok(claim_keys::v1::Response::new(server.claim_local_keys(&request.one_time_keys).await?))
}
