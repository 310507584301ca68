//! Redis servers of a test's own (Debian's `redis-server`), on free local ports in a temporary
//! directory each: a primary, replicas, a Sentinel; killed and started again at will, which a
//! test cannot do to the shared server.
//!
//! Test support: a server that cannot be started fails the test, with the reason.
#![allow(clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const START_PATIENCE: Duration = Duration::from_secs(20);

/// A `redis-server` process this test started; killed (and its directory removed) when dropped.
pub struct RedisServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server with `args` on top of a port, a directory and no RDB snapshots.
    pub fn start(args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("herald-redis-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for Redis");
        let port = free_port();
        let mut all: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        all.extend(["--dir".to_owned(), dir.display().to_string()]);
        all.extend(args.iter().map(|s| (*s).to_owned()));
        let mut server = Self { port, dir, args: all, child: None };
        server.spawn();
        server
    }

    /// A replica of `primary`, with `args` too.
    pub fn replica_of(primary: &RedisServer, args: &[&str]) -> Self {
        let port = primary.port.to_string();
        let mut all = vec!["--replicaof", "127.0.0.1", &port];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    /// A Sentinel monitoring `primary` as `name`: quorum 1, the primary down after 1 s of
    /// silence, a failover given 5 s.
    pub fn sentinel_for(primary: &RedisServer, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("herald-sentinel-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("a temporary directory for Sentinel");
        let port = free_port();
        let config = dir.join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 5000\n\
             sentinel parallel-syncs {name} 1\n",
            dir.display(),
            primary.port
        );
        std::fs::write(&config, text).expect("the Sentinel configuration");
        let args = vec![config.display().to_string(), "--sentinel".to_owned()];
        let mut server = Self { port, dir, args, child: None };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed (Debian's redis-server package)");
        self.child = Some(child);
        let started = Instant::now();
        while self.command(&["PING"]).as_deref() != Some("PONG") {
            assert!(started.elapsed() < START_PATIENCE, "redis-server on port {} did not start", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the process with SIGKILL (a crash: no shutdown, no final save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again, on the same port, directory and arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command with `redis-cli` and returns its answer, or `None` if the server does
    /// not answer.
    pub fn command(&self, words: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(words)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is needed (Debian's redis-tools package)");
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    /// The value of `field` in `INFO <section>`.
    pub fn info(&self, section: &str, field: &str) -> Option<String> {
        let info = self.command(&["INFO", section])?;
        info.lines().find_map(|line| line.trim().strip_prefix(&format!("{field}:")).map(str::to_owned))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

/// A name unique enough for a temporary directory.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{}-{nanos}", std::process::id())
}
