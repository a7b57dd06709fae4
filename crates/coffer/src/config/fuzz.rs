//! Fuzz target `config_toml`: the production config file. Property: `Config::parse` (and the
//! rendering of its errors) never panics nor hangs, however the text is mangled or nested,
//! and what it accepts is valid (a storage path, a positive cache, unique audit names).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffer_fuzz::Fuzz;
use coffer_fuzz::proptest::prelude::*;

use super::Config;

fn check(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    match Config::parse(&text) {
        Ok(config) => {
            assert!(!config.storage_path.as_os_str().is_empty());
            assert!(config.storage_cache_bytes > 0);
            for (i, d) in config.audit.iter().enumerate() {
                assert!(config.audit[..i].iter().all(|e| e.name() != d.name()));
            }
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
}

#[test]
fn fuzz_config_toml() {
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "config_toml").dictionary(&[
        "[listener]\n",
        "[storage]\n",
        "[[audit]]\n",
        "[rotation]\n",
        "address = ",
        "\"[::1]:8200\"",
        "tls_cert_file = ",
        "tls_key_file = ",
        "dangerous_plaintext_http = true\n",
        "path = ",
        "cache_mb = ",
        "type = \"file\"\n",
        "type = \"stdout\"\n",
        "name = ",
        "max_bytes = ",
        "allow_command_functions = ",
        "'''",
        "\"\"\"",
        "inf",
        "1979-05-27T07:32:00Z",
        "0x7fffffffffffffff",
        "1_000",
    ]);
    fuzz.run(check);
    // Deep nesting: arrays and inline tables a mutation would take long to build.
    fuzz.run_generated(
        (1usize..5_000, any::<bool>()),
        |(depth, tables)| {
            let (open, close) = if tables { ("{a=", "}") } else { ("[", "]") };
            format!("[listener]\nx = {}1{}\n", open.repeat(depth), close.repeat(depth)).into_bytes()
        },
        check,
    );
}
