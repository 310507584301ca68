//! `herald-mock-push`: the mock push provider on its own (see the library's documentation).

use clap::Parser;
use std::net::SocketAddr;

/// A mock push provider: records sends and answers as told (see /mock/answers).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9300", env = "HERALD_MOCK_PUSH_ADDR")]
    addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = std::net::TcpListener::bind(cli.addr)?;
    eprintln!("herald-mock-push: sends to http://{}/push; instructions at /mock/answers", listener.local_addr()?);
    let shutdown = runtime::shutdown_on_signals();
    mock_push::serve(listener, mock_push::Mock::default(), shutdown).await?;
    Ok(())
}
