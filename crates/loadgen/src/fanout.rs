//! `herald-loadgen fanout`: N WebSocket clients, each its own user, and M broadcast notices,
//! against Herald or nchan, measured in three phases: accepting the connections (until every
//! client is proved live), idle memory, and the deliveries.
//!
//! Every client is a task that reads its socket and looks for `bench-seq:<k>` in each text
//! frame with a substring search. `sent_at[k]` (a monotonic instant, as nanoseconds since the
//! run's start) is written just before notice k's POST is sent and read by the client that
//! receives it, so a latency is "POST sent -> frame read" on one clock.

use crate::OutputArgs;
use crate::result::{AcceptPhase, DeliveryPhase, FanoutRun, MemoryPhase, Mode, PublishTally, Run, RunRecord, System};
use crate::stats::{DeliveryTally, LatencySummary, SeqSet, number_after};
use crate::usage::{ProcessSet, Usage, raise_open_files_limit};
use anyhow::{Context, Result, bail, ensure};
use futures_util::{StreamExt, stream};
use runtime::{Claims, JwtIssuer, JwtSettings, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What a measured notice's text starts with; its sequence number follows.
pub const SEQ_MARKER: &str = "bench-seq:";
/// What a warm-up notice's text starts with.
pub const WARM_MARKER: &str = "bench-warm:";
/// The first Herald user id of the clients: client i is user `FIRST_USER + i`.
pub const FIRST_USER: i64 = 1000;
/// Time between two warm-up notices.
const WARMUP_INTERVAL: Duration = Duration::from_millis(200);
/// Time left idle before the memory is read.
const IDLE_BEFORE_MEMORY: Duration = Duration::from_secs(2);

/// The server a fan-out run talks to: its URLs and answers differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Herald: `/ws?token=<JWT>`, `POST /api/admin/system/notice` with an admin token.
    Herald,
    /// nchan: `/sub?user=<i>`, `POST /pub` with the text as the body.
    Nchan,
}

/// `herald-loadgen fanout`'s arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct FanoutArgs {
    /// Which server protocol to speak.
    #[arg(long, value_enum)]
    pub target: Target,
    /// The report column (default: `nchan`, or `herald-all-in-one` for Herald).
    #[arg(long, value_enum)]
    pub system: Option<System>,
    /// WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws` or `ws://127.0.0.1:8090/sub`.
    #[arg(long)]
    pub ws_url: String,
    /// Publish endpoint, e.g. `http://127.0.0.1:8080/api/admin/system/notice` or `.../pub`.
    #[arg(long)]
    pub publish_url: String,
    /// WebSocket clients, each its own user.
    #[arg(long, default_value_t = 1000)]
    pub clients: u32,
    /// Measured notices.
    #[arg(long, default_value_t = 100)]
    pub notices: u32,
    /// `burst`: as fast as possible; `paced`: one in flight.
    #[arg(long, value_enum, default_value_t = Mode::Burst)]
    pub mode: Mode,
    /// Posts in flight at once in burst mode.
    #[arg(long, default_value_t = 8)]
    pub publish_concurrency: u32,
    /// The server's processes (comma-separated): CPU and RSS are summed over them.
    #[arg(long, value_delimiter = ',', required = true)]
    pub server_pids: Vec<u32>,
    /// A broker's processes, measured separately (RabbitMQ's beam.smp for Herald's roles).
    #[arg(long, value_delimiter = ',')]
    pub broker_pids: Vec<u32>,
    /// Herald's JWT secret (HERALD_JWT_SECRET of the server), to mint the tokens.
    #[arg(long)]
    pub token_secret: Option<String>,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Give up on deliveries after this many seconds without progress.
    #[arg(long, default_value_t = 15)]
    pub stall_secs: u64,
    /// Give up when not every client is live after this many seconds of warm-up.
    #[arg(long, default_value_t = 60)]
    pub live_timeout_secs: u64,
    /// Output and labels.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl FanoutArgs {
    fn system(&self) -> System {
        self.system.unwrap_or(match self.target {
            Target::Herald => System::HeraldAllInOne,
            Target::Nchan => System::Nchan,
        })
    }
}

/// Runs one fan-out measurement; a failure becomes an invalid record, never a number.
pub async fn run(args: &FanoutArgs) -> RunRecord {
    let started_unix = crate::unix_now();
    let mut measured = FanoutRun {
        mode: args.mode,
        clients: args.clients,
        notices: args.notices,
        publish_concurrency: args.publish_concurrency,
        accept: None,
        memory: None,
        deliveries: None,
        publish: PublishTally::default(),
        disconnects: 0,
    };
    let failure = measure(args, &mut measured).await.err().map(|err| format!("{err:#}"));
    let invalid_reason = failure.or_else(|| verdict(&measured));
    print_summary(args, &measured);
    RunRecord {
        system: args.system(),
        repeat: args.output.repeat,
        valid: invalid_reason.is_none(),
        invalid_reason,
        idle_gate: args.output.idle_gate,
        started_unix,
        run: Run::Fanout(measured),
    }
}

/// Why a completed run cannot be reported as a number, if it cannot: any loss, any duplicate,
/// any 429 or 503, any other failed publish, any client disconnected.
pub fn verdict(run: &FanoutRun) -> Option<String> {
    let mut reasons = Vec::new();
    match &run.deliveries {
        None => reasons.push("no delivery phase".to_owned()),
        Some(d) => {
            if d.lost > 0 {
                reasons.push(format!("lost {} of {} deliveries", d.lost, d.tally.expected));
            }
            if d.duplicates > 0 {
                reasons.push(format!("{} duplicate deliveries", d.duplicates));
            }
        }
    }
    let publish = &run.publish;
    if publish.status_429 > 0 {
        reasons.push(format!("{} publishes answered 429", publish.status_429));
    }
    if publish.status_503 > 0 {
        reasons.push(format!("{} publishes answered 503", publish.status_503));
    }
    if publish.other > 0 {
        let first = publish.first_other.as_deref().unwrap_or("?");
        reasons.push(format!("{} publishes failed (first: {first})", publish.other));
    }
    if run.disconnects > 0 {
        reasons.push(format!("{} clients disconnected", run.disconnects));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Posts notices to the server under test.
struct Publisher {
    http: reqwest::Client,
    url: String,
    target: Target,
    admin_token: Option<String>,
}

impl Publisher {
    /// Posts `text` and returns the status (the body is read so the connection is kept).
    async fn post(&self, text: &str) -> Result<u16, String> {
        let request = match self.target {
            Target::Herald => self
                .http
                .post(&self.url)
                .bearer_auth(self.admin_token.as_deref().unwrap_or_default())
                .json(&serde_json::json!({"content": text, "type": "system_notice", "target": "all"})),
            Target::Nchan => {
                self.http.post(&self.url).header(reqwest::header::CONTENT_TYPE, "text/plain").body(text.to_owned())
            }
        };
        let response = request.send().await.map_err(|err| format!("{err:#}"))?;
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        Ok(status)
    }

    /// Whether `status` is the success this server answers a publish with.
    fn accepts(target: Target, status: u16) -> bool {
        match target {
            Target::Herald => status == 200,
            // 201 when the channel has subscribers, 202 when it has none.
            Target::Nchan => status == 201 || status == 202,
        }
    }
}

/// What the clients and the coordinator share: when each notice was sent, who has it.
struct Board {
    start: Instant,
    clients: u32,
    /// Nanoseconds since `start` + 1 at which notice k's POST was sent; 0 until then.
    sent_at: Vec<AtomicU64>,
    /// Clients that have notice k.
    have: Vec<AtomicU32>,
    unique: AtomicU64,
    last_delivery_ns: AtomicU64,
    live: AtomicU32,
    disconnects: AtomicU32,
    /// Notified when a notice reaches every client, when every client has every notice, when
    /// every client is live, and when a client disconnects.
    progress: Notify,
}

impl Board {
    fn new(clients: u32, notices: u32) -> Self {
        Self {
            start: Instant::now(),
            clients,
            sent_at: (0..notices).map(|_| AtomicU64::new(0)).collect(),
            have: (0..notices).map(|_| AtomicU32::new(0)).collect(),
            unique: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            live: AtomicU32::new(0),
            disconnects: AtomicU32::new(0),
            progress: Notify::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn expected(&self) -> u64 {
        u64::from(self.clients) * self.have.len() as u64
    }

    fn mark_sent(&self, seq: u32) {
        self.sent_at[seq as usize].store(self.now_ns() + 1, Ordering::Release);
    }

    /// Records a client's first copy of `seq` at `now_ns`; returns its latency in µs.
    fn delivered(&self, seq: u32, now_ns: u64) -> Option<u32> {
        self.last_delivery_ns.fetch_max(now_ns, Ordering::Relaxed);
        let have = self.have[seq as usize].fetch_add(1, Ordering::AcqRel) + 1;
        let unique = self.unique.fetch_add(1, Ordering::AcqRel) + 1;
        if have == self.clients || unique == self.expected() {
            self.progress.notify_one();
        }
        let sent = self.sent_at[seq as usize].load(Ordering::Acquire);
        (sent > 0).then(|| (now_ns.saturating_sub(sent - 1) / 1000).min(u64::from(u32::MAX)) as u32)
    }

    fn became_live(&self) {
        if self.live.fetch_add(1, Ordering::AcqRel) + 1 == self.clients {
            self.progress.notify_one();
        }
    }

    fn disconnected(&self) {
        self.disconnects.fetch_add(1, Ordering::AcqRel);
        self.progress.notify_one();
    }

    /// Waits until `done` holds; false when a client disconnected or nothing moved for `stall`.
    async fn wait_until(&self, done: impl Fn(&Board) -> bool, stall: Duration) -> bool {
        let mut last_unique = self.unique.load(Ordering::Acquire);
        let mut last_move = Instant::now();
        loop {
            let notified = self.progress.notified();
            if done(self) {
                return true;
            }
            if self.disconnects.load(Ordering::Acquire) > 0 {
                return false;
            }
            let unique = self.unique.load(Ordering::Acquire);
            if unique != last_unique {
                (last_unique, last_move) = (unique, Instant::now());
            } else if last_move.elapsed() >= stall {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
        }
    }
}

/// What one client saw.
struct ClientOutcome {
    seen: SeqSet,
    latencies_us: Vec<u32>,
    ended: Option<String>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One client: reads frames until told to stop or the server ends the connection. Answers
/// nothing (tungstenite answers the server's pings by itself).
async fn client(mut ws: Socket, board: Arc<Board>, mut stop: watch::Receiver<bool>) -> ClientOutcome {
    let notices = board.have.len() as u32;
    let mut outcome = ClientOutcome { seen: SeqSet::new(notices), latencies_us: Vec::new(), ended: None };
    let mut live = false;
    loop {
        let message = tokio::select! {
            biased;
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let text = text.as_str();
                if let Some(seq) = number_after(text, SEQ_MARKER) {
                    let now = board.now_ns();
                    if outcome.seen.record(seq)
                        && let Some(latency) = board.delivered(seq, now)
                    {
                        outcome.latencies_us.push(latency);
                    }
                } else if !live && text.contains(WARM_MARKER) {
                    live = true;
                    board.became_live();
                }
            }
            Some(Ok(Message::Close(frame))) => {
                outcome.ended = Some(format!("closed by the server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                outcome.ended = Some(err.to_string());
                break;
            }
            None => {
                outcome.ended = Some("the connection ended".to_owned());
                break;
            }
        }
    }
    if outcome.ended.is_some() {
        board.disconnected();
    }
    outcome
}

/// The URL client `i` connects to.
fn client_url(args: &FanoutArgs, issuer: Option<&JwtIssuer>, i: u32) -> Result<String> {
    let separator = if args.ws_url.contains('?') { '&' } else { '?' };
    Ok(match (args.target, issuer) {
        (Target::Herald, Some(issuer)) => {
            let claims =
                Claims::new(FIRST_USER + i64::from(i), format!("bench{i}"), Role::User, Duration::from_secs(3600));
            format!("{}{separator}token={}", args.ws_url, issuer.issue(&claims)?)
        }
        (Target::Herald, None) => bail!("--token-secret is required for Herald"),
        (Target::Nchan, _) => format!("{}{separator}user={i}", args.ws_url),
    })
}

fn sample_optional(set: &ProcessSet) -> Result<Option<Usage>> {
    if set.is_empty() { Ok(None) } else { set.sample().map(Some) }
}

fn cpu_between(before: Option<Usage>, after: Option<Usage>) -> Option<f64> {
    Some(after?.cpu_since(&before?))
}

async fn measure(args: &FanoutArgs, run: &mut FanoutRun) -> Result<()> {
    ensure!(args.clients > 0 && args.notices > 0, "--clients and --notices must be positive");
    let wanted_files = u64::from(args.clients) + 512;
    let limit = raise_open_files_limit(wanted_files);
    ensure!(
        limit >= u64::from(args.clients) + 64,
        "the open-file limit is {limit}, too low for {} clients (raise ulimit -n)",
        args.clients
    );
    let issuer = match (args.target, &args.token_secret) {
        (Target::Herald, Some(secret)) => {
            Some(JwtIssuer::new(&JwtSettings { secret: secret.clone().into(), ..JwtSettings::default() }))
        }
        _ => None,
    };
    let admin_token = match &issuer {
        Some(issuer) => Some(issuer.issue(&Claims::new(1, "bench-admin", Role::Admin, Duration::from_secs(3600)))?),
        None => None,
    };
    let urls = (0..args.clients).map(|i| client_url(args, issuer.as_ref(), i)).collect::<Result<Vec<_>>>()?;
    let publisher = Publisher {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(args.publish_concurrency.max(1) as usize)
            .build()?,
        url: args.publish_url.clone(),
        target: args.target,
        admin_token,
    };
    let servers = ProcessSet::new(args.server_pids.clone());
    let broker = ProcessSet::new(args.broker_pids.clone());
    let board = Arc::new(Board::new(args.clients, args.notices));
    let (stop, stopped) = watch::channel(false);

    // Phase 1: accept, from before the first connect until every client is live.
    let before = servers.sample().context("measuring the server before connecting")?;
    let broker_before = sample_optional(&broker)?;
    let connect_started = Instant::now();
    // Small buffers: the clients only read short frames, and 10k of tungstenite's default
    // 128 KiB would cost the load generator a gigabyte.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let mut connects = stream::iter(urls)
        .map(|url| async move {
            let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
            match tokio::time::timeout(Duration::from_secs(30), connect).await {
                Ok(Ok((ws, _))) => Ok(ws),
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err("timed out after 30 s".to_owned()),
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1));
    let mut clients = Vec::with_capacity(args.clients as usize);
    let (mut failed, mut first_failure) = (0u32, None);
    while let Some(connected) = connects.next().await {
        match connected {
            Ok(ws) => clients.push(tokio::spawn(client(ws, board.clone(), stopped.clone()))),
            Err(err) => {
                failed += 1;
                first_failure.get_or_insert(err);
            }
        }
    }
    drop(connects);
    if let Some(err) = first_failure {
        bail!("{failed} of {} connections failed (first: {err})", args.clients);
    }
    let connect_wall_secs = connect_started.elapsed().as_secs_f64();
    let live_deadline = Instant::now() + Duration::from_secs(args.live_timeout_secs);
    let mut warmup_notices = 0u32;
    while board.live.load(Ordering::Acquire) < args.clients {
        ensure!(
            Instant::now() < live_deadline,
            "only {} of {} clients received a warm-up notice within {} s",
            board.live.load(Ordering::Acquire),
            args.clients,
            args.live_timeout_secs
        );
        ensure!(board.disconnects.load(Ordering::Acquire) == 0, "clients disconnected during the warm-up");
        let posted = Instant::now();
        let answer = publisher.post(&format!("{WARM_MARKER}{warmup_notices}")).await;
        warmup_notices += 1;
        if let Ok(status) = answer
            && !Publisher::accepts(args.target, status)
        {
            bail!("a warm-up publish was answered {status}");
        }
        run.publish.count(answer, |status| Publisher::accepts(args.target, status));
        let until = posted + WARMUP_INTERVAL;
        while board.live.load(Ordering::Acquire) < args.clients && Instant::now() < until {
            let notified = board.progress.notified();
            let _ = tokio::time::timeout_at(until.into(), notified).await;
        }
    }
    let live = servers.sample()?;
    let broker_live = sample_optional(&broker)?;
    run.accept = Some(AcceptPhase {
        cpu_secs: live.cpu_since(&before),
        broker_cpu_secs: cpu_between(broker_before, broker_live),
        connect_wall_secs,
        live_wall_secs: connect_started.elapsed().as_secs_f64(),
        warmup_notices,
    });

    // Phase 2: idle memory.
    tokio::time::sleep(IDLE_BEFORE_MEMORY).await;
    let idle = servers.sample()?;
    run.memory = Some(MemoryPhase {
        rss_before_kib: before.rss_kib,
        rss_after_kib: idle.rss_kib,
        kib_per_connection: (idle.rss_kib as f64 - before.rss_kib as f64) / f64::from(args.clients),
    });

    // Phase 3: the measured notices.
    let stall = Duration::from_secs(args.stall_secs);
    let start = servers.sample()?;
    let broker_start = sample_optional(&broker)?;
    let start_ns = board.now_ns();
    let accepted_before = run.publish.accepted;
    let accepted = |status: u16| Publisher::accepts(args.target, status);
    match args.mode {
        Mode::Burst => {
            let answers: Vec<_> = stream::iter(0..args.notices)
                .map(|seq| {
                    let (publisher, board) = (&publisher, &board);
                    async move {
                        board.mark_sent(seq);
                        publisher.post(&format!("{SEQ_MARKER}{seq}")).await
                    }
                })
                .buffer_unordered(args.publish_concurrency.max(1) as usize)
                .collect()
                .await;
            answers.into_iter().for_each(|answer| run.publish.count(answer, accepted));
            // Only what the server accepted can arrive; a refusal already makes the run invalid.
            let reachable = u64::from(args.clients) * (run.publish.accepted - accepted_before);
            board.wait_until(|b| b.unique.load(Ordering::Acquire) >= reachable, stall).await;
        }
        Mode::Paced => {
            for seq in 0..args.notices {
                board.mark_sent(seq);
                let answer = publisher.post(&format!("{SEQ_MARKER}{seq}")).await;
                let ok = matches!(answer, Ok(status) if accepted(status));
                run.publish.count(answer, accepted);
                if ok {
                    let everyone = |b: &Board| b.have[seq as usize].load(Ordering::Acquire) >= b.clients;
                    if !board.wait_until(everyone, stall).await {
                        break;
                    }
                }
            }
        }
    }
    let end = servers.sample()?;
    let broker_end = sample_optional(&broker)?;
    let end_ns = board.now_ns();

    stop.send_replace(true);
    let mut tally = DeliveryTally::default();
    let mut latencies = Vec::with_capacity((board.expected()).min(20_000_000) as usize);
    let mut first_end = None;
    for outcome in futures_util::future::join_all(clients).await {
        let outcome = outcome.context("a client task panicked")?;
        tally.add(outcome.seen.tally());
        latencies.extend(outcome.latencies_us);
        if let Some(ended) = outcome.ended {
            run.disconnects += 1;
            first_end.get_or_insert(ended);
        }
    }
    if let Some(ended) = first_end {
        eprintln!("fanout: {} clients disconnected (first: {ended})", run.disconnects);
    }
    let last = board.last_delivery_ns.load(Ordering::Acquire).max(start_ns);
    let wall_secs = if tally.unique > 0 { (last - start_ns) as f64 / 1e9 } else { (end_ns - start_ns) as f64 / 1e9 };
    let deliveries = tally.unique.max(1) as f64;
    let cpu_secs = end.cpu_since(&start);
    let broker_cpu_secs = cpu_between(broker_start, broker_end);
    run.deliveries = Some(DeliveryPhase {
        cpu_secs,
        cpu_per_delivery_us: cpu_secs * 1e6 / deliveries,
        broker_cpu_secs,
        broker_cpu_per_delivery_us: broker_cpu_secs.map(|cpu| cpu * 1e6 / deliveries),
        tally,
        lost: tally.lost(),
        duplicates: tally.duplicates(),
        latency: LatencySummary::from_micros(latencies),
        wall_secs,
        deliveries_per_sec: if wall_secs > 0.0 { tally.unique as f64 / wall_secs } else { 0.0 },
    });
    Ok(())
}

fn print_summary(args: &FanoutArgs, run: &FanoutRun) {
    println!("fanout {} {} clients={} notices={}:", args.system().title(), run.mode.name(), run.clients, run.notices);
    if let Some(a) = &run.accept {
        println!(
            "  accept: {:.3} s server CPU (warm-up included: {} notices), connected in {:.2} s, live in {:.2} s",
            a.cpu_secs, a.warmup_notices, a.connect_wall_secs, a.live_wall_secs
        );
    }
    if let Some(m) = &run.memory {
        println!(
            "  idle memory: {:.2} KiB per connection (RSS {} -> {} KiB; KiB = 1024 bytes)",
            m.kib_per_connection, m.rss_before_kib, m.rss_after_kib
        );
    }
    if let Some(d) = &run.deliveries {
        let latency = d.latency.map_or_else(
            || "no latency samples".to_owned(),
            |l| format!("latency POST->frame p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", l.p50_ms, l.p99_ms, l.max_ms),
        );
        println!(
            "  deliveries: {:.2} µs server CPU per delivery ({:.3} s), {latency}, {} in {:.2} s ({:.0}/s), lost {}, duplicates {}",
            d.cpu_per_delivery_us, d.cpu_secs, d.tally.unique, d.wall_secs, d.deliveries_per_sec, d.lost, d.duplicates
        );
        if let Some(broker) = d.broker_cpu_per_delivery_us {
            println!("  broker (not included above): {broker:.2} µs CPU per delivery");
        }
    }
    let p = &run.publish;
    println!(
        "  publishes: {} accepted, {} x 429, {} x 503, {} other; {} clients disconnected",
        p.accepted, p.status_429, p.status_503, p.other, run.disconnects
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(lost: u64, duplicates: u64) -> FanoutRun {
        let tally =
            DeliveryTally { expected: 100, received: 100 - lost + duplicates, unique: 100 - lost, out_of_range: 0 };
        FanoutRun {
            mode: Mode::Burst,
            clients: 10,
            notices: 10,
            publish_concurrency: 8,
            accept: None,
            memory: None,
            deliveries: Some(DeliveryPhase {
                cpu_secs: 1.0,
                cpu_per_delivery_us: 10.0,
                broker_cpu_secs: None,
                broker_cpu_per_delivery_us: None,
                tally,
                lost: tally.lost(),
                duplicates: tally.duplicates(),
                latency: None,
                wall_secs: 1.0,
                deliveries_per_sec: 100.0,
            }),
            publish: PublishTally { accepted: 11, ..PublishTally::default() },
            disconnects: 0,
        }
    }

    #[test]
    fn a_clean_run_is_valid() {
        assert_eq!(verdict(&completed(0, 0)), None);
    }

    #[test]
    fn loss_duplicates_refusals_and_disconnects_each_invalidate_a_run() {
        assert_eq!(verdict(&completed(3, 0)).unwrap(), "lost 3 of 100 deliveries");
        assert_eq!(verdict(&completed(0, 2)).unwrap(), "2 duplicate deliveries");
        let mut refused = completed(0, 0);
        refused.publish.status_503 = 1;
        refused.publish.status_429 = 2;
        assert_eq!(verdict(&refused).unwrap(), "2 publishes answered 429; 1 publishes answered 503");
        let mut failed = completed(0, 0);
        failed.publish.count(Ok(500), |s| s == 200);
        assert_eq!(verdict(&failed).unwrap(), "1 publishes failed (first: HTTP 500)");
        let mut dropped = completed(0, 0);
        dropped.disconnects = 4;
        assert_eq!(verdict(&dropped).unwrap(), "4 clients disconnected");
        let mut unfinished = completed(0, 0);
        unfinished.deliveries = None;
        assert_eq!(verdict(&unfinished).unwrap(), "no delivery phase");
    }

    #[test]
    fn the_board_times_a_delivery_from_its_post_and_counts_it_once_per_client() {
        let board = Board::new(2, 3);
        assert_eq!(board.expected(), 6);
        board.sent_at[1].store(1_000_001, Ordering::Release);
        assert_eq!(board.delivered(1, 3_500_000), Some(2500));
        assert_eq!(board.delivered(1, 4_000_000), Some(3000));
        assert_eq!(board.have[1].load(Ordering::Acquire), 2);
        assert_eq!(board.delivered(2, 10), None, "a notice not yet marked sent has no latency");
    }

    #[test]
    fn every_client_connects_as_its_own_user() {
        let args = FanoutArgs {
            target: Target::Nchan,
            system: None,
            ws_url: "ws://127.0.0.1:1/sub".into(),
            publish_url: "http://127.0.0.1:1/pub".into(),
            clients: 2,
            notices: 1,
            mode: Mode::Paced,
            publish_concurrency: 1,
            server_pids: vec![1],
            broker_pids: vec![],
            token_secret: None,
            connect_concurrency: 1,
            stall_secs: 1,
            live_timeout_secs: 1,
            output: OutputArgs { json: None, repeat: 1, idle_gate: Default::default() },
        };
        assert_eq!(client_url(&args, None, 7).unwrap(), "ws://127.0.0.1:1/sub?user=7");
        assert_eq!(args.system(), System::Nchan);
        let herald = FanoutArgs { target: Target::Herald, ws_url: "ws://h/ws".into(), ..args };
        assert!(client_url(&herald, None, 0).is_err(), "Herald needs the secret");
        let issuer = JwtIssuer::new(&JwtSettings {
            secret: "a-bench-secret-of-thirty-two-bytes".to_owned().into(),
            ..JwtSettings::default()
        });
        assert!(client_url(&herald, Some(&issuer), 0).unwrap().starts_with("ws://h/ws?token=ey"));
        assert_eq!(herald.system(), System::HeraldAllInOne);
    }
}
