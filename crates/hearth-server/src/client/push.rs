//! Push rules and notification counts. (Being built: the default rule set and its evaluation.)

use hearth_core::ruma::{RoomId, UserId, api::client::sync::sync_events::UnreadNotificationsCount};

use crate::{Server, error::Result};

impl Server {
    /// A room's unread notification counts for a user.
    pub(crate) async fn unread_notifications(
        &self,
        _user_id: &UserId,
        _room_id: &RoomId,
    ) -> Result<UnreadNotificationsCount> {
        Ok(UnreadNotificationsCount::new())
    }
}
