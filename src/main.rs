//! `pharmatwin`: the one binary. The topology — which sources feed which sinks, and what the
//! twin and the web view read — is wired here and nowhere else.

mod accounts;
mod batch_history;
mod bench_opcua;
mod bench_web;
mod browse;
mod cli;
mod evaluate;
mod maintenance;
mod maintenance_eval;
mod topology;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear error, with its causes on the same line: what a person has to fix.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(
            // Until OPC UA security is configured, the stack complains at every start that it
            // has no private key; that line says nothing a user can act on.
            "info,opcua_core::comms::secure_channel=off,opcua_crypto=warn,opcua_client=warn,opcua_server=warn",
        ));
    fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
