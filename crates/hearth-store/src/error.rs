/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, quota, a closed database); nothing of the write was applied.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Stored bytes do not decode as what the data model put there.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database was written by a newer Hearth; opening it could destroy data.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// The version in the database.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
}

impl StoreError {
    /// A backend failure, from any error.
    pub fn backend(error: impl std::fmt::Display) -> Self {
        StoreError::Backend(error.to_string())
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}
