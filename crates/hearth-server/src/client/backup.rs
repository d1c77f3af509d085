//! Server-side room key backups
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#server-side-key-backups)).

use std::collections::BTreeMap;

use hearth_core::ruma::{
    UInt,
    api::client::backup::{
        RoomKeyBackup, add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session,
        create_backup_version, delete_backup_keys, delete_backup_keys_for_room,
        delete_backup_keys_for_session, delete_backup_version, get_backup_info, get_backup_keys,
        get_backup_keys_for_room, get_backup_keys_for_session, get_latest_backup_info,
        update_backup_version,
    },
    serde::Raw,
};
use hearth_store::BackupVersionRecord;
use serde_json::{Value, json};

use crate::{Authed, Server, ServerError, error::Result, events::to_raw};

fn not_found() -> ServerError {
    ServerError::NotFound("unknown backup version".into())
}

fn parse_version(version: &str) -> Result<u64> {
    version.parse().map_err(|_| not_found())
}

fn algorithm_parts<T>(raw: &Raw<T>) -> Result<(String, Value)> {
    let value: Value = serde_json::from_str(raw.json().get())
        .map_err(|error| ServerError::BadJson(error.to_string()))?;
    let algorithm = value["algorithm"]
        .as_str()
        .ok_or_else(|| ServerError::BadJson("missing algorithm".into()))?
        .to_owned();
    Ok((algorithm, value["auth_data"].clone()))
}

fn count(n: usize) -> UInt {
    UInt::try_from(n).unwrap_or(UInt::MAX)
}

/// Whether `new` should replace `old` (spec: verified beats unverified, then lower first
/// message index, then lower forwarded count).
fn better(new: &Value, old: &Value) -> bool {
    let verified = |v: &Value| v["is_verified"].as_bool().unwrap_or(false);
    let index = |v: &Value| v["first_message_index"].as_u64().unwrap_or(u64::MAX);
    let forwarded = |v: &Value| v["forwarded_count"].as_u64().unwrap_or(u64::MAX);
    if verified(new) != verified(old) {
        return verified(new);
    }
    if index(new) != index(old) {
        return index(new) < index(old);
    }
    forwarded(new) < forwarded(old)
}

impl Server {
    async fn latest_backup(&self, user: &str) -> Result<Option<(u64, BackupVersionRecord)>> {
        let versions = self.store().backup_versions(user).await?;
        Ok(versions.into_iter().rev().find(|(_, record)| !record.deleted))
    }

    /// A version that exists and is not deleted.
    async fn live_backup(&self, user: &str, version: &str) -> Result<(u64, BackupVersionRecord)> {
        let version = parse_version(version)?;
        match self.store().backup_version(user, version).await? {
            Some(record) if !record.deleted => Ok((version, record)),
            _ => Err(not_found()),
        }
    }

    /// The version that keys may be written to: it must be the current one.
    async fn current_backup(
        &self,
        user: &str,
        version: &str,
    ) -> Result<(u64, BackupVersionRecord)> {
        let latest = self.latest_backup(user).await?;
        match latest {
            Some((current, record)) if version.parse() == Ok(current) => Ok((current, record)),
            Some((current, _)) => Err(ServerError::WrongRoomKeysVersion {
                current_version: Some(current.to_string()),
            }),
            None => Err(not_found()),
        }
    }

    async fn backup_count(&self, user: &str, version: u64) -> Result<UInt> {
        Ok(count(self.store().backup_keys(user, version, None, None).await?.len()))
    }

    /// Stores keys (`(room, session, data)`) in the current version; returns etag and count.
    async fn put_backup_keys(
        &self,
        user: &str,
        version: &str,
        keys: Vec<(String, String, Value)>,
    ) -> Result<(String, UInt)> {
        let _guard = self.write_lock().await;
        let (version, mut record) = self.current_backup(user, version).await?;
        let mut txn = self.store().transaction();
        let mut changed = false;
        for (room, session, data) in keys {
            let old = self.store().backup_keys(user, version, Some(&room), Some(&session)).await?;
            if old.first().is_none_or(|(_, _, old)| better(&data, old)) {
                txn.put_backup_key(user, version, &room, &session, &data)?;
                changed = true;
            }
        }
        if changed {
            record.etag += 1;
            txn.put_backup_version(user, version, &record)?;
            self.store().commit(txn).await?;
        }
        Ok((record.etag.to_string(), self.backup_count(user, version).await?))
    }

    /// Deletes keys of a version (all, of a room, or one session); returns etag and count.
    async fn delete_backup_keys(
        &self,
        user: &str,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<(String, UInt)> {
        let _guard = self.write_lock().await;
        let (version, mut record) = self.live_backup(user, version).await?;
        let keys = self.store().backup_keys(user, version, room, session).await?;
        if !keys.is_empty() {
            let mut txn = self.store().transaction();
            for (room, session, _) in keys {
                txn.delete_backup_key(user, version, &room, &session);
            }
            record.etag += 1;
            txn.put_backup_version(user, version, &record)?;
            self.store().commit(txn).await?;
        }
        Ok((record.etag.to_string(), self.backup_count(user, version).await?))
    }

    async fn backup_info(
        &self,
        user: &str,
        version: u64,
        record: BackupVersionRecord,
    ) -> Result<(Raw<hearth_core::ruma::api::client::backup::BackupAlgorithm>, UInt, String)> {
        let algorithm =
            to_raw(&json!({ "algorithm": record.algorithm, "auth_data": record.auth_data }))?;
        Ok((algorithm, self.backup_count(user, version).await?, record.etag.to_string()))
    }
}

/// `POST /_matrix/client/v3/room_keys/version`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3room_keysversion)).
pub(crate) async fn create_backup_version(
    server: Server,
    authed: Authed,
    request: create_backup_version::v3::Request,
) -> Result<create_backup_version::v3::Response> {
    let user = authed.user_id.as_str();
    let (algorithm, auth_data) = algorithm_parts(&request.algorithm)?;
    let _guard = server.write_lock().await;
    // Deleted versions count too: a version number is never reused.
    let versions = server.store().backup_versions(user).await?;
    let version = versions.last().map_or(1, |(version, _)| version + 1);
    let record = BackupVersionRecord { algorithm, auth_data, etag: 0, deleted: false };
    let mut txn = server.store().transaction();
    txn.put_backup_version(user, version, &record)?;
    server.store().commit(txn).await?;
    Ok(create_backup_version::v3::Response::new(version.to_string()))
}

/// `PUT /_matrix/client/v3/room_keys/version/{version}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keysversionversion)):
/// only the auth data may change.
pub(crate) async fn update_backup_version(
    server: Server,
    authed: Authed,
    request: update_backup_version::v3::Request,
) -> Result<update_backup_version::v3::Response> {
    let user = authed.user_id.as_str();
    let (algorithm, auth_data) = algorithm_parts(&request.algorithm)?;
    let _guard = server.write_lock().await;
    let (version, mut record) = server.live_backup(user, &request.version).await?;
    if record.algorithm != algorithm {
        return Err(ServerError::InvalidParam("the algorithm of a backup cannot change".into()));
    }
    record.auth_data = auth_data;
    let mut txn = server.store().transaction();
    txn.put_backup_version(user, version, &record)?;
    server.store().commit(txn).await?;
    Ok(update_backup_version::v3::Response::new())
}

/// `GET /_matrix/client/v3/room_keys/version`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keysversion)).
pub(crate) async fn get_latest_backup_info(
    server: Server,
    authed: Authed,
    _request: get_latest_backup_info::v3::Request,
) -> Result<get_latest_backup_info::v3::Response> {
    let user = authed.user_id.as_str();
    let (version, record) = server.latest_backup(user).await?.ok_or_else(not_found)?;
    let (algorithm, count, etag) = server.backup_info(user, version, record).await?;
    Ok(get_latest_backup_info::v3::Response::new(algorithm, count, etag, version.to_string()))
}

/// `GET /_matrix/client/v3/room_keys/version/{version}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keysversionversion)).
pub(crate) async fn get_backup_info(
    server: Server,
    authed: Authed,
    request: get_backup_info::v3::Request,
) -> Result<get_backup_info::v3::Response> {
    let user = authed.user_id.as_str();
    let (version, record) = server.live_backup(user, &request.version).await?;
    let (algorithm, count, etag) = server.backup_info(user, version, record).await?;
    Ok(get_backup_info::v3::Response::new(algorithm, count, etag, version.to_string()))
}

/// `DELETE /_matrix/client/v3/room_keys/version/{version}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3room_keysversionversion)):
/// the version and all its keys.
pub(crate) async fn delete_backup_version(
    server: Server,
    authed: Authed,
    request: delete_backup_version::v3::Request,
) -> Result<delete_backup_version::v3::Response> {
    let user = authed.user_id.as_str();
    let _guard = server.write_lock().await;
    let (version, mut record) = server.live_backup(user, &request.version).await?;
    let mut txn = server.store().transaction();
    for (room, session, _) in server.store().backup_keys(user, version, None, None).await? {
        txn.delete_backup_key(user, version, &room, &session);
    }
    record.deleted = true;
    txn.put_backup_version(user, version, &record)?;
    server.store().commit(txn).await?;
    Ok(delete_backup_version::v3::Response::new())
}

fn session_values(
    room: &str,
    sessions: &BTreeMap<String, Raw<hearth_core::ruma::api::client::backup::KeyBackupData>>,
) -> Result<Vec<(String, String, Value)>> {
    sessions
        .iter()
        .map(|(session, data)| {
            let data: Value = serde_json::from_str(data.json().get())
                .map_err(|error| ServerError::BadJson(error.to_string()))?;
            Ok((room.to_owned(), session.clone(), data))
        })
        .collect()
}

/// `PUT /_matrix/client/v3/room_keys/keys`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keyskeys)).
pub(crate) async fn add_backup_keys(
    server: Server,
    authed: Authed,
    request: add_backup_keys::v3::Request,
) -> Result<add_backup_keys::v3::Response> {
    let mut keys = Vec::new();
    for (room, backup) in &request.rooms {
        keys.extend(session_values(room.as_str(), &backup.sessions)?);
    }
    let (etag, count) =
        server.put_backup_keys(authed.user_id.as_str(), &request.version, keys).await?;
    Ok(add_backup_keys::v3::Response::new(etag, count))
}

/// `PUT /_matrix/client/v3/room_keys/keys/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keyskeysroomid)).
pub(crate) async fn add_backup_keys_for_room(
    server: Server,
    authed: Authed,
    request: add_backup_keys_for_room::v3::Request,
) -> Result<add_backup_keys_for_room::v3::Response> {
    let keys = session_values(request.room_id.as_str(), &request.sessions)?;
    let (etag, count) =
        server.put_backup_keys(authed.user_id.as_str(), &request.version, keys).await?;
    Ok(add_backup_keys_for_room::v3::Response::new(etag, count))
}

/// `PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3room_keyskeysroomidsessionid)).
pub(crate) async fn add_backup_keys_for_session(
    server: Server,
    authed: Authed,
    request: add_backup_keys_for_session::v3::Request,
) -> Result<add_backup_keys_for_session::v3::Response> {
    let sessions = BTreeMap::from([(request.session_id.clone(), request.session_data.clone())]);
    let keys = session_values(request.room_id.as_str(), &sessions)?;
    let (etag, count) =
        server.put_backup_keys(authed.user_id.as_str(), &request.version, keys).await?;
    Ok(add_backup_keys_for_session::v3::Response::new(etag, count))
}

async fn stored_keys(
    server: &Server,
    authed: &Authed,
    version: &str,
    room: Option<&str>,
    session: Option<&str>,
) -> Result<Vec<(String, String, Value)>> {
    let user = authed.user_id.as_str();
    let (version, _) = server.live_backup(user, version).await?;
    Ok(server.store().backup_keys(user, version, room, session).await?)
}

/// `GET /_matrix/client/v3/room_keys/keys`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keyskeys)).
pub(crate) async fn get_backup_keys(
    server: Server,
    authed: Authed,
    request: get_backup_keys::v3::Request,
) -> Result<get_backup_keys::v3::Response> {
    let mut rooms: BTreeMap<String, BTreeMap<String, Raw<_>>> = BTreeMap::new();
    for (room, session, data) in stored_keys(&server, &authed, &request.version, None, None).await?
    {
        rooms.entry(room).or_default().insert(session, to_raw(&data)?);
    }
    let mut response = BTreeMap::new();
    for (room, sessions) in rooms {
        let room = room.try_into().map_err(|_| ServerError::Internal("stored room ID".into()))?;
        response.insert(room, RoomKeyBackup::new(sessions));
    }
    Ok(get_backup_keys::v3::Response::new(response))
}

/// `GET /_matrix/client/v3/room_keys/keys/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keyskeysroomid)).
pub(crate) async fn get_backup_keys_for_room(
    server: Server,
    authed: Authed,
    request: get_backup_keys_for_room::v3::Request,
) -> Result<get_backup_keys_for_room::v3::Response> {
    let mut sessions = BTreeMap::new();
    let keys =
        stored_keys(&server, &authed, &request.version, Some(request.room_id.as_str()), None)
            .await?;
    for (_, session, data) in keys {
        sessions.insert(session, to_raw(&data)?);
    }
    Ok(get_backup_keys_for_room::v3::Response::new(sessions))
}

/// `GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3room_keyskeysroomidsessionid)).
pub(crate) async fn get_backup_keys_for_session(
    server: Server,
    authed: Authed,
    request: get_backup_keys_for_session::v3::Request,
) -> Result<get_backup_keys_for_session::v3::Response> {
    let keys = stored_keys(
        &server,
        &authed,
        &request.version,
        Some(request.room_id.as_str()),
        Some(&request.session_id),
    )
    .await?;
    let (_, _, data) = keys
        .into_iter()
        .next()
        .ok_or_else(|| ServerError::NotFound("no such backed-up session".into()))?;
    Ok(get_backup_keys_for_session::v3::Response::new(to_raw(&data)?))
}

/// `DELETE /_matrix/client/v3/room_keys/keys`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3room_keyskeys)).
pub(crate) async fn delete_backup_keys(
    server: Server,
    authed: Authed,
    request: delete_backup_keys::v3::Request,
) -> Result<delete_backup_keys::v3::Response> {
    let (etag, count) =
        server.delete_backup_keys(authed.user_id.as_str(), &request.version, None, None).await?;
    Ok(delete_backup_keys::v3::Response::new(etag, count))
}

/// `DELETE /_matrix/client/v3/room_keys/keys/{roomId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3room_keyskeysroomid)).
pub(crate) async fn delete_backup_keys_for_room(
    server: Server,
    authed: Authed,
    request: delete_backup_keys_for_room::v3::Request,
) -> Result<delete_backup_keys_for_room::v3::Response> {
    let (etag, count) = server
        .delete_backup_keys(
            authed.user_id.as_str(),
            &request.version,
            Some(request.room_id.as_str()),
            None,
        )
        .await?;
    Ok(delete_backup_keys_for_room::v3::Response::new(etag, count))
}

/// `DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#delete_matrixclientv3room_keyskeysroomidsessionid)).
pub(crate) async fn delete_backup_keys_for_session(
    server: Server,
    authed: Authed,
    request: delete_backup_keys_for_session::v3::Request,
) -> Result<delete_backup_keys_for_session::v3::Response> {
    let (etag, count) = server
        .delete_backup_keys(
            authed.user_id.as_str(),
            &request.version,
            Some(request.room_id.as_str()),
            Some(&request.session_id),
        )
        .await?;
    Ok(delete_backup_keys_for_session::v3::Response::new(etag, count))
}
