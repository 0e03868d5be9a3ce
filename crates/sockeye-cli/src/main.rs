//! The `sockeye` command.

mod bench;
mod chat;
mod cluster;
mod config;
mod connect;
mod market;
mod metrics;
mod serve;
mod shutdown;
mod tls;

use clap::{Parser, Subcommand};

/// A boxed error that carries a message, for `main`.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(
    name = "sockeye",
    version,
    about = "WebSocket server, client and tools"
)]
struct Cli {
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /echo, /hello, /chat and a demo page at /.
    Serve(Box<serve::ServeArgs>),
    /// Connect to a WebSocket: stdin lines become text messages, received messages print.
    Connect(connect::ConnectArgs),
    /// Load generator: echo, rate, firehose, broadcast and idle benchmarks, one JSON line per run.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    // `serve` reads its settings first: they say which runtime to make (`--workers`).
    let result = match cli.command {
        Command::Serve(args) => {
            serve::runtime(*args).and_then(|(settings, rt)| rt.block_on(serve::run(settings)))
        }
        Command::Connect(args) => default_runtime().and_then(|rt| rt.block_on(connect::run(args))),
        Command::Bench(args) => default_runtime().and_then(|rt| rt.block_on(bench::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sockeye: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn default_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}").into())
}
