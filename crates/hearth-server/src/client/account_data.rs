//! Account data (global and per room), room tags and filters.

use hearth_core::ruma::{
    RoomId, UserId,
    api::client::{
        config::{
            get_global_account_data, get_room_account_data, set_global_account_data,
            set_room_account_data,
        },
        filter::{create_filter, get_filter},
        tag::{create_tag, delete_tag, get_tags},
    },
    serde::Raw,
};
use serde_json::{Map, Value, json, value::RawValue};

use crate::{
    Authed, Server, ServerError, client::sync::SyncRequest, error::Result, events::to_raw,
};

fn own(authed: &Authed, user_id: &UserId) -> Result<()> {
    if authed.user_id != user_id {
        return Err(ServerError::Forbidden("you can only access your own account data".into()));
    }
    Ok(())
}

fn raw_content(value: &Value) -> Result<Box<RawValue>> {
    serde_json::value::to_raw_value(value).map_err(|error| ServerError::Internal(error.to_string()))
}

impl Server {
    /// Stores account data and wakes the user's syncs.
    pub(crate) async fn put_account_data(
        &self,
        user_id: &UserId,
        room_id: Option<&RoomId>,
        event_type: &str,
        content: Box<RawValue>,
    ) -> Result<()> {
        let _guard = self.write_lock().await;
        let mut txn = self.store().transaction();
        txn.put_account_data(user_id.as_str(), room_id.map(RoomId::as_str), event_type, content)?;
        self.store().commit(txn).await?;
        self.notifier().notify();
        Ok(())
    }

    pub(crate) async fn sync_global_account_data(
        &self,
        sync: &SyncRequest<'_>,
        response: &mut hearth_core::ruma::api::client::sync::sync_events::v3::Response,
    ) -> Result<()> {
        let data = self.with_default_push_rules(sync, self.account_data_since(sync, None).await?);
        for (event_type, content) in data {
            response
                .account_data
                .events
                .push(to_raw(&json!({ "type": event_type, "content": content }))?);
        }
        Ok(())
    }

    pub(crate) async fn sync_room_account_data<T>(
        &self,
        sync: &SyncRequest<'_>,
        room_id: &RoomId,
    ) -> Result<Vec<Raw<T>>> {
        let mut events = Vec::new();
        for (event_type, content) in self.account_data_since(sync, Some(room_id)).await? {
            events.push(to_raw(&json!({ "type": event_type, "content": content }))?);
        }
        Ok(events)
    }

    /// `(type, content)` of the account data to send: all of it initially, what changed since.
    async fn account_data_since(
        &self,
        sync: &SyncRequest<'_>,
        room_id: Option<&RoomId>,
    ) -> Result<Vec<(String, Value)>> {
        let user_id = sync.authed.user_id.as_str();
        let room = room_id.map(RoomId::as_str);
        let mut types: Vec<String> = Vec::new();
        match sync.since {
            None => {
                for (record_room, event_type, _) in self.store().all_account_data(user_id).await? {
                    if record_room.as_deref() == room {
                        types.push(event_type);
                    }
                }
            }
            Some(since) => {
                for (_, change) in self
                    .store()
                    .account_data_changes(user_id, since.stream, sync.now.stream)
                    .await?
                {
                    if change.room_id.as_deref().map(|id| id.as_str()) == room
                        && !types.contains(&change.event_type)
                    {
                        types.push(change.event_type);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for event_type in types {
            if let Some(record) = self.store().account_data(user_id, room, &event_type).await? {
                let content: Value = serde_json::from_str(record.content.get()).unwrap_or_default();
                out.push((event_type, content));
            }
        }
        Ok(out)
    }
}

/// `PUT /_matrix/client/v3/user/{userId}/account_data/{type}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3useruseridaccount_datatype)).
pub(crate) async fn set_global_account_data(
    server: Server,
    authed: Authed,
    request: set_global_account_data::v3::Request,
) -> Result<set_global_account_data::v3::Response> {
    own(&authed, &request.user_id)?;
    let event_type = request.event_type.to_string();
    if matches!(event_type.as_str(), "m.fully_read" | "m.push_rules") {
        return Err(ServerError::BadJson(format!(
            "{event_type} cannot be set through account data"
        )));
    }
    server.put_account_data(&request.user_id, None, &event_type, request.data.into_json()).await?;
    Ok(set_global_account_data::v3::Response::new())
}

/// `GET /_matrix/client/v3/user/{userId}/account_data/{type}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridaccount_datatype)).
pub(crate) async fn get_global_account_data(
    server: Server,
    authed: Authed,
    request: get_global_account_data::v3::Request,
) -> Result<get_global_account_data::v3::Response> {
    own(&authed, &request.user_id)?;
    let event_type = request.event_type.to_string();
    let record = server
        .store()
        .account_data(request.user_id.as_str(), None, &event_type)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no account data of type {event_type}")))?;
    Ok(get_global_account_data::v3::Response::new(Raw::from_json(record.content)))
}

/// `PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3useruseridroomsroomidaccount_datatype)).
pub(crate) async fn set_room_account_data(
    server: Server,
    authed: Authed,
    request: set_room_account_data::v3::Request,
) -> Result<set_room_account_data::v3::Response> {
    own(&authed, &request.user_id)?;
    let event_type = request.event_type.to_string();
    if matches!(event_type.as_str(), "m.fully_read" | "m.push_rules") {
        return Err(ServerError::BadJson(format!(
            "{event_type} cannot be set through account data"
        )));
    }
    server
        .put_account_data(
            &request.user_id,
            Some(&request.room_id),
            &event_type,
            request.data.into_json(),
        )
        .await?;
    Ok(set_room_account_data::v3::Response::new())
}

/// `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridroomsroomidaccount_datatype)).
pub(crate) async fn get_room_account_data(
    server: Server,
    authed: Authed,
    request: get_room_account_data::v3::Request,
) -> Result<get_room_account_data::v3::Response> {
    own(&authed, &request.user_id)?;
    let event_type = request.event_type.to_string();
    let record = server
        .store()
        .account_data(request.user_id.as_str(), Some(request.room_id.as_str()), &event_type)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no account data of type {event_type}")))?;
    Ok(get_room_account_data::v3::Response::new(Raw::from_json(record.content)))
}

async fn tags(server: &Server, user_id: &UserId, room_id: &RoomId) -> Result<Map<String, Value>> {
    let record =
        server.store().account_data(user_id.as_str(), Some(room_id.as_str()), "m.tag").await?;
    Ok(record
        .and_then(|record| serde_json::from_str::<Value>(record.content.get()).ok())
        .and_then(|content| content.get("tags").and_then(Value::as_object).cloned())
        .unwrap_or_default())
}

/// `GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridroomsroomidtags)).
pub(crate) async fn get_tags(
    server: Server,
    authed: Authed,
    request: get_tags::v3::Request,
) -> Result<get_tags::v3::Response> {
    own(&authed, &request.user_id)?;
    let tags = tags(&server, &request.user_id, &request.room_id).await?;
    let tags = serde_json::from_value(Value::Object(tags))
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(get_tags::v3::Response::new(tags))
}

/// `PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3useruseridroomsroomidtagstag)).
pub(crate) async fn create_tag(
    server: Server,
    authed: Authed,
    request: create_tag::v3::Request,
) -> Result<create_tag::v3::Response> {
    own(&authed, &request.user_id)?;
    let mut tags = tags(&server, &request.user_id, &request.room_id).await?;
    let info = serde_json::to_value(&request.tag_info)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    tags.insert(request.tag.clone(), info);
    let content = raw_content(&json!({ "tags": tags }))?;
    server.put_account_data(&request.user_id, Some(&request.room_id), "m.tag", content).await?;
    Ok(create_tag::v3::Response::new())
}

/// `DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3useruseridroomsroomidtagstag)).
pub(crate) async fn delete_tag(
    server: Server,
    authed: Authed,
    request: delete_tag::v3::Request,
) -> Result<delete_tag::v3::Response> {
    own(&authed, &request.user_id)?;
    let mut tags = tags(&server, &request.user_id, &request.room_id).await?;
    tags.remove(&request.tag);
    let content = raw_content(&json!({ "tags": tags }))?;
    server.put_account_data(&request.user_id, Some(&request.room_id), "m.tag", content).await?;
    Ok(delete_tag::v3::Response::new())
}

/// `POST /_matrix/client/v3/user/{userId}/filter`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3useruseridfilter)).
pub(crate) async fn create_filter(
    server: Server,
    authed: Authed,
    request: create_filter::v3::Request,
) -> Result<create_filter::v3::Response> {
    own(&authed, &request.user_id)?;
    let json = serde_json::value::to_raw_value(&request.filter)
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    // Filters are immutable, so one with the same definition can share an ID: its hash.
    let filter_id = crate::auth::content_id(json.get().as_bytes());
    let mut txn = server.store().transaction();
    txn.put_filter(request.user_id.as_str(), &filter_id, &json)?;
    server.store().commit(txn).await?;
    Ok(create_filter::v3::Response::new(filter_id))
}

/// `GET /_matrix/client/v3/user/{userId}/filter/{filterId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3useruseridfilterfilterid)).
pub(crate) async fn get_filter(
    server: Server,
    authed: Authed,
    request: get_filter::v3::Request,
) -> Result<get_filter::v3::Response> {
    own(&authed, &request.user_id)?;
    let raw = server
        .store()
        .filter(request.user_id.as_str(), &request.filter_id)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no filter {}", request.filter_id)))?;
    let filter = serde_json::from_str(raw.get())
        .map_err(|error| ServerError::Internal(error.to_string()))?;
    Ok(get_filter::v3::Response::new(filter))
}
