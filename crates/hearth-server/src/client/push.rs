//! Push rules and notification counts
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#push-rules)).
//!
//! A user's rules are the server-default set until they change one; from then on the whole set
//! lives in their global account data under `m.push_rules`, as clients also read it.

use hearth_core::ruma::{
    OwnedUserId, RoomId, UInt, UserId,
    api::client::{
        push::{
            RuleKind, delete_pushrule, get_pushrule, get_pushrule_actions, get_pushrule_enabled,
            get_pushrules_all, get_pushrules_global_scope, set_pushrule, set_pushrule_actions,
            set_pushrule_enabled,
        },
        sync::sync_events::UnreadNotificationsCount,
    },
    events::{
        StateEventType, TimelineEventType,
        room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource},
    },
    push::{PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset},
    serde::Raw,
};
use hearth_store::Direction;
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError, client::sync::SyncRequest, error::Result, rooms::membership_of,
};

/// The account data type holding a user's rules.
const PUSH_RULES: &str = "m.push_rules";

/// How many events back from the newest the notification count looks at most.
const MAX_COUNTED_EVENTS: usize = 1_000;

impl Server {
    /// A user's push rules: stored ones, or the server defaults.
    pub(crate) async fn push_rules(&self, user_id: &UserId) -> Result<Ruleset> {
        if let Some(record) = self.store().account_data(user_id.as_str(), None, PUSH_RULES).await? {
            #[derive(serde::Deserialize)]
            struct Content {
                global: Ruleset,
            }
            if let Ok(content) = serde_json::from_str::<Content>(record.content.get()) {
                return Ok(content.global);
            }
        }
        Ok(Ruleset::server_default(user_id))
    }

    async fn save_push_rules(&self, user_id: &UserId, rules: &Ruleset) -> Result<()> {
        let content = serde_json::value::to_raw_value(&json!({ "global": rules }))
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        self.put_account_data(user_id, None, PUSH_RULES, content).await
    }

    /// Global account data for sync, with the default push rules added to an initial sync when
    /// the user never changed them (clients expect `m.push_rules` there).
    pub(crate) fn with_default_push_rules(
        &self,
        sync: &SyncRequest<'_>,
        mut data: Vec<(String, Value)>,
    ) -> Vec<(String, Value)> {
        if sync.since.is_none() && !data.iter().any(|(event_type, _)| event_type == PUSH_RULES) {
            let rules = Ruleset::server_default(&sync.authed.user_id);
            data.push((PUSH_RULES.to_owned(), json!({ "global": rules })));
        }
        data
    }

    /// Whether `user_id` was joined in the state group `group`.
    pub(crate) async fn joined_before(&self, user_id: &UserId, group: u64) -> Result<bool> {
        let state = self.state_map(group).await?;
        let Some(event_id) = state.get(&(StateEventType::RoomMember, user_id.to_string())) else {
            return Ok(false);
        };
        Ok(self.pdu(event_id).await?.is_some_and(|(pdu, _)| membership_of(&pdu) == "join"))
    }

    /// The room's power levels as push conditions read them (who may notify the whole room).
    async fn push_power_levels(&self, room_id: &RoomId) -> Result<PushConditionPowerLevelsCtx> {
        let version = self.room_version(room_id).await?;
        let content: Option<RoomPowerLevelsEventContent> = self
            .state_event(room_id, &StateEventType::RoomPowerLevels, "")
            .await?
            .and_then(|pdu| serde_json::from_str(pdu.content().get()).ok());
        let creators: Vec<OwnedUserId> = self
            .state_event(room_id, &StateEventType::RoomCreate, "")
            .await?
            .map(|create| create.sender().to_owned())
            .into_iter()
            .collect();
        let levels = RoomPowerLevels::new(
            RoomPowerLevelsSource::from(content),
            &version.rules().authorization,
            creators,
        );
        Ok(levels.into())
    }

    /// The stream position of the user's latest read receipt (public or private) in a room.
    pub(crate) async fn read_up_to(&self, user_id: &UserId, room_id: &RoomId) -> Result<u64> {
        let mut read_up_to = 0;
        for receipt_type in ["m.read", "m.read.private"] {
            for thread in ["", "main"] {
                let Some(receipt) =
                    self.store().receipt(room_id, receipt_type, thread, user_id.as_str()).await?
                else {
                    continue;
                };
                if let Some(event) = self.store().event(receipt.event_id.as_str()).await? {
                    read_up_to = read_up_to.max(event.stream);
                }
            }
        }
        Ok(read_up_to)
    }

    /// What push conditions read about a room for `user_id`: its joined member count, the
    /// user's display name and the room's power levels.
    pub(crate) async fn push_context(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
    ) -> Result<PushConditionRoomCtx> {
        let members = self.joined_member_count(room_id).await?;
        let display_name = self
            .store()
            .user(user_id)
            .await?
            .and_then(|user| user.displayname)
            .unwrap_or_else(|| user_id.localpart().to_owned());
        let mut context = PushConditionRoomCtx::new(
            room_id.to_owned(),
            UInt::new_saturating(members as u64),
            user_id.to_owned(),
            display_name,
        );
        context.power_levels = Some(self.push_power_levels(room_id).await?);
        Ok(context)
    }

    /// A room's unread notification counts for a user: the events after their latest read
    /// receipt (public or private) whose push actions notify, and those that highlight. At most
    /// the newest [`MAX_COUNTED_EVENTS`] events are looked at.
    pub(crate) async fn unread_notifications(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
    ) -> Result<UnreadNotificationsCount> {
        let read_up_to = self.read_up_to(user_id, room_id).await?;
        let now = self.store().current_stream();
        let rules_changed = self
            .store()
            .account_data(user_id.as_str(), None, "m.push_rules")
            .await?
            .map_or(0, |record| record.stream);
        // Counts are kept per user and room and extended with only the events that arrived
        // since the last count; a new receipt or new push rules start the count afresh.
        let key = (user_id.to_owned(), room_id.to_owned());
        let cached = self.caches().unread.get(&key);
        let (mut notify, mut highlight, from) = match cached {
            Some(counted)
                if counted.read_up_to == read_up_to
                    && counted.rules_changed == rules_changed
                    && counted.counted_up_to <= now =>
            {
                (counted.notify, counted.highlight, counted.counted_up_to)
            }
            _ => (0, 0, read_up_to),
        };
        let (new_notify, new_highlight, reached_join) =
            self.count_notifications(user_id, room_id, from, now).await?;
        if reached_join {
            (notify, highlight) = (new_notify, new_highlight);
        } else {
            notify += new_notify;
            highlight += new_highlight;
        }
        self.caches().unread.insert(
            key,
            UnreadCount { read_up_to, rules_changed, counted_up_to: now, notify, highlight },
        );
        let mut counts = UnreadNotificationsCount::new();
        counts.notification_count = Some(UInt::new_saturating(notify));
        counts.highlight_count = Some(UInt::new_saturating(highlight));
        Ok(counts)
    }

    /// Notifying and highlighting events for `user_id` in `(after, up_to]`, newest first, at
    /// most [`MAX_COUNTED_EVENTS`]; and whether the walk stopped at the user's own join
    /// (nothing before it counts).
    async fn count_notifications(
        &self,
        user_id: &UserId,
        room_id: &RoomId,
        after: u64,
        up_to: u64,
    ) -> Result<(u64, u64, bool)> {
        let events = self
            .store()
            .timeline(room_id, after, up_to, Direction::Backward, MAX_COUNTED_EVENTS)
            .await?;
        if events.is_empty() {
            return Ok((0, 0, false));
        }
        let rules = self.push_rules(user_id).await?;
        let context = self.push_context(user_id, room_id).await?;
        let (mut notify, mut highlight) = (0u64, 0u64);
        for (_, event_id) in events {
            let Some((pdu, stored)) = self.pdu(&event_id).await? else { continue };
            if pdu.sender() == user_id {
                // Nothing from before the user joined counts: their join ends the walk (a
                // join over a join is a profile change and does not).
                if pdu.state_key() == Some(user_id.as_str())
                    && *pdu.kind() == TimelineEventType::RoomMember
                    && !self.joined_before(user_id, stored.state_before).await?
                {
                    return Ok((notify, highlight, true));
                }
                continue;
            }
            let event = Raw::<Value>::from_json(stored.pdu);
            let actions = rules.get_actions(&event, &context).await;
            if actions.iter().any(|action| action.should_notify()) {
                notify += 1;
                if actions.iter().any(|action| action.is_highlight()) {
                    highlight += 1;
                }
            }
        }
        Ok((notify, highlight, false))
    }
}

/// A user's unread counts in a room as last computed (see `unread_notifications`).
#[derive(Clone, Debug)]
pub(crate) struct UnreadCount {
    read_up_to: u64,
    rules_changed: u64,
    counted_up_to: u64,
    notify: u64,
    highlight: u64,
}

fn rule_not_found(kind: &RuleKind, rule_id: &str) -> ServerError {
    ServerError::NotFound(format!("no {kind} push rule {rule_id}"))
}

/// `GET /_matrix/client/v3/pushrules/`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrules)).
pub(crate) async fn get_pushrules_all(
    server: Server,
    authed: Authed,
    _request: get_pushrules_all::v3::Request,
) -> Result<get_pushrules_all::v3::Response> {
    Ok(get_pushrules_all::v3::Response::new(server.push_rules(&authed.user_id).await?))
}

/// `GET /_matrix/client/v3/pushrules/global/`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobal)).
pub(crate) async fn get_pushrules_global_scope(
    server: Server,
    authed: Authed,
    _request: get_pushrules_global_scope::v3::Request,
) -> Result<get_pushrules_global_scope::v3::Response> {
    Ok(get_pushrules_global_scope::v3::Response::new(server.push_rules(&authed.user_id).await?))
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobalkindruleid)).
pub(crate) async fn get_pushrule(
    server: Server,
    authed: Authed,
    request: get_pushrule::v3::Request,
) -> Result<get_pushrule::v3::Response> {
    let rules = server.push_rules(&authed.user_id).await?;
    let rule = rules
        .get(request.kind.clone(), &request.rule_id)
        .ok_or_else(|| rule_not_found(&request.kind, &request.rule_id))?;
    Ok(get_pushrule::v3::Response::new(rule.to_owned().into()))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3pushrulesglobalkindruleid)).
pub(crate) async fn set_pushrule(
    server: Server,
    authed: Authed,
    request: set_pushrule::v3::Request,
) -> Result<set_pushrule::v3::Response> {
    let mut rules = server.push_rules(&authed.user_id).await?;
    rules
        .insert(request.rule, request.after.as_deref(), request.before.as_deref())
        .map_err(|error| ServerError::InvalidParam(error.to_string()))?;
    server.save_push_rules(&authed.user_id, &rules).await?;
    Ok(set_pushrule::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3pushrulesglobalkindruleid)).
pub(crate) async fn delete_pushrule(
    server: Server,
    authed: Authed,
    request: delete_pushrule::v3::Request,
) -> Result<delete_pushrule::v3::Response> {
    let mut rules = server.push_rules(&authed.user_id).await?;
    if rules.get(request.kind.clone(), &request.rule_id).is_none() {
        return Err(rule_not_found(&request.kind, &request.rule_id));
    }
    rules
        .remove(request.kind, &request.rule_id)
        .map_err(|error| ServerError::Forbidden(error.to_string()))?;
    server.save_push_rules(&authed.user_id, &rules).await?;
    Ok(delete_pushrule::v3::Response::new())
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobalkindruleidenabled)).
pub(crate) async fn get_pushrule_enabled(
    server: Server,
    authed: Authed,
    request: get_pushrule_enabled::v3::Request,
) -> Result<get_pushrule_enabled::v3::Response> {
    let rules = server.push_rules(&authed.user_id).await?;
    let rule = rules
        .get(request.kind.clone(), &request.rule_id)
        .ok_or_else(|| rule_not_found(&request.kind, &request.rule_id))?;
    Ok(get_pushrule_enabled::v3::Response::new(rule.enabled()))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3pushrulesglobalkindruleidenabled)).
pub(crate) async fn set_pushrule_enabled(
    server: Server,
    authed: Authed,
    request: set_pushrule_enabled::v3::Request,
) -> Result<set_pushrule_enabled::v3::Response> {
    let mut rules = server.push_rules(&authed.user_id).await?;
    rules
        .set_enabled(request.kind.clone(), &request.rule_id, request.enabled)
        .map_err(|_| rule_not_found(&request.kind, &request.rule_id))?;
    server.save_push_rules(&authed.user_id, &rules).await?;
    Ok(set_pushrule_enabled::v3::Response::new())
}

/// `GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3pushrulesglobalkindruleidactions)).
pub(crate) async fn get_pushrule_actions(
    server: Server,
    authed: Authed,
    request: get_pushrule_actions::v3::Request,
) -> Result<get_pushrule_actions::v3::Response> {
    let rules = server.push_rules(&authed.user_id).await?;
    let rule = rules
        .get(request.kind.clone(), &request.rule_id)
        .ok_or_else(|| rule_not_found(&request.kind, &request.rule_id))?;
    Ok(get_pushrule_actions::v3::Response::new(rule.actions().to_vec()))
}

/// `PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3pushrulesglobalkindruleidactions)).
pub(crate) async fn set_pushrule_actions(
    server: Server,
    authed: Authed,
    request: set_pushrule_actions::v3::Request,
) -> Result<set_pushrule_actions::v3::Response> {
    let mut rules = server.push_rules(&authed.user_id).await?;
    rules
        .set_actions(request.kind.clone(), &request.rule_id, request.actions)
        .map_err(|_| rule_not_found(&request.kind, &request.rule_id))?;
    server.save_push_rules(&authed.user_id, &rules).await?;
    Ok(set_pushrule_actions::v3::Response::new())
}
