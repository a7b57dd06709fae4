//! testing (being written).
