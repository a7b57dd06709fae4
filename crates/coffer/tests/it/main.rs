//! Integration tests: the real `coffer` binary, driven by the AWS SDK for Rust, raw signed
//! HTTP, and the `coffer operator` CLI. One test binary (as ripgrep does), one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod audit;
mod authz;
mod cli;
mod dev_mode;
mod faults;
mod kms;
mod limits;
mod lockout;
mod production;
mod quotas;
mod rotation;
mod rotation_db;
mod secrets_manager;
mod security;
mod snapshot;
mod ssm;
mod wire_errors;
