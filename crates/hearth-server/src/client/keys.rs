//! End-to-end encryption keys: upload, query, claim, changes, cross-signing and signatures
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#end-to-end-encryption)), and the
//! end-to-end parts of sync.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use hearth_core::ruma::{
    OneTimeKeyAlgorithm, OwnedDeviceId, OwnedOneTimeKeyId, OwnedRoomId, OwnedServerName,
    OwnedUserId, UInt, UserId,
    api::{
        client::{
            keys::{
                claim_keys, get_key_changes, get_keys, upload_keys, upload_signatures,
                upload_signing_keys,
            },
            sync::sync_events,
        },
        federation::keys as federation_keys,
    },
    encryption::{CrossSigningKey, DeviceKeys, OneTimeKey},
    serde::Raw,
};
use hearth_store::{FallbackKeyRecord, MembershipRecord, Txn};
use serde_json::{Value, json};

use crate::{
    Authed, Server, ServerError, client::message::parse_token, client::sync::SyncRequest,
    error::Result, events::to_raw,
};

fn to_value<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get()).map_err(|error| ServerError::BadJson(error.to_string()))
}

/// Merges the `signatures` of `new` into `stored`.
fn merge_signatures(stored: &mut Value, new: &Value) {
    let Some(new) = new.get("signatures").and_then(Value::as_object) else { return };
    let signatures = &mut stored["signatures"];
    if !signatures.is_object() {
        *signatures = Value::Object(Default::default());
    }
    for (signer, keys) in new {
        let Some(keys) = keys.as_object() else { continue };
        let entry = &mut signatures[signer];
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        for (key_id, signature) in keys {
            entry[key_id] = signature.clone();
        }
    }
}

impl Server {
    /// Removes a device's end-to-end keys with the device.
    pub(crate) async fn delete_device_keys(
        &self,
        txn: &mut Txn,
        user_id: &OwnedUserId,
        device_id: &str,
    ) -> Result<()> {
        let user = user_id.as_str();
        txn.delete_device_keys(user, device_id);
        for (algorithm, key_id, _) in self.store().one_time_keys(user, device_id).await? {
            txn.delete_one_time_key(user, device_id, &algorithm, &key_id);
        }
        for (algorithm, _) in self.store().fallback_keys(user, device_id).await? {
            txn.delete_fallback_key(user, device_id, &algorithm);
        }
        let messages =
            self.store().to_device_messages(user, device_id, 0, u64::MAX, usize::MAX).await?;
        for (stream, _) in messages {
            txn.delete_to_device(user, device_id, stream);
        }
        self.key_changed(txn, user_id, device_id, true).await
    }

    async fn one_time_key_counts(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<BTreeMap<OneTimeKeyAlgorithm, UInt>> {
        let mut counts = BTreeMap::new();
        counts.insert(OneTimeKeyAlgorithm::SignedCurve25519, UInt::MIN);
        for (algorithm, _, _) in self.store().one_time_keys(user_id, device_id).await? {
            let count = counts.entry(OneTimeKeyAlgorithm::from(algorithm.as_str())).or_default();
            *count = count.saturating_add(UInt::from(1u32));
        }
        Ok(counts)
    }

    /// The end-to-end parts of a sync response.
    pub(crate) async fn sync_e2ee(
        &self,
        sync: &SyncRequest<'_>,
        memberships: &[(OwnedRoomId, MembershipRecord)],
        response: &mut sync_events::v3::Response,
    ) -> Result<()> {
        let user = sync.authed.user_id.as_str();
        let device = sync.authed.device_id.as_str();
        let since = sync.since.map_or(0, |since| since.stream);
        // Everything up to `now` is delivered at once: the next token acknowledges it all.

        // The client has seen everything up to `since`: forget it.
        if since > 0 {
            let acknowledged =
                self.store().to_device_messages(user, device, 0, since, usize::MAX).await?;
            if !acknowledged.is_empty() {
                let _guard = self.write_lock().await;
                let mut txn = self.store().transaction();
                for (stream, _) in acknowledged {
                    txn.delete_to_device(user, device, stream);
                }
                self.store().commit(txn).await?;
            }
        }
        let messages = self
            .store()
            .to_device_messages(user, device, since, sync.now.stream, usize::MAX)
            .await?;
        for (_, message) in messages {
            response.to_device.events.push(to_raw(&serde_json::json!({
                "sender": message.sender,
                "type": message.event_type,
                "content": message.content,
            }))?);
        }

        if let Some(since) = sync.since {
            let changed: BTreeSet<String> = self
                .store()
                .key_changes(since.stream, sync.now.stream)
                .await?
                .into_iter()
                .map(|(_, user)| user)
                .collect();
            if !changed.is_empty() {
                let interesting =
                    self.users_sharing_rooms(&sync.authed.user_id, memberships).await?;
                for user_id in interesting {
                    if changed.contains(user_id.as_str()) {
                        response.device_lists.changed.push(user_id);
                    }
                }
            }
        }

        response.device_one_time_keys_count = self.one_time_key_counts(user, device).await?;
        let unused = self
            .store()
            .fallback_keys(user, device)
            .await?
            .into_iter()
            .filter(|(_, key)| !key.used)
            .map(|(algorithm, _)| OneTimeKeyAlgorithm::from(algorithm.as_str()))
            .collect();
        response.device_unused_fallback_key_types = Some(unused);
        Ok(())
    }

    /// The user and everyone joined to a room the user is joined to.
    async fn users_sharing_rooms(
        &self,
        user_id: &OwnedUserId,
        memberships: &[(OwnedRoomId, MembershipRecord)],
    ) -> Result<BTreeSet<OwnedUserId>> {
        let mut users = BTreeSet::from([user_id.clone()]);
        for (room_id, membership) in memberships {
            if membership.membership != "join" {
                continue;
            }
            for (member, state) in self.store().room_members(room_id).await? {
                if state == "join" {
                    users.insert(member);
                }
            }
        }
        Ok(users)
    }

    pub(crate) fn is_local(&self, user_id: &UserId) -> bool {
        user_id.server_name() == self.server_name()
    }
}

/// `POST /_matrix/client/v3/keys/upload`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysupload)).
pub(crate) async fn upload_keys(
    server: Server,
    authed: Authed,
    request: upload_keys::v3::Request,
) -> Result<upload_keys::v3::Response> {
    let user = authed.user_id.as_str();
    let device = authed.device_id.as_str();
    {
        let _guard = server.write_lock().await;
        let mut txn = server.store().transaction();
        if let Some(keys) = &request.device_keys {
            let keys = to_value(keys)?;
            if keys["user_id"] != user || keys["device_id"] != device {
                return Err(ServerError::InvalidParam(
                    "device keys are for another user or device".into(),
                ));
            }
            if server.store().device_keys(user, device).await?.as_ref() != Some(&keys) {
                txn.put_device_keys(user, device, &keys)?;
                server.key_changed(&mut txn, &authed.user_id, device, false).await?;
            }
        }
        for (key_id, key) in &request.one_time_keys {
            txn.put_one_time_key(
                user,
                device,
                key_id.algorithm().as_str(),
                key_id.key_name().as_str(),
                &to_value(key)?,
            )?;
        }
        for (key_id, key) in &request.fallback_keys {
            let record = FallbackKeyRecord {
                key_id: key_id.key_name().as_str().to_owned(),
                key: to_value(key)?,
                used: false,
            };
            txn.put_fallback_key(user, device, key_id.algorithm().as_str(), &record)?;
        }
        if !txn.is_empty() {
            server.commit(txn).await?;
            server.notifier().notify();
        }
    }
    Ok(upload_keys::v3::Response::new(server.one_time_key_counts(user, device).await?))
}

/// `POST /_matrix/client/v3/keys/query`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysquery)):
/// local users from the store, other servers' users from their servers
/// (`POST /_matrix/federation/v1/user/keys/query`, all servers at once); a server that does
/// not answer is listed in `failures`.
pub(crate) async fn get_keys(
    server: Server,
    authed: Authed,
    request: get_keys::v3::Request,
) -> Result<get_keys::v3::Response> {
    let keys = server.query_local_keys(&request.device_keys, Some(&authed.user_id)).await?;
    let mut response = get_keys::v3::Response::new();
    response.device_keys = keys.device_keys;
    response.master_keys = keys.master_keys;
    response.self_signing_keys = keys.self_signing_keys;
    response.user_signing_keys = keys.user_signing_keys;

    let remote = by_server(&server, request.device_keys);
    let answers = join_all(remote.into_iter().map(|(destination, wanted)| {
        let server = server.clone();
        async move {
            let request = federation_keys::get_keys::v1::Request::new(wanted);
            (destination.clone(), server.federation_request(&destination, request).await)
        }
    }))
    .await;
    for (destination, answer) in answers {
        match answer {
            Ok(answer) => {
                // A server speaks only for its own users.
                let own = |user_id: &OwnedUserId| user_id.server_name() == destination;
                response.device_keys.extend(answer.device_keys.into_iter().filter(|(u, _)| own(u)));
                response.master_keys.extend(answer.master_keys.into_iter().filter(|(u, _)| own(u)));
                response
                    .self_signing_keys
                    .extend(answer.self_signing_keys.into_iter().filter(|(u, _)| own(u)));
            }
            Err(error) => {
                response
                    .failures
                    .insert(destination.to_string(), json!({ "error": error.to_string() }));
            }
        }
    }
    add_remote_key_signatures(&server, &authed.user_id, &mut response.master_keys).await?;
    Ok(response)
}

/// Adds the signatures `signer` made on other servers' users' master keys (kept by
/// `upload_signatures`) to those keys, where the key is still the one signed.
async fn add_remote_key_signatures(
    server: &Server,
    signer: &OwnedUserId,
    master_keys: &mut BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
) -> Result<()> {
    let Some(record) =
        server.store().account_data(signer.as_str(), None, REMOTE_KEY_SIGNATURES).await?
    else {
        return Ok(());
    };
    let Ok(kept) = serde_json::from_str::<Value>(record.content.get()) else { return Ok(()) };
    for (user_id, key) in master_keys.iter_mut() {
        if server.is_local(user_id) {
            continue;
        }
        let Some(signed) = kept.get(user_id.as_str()).and_then(Value::as_object) else { continue };
        let Ok(mut value) = serde_json::from_str::<Value>(key.json().get()) else { continue };
        let public_keys: Vec<String> = value["keys"]
            .as_object()
            .map(|keys| keys.values().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let mut changed = false;
        for (key_id, signatures) in signed {
            if public_keys.iter().any(|public| public == key_id) {
                merge_signatures(&mut value, signatures);
                changed = true;
            }
        }
        if changed {
            *key = Raw::from_json(
                serde_json::value::to_raw_value(&value)
                    .map_err(|error| ServerError::Internal(error.to_string()))?,
            );
        }
    }
    Ok(())
}

/// `POST /_matrix/client/v3/keys/claim`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysclaim)):
/// one one-time key per device, or its fallback key when none is left; other servers' users'
/// keys are claimed from their servers (`POST /_matrix/federation/v1/user/keys/claim`).
pub(crate) async fn claim_keys(
    server: Server,
    _authed: Authed,
    request: claim_keys::v3::Request,
) -> Result<claim_keys::v3::Response> {
    let mut response =
        claim_keys::v3::Response::new(server.claim_local_keys(&request.one_time_keys).await?);
    let remote = by_server(&server, request.one_time_keys);
    let answers = join_all(remote.into_iter().map(|(destination, wanted)| {
        let server = server.clone();
        async move {
            let request = federation_keys::claim_keys::v1::Request::new(wanted);
            (destination.clone(), server.federation_request(&destination, request).await)
        }
    }))
    .await;
    for (destination, answer) in answers {
        match answer {
            Ok(answer) => response.one_time_keys.extend(
                answer
                    .one_time_keys
                    .into_iter()
                    .filter(|(user, _)| user.server_name() == destination),
            ),
            Err(error) => {
                response
                    .failures
                    .insert(destination.to_string(), json!({ "error": error.to_string() }));
            }
        }
    }
    Ok(response)
}

/// The entries of a per-user request that are about other servers' users, by server.
fn by_server<T>(
    server: &Server,
    wanted: BTreeMap<OwnedUserId, T>,
) -> BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, T>> {
    let mut remote: BTreeMap<OwnedServerName, BTreeMap<OwnedUserId, T>> = BTreeMap::new();
    for (user_id, value) in wanted {
        if !server.is_local(&user_id) {
            remote.entry(user_id.server_name().to_owned()).or_default().insert(user_id, value);
        }
    }
    remote
}

/// Device and cross-signing keys of local users, as a key query answers them.
#[derive(Default)]
pub(crate) struct LocalKeys {
    pub(crate) device_keys: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>>,
    pub(crate) master_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub(crate) self_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
    pub(crate) user_signing_keys: BTreeMap<OwnedUserId, Raw<CrossSigningKey>>,
}

/// Claimed keys: user → device → the one key claimed for it.
pub(crate) type ClaimedKeys =
    BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OwnedOneTimeKeyId, Raw<OneTimeKey>>>>;

impl Server {
    /// The keys a key query asks for, of this server's users only (others are left out): the
    /// named devices (every device when none is named) with their display names, master and
    /// self-signing keys, and `requester`'s own user-signing key (a local requester only; the
    /// federation API has none).
    pub(crate) async fn query_local_keys(
        &self,
        wanted: &BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>,
        requester: Option<&UserId>,
    ) -> Result<LocalKeys> {
        let mut keys = LocalKeys::default();
        for (user_id, devices) in wanted {
            if !self.is_local(user_id) {
                continue;
            }
            let user = user_id.as_str();
            let mut found = BTreeMap::new();
            for (device_id, device_keys) in self.store().all_device_keys(user).await? {
                if !devices.is_empty() && !devices.iter().any(|wanted| wanted.as_str() == device_id)
                {
                    continue;
                }
                let mut device_keys = device_keys;
                if let Some(device) = self.store().device(user, &device_id).await?
                    && let Some(name) = device.display_name
                {
                    device_keys["unsigned"]["device_display_name"] = Value::String(name);
                }
                found.insert(device_id.into(), to_raw(&device_keys)?);
            }
            keys.device_keys.insert(user_id.clone(), found);
            if let Some(key) = self.store().cross_signing_key(user, "master").await? {
                keys.master_keys.insert(user_id.clone(), to_raw(&key)?);
            }
            if let Some(key) = self.store().cross_signing_key(user, "self_signing").await? {
                keys.self_signing_keys.insert(user_id.clone(), to_raw(&key)?);
            }
            if requester == Some(&**user_id)
                && let Some(key) = self.store().cross_signing_key(user, "user_signing").await?
            {
                keys.user_signing_keys.insert(user_id.clone(), to_raw(&key)?);
            }
        }
        Ok(keys)
    }

    /// Claims one key per named device of this server's users (others are left out): a
    /// one-time key, which is used up, or else the device's fallback key, which is marked used.
    pub(crate) async fn claim_local_keys(
        &self,
        claims: &BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>,
    ) -> Result<ClaimedKeys> {
        let _guard = self.write_lock().await;
        let mut txn = self.store().transaction();
        let mut claimed = BTreeMap::new();
        for (user_id, devices) in claims {
            if !self.is_local(user_id) {
                continue;
            }
            let user = user_id.as_str();
            let mut user_keys = BTreeMap::new();
            for (device_id, algorithm) in devices {
                let device = device_id.as_str();
                let algorithm = algorithm.as_str();
                let otk = self
                    .store()
                    .one_time_keys(user, device)
                    .await?
                    .into_iter()
                    .find(|(alg, _, _)| alg == algorithm);
                let (key_id, key) = if let Some((_, key_id, key)) = otk {
                    txn.delete_one_time_key(user, device, algorithm, &key_id);
                    (key_id, key)
                } else if let Some((_, mut fallback)) = self
                    .store()
                    .fallback_keys(user, device)
                    .await?
                    .into_iter()
                    .find(|(alg, _)| alg == algorithm)
                {
                    let key = fallback.key.clone();
                    if !fallback.used {
                        fallback.used = true;
                        txn.put_fallback_key(user, device, algorithm, &fallback)?;
                    }
                    (fallback.key_id, key)
                } else {
                    continue;
                };
                let full_id = format!("{algorithm}:{key_id}");
                let full_id = OwnedOneTimeKeyId::try_from(full_id.as_str())
                    .map_err(|_| ServerError::Internal(format!("stored key ID {full_id}")))?;
                user_keys.insert(device_id.clone(), BTreeMap::from([(full_id, to_raw(&key)?)]));
            }
            claimed.insert(user_id.clone(), user_keys);
        }
        if !txn.is_empty() {
            self.store().commit(txn).await?;
            self.notifier().notify();
        }
        Ok(claimed)
    }
}

/// `GET /_matrix/client/v3/keys/changes`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3keyschanges)).
pub(crate) async fn get_key_changes(
    server: Server,
    authed: Authed,
    request: get_key_changes::v3::Request,
) -> Result<get_key_changes::v3::Response> {
    let from = parse_token(&request.from)?;
    let to = parse_token(&request.to)?;
    let changed: BTreeSet<String> =
        server.store().key_changes(from, to).await?.into_iter().map(|(_, user)| user).collect();
    let memberships = server.store().memberships(&authed.user_id).await?;
    let users = server.users_sharing_rooms(&authed.user_id, &memberships).await?;
    let changed = users.into_iter().filter(|user| changed.contains(user.as_str())).collect();
    Ok(get_key_changes::v3::Response::new(changed, Vec::new()))
}

/// `POST /_matrix/client/v3/keys/device_signing/upload`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keysdevice_signingupload)):
/// user-interactive authentication unless the user has no master key yet.
pub(crate) async fn upload_signing_keys(
    server: Server,
    authed: Authed,
    request: upload_signing_keys::v3::Request,
) -> Result<upload_signing_keys::v3::Response> {
    let user = authed.user_id.as_str();
    if server.store().cross_signing_key(user, "master").await?.is_some() {
        let flows = server.account_flows(&authed.user_id).await?;
        server.user_interactive_auth(request.auth.as_ref(), &flows, Some(&authed.user_id)).await?;
    }
    let _guard = server.write_lock().await;
    let mut txn = server.store().transaction();
    for (usage, key) in [
        ("master", &request.master_key),
        ("self_signing", &request.self_signing_key),
        ("user_signing", &request.user_signing_key),
    ] {
        if let Some(key) = key {
            let key = to_value(key)?;
            if key["user_id"] != user {
                return Err(ServerError::InvalidParam(format!("{usage} key is for another user")));
            }
            txn.put_cross_signing_key(user, usage, &key)?;
        }
    }
    if !txn.is_empty() {
        server.key_changed(&mut txn, &authed.user_id, "", false).await?;
        server.commit(txn).await?;
        server.notifier().notify();
    }
    Ok(upload_signing_keys::v3::Response::new())
}

/// Account data (private to the signer) holding the signatures a user made on other servers'
/// users' keys: `{user_id: {key_id: {"signatures": {...}}}}`. Those keys live on their servers,
/// so the signatures are kept here and added to what `/keys/query` answers to the signer.
const REMOTE_KEY_SIGNATURES: &str = "org.hearth.remote_key_signatures";

/// `POST /_matrix/client/v3/keys/signatures/upload`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keyssignaturesupload)):
/// signatures are merged into the stored device and cross-signing keys. A signature on another
/// server's user's key (a verified contact's master key, signed with the user-signing key) is
/// kept for the signer, who alone needs to see it ("the user-signing key's signatures are only
/// visible to the user who made them"), and only the signer's own signatures are kept.
pub(crate) async fn upload_signatures(
    server: Server,
    authed: Authed,
    request: upload_signatures::v3::Request,
) -> Result<upload_signatures::v3::Response> {
    let _guard = server.write_lock().await;
    let mut txn = server.store().transaction();
    let mut remote_signatures: Option<Value> = None;
    for (user_id, signed) in &request.signed_keys {
        if !server.is_local(user_id) {
            let signed = serde_json::to_value(signed)
                .map_err(|error| ServerError::BadJson(error.to_string()))?;
            let Some(signed) = signed.as_object() else { continue };
            let kept = match &mut remote_signatures {
                Some(kept) => kept,
                None => remote_signatures.insert(
                    server
                        .store()
                        .account_data(authed.user_id.as_str(), None, REMOTE_KEY_SIGNATURES)
                        .await?
                        .and_then(|record| serde_json::from_str(record.content.get()).ok())
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({})),
                ),
            };
            for (key_id, new) in signed {
                let own = new["signatures"][authed.user_id.as_str()].clone();
                if !own.is_object() {
                    continue;
                }
                let entry = &mut kept[user_id.as_str()][key_id];
                merge_signatures(entry, &json!({ "signatures": { authed.user_id.as_str(): own } }));
            }
            // The signer's client asks for the user's keys again and finds its signature.
            txn.put_key_change(user_id.as_str())?;
            continue;
        }
        let user = user_id.as_str();
        let signed = serde_json::to_value(signed)
            .map_err(|error| ServerError::BadJson(error.to_string()))?;
        let Some(signed) = signed.as_object() else { continue };
        let mut changed = false;
        for (key_id, new) in signed {
            if let Some(mut stored) = server.store().device_keys(user, key_id).await? {
                merge_signatures(&mut stored, new);
                txn.put_device_keys(user, key_id, &stored)?;
                changed = true;
                continue;
            }
            for usage in ["master", "self_signing", "user_signing"] {
                let Some(mut stored) = server.store().cross_signing_key(user, usage).await? else {
                    continue;
                };
                let matches = stored["keys"]
                    .as_object()
                    .is_some_and(|keys| keys.values().any(|key| key.as_str() == Some(key_id)));
                if matches {
                    merge_signatures(&mut stored, new);
                    txn.put_cross_signing_key(user, usage, &stored)?;
                    changed = true;
                }
            }
        }
        if changed {
            server.key_changed(&mut txn, user_id, "", false).await?;
        }
    }
    if let Some(kept) = remote_signatures {
        let content = serde_json::value::to_raw_value(&kept)
            .map_err(|error| ServerError::Internal(error.to_string()))?;
        txn.put_account_data(authed.user_id.as_str(), None, REMOTE_KEY_SIGNATURES, content)?;
    }
    if !txn.is_empty() {
        server.commit(txn).await?;
        server.notifier().notify();
    }
    Ok(upload_signatures::v3::Response::new())
}
