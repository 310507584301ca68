//! The `herald` binary itself, with no server running: the scenario, the token command and a
//! graceful SIGTERM.

use crate::helpers::{Endpoints, SECRET, TokenVia, free_addr, jwt_settings, token};
use crate::scenario;
use runtime::{JwtVerifier, Role};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub fn herald() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env("HERALD_JWT_SECRET", SECRET)
        .env("HERALD_LOG_LEVEL", "warn")
        .env("HERALD_DATABASE_URL", "sqlite::memory:")
        .env_remove("HERALD_BUS_URL")
        .env_remove("HERALD_CONFIG")
        .kill_on_drop(true);
    command
}

struct Binary {
    child: Child,
    endpoints: Endpoints,
}

impl Binary {
    async fn spawn() -> Self {
        let addr = free_addr();
        let child = herald().env("HERALD_HTTP_ADDR", addr.to_string()).stdout(Stdio::null()).spawn().unwrap();
        let endpoints = Endpoints::new(addr, addr);
        endpoints.wait_ready(&endpoints.api.clone()).await;
        Self { child, endpoints }
    }

    /// Sends SIGTERM and returns whether the process exited successfully.
    async fn terminate(mut self) -> bool {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.unwrap().unwrap().success()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_passes_against_the_all_in_one_binary_with_no_server() {
    let app = Binary::spawn().await;
    scenario::each_connection_receives_exactly_its_frames(&app.endpoints).await;
    assert!(app.terminate().await, "herald did not exit cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_with_1001_and_exits_cleanly() {
    let app = Binary::spawn().await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    let closing = tokio::spawn(async move { ws.closed().await });
    assert!(app.terminate().await, "herald did not exit cleanly on SIGTERM");
    let frame = closing.await.unwrap().expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
}

#[tokio::test]
async fn herald_token_prints_a_token_signed_with_the_configured_secret() {
    let output = herald().args(["token", "--sub", "7", "--role", "admin", "--name", "ops"]).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = JwtVerifier::new(&jwt_settings()).verify(token.trim()).unwrap();
    assert_eq!((claims.sub, claims.name.as_str(), claims.is_admin()), (7, "ops", true));
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_a_message_naming_the_key() {
    let output = herald().env("HERALD_HTTP_ADDR", "nowhere").output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HERALD_HTTP_ADDR"), "{stderr}");
}

#[tokio::test]
async fn the_kubernetes_configuration_is_accepted_by_the_services_settings() {
    // `herald token` loads and validates every section's settings (the one configuration every
    // role reads), so it fails on any key in the manifests' env files a role would refuse.
    let deploy = format!("{}/../../deploy/k8s/base", env!("CARGO_MANIFEST_DIR"));
    let mut command = herald();
    for file in ["config.env", "secrets.placeholder.env"] {
        let text = std::fs::read_to_string(format!("{deploy}/{file}")).unwrap();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) = line.split_once('=').unwrap();
            command.env(key, value);
        }
    }
    let output = command.args(["token", "--sub", "1"]).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
