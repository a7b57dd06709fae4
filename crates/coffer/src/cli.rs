//! Command-line interface definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "A self-hosted secrets manager with AWS- and Vault-compatible APIs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Runs the server.
    Server(ServerArgs),
    /// Initializes, unseals, seals and inspects a running server.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Verifies and searches audit log files, offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rotation functions: register, show, list and remove them (signed with the AWS_* credentials).
    #[command(subcommand)]
    Function(FunctionCommand),
    /// Secrets Manager helpers that the aws CLI lacks.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Prints a shell completion script: `coffer completions bash > /etc/bash_completion.d/coffer`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Where and as whom the AWS-style commands call (the aws CLI's environment).
#[derive(Args, Clone)]
pub struct AwsClientArgs {
    /// The server's endpoint.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:8200",
        global = true
    )]
    pub endpoint_url: String,
    /// The region of the credential scope (else AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
    /// A PEM CA certificate to trust for an https endpoint.
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "FILE", global = true)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum FunctionCommand {
    /// Registers a rotation function: an HTTP endpoint (`--url`) or a local program (`--command`).
    /// Prints its ARN, to use as RotationLambdaARN; an http function's SigningSecret is shown once.
    Create {
        #[command(flatten)]
        client: AwsClientArgs,
        /// The function's name (letters, digits, '-' and '_').
        name: String,
        /// POST each step's event to this URL.
        #[arg(long, conflicts_with = "command")]
        url: Option<String>,
        /// Run this program with each step's event on stdin.
        #[arg(long)]
        command: Option<String>,
        /// Arguments for --command (repeat the flag).
        #[arg(long = "arg", requires = "command", allow_hyphen_values = true)]
        args: Vec<String>,
        /// Seconds a step may run.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long)]
        description: Option<String>,
    },
    /// Shows one function.
    Get {
        #[command(flatten)]
        client: AwsClientArgs,
        name: String,
    },
    /// Lists the built-in and registered functions.
    List {
        #[command(flatten)]
        client: AwsClientArgs,
    },
    /// Removes a registered function.
    Delete {
        #[command(flatten)]
        client: AwsClientArgs,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Prints a secret's value for scripts: the SecretString exactly as stored (a newline is
    /// added only on a terminal), one key of a JSON secret with --json-key, or the
    /// SecretBinary's bytes. Signed with the AWS_* credentials like the aws CLI.
    ///
    /// `export DB_PASSWORD="$(coffer secrets get prod/db --json-key password)"`
    Get {
        #[command(flatten)]
        client: AwsClientArgs,
        /// The secret's name or ARN.
        secret_id: String,
        /// The staging label to read (default AWSCURRENT).
        #[arg(long, conflicts_with = "version_id")]
        version_stage: Option<String>,
        /// The version to read.
        #[arg(long)]
        version_id: Option<String>,
        /// Print one top-level key of a JSON SecretString (strings as they are, other values
        /// as JSON).
        #[arg(long, value_name = "KEY")]
        json_key: Option<String>,
    },
    /// A secret's rotation: in progress, failed attempts and the last error, next dates.
    RotationStatus {
        #[command(flatten)]
        client: AwsClientArgs,
        secret_id: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Checks the hash chain of one device's audit files (the active file and its rotated
    /// siblings are found from the path): any changed, removed or reordered line is reported
    /// with its file and line number. Exit code 1 when the chain is broken.
    ///
    /// The chain alone cannot show lines cut from the end of the newest file (what is left is
    /// a shorter, intact chain). Give the head the server recorded to detect that: either
    /// `--expect-seq`/`--expect-hash` (from `coffer audit head`), or `--server`, which asks the
    /// running server for it (root token).
    Verify {
        /// The audit file(s).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The seq of the device's latest line, as the server reports it.
        #[arg(long, value_name = "N", requires = "expect_hash", conflicts_with = "server")]
        expect_seq: Option<u64>,
        /// The hash of that line (64 hex digits).
        #[arg(long, value_name = "HEX", requires = "expect_seq")]
        expect_hash: Option<String>,
        /// Ask the running server (COFFER_ADDR, COFFER_TOKEN) for the device's head.
        #[arg(long)]
        server: bool,
        /// The device whose head `--server` fetches (default: the only file device).
        #[arg(long, requires = "server")]
        device: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Prints each file audit device's head (`seq` and `hash` of its latest line) as the
    /// running server has it (root token): the input `verify --expect-seq/--expect-hash` needs.
    Head {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Prints the audit events (JSON lines) that match every given filter.
    Search {
        /// The audit file(s).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Caller: an ARN, user name or access key id.
        #[arg(long)]
        identity: Option<String>,
        /// Event name, e.g. GetSecretValue.
        #[arg(long)]
        event: Option<String>,
        /// Part of a resource ARN.
        #[arg(long)]
        resource: Option<String>,
        /// Events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Events at or before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// allowed, denied or failed.
        #[arg(long)]
        outcome: Option<String>,
    },
}

/// The server log's format.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`), for log shippers.
    Json,
}

#[derive(Args)]
pub struct ServerArgs {
    /// The log's format on standard error; the level comes from COFFER_LOG (`info` by default;
    /// `debug` adds one line per request: method, path, AWS target, status, microseconds).
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// Dev mode: unsealed, in-memory, root credentials printed. Never for production.
    #[arg(long)]
    pub dev: bool,
    /// Production mode: the TOML config file.
    #[arg(long, value_name = "FILE", conflicts_with = "dev")]
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8200; overrides the config file).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Dev mode: keep data in this file instead of memory (the dev credentials are kept in
    /// PATH.dev-credentials.json so a restart can unseal).
    #[arg(long, value_name = "PATH", requires = "dev")]
    pub dev_storage: Option<PathBuf>,
    /// Dev mode: use this root access key, e.g. `testing:testing` (SigV4 is still verified).
    #[arg(long, value_name = "ID:SECRET", requires = "dev")]
    pub dev_access_key: Option<String>,
    /// Dev mode: use this 12-digit account id, e.g. 123456789012.
    #[arg(long, value_name = "ID", requires = "dev")]
    pub dev_account_id: Option<String>,
    /// Dev mode: use this root token instead of a random one.
    #[arg(long, value_name = "TOKEN", requires = "dev")]
    pub dev_root_token: Option<String>,
    /// Record every request in this audit file (JSON lines, hash-chained, secrets HMAC'd);
    /// adds to the `[[audit]]` devices of the config file.
    #[arg(long, value_name = "PATH")]
    pub audit_file: Option<PathBuf>,
    /// Dev mode: enable `POST /moto-api/reset` (wipes all data) and clock control, for
    /// conformance tests.
    #[arg(long, requires = "dev")]
    pub dev_allow_reset: bool,
}

/// Where and as whom the `/v1/` commands call. Each setting falls back to Vault's variable
/// (`VAULT_ADDR`, `VAULT_CACERT`, `VAULT_TOKEN`), so a shell set up for `vault`/`bao` works.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The server's address [default: $VAULT_ADDR, else http://127.0.0.1:8200].
    #[arg(long, env = "COFFER_ADDR", global = true)]
    address: Option<String>,
    /// A PEM CA certificate to trust for the server's TLS certificate [default: $VAULT_CACERT].
    #[arg(long, env = "COFFER_CACERT", value_name = "FILE", global = true)]
    ca_cert: Option<PathBuf>,
    /// The root token (for seal and rotate) [default: $VAULT_TOKEN].
    #[arg(long, env = "COFFER_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

/// Reads a non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ClientArgs {
    /// `--address`, `COFFER_ADDR`, `VAULT_ADDR`, or the default listener.
    pub fn address(&self) -> String {
        self.address
            .clone()
            .or_else(|| env_var("VAULT_ADDR"))
            .unwrap_or_else(|| "http://127.0.0.1:8200".to_owned())
    }

    /// `--ca-cert`, `COFFER_CACERT` or `VAULT_CACERT`.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.ca_cert
            .clone()
            .or_else(|| env_var("VAULT_CACERT").map(PathBuf::from))
    }

    /// `--token`, `COFFER_TOKEN` or `VAULT_TOKEN`.
    pub fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| env_var("VAULT_TOKEN"))
    }
}

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Initializes a new server: prints the unseal keys and root credentials exactly once.
    Init {
        #[command(flatten)]
        client: ClientArgs,
        /// Number of unseal key shares.
        #[arg(long, default_value_t = 5)]
        shares: u8,
        /// Shares needed to unseal.
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Submits one unseal key share (read from stdin when not given).
    Unseal {
        #[command(flatten)]
        client: ClientArgs,
        /// The key share (base64 or hex).
        key: Option<String>,
        /// Forget the shares submitted so far.
        #[arg(long)]
        reset: bool,
    },
    /// Seals the server (needs the root token).
    Seal {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Shows whether the server is initialized and sealed. Exit code 2 when sealed.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Adds a new encryption key term; old data stays readable (needs the root token).
    Rotate {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Manages accounts (needs the root token).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Backs up and restores the whole store (Vault's `sys/storage/raft/snapshot` API).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Saves a consistent snapshot of the whole store to FILE (root token, unsealed server),
    /// while the server keeps serving. It stays encrypted: restoring it needs this server's
    /// unseal keys. Prints its entries, bytes and SHA-256 checksum.
    Save {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
    },
    /// Checks FILE, then replaces the server's whole store with it. A server that was never
    /// initialized takes it without a token; an initialized one only with --force and the
    /// root token. Afterwards the server is sealed: unseal it with the unseal keys of the
    /// server the snapshot was taken from.
    Restore {
        #[command(flatten)]
        client: ClientArgs,
        file: PathBuf,
        /// Replace an initialized server's data (`sys/storage/raft/snapshot-force`).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Creates an account; prints its id and root access key exactly once.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}
