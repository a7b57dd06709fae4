//! Engine-level tests over `MemoryStorage`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
