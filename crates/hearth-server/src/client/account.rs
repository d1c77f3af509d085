//! Accounts and sessions: registration, login, logout, whoami, password, deactivation.

use hearth_core::ruma::{
    self, OwnedUserId,
    api::client::{
        account::{
            ThirdPartyIdRemovalStatus, change_password, deactivate, get_username_availability,
            register, whoami,
        },
        session::{
            get_login_types::{self, v3::LoginType},
            login::{self, v3::LoginInfo},
            logout, logout_all,
        },
        uiaa::UserIdentifier,
    },
};
use hearth_store::{DeviceRecord, UserRecord};

use crate::{
    Authed, Server, ServerError,
    auth::{random_device_id, random_token},
    error::Result,
    platform::now_ms,
};

/// `GET /_matrix/client/v3/register/available`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3registeravailable)).
pub(crate) async fn get_username_availability(
    server: Server,
    request: get_username_availability::v3::Request,
) -> Result<get_username_availability::v3::Response> {
    server.registration_flows()?;
    let user_id = server.local_user_id(&request.username)?;
    if server.store().user(&user_id).await?.is_some() {
        return Err(ServerError::UserInUse);
    }
    Ok(get_username_availability::v3::Response::new(true))
}

/// `POST /_matrix/client/v3/register`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3register)):
/// `m.login.dummy` when registration is open, `m.login.registration_token` on an invite-only
/// server. Guests are not supported.
pub(crate) async fn register(
    server: Server,
    request: register::v3::Request,
) -> Result<register::v3::Response> {
    if request.kind == register::RegistrationKind::Guest {
        return Err(ServerError::Forbidden("guest access is not supported".into()));
    }
    let flows = server.registration_flows()?;
    let user_id = match &request.username {
        Some(username) => {
            let user_id = server.local_user_id(&username.to_lowercase())?;
            if server.store().user(&user_id).await?.is_some() {
                return Err(ServerError::UserInUse);
            }
            Some(user_id)
        }
        None => None,
    };
    server.user_interactive_auth(request.auth.as_ref(), &flows, None).await?;
    let user_id = match user_id {
        Some(user_id) => user_id,
        None => server.local_user_id(&random_token(9)?.to_lowercase().replace(['-', '_'], "x"))?,
    };
    let password_hash = match &request.password {
        Some(password) => Some(server.passwords().hash(password).await?),
        None => None,
    };
    let mut txn = server.store().transaction();
    // The availability check above ran before the (slow) UIA and hashing; check again under
    // the write lock so two registrations of one name cannot both succeed.
    let _guard = server.write_lock().await;
    if server.store().user(&user_id).await?.is_some() {
        return Err(ServerError::UserInUse);
    }
    txn.put_user(
        &user_id,
        &UserRecord {
            password_hash,
            displayname: Some(user_id.localpart().to_owned()),
            created_ts: now_ms(),
            ..Default::default()
        },
    )?;
    let mut response = register::v3::Response::new(user_id.clone());
    if !request.inhibit_login {
        let device_id = match request.device_id {
            Some(device_id) => device_id,
            None => random_device_id()?,
        };
        let access_token = random_token(32)?;
        txn.put_device(
            user_id.as_str(),
            device_id.as_str(),
            &DeviceRecord {
                display_name: request.initial_device_display_name,
                access_token: access_token.clone(),
                last_seen_ts: Some(now_ms()),
            },
        )?;
        response.access_token = Some(access_token);
        response.device_id = Some(device_id);
    }
    server.store().commit(txn).await?;
    Ok(response)
}

/// `GET /_matrix/client/v3/login`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3login)).
pub(crate) async fn get_login_types(
    _server: Server,
    _request: get_login_types::v3::Request,
) -> Result<get_login_types::v3::Response> {
    Ok(get_login_types::v3::Response::new(vec![LoginType::Password(Default::default())]))
}

/// `POST /_matrix/client/v3/login`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3login)):
/// `m.login.password` with a user identifier. Logging in again with a known device ID
/// replaces that device's token.
pub(crate) async fn login(
    server: Server,
    request: login::v3::Request,
) -> Result<login::v3::Response> {
    let LoginInfo::Password(password) = &request.login_info else {
        return Err(ServerError::Unknown("only m.login.password is supported".into()));
    };
    let user_id = match &password.identifier {
        Some(UserIdentifier::Matrix(matrix)) => server.local_user_id(&matrix.user.to_lowercase()),
        _ => Err(ServerError::Forbidden("log in with a Matrix user identifier".into())),
    }
    .map_err(|_| ServerError::Forbidden("invalid username or password".into()))?;
    let user = server.store().user(&user_id).await?;
    let Some(user) = user else {
        return Err(ServerError::Forbidden("invalid username or password".into()));
    };
    if user.deactivated {
        return Err(ServerError::UserDeactivated);
    }
    let matches = match user.password_hash.as_deref() {
        Some(hash) => server.passwords().verify(&password.password, hash).await,
        None => false,
    };
    if !matches {
        return Err(ServerError::Forbidden("invalid username or password".into()));
    }
    let device_id = match request.device_id {
        Some(device_id) => device_id,
        None => random_device_id()?,
    };
    let access_token = random_token(32)?;
    let mut txn = server.store().transaction();
    let existing = server.store().device(user_id.as_str(), device_id.as_str()).await?;
    let existing_device = existing.is_some();
    if let Some(existing) = &existing {
        txn.delete_device(user_id.as_str(), device_id.as_str(), existing);
    }
    txn.put_device(
        user_id.as_str(),
        device_id.as_str(),
        &DeviceRecord {
            display_name: request
                .initial_device_display_name
                .or(existing.and_then(|device| device.display_name)),
            access_token: access_token.clone(),
            last_seen_ts: Some(now_ms()),
        },
    )?;
    server.store().commit(txn).await?;
    if existing_device {
        // Logging in again as a device replaces its token.
        server.forget_tokens();
    }
    Ok(login::v3::Response::new(user_id, access_token, device_id))
}

/// `POST /_matrix/client/v3/logout`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3logout)):
/// the device goes, with its keys.
pub(crate) async fn logout(
    server: Server,
    authed: Authed,
    _request: logout::v3::Request,
) -> Result<logout::v3::Response> {
    server.delete_devices(&authed.user_id, &[authed.device_id.to_string()]).await?;
    Ok(logout::v3::Response::new())
}

/// `POST /_matrix/client/v3/logout/all`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3logoutall)).
pub(crate) async fn logout_all(
    server: Server,
    authed: Authed,
    _request: logout_all::v3::Request,
) -> Result<logout_all::v3::Response> {
    let devices = server.store().devices(authed.user_id.as_str()).await?;
    let ids: Vec<String> = devices.into_iter().map(|(id, _)| id).collect();
    server.delete_devices(&authed.user_id, &ids).await?;
    Ok(logout_all::v3::Response::new())
}

/// `GET /_matrix/client/v3/account/whoami`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3accountwhoami)).
pub(crate) async fn whoami(
    _server: Server,
    authed: Authed,
    _request: whoami::v3::Request,
) -> Result<whoami::v3::Response> {
    let mut response = whoami::v3::Response::new(authed.user_id, false);
    response.device_id = Some(authed.device_id);
    Ok(response)
}

/// `POST /_matrix/client/v3/account/password`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountpassword)):
/// protected by the current password; other devices are logged out unless asked not to.
pub(crate) async fn change_password(
    server: Server,
    authed: Authed,
    request: change_password::v3::Request,
) -> Result<change_password::v3::Response> {
    let flows = server.account_flows(&authed.user_id).await?;
    server.user_interactive_auth(request.auth.as_ref(), &flows, Some(&authed.user_id)).await?;
    let mut user = server.user_record(&authed.user_id).await?;
    user.password_hash = Some(server.passwords().hash(&request.new_password).await?);
    let mut txn = server.store().transaction();
    txn.put_user(&authed.user_id, &user)?;
    server.store().commit(txn).await?;
    if request.logout_devices {
        let others: Vec<String> = server
            .store()
            .devices(authed.user_id.as_str())
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id != authed.device_id.as_str())
            .collect();
        server.delete_devices(&authed.user_id, &others).await?;
    }
    Ok(change_password::v3::Response::new())
}

/// `POST /_matrix/client/v3/account/deactivate`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3accountdeactivate)):
/// every device is logged out, the user leaves every room, and the ID stays reserved.
pub(crate) async fn deactivate(
    server: Server,
    authed: Authed,
    request: deactivate::v3::Request,
) -> Result<deactivate::v3::Response> {
    let flows = server.account_flows(&authed.user_id).await?;
    server.user_interactive_auth(request.auth.as_ref(), &flows, Some(&authed.user_id)).await?;
    for (room_id, membership) in server.store().memberships(&authed.user_id).await? {
        if matches!(membership.membership.as_str(), "join" | "invite" | "knock") {
            server
                .set_membership(&authed.user_id, &room_id, &authed.user_id, "leave", None)
                .await?;
        }
    }
    let devices: Vec<String> = server
        .store()
        .devices(authed.user_id.as_str())
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    server.delete_devices(&authed.user_id, &devices).await?;
    let mut user = server.user_record(&authed.user_id).await?;
    user.deactivated = true;
    user.password_hash = None;
    let mut txn = server.store().transaction();
    txn.put_user(&authed.user_id, &user)?;
    server.store().commit(txn).await?;
    Ok(deactivate::v3::Response::new(ThirdPartyIdRemovalStatus::NoSupport))
}

impl Server {
    /// A local user's account; `M_NOT_FOUND` if there is none.
    pub(crate) async fn user_record(&self, user_id: &ruma::UserId) -> Result<UserRecord> {
        self.store()
            .user(user_id)
            .await?
            .ok_or_else(|| ServerError::NotFound(format!("no such user {user_id}")))
    }

    /// Logs devices out: their tokens, and their end-to-end keys, go together.
    pub(crate) async fn delete_devices(
        &self,
        user_id: &OwnedUserId,
        device_ids: &[String],
    ) -> Result<()> {
        let mut txn = self.store().transaction();
        for device_id in device_ids {
            if let Some(device) = self.store().device(user_id.as_str(), device_id).await? {
                txn.delete_device(user_id.as_str(), device_id, &device);
                self.delete_device_keys(&mut txn, user_id, device_id).await?;
            }
        }
        self.commit(txn).await?;
        self.forget_tokens();
        self.notifier().notify();
        Ok(())
    }
}
