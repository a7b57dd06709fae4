//! shamir (being written).
