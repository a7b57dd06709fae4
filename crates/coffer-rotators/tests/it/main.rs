//! Integration tests of the built-in rotation functions: the real Secrets Manager engine (over
//! memory storage) as the `SecretsApi`, and real databases — private PostgreSQL clusters with
//! password authentication started by the tests, and the machine's MariaDB.
//!
//! With `CI=true` a database that cannot be reached or started fails the test; without it the
//! test prints why and skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod mysql;
mod postgres;
mod steps;
