//! [Filters](https://spec.matrix.org/v1.16/client-server-api/#filtering) applied to events.

use hearth_core::{Pdu, ruma::api::client::filter::RoomEventFilter};

/// Whether `pattern` (with `*` wildcards) matches `value`.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, rest)) => {
            let Some(mut remaining) = value.strip_prefix(prefix) else { return false };
            if rest.is_empty() {
                return true;
            }
            // Try every position for the rest of the pattern (patterns are short).
            loop {
                if glob(rest, remaining) {
                    return true;
                }
                let mut chars = remaining.chars();
                if chars.next().is_none() {
                    return false;
                }
                remaining = chars.as_str();
            }
        }
    }
}

/// Whether an event passes a room event filter's type, sender and room conditions.
pub(crate) fn matches(filter: &RoomEventFilter, pdu: &Pdu) -> bool {
    let kind = pdu.kind().to_string();
    let sender = pdu.sender();
    let room = pdu.room_id();
    if filter.not_types.iter().any(|pattern| glob(pattern, &kind)) {
        return false;
    }
    if let Some(types) = &filter.types
        && !types.iter().any(|pattern| glob(pattern, &kind))
    {
        return false;
    }
    if filter.not_senders.iter().any(|not| not == sender) {
        return false;
    }
    if let Some(senders) = &filter.senders
        && !senders.iter().any(|allowed| allowed == sender)
    {
        return false;
    }
    if filter.not_rooms.iter().any(|not| not == room) {
        return false;
    }
    if let Some(rooms) = &filter.rooms
        && !rooms.iter().any(|allowed| allowed == room)
    {
        return false;
    }
    if let Some(url_filter) = filter.url_filter {
        let has_url = serde_json::from_str::<serde_json::Value>(pdu.content().get())
            .ok()
            .is_some_and(|content| content.get("url").is_some());
        let wants_url =
            url_filter == hearth_core::ruma::api::client::filter::UrlFilter::EventsWithUrl;
        if has_url != wants_url {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(glob("m.room.*", "m.room.message"));
        assert!(glob("*", "anything"));
        assert!(glob("m.*.message", "m.room.message"));
        assert!(!glob("m.room.*", "m.call.invite"));
        assert!(glob("m.room.message", "m.room.message"));
        assert!(!glob("m.room.message", "m.room.messages"));
    }
}
