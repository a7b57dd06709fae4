//! aead (being written).
