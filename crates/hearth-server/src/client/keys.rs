//! End-to-end encryption support. (Being built: key upload/query/claim, to-device, backups.)

use hearth_core::ruma::{OwnedRoomId, OwnedUserId, api::client::sync::sync_events};
use hearth_store::{MembershipRecord, Txn};

use crate::{Server, client::sync::SyncRequest, error::Result};

impl Server {
    /// Removes a device's end-to-end keys with the device.
    pub(crate) async fn delete_device_keys(
        &self,
        _txn: &mut Txn,
        _user_id: &OwnedUserId,
        _device_id: &str,
    ) -> Result<()> {
        Ok(())
    }

    /// The end-to-end parts of a sync response.
    pub(crate) async fn sync_e2ee(
        &self,
        _sync: &SyncRequest<'_>,
        _memberships: &[(OwnedRoomId, MembershipRecord)],
        _response: &mut sync_events::v3::Response,
    ) -> Result<()> {
        Ok(())
    }
}
