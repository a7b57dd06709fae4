//! keyring (being written).
