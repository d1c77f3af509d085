//! The client-server API: one module per area, handlers named after their endpoints.

pub(crate) mod account;
pub(crate) mod account_data;
pub(crate) mod backup;
pub(crate) mod devices;
pub(crate) mod directory;
pub(crate) mod discovery;
pub(crate) mod ephemeral;
pub(crate) mod history;
pub(crate) mod keys;
pub(crate) mod media;
pub(crate) mod membership;
pub(crate) mod message;
pub(crate) mod notifications;
pub(crate) mod profile;
pub(crate) mod push;
pub(crate) mod pushers;
pub(crate) mod relations;
pub(crate) mod room;
pub(crate) mod search;
pub(crate) mod space;
pub(crate) mod sync;
pub(crate) mod thirdparty;
pub(crate) mod to_device;
pub(crate) mod upgrade;
pub(crate) mod user_directory;

use std::sync::Arc;

use http::Method;

use crate::router::Router;

/// Registers every client-server endpoint.
pub(crate) fn routes(router: &mut Router) {
    router.public(discovery::get_supported_versions);
    router.raw(
        Method::GET,
        "/.well-known/matrix/client",
        Arc::new(|_server, incoming| {
            Box::pin(async move { discovery::discover_homeserver(&incoming.request) })
        }),
    );
    router.authed(discovery::get_capabilities);

    router.public(account::get_username_availability);
    router.public(account::register);
    router.public(account::get_login_types);
    router.public(account::login);
    router.authed(account::logout);
    router.authed(account::logout_all);
    router.authed(account::whoami);
    router.authed(account::change_password);
    router.authed(account::deactivate);

    router.authed(account_data::set_global_account_data);
    router.authed(account_data::get_global_account_data);
    router.authed(account_data::set_room_account_data);
    router.authed(account_data::get_room_account_data);
    router.authed(account_data::get_tags);
    router.authed(account_data::create_tag);
    router.authed(account_data::delete_tag);
    router.authed(account_data::create_filter);
    router.authed(account_data::get_filter);

    router.authed(room::create_room);
    router.authed(upgrade::upgrade_room);
    router.authed(space::get_hierarchy);
    router.authed(membership::join_room_by_id);
    router.authed(membership::join_room_by_id_or_alias);
    router.authed(membership::invite_user);
    router.authed(membership::leave_room);
    router.authed(membership::forget_room);
    router.authed(membership::kick_user);
    router.authed(membership::ban_user);
    router.authed(membership::unban_user);
    router.authed(membership::joined_rooms);

    router.authed(message::send_message_event);
    router.authed(message::send_state_event);
    router.authed(message::get_state_events);
    router.authed(message::get_state_event_for_key);
    router.authed(message::redact_event);
    router.authed(message::get_message_events);
    router.authed(message::get_room_event);
    router.authed(message::get_context);
    router.authed(message::get_member_events);
    router.authed(message::joined_members);

    router.authed(sync::sync_events);

    router.authed(relations::get_relating_events);
    router.authed(relations::get_relating_events_with_rel_type);
    router.authed(relations::get_relating_events_with_rel_type_and_event_type);
    router.authed(relations::get_threads);

    router.authed(keys::upload_keys);
    router.authed(keys::get_keys);
    router.authed(keys::claim_keys);
    router.authed(keys::get_key_changes);
    router.authed(keys::upload_signing_keys);
    router.authed(keys::upload_signatures);
    router.authed(to_device::send_event_to_device);

    router.authed(backup::create_backup_version);
    router.authed(backup::update_backup_version);
    router.authed(backup::get_latest_backup_info);
    router.authed(backup::get_backup_info);
    router.authed(backup::delete_backup_version);
    router.authed(backup::add_backup_keys);
    router.authed(backup::add_backup_keys_for_room);
    router.authed(backup::add_backup_keys_for_session);
    router.authed(backup::get_backup_keys);
    router.authed(backup::get_backup_keys_for_room);
    router.authed(backup::get_backup_keys_for_session);
    router.authed(backup::delete_backup_keys);
    router.authed(backup::delete_backup_keys_for_room);
    router.authed(backup::delete_backup_keys_for_session);

    router.authed(devices::get_devices);
    router.authed(devices::get_device);
    router.authed(devices::update_device);
    router.authed(devices::delete_device);
    router.authed(devices::delete_devices);

    router.authed(ephemeral::create_typing_event);
    router.authed(ephemeral::create_receipt);
    router.authed(ephemeral::set_read_marker);
    router.authed(ephemeral::set_presence);
    router.authed(ephemeral::get_presence);

    router.authed(media::create_content);
    router.authed(media::get_content);
    router.authed(media::get_content_as_filename);
    router.authed(media::get_content_thumbnail);
    router.authed(media::get_media_config);
    router.public(media::legacy::get_content);
    router.public(media::legacy::get_content_as_filename);
    router.public(media::legacy::get_content_thumbnail);
    router.authed(media::legacy::get_media_config);

    router.public(profile::get_profile);
    router.public(profile::get_profile_field);
    router.authed(profile::set_profile_field);
    router.authed(profile::delete_profile_field);

    router.authed(user_directory::search_users);

    router.authed(directory::create_alias);
    router.public(directory::get_alias);
    router.authed(directory::delete_alias);
    router.authed(directory::aliases);
    router.public(directory::get_room_visibility);
    router.authed(directory::set_room_visibility);
    router.public(directory::get_public_rooms);
    router.authed(directory::get_public_rooms_filtered);

    router.authed(push::get_pushrules_all);
    router.authed(push::get_pushrules_global_scope);
    router.authed(push::get_pushrule);
    router.authed(push::set_pushrule);
    router.authed(push::delete_pushrule);
    router.authed(push::get_pushrule_enabled);
    router.authed(push::set_pushrule_enabled);
    router.authed(push::get_pushrule_actions);
    router.authed(push::set_pushrule_actions);
    router.authed(notifications::get_notifications);
    router.authed(pushers::get_pushers);
    router.authed(pushers::set_pusher);

    router.authed(search::search_events);
    router.authed(thirdparty::get_3pids);
    router.authed(thirdparty::get_protocols);
    router.authed(thirdparty::get_turn_server_info);
}
