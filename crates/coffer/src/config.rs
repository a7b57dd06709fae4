//! The production config file: TOML, unknown keys rejected, validated into typed settings.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use coffer_core::limits::Rate;
use coffer_core::{AuditDeviceSpec, DEFAULT_AUDIT_FILE_MAX_BYTES};
use serde::Deserialize;

use crate::limits::Limits;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listener: RawListener,
    storage: RawStorage,
    #[serde(default)]
    audit: Vec<RawAudit>,
    #[serde(default)]
    rotation: RawRotation,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    telemetry: RawTelemetry,
}

/// `[telemetry]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    /// Serve `/metrics` without a token (Vault's listener option of the same name).
    #[serde(default)]
    unauthenticated_metrics_access: bool,
}

/// `[limits]`: every key is optional (see `Limits::default`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    tls_handshake_timeout_secs: Option<u64>,
    max_connections: Option<u64>,
    aws_max_request_bytes: Option<u64>,
    vault_max_request_bytes: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    /// Requests per second per client address, access key and token (off unless set).
    rate_per_second: Option<u32>,
    /// Requests at once over the rate (default: one second's worth).
    rate_burst: Option<u32>,
}

impl RawLimits {
    fn validate(self) -> anyhow::Result<Limits> {
        let d = Limits::default();
        let secs = |v: Option<u64>, name: &str, default: Duration| match v {
            None => Ok(default),
            Some(0) => bail!("limits: {name} must be at least 1"),
            Some(s) => Ok(Duration::from_secs(s)),
        };
        let count = |v: Option<u64>, name: &str, default: usize| match v {
            None => Ok(default),
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("limits: {name} must be a positive number")),
        };
        let rate = match (self.rate_per_second, self.rate_burst) {
            (None, None) => None,
            (None, Some(_)) => bail!("limits: rate_burst needs rate_per_second"),
            (Some(per_second), burst) => {
                let per_second = NonZeroU32::new(per_second).context("limits: rate_per_second must be at least 1")?;
                let burst = match burst {
                    None => per_second,
                    Some(b) => NonZeroU32::new(b).context("limits: rate_burst must be at least 1")?,
                };
                Some(Rate { per_second, burst })
            }
        };
        Ok(Limits {
            header_read_timeout: secs(
                self.header_read_timeout_secs,
                "header_read_timeout_secs",
                d.header_read_timeout,
            )?,
            body_read_timeout: secs(
                self.body_read_timeout_secs,
                "body_read_timeout_secs",
                d.body_read_timeout,
            )?,
            idle_timeout: secs(self.idle_timeout_secs, "idle_timeout_secs", d.idle_timeout)?,
            tls_handshake_timeout: secs(
                self.tls_handshake_timeout_secs,
                "tls_handshake_timeout_secs",
                d.tls_handshake_timeout,
            )?,
            max_connections: count(self.max_connections, "max_connections", d.max_connections)?,
            aws_max_request_bytes: count(
                self.aws_max_request_bytes,
                "aws_max_request_bytes",
                d.aws_max_request_bytes,
            )?,
            vault_max_request_bytes: count(
                self.vault_max_request_bytes,
                "vault_max_request_bytes",
                d.vault_max_request_bytes,
            )?,
            shutdown_grace: secs(self.shutdown_grace_secs, "shutdown_grace_secs", d.shutdown_grace)?,
            rate,
        })
    }
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
    /// `[limits]`.
    pub limits: Limits,
    /// `[telemetry] unauthenticated_metrics_access`.
    pub unauthenticated_metrics_access: bool,
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
            unauthenticated_metrics_access: raw.telemetry.unauthenticated_metrics_access,
            limits: raw.limits.validate()?,
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
    fn limits() {
        let parse = |limits: &str| {
            Config::parse(&format!(
                "[listener]\ndangerous_plaintext_http = true\n[storage]\npath = \"x\"\n[limits]\n{limits}\n"
            ))
        };
        assert_eq!(parse("").unwrap().limits, Limits::default());
        let c = parse("header_read_timeout_secs = 2\nmax_connections = 8\nrate_per_second = 5").unwrap();
        assert_eq!(c.limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.limits.max_connections, 8);
        assert_eq!(c.limits.rate.unwrap().burst.get(), 5);
        assert_eq!(c.limits.body_read_timeout, Duration::from_secs(30));
        assert!(format!("{:#}", parse("idle_timeout_secs = 0").err().unwrap()).contains("idle_timeout_secs"));
        assert!(format!("{:#}", parse("rate_burst = 3").err().unwrap()).contains("rate_per_second"));
        assert!(format!("{:#}", parse("max_conections = 3").err().unwrap()).contains("max_conections"));
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
