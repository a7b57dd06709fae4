//! The `coffer` binary: `coffer server` runs the server; `coffer operator ...` initializes,
//! unseals, seals and inspects a running server over its HTTP API.
//!
//! This is the only crate that reads config files, the environment and signals, and the only
//! one that names a concrete storage backend.

mod audit_cmd;
mod cli;
mod config;
mod limits;
mod listener;
mod operator;
mod rotation_cmd;
mod server;
mod snapshot_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            cli::Command::Server(args) => server::run(args).await.map(|()| 0u8),
            cli::Command::Operator(op) => operator::run(op).await,
            cli::Command::Audit(cmd) => audit_cmd::run(cmd).await,
            cli::Command::Function(cmd) => rotation_cmd::run_function(cmd).await,
            cli::Command::Secrets(cmd) => rotation_cmd::run_secrets(cmd).await,
            cli::Command::Completions { shell } => {
                use clap::CommandFactory as _;
                clap_complete::generate(shell, &mut cli::Cli::command(), "coffer", &mut std::io::stdout());
                Ok(0)
            }
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
