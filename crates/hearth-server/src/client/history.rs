//! A room's history as `/messages` and `/context` page through it: the timeline this server
//! built (stream positions), and before it the history fetched from other servers after a remote
//! join (the backfill, sequence 1 the newest, see `federation/backfill.rs`).
//!
//! Both parts are laid on one line of coordinates, oldest to newest:
//!
//! ```text
//!   … b3  b2  b1 | t1  t2  t3 …        events (backfill sequence, stream position)
//!    -3  -2  -1  0   1   2   3         positions between them
//! ```
//!
//! A position is a point between two events; each event has the coordinate of the position just
//! after it (a timeline event at stream `s`: `s`; a backfilled event at sequence `j`: `1 - j`).
//! Tokens name positions: `t{n}` for `n >= 0` (sync's `s{n}_…` too), `b{n}` for `-n`.

use hearth_core::ruma::{OwnedEventId, RoomId};
use hearth_store::{Direction, StoredEvent};

use crate::{Server, ServerError, error::Result};

/// A token for the position `coordinate`.
pub(crate) fn position_token(coordinate: i64) -> String {
    if coordinate >= 0 {
        format!("t{coordinate}")
    } else {
        format!("b{}", coordinate.unsigned_abs())
    }
}

/// The position a token names: `t{n}` and sync's `s{n}_…` in the timeline, `b{n}` in the
/// backfilled history.
pub(crate) fn parse_position(token: &str) -> Result<i64> {
    let invalid = || ServerError::InvalidParam(format!("invalid pagination token {token:?}"));
    if let Some(digits) = token.strip_prefix('b') {
        let sequence: u64 = digits.parse().map_err(|_| invalid())?;
        return i64::try_from(sequence).map(|sequence| -sequence).map_err(|_| invalid());
    }
    let stream = crate::client::message::parse_token(token)?;
    i64::try_from(stream).map_err(|_| invalid())
}

/// The coordinate of a stored event's place in the history; `None` for an outlier (an event
/// known only as the auth or state of others, with no place).
pub(crate) fn coordinate_of(stored: &StoredEvent) -> Option<i64> {
    if let Some(sequence) = stored.backfill {
        return Some(1 - i64::try_from(sequence).ok()?);
    }
    (stored.stream > 0).then(|| i64::try_from(stored.stream).ok()).flatten()
}

impl Server {
    /// Up to `limit` events of a room's history whose coordinates are in `(after, up_to]`
    /// (`after: None` for no lower bound), walking `direction` (backward: newest first), with
    /// their coordinates.
    pub(crate) async fn history(
        &self,
        room_id: &RoomId,
        after: Option<i64>,
        up_to: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(i64, OwnedEventId)>> {
        let after = after.unwrap_or(i64::MIN);
        if after >= up_to || limit == 0 {
            return Ok(Vec::new());
        }
        Ok(match direction {
            Direction::Backward => {
                let mut events =
                    self.timeline_part(room_id, after, up_to, direction, limit).await?;
                let left = limit - events.len();
                events.extend(self.backfilled_part(room_id, after, up_to, direction, left).await?);
                events
            }
            Direction::Forward => {
                let mut events =
                    self.backfilled_part(room_id, after, up_to, direction, limit).await?;
                let left = limit - events.len();
                events.extend(self.timeline_part(room_id, after, up_to, direction, left).await?);
                events
            }
        })
    }

    /// The timeline events of `(after, up_to]`: streams in `(max(after, 0), up_to]`.
    async fn timeline_part(
        &self,
        room_id: &RoomId,
        after: i64,
        up_to: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(i64, OwnedEventId)>> {
        if up_to < 1 || limit == 0 {
            return Ok(Vec::new());
        }
        let low = u64::try_from(after.max(0)).unwrap_or(0);
        let high = u64::try_from(up_to).unwrap_or(0);
        let rows = self.store().timeline(room_id, low, high, direction, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(stream, event_id)| (i64::try_from(stream).unwrap_or(i64::MAX), event_id))
            .collect())
    }

    /// The backfilled events of `(after, up_to]`: coordinates `1 - j` in
    /// `(after, min(up_to, 0)]`, that is sequences `j` in `(-min(up_to, 0), -after]`.
    async fn backfilled_part(
        &self,
        room_id: &RoomId,
        after: i64,
        up_to: i64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(i64, OwnedEventId)>> {
        if after >= 0 || limit == 0 {
            return Ok(Vec::new());
        }
        let low = up_to.min(0).unsigned_abs();
        let high = after.unsigned_abs();
        // Older is a higher sequence: walking back in time walks the sequences up.
        let walk = match direction {
            Direction::Backward => Direction::Forward,
            Direction::Forward => Direction::Backward,
        };
        let rows = self.store().backfill(room_id, low, high, walk, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(sequence, event_id)| (1 - i64::try_from(sequence).unwrap_or(i64::MAX), event_id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_on_both_sides_of_the_boundary() {
        for coordinate in [-7, -1, 0, 1, 42] {
            assert_eq!(parse_position(&position_token(coordinate)).unwrap(), coordinate);
        }
        assert_eq!(position_token(-3), "b3");
        assert_eq!(parse_position("s12_4").unwrap(), 12);
        assert!(parse_position("b").is_err());
        assert!(parse_position("b-1").is_err());
        assert!(parse_position("b99999999999999999999").is_err());
    }
}
