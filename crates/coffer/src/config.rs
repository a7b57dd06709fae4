//! The production config file: TOML, unknown keys rejected, validated into typed settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use coffer_core::{AuditDeviceSpec, DEFAULT_AUDIT_FILE_MAX_BYTES};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listener: RawListener,
    storage: RawStorage,
    #[serde(default)]
    audit: Vec<RawAudit>,
    #[serde(default)]
    rotation: RawRotation,
}

/// `[rotation]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    /// Command rotation functions run programs as the server's user: off unless asked for.
    #[serde(default)]
    allow_command_functions: bool,
}

/// One `[[audit]]` table.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawAudit {
    File {
        path: PathBuf,
        name: Option<String>,
        max_bytes: Option<u64>,
    },
    Stdout {
        name: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Option<SocketAddr>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP. Anyone on the network path can read every secret.
    #[serde(default)]
    dangerous_plaintext_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: PathBuf,
    /// redb's page cache in MiB (default 32).
    cache_mb: Option<u64>,
}

/// How the listener is secured.
#[derive(Clone, Debug)]
pub enum Transport {
    Tls { cert: PathBuf, key: PathBuf },
    DangerousPlaintext,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub transport: Transport,
    pub storage_path: PathBuf,
    /// `[storage] cache_mb`, in bytes.
    pub storage_cache_bytes: usize,
    pub audit: Vec<AuditDeviceSpec>,
    /// `[rotation] allow_command_functions`.
    pub allow_command_functions: bool,
}

/// Adds an audit device, refusing a second device with the same name (its key and chain live
/// under the name).
pub fn add_audit_device(devices: &mut Vec<AuditDeviceSpec>, spec: AuditDeviceSpec) -> anyhow::Result<()> {
    if devices.iter().any(|d| d.name() == spec.name()) {
        bail!(
            "audit: two devices are named {:?}; give one a different `name`",
            spec.name()
        );
    }
    devices.push(spec);
    Ok(())
}

pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8200))
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text)?;
        let transport = match (
            raw.listener.tls_cert_file,
            raw.listener.tls_key_file,
            raw.listener.dangerous_plaintext_http,
        ) {
            (Some(cert), Some(key), false) => Transport::Tls { cert, key },
            (None, None, true) => Transport::DangerousPlaintext,
            (Some(_), Some(_), true) => bail!("listener: set either TLS files or dangerous_plaintext_http, not both"),
            (Some(_), None, _) | (None, Some(_), _) => {
                bail!("listener: tls_cert_file and tls_key_file must be given together")
            }
            (None, None, false) => bail!(
                "listener: TLS is required: set tls_cert_file and tls_key_file \
                 (or dangerous_plaintext_http = true to serve secrets over plain HTTP)"
            ),
        };
        if raw.storage.path.as_os_str().is_empty() {
            bail!("storage: path must not be empty");
        }
        let storage_cache_bytes = match raw.storage.cache_mb {
            None => coffer_storage::redb_backend::DEFAULT_CACHE_BYTES,
            Some(mb) => mb
                .checked_mul(1024 * 1024)
                .and_then(|b| usize::try_from(b).ok())
                .filter(|b| *b > 0)
                .context("storage: cache_mb must be a positive number of MiB")?,
        };
        let mut audit = Vec::new();
        for raw in raw.audit {
            let spec = match raw {
                RawAudit::File { path, name, max_bytes } => AuditDeviceSpec::File {
                    name: name.unwrap_or_else(|| "file".into()),
                    path,
                    max_bytes: max_bytes.unwrap_or(DEFAULT_AUDIT_FILE_MAX_BYTES),
                },
                RawAudit::Stdout { name } => AuditDeviceSpec::Stdout {
                    name: name.unwrap_or_else(|| "stdout".into()),
                },
            };
            add_audit_device(&mut audit, spec)?;
        }
        Ok(Self {
            listen: raw.listener.address.unwrap_or_else(default_listen),
            transport,
            storage_path: raw.storage.path,
            storage_cache_bytes,
            audit,
            allow_command_functions: raw.rotation.allow_command_functions,
        })
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tls_config() {
        let c = Config::parse(
            "[listener]\naddress = \"0.0.0.0:8443\"\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\"\n[storage]\npath = \"/var/lib/coffer/data.redb\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 8443);
        assert!(matches!(c.transport, Transport::Tls { .. }));
        assert_eq!(c.storage_cache_bytes, coffer_storage::redb_backend::DEFAULT_CACHE_BYTES);
    }

    #[test]
    fn storage_cache_size() {
        let parse = |cache: &str| {
            Config::parse(&format!(
                "[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\ncache_mb = {cache}\n"
            ))
        };
        assert_eq!(parse("256").unwrap().storage_cache_bytes, 256 * 1024 * 1024);
        assert!(format!("{:#}", parse("0").err().unwrap()).contains("cache_mb"));
        assert!(parse("-1").is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_missing_tls() {
        let unknown =
            Config::parse("[listener]\ndangerous_plaintext_http = true\nbogus = 1\n[storage]\npath = \"x\"\n");
        assert!(format!("{:#}", unknown.unwrap_err()).contains("bogus"));
        let no_tls = Config::parse("[listener]\n[storage]\npath = \"x\"\n");
        assert!(format!("{:#}", no_tls.unwrap_err()).contains("TLS is required"));
        let half = Config::parse("[listener]\ntls_cert_file = \"c\"\n[storage]\npath = \"x\"\n");
        assert!(half.is_err());
        let plain = Config::parse("[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\n").unwrap();
        assert!(plain.audit.is_empty());
        let audited = Config::parse(
            "[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\n\
             [[audit]]\ntype = \"file\"\npath = \"/var/log/coffer/audit.log\"\n[[audit]]\ntype = \"stdout\"\n",
        )
        .unwrap();
        assert_eq!(audited.audit.len(), 2);
        let twice = Config::parse(
            "[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\n\
             [[audit]]\ntype = \"stdout\"\n[[audit]]\ntype = \"stdout\"\n",
        );
        assert!(format!("{:#}", twice.unwrap_err()).contains("two devices"));
        let bad = Config::parse(
            "[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\n[[audit]]\ntype = \"syslog\"\n",
        );
        assert!(bad.is_err());
        assert!(matches!(plain.transport, Transport::DangerousPlaintext));
        assert_eq!(plain.listen.to_string(), "127.0.0.1:8200");
    }
}
