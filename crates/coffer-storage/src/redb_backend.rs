//! redb_backend (being written).
