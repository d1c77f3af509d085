//! The [room versions](https://spec.matrix.org/v1.16/rooms/) Hearth implements: 10, 11 and 12.
//!
//! Older versions are left out on purpose: they predate canonical JSON enforcement (v6), the
//! restricted join rules and integer power levels (v10), and peer-to-peer rooms have no history
//! to stay compatible with.

use std::{fmt, str::FromStr};

use ruma::{RoomVersionId, room_version_rules::RoomVersionRules};

use crate::CoreError;

/// A supported room version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum RoomVersion {
    /// [Room version 10](https://spec.matrix.org/v1.16/rooms/v10/).
    V10,
    /// [Room version 11](https://spec.matrix.org/v1.16/rooms/v11/).
    V11,
    /// [Room version 12](https://spec.matrix.org/v1.16/rooms/v12/): room ID is the create
    /// event's reference hash; creators have unlimited power. The default for new rooms.
    #[default]
    V12,
}

impl RoomVersion {
    /// Every supported version, oldest first.
    pub const ALL: [RoomVersion; 3] = [RoomVersion::V10, RoomVersion::V11, RoomVersion::V12];

    /// The version string, as in `m.room.create`'s `room_version`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomVersion::V10 => "10",
            RoomVersion::V11 => "11",
            RoomVersion::V12 => "12",
        }
    }

    /// ruma's identifier for this version.
    pub fn id(self) -> RoomVersionId {
        match self {
            RoomVersion::V10 => RoomVersionId::V10,
            RoomVersion::V11 => RoomVersionId::V11,
            RoomVersion::V12 => RoomVersionId::V12,
        }
    }

    /// The rules (event format, redaction, authorization, state resolution) of this version.
    pub fn rules(self) -> &'static RoomVersionRules {
        match self {
            RoomVersion::V10 => &RoomVersionRules::V10,
            RoomVersion::V11 => &RoomVersionRules::V11,
            RoomVersion::V12 => &RoomVersionRules::V12,
        }
    }

    /// Whether the room ID is derived from the create event (v12 and later).
    pub fn room_id_from_create_event(self) -> bool {
        self.rules().authorization.room_create_event_id_as_room_id
    }
}

impl FromStr for RoomVersion {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s {
            "10" => Ok(RoomVersion::V10),
            "11" => Ok(RoomVersion::V11),
            "12" => Ok(RoomVersion::V12),
            other => Err(CoreError::UnsupportedRoomVersion(other.to_owned())),
        }
    }
}

impl fmt::Display for RoomVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
