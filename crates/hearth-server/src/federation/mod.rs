//! The server-server API, as other homeservers call it (over libp2p, through the host).

mod auth;
mod backfill;
mod catch_up;
mod client;
mod delivery;
mod devices;
mod edu;
mod events;
mod keys;
pub(crate) mod media;
mod membership;
mod multipart;
mod peers;
mod query;
mod receive;
pub(crate) mod sender;
mod visibility;

use hearth_core::ruma::api::federation::discovery::get_server_version;

pub(crate) use self::membership::join_candidates;
pub(crate) use self::peers::PeerUsers;
pub use self::{auth::sign_request, sender::DestinationStatus};
use crate::{Server, error::Result, router::Router};

pub(crate) fn routes(router: &mut Router) {
    peers::routes(router);
    delivery::routes(router);
    media::routes(router);
    router.public(keys::get_server_keys);
    router.public(get_server_version);
    router.federated(query::get_profile_information);
    router.federated(receive::send_transaction_message);
    router.federated(membership::create_join_event_template);
    router.federated(membership::create_join_event);
    router.federated(membership::create_invite);
    router.federated(membership::create_leave_event_template);
    router.federated(membership::create_leave_event);
    router.federated(query::get_room_information);
    router.federated(query::get_public_rooms);
    router.federated(query::get_public_rooms_filtered);
    router.federated(events::get_event);
    router.federated(events::get_room_state);
    router.federated(events::get_room_state_ids);
    router.federated(events::get_event_authorization);
    router.federated(events::get_missing_events);
    router.federated(events::get_backfill);
    router.federated(catch_up::get_event_by_timestamp);
    router.federated(devices::get_devices);
    router.federated(devices::get_keys);
    router.federated(devices::claim_keys);
}

/// `GET /_matrix/federation/v1/version`
/// ([spec](https://spec.matrix.org/v1.16/server-server-api/#get_matrixfederationv1version)).
async fn get_server_version(
    _server: Server,
    _request: get_server_version::v1::Request,
) -> Result<get_server_version::v1::Response> {
    let mut about = get_server_version::v1::Server::new();
    about.name = Some("Hearth".into());
    about.version = Some(env!("CARGO_PKG_VERSION").into());
    let mut response = get_server_version::v1::Response::new();
    response.server = Some(about);
    Ok(response)
}
