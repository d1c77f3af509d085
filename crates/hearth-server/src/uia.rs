//! [User-interactive authentication](https://spec.matrix.org/v1.16/client-server-api/#user-interactive-authentication-api):
//! sessions, stages and the 401 responses that describe what is left to do.

use hearth_core::ruma::{
    UserId,
    api::client::uiaa::{AuthData, AuthType, UserIdentifier},
};
use serde_json::{Value, json};

use crate::{Registration, Server, ServerError, auth, cache::FifoCache, error::Result};

/// At most this many sessions are remembered; when full, the oldest is forgotten (its client
/// gets a fresh session on its next attempt).
const MAX_SESSIONS: usize = 1024;

pub(crate) struct Sessions {
    completed: FifoCache<String, Vec<String>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions { completed: FifoCache::new(MAX_SESSIONS) }
    }
}

impl Server {
    /// The flows that protect registration on this server.
    pub(crate) fn registration_flows(&self) -> Result<Vec<Vec<AuthType>>> {
        match &self.config().registration {
            Registration::Open => Ok(vec![vec![AuthType::Dummy]]),
            Registration::Token(_) => Ok(vec![vec![AuthType::RegistrationToken]]),
            Registration::Closed => Err(ServerError::Disabled("registration is disabled".into())),
        }
    }

    /// The flows that protect a sensitive action of `user_id` (device deletion, password
    /// change, deactivation, cross-signing keys): the password, or nothing more than a
    /// confirmation for an account that has none.
    pub(crate) async fn account_flows(&self, user_id: &UserId) -> Result<Vec<Vec<AuthType>>> {
        let user = self.store().user(user_id).await?;
        Ok(match user.and_then(|user| user.password_hash) {
            Some(_) => vec![vec![AuthType::Password]],
            None => vec![vec![AuthType::Dummy]],
        })
    }

    /// Completes the stage in `auth` (if any) and returns `Ok` once a whole flow is done;
    /// otherwise the 401 response telling the client what remains.
    pub(crate) async fn user_interactive_auth(
        &self,
        auth: Option<&AuthData>,
        flows: &[Vec<AuthType>],
        user_id: Option<&UserId>,
    ) -> Result<()> {
        let Some(auth) = auth else {
            let session = auth::random_token(16)?;
            self.uia().completed.insert(session.clone(), Vec::new());
            return Err(self.auth_required(flows, &session, &[], None));
        };
        let session = match auth.session() {
            Some(session) => session.to_owned(),
            None => auth::random_token(16)?,
        };
        let mut completed = self.uia().completed.get(&session).unwrap_or_default();
        let allowed = |stage: &AuthType| flows.iter().any(|flow| flow.contains(stage));
        let stage_error = match auth {
            AuthData::Dummy(_) if allowed(&AuthType::Dummy) => {
                completed.push(AuthType::Dummy.to_string());
                None
            }
            AuthData::RegistrationToken(given) if allowed(&AuthType::RegistrationToken) => {
                match &self.config().registration {
                    Registration::Token(token) if *token == given.token => {
                        completed.push(AuthType::RegistrationToken.to_string());
                        None
                    }
                    _ => Some(("M_FORBIDDEN", "invalid registration token")),
                }
            }
            AuthData::Password(password) if allowed(&AuthType::Password) => {
                if self.password_matches(user_id, &password.identifier, &password.password).await? {
                    completed.push(AuthType::Password.to_string());
                    None
                } else {
                    Some(("M_FORBIDDEN", "invalid password"))
                }
            }
            _ => Some(("M_UNRECOGNIZED", "this authentication stage is not offered here")),
        };
        let done = flows
            .iter()
            .any(|flow| flow.iter().all(|stage| completed.contains(&stage.to_string())));
        if done && stage_error.is_none() {
            self.uia().completed.remove(&session);
            return Ok(());
        }
        self.uia().completed.insert(session.clone(), completed.clone());
        Err(self.auth_required(flows, &session, &completed, stage_error))
    }

    async fn password_matches(
        &self,
        user_id: Option<&UserId>,
        identifier: &UserIdentifier,
        password: &str,
    ) -> Result<bool> {
        let UserIdentifier::Matrix(given) = identifier else { return Ok(false) };
        let Ok(given) = self.local_user_id(&given.user) else { return Ok(false) };
        if user_id.is_some_and(|user_id| user_id != given) {
            return Ok(false);
        }
        let user = self.store().user(&given).await?;
        let Some(hash) = user.and_then(|user| user.password_hash) else { return Ok(false) };
        Ok(self.passwords().verify(password, &hash).await)
    }

    fn auth_required(
        &self,
        flows: &[Vec<AuthType>],
        session: &str,
        completed: &[String],
        error: Option<(&str, &str)>,
    ) -> ServerError {
        let flows: Vec<Value> = flows
            .iter()
            .map(|flow| json!({ "stages": flow.iter().map(|s| s.to_string()).collect::<Vec<_>>() }))
            .collect();
        let mut body = json!({ "flows": flows, "params": {}, "session": session });
        if !completed.is_empty() {
            body["completed"] = json!(completed);
        }
        if let Some((errcode, message)) = error {
            body["errcode"] = json!(errcode);
            body["error"] = json!(message);
        }
        ServerError::AuthRequired(body)
    }
}
