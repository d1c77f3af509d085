//! The user directory: search over this server's accounts
//! ([spec](https://spec.matrix.org/v1.16/client-server-api/#user-directory)).

use hearth_core::ruma::{OwnedUserId, api::client::user_directory::search_users};

use crate::{Authed, Server, error::Result};

/// How many accounts a search walks at most (a small server's whole directory).
const MAX_SCANNED_USERS: usize = 10_000;

/// The most results one search returns, whatever the client asks for.
const MAX_RESULTS: usize = 100;

/// `POST /_matrix/client/v3/user_directory/search`
/// ([spec](https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3user_directorysearch)):
/// local, active users whose ID or display name contains the term, case-insensitively.
pub(crate) async fn search_users(
    server: Server,
    _authed: Authed,
    request: search_users::v3::Request,
) -> Result<search_users::v3::Response> {
    let term = request.search_term.trim().to_lowercase();
    let limit = usize::try_from(u64::from(request.limit)).unwrap_or(MAX_RESULTS).min(MAX_RESULTS);
    let mut results = Vec::new();
    let mut limited = false;
    for (user_id, user) in server.store().users(MAX_SCANNED_USERS).await? {
        if user.deactivated {
            continue;
        }
        let matches = user_id.to_lowercase().contains(&term)
            || user.displayname.as_deref().is_some_and(|name| name.to_lowercase().contains(&term));
        if !matches {
            continue;
        }
        if results.len() == limit {
            limited = true;
            break;
        }
        let Ok(user_id) = OwnedUserId::try_from(user_id) else { continue };
        let mut found = search_users::v3::User::new(user_id);
        found.display_name = user.displayname;
        found.avatar_url = user.avatar_url.map(Into::into);
        results.push(found);
    }
    Ok(search_users::v3::Response::new(results, limited))
}
