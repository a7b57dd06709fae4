//! view (being written).
