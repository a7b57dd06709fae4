//! fault (being written).
