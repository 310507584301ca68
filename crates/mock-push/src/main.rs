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
    let addr = listener.local_addr()?;
    eprintln!("herald-mock-push: sends to http://{addr}/push; instructions at /mock/answers");
    eprintln!("herald-mock-push: FCM at http://{addr} (mobile.fcm_url), its token endpoint at http://{addr}/token");
    let shutdown = runtime::shutdown_on_signals();
    let fcm = mock_push::fcm::MockFcm::new(&format!("http://{addr}/token"));
    let components = vec![mock_push::Mock::default().component(), fcm.component()];
    mock_push::serve_components(listener, components, shutdown).await?;
    Ok(())
}
