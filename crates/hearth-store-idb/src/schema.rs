//! The IndexedDB database version and the upgrade steps that lead to it.
//!
//! IndexedDB only lets a connection create or delete object stores inside the `versionchange`
//! transaction of an open request that asks for a higher version than the database has. So the
//! set of object stores is versioned here, separately from `hearth_store::SCHEMA_VERSION` (which
//! versions what the data model writes *into* the tables).
//!
//! `UPGRADES[n]` takes a database from version `n` to version `n + 1`; opening a database at
//! version `v` runs `UPGRADES[v..]` in order, all inside the one `versionchange` transaction, so
//! an interrupted upgrade leaves the database at `v`. To add a table: add it to `Table::ALL`,
//! append a step creating only that table, and nothing already stored is touched. Never edit a
//! step that has shipped: databases in the field have already run it.

use hearth_store::Table;

/// The object stores each upgrade step creates, oldest first.
pub(crate) const UPGRADES: &[&[Table]] = &[
    // Version 1: every table of the first data model.
    &[
        Table::Meta,
        Table::Events,
        Table::RoomTimeline,
        Table::StateGroups,
        Table::Rooms,
        Table::Memberships,
        Table::RoomMembers,
        Table::Relations,
        Table::Users,
        Table::Devices,
        Table::AccessTokens,
        Table::AccountData,
        Table::AccountDataChanges,
        Table::Filters,
        Table::Transactions,
        Table::Aliases,
        Table::RoomAliases,
        Table::PublicRooms,
        Table::Receipts,
        Table::ReceiptChanges,
        Table::Notifications,
        Table::ToDevice,
        Table::DeviceKeys,
        Table::OneTimeKeys,
        Table::FallbackKeys,
        Table::CrossSigningKeys,
        Table::KeyChanges,
        Table::BackupVersions,
        Table::BackupKeys,
        Table::Media,
        Table::MediaContent,
        Table::Presence,
    ],
    // Version 2: the federation tables (hearth-store schema version 2).
    &[Table::OutboundQueue, Table::InboundTransactions, Table::RejectedEvents],
    // Version 3: history fetched from other servers (hearth-store schema version 3).
    &[Table::RoomBackfill],
];

/// The IndexedDB version this build opens databases at: one per upgrade step.
pub const DATABASE_VERSION: u32 = UPGRADES.len() as u32;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A table added to the data model without an upgrade step would make every open fail (the
    /// backend checks that each table has its store), so catch it here, natively, first.
    #[test]
    fn upgrade_steps_create_every_table_once() {
        let created: Vec<Table> = UPGRADES.iter().flat_map(|step| step.iter().copied()).collect();
        let unique: BTreeSet<Table> = created.iter().copied().collect();
        assert_eq!(unique.len(), created.len(), "a step creates a store an earlier step made");
        assert_eq!(unique, Table::ALL.iter().copied().collect::<BTreeSet<_>>());
    }
}
