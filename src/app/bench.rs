//! `cashmatch bench serve`: the service's latency and throughput over real gRPC on loopback.
//!
//! A server runs in this process on a fresh SQLite store holding a generated ledger (or, with
//! `--store`, on a fresh PostgreSQL database as one or several replicas, each with its own
//! store connection, change feed and gRPC port); clients in the same process then (1) send
//! single payments at a steady rate (open loop: latency is measured from each request's
//! scheduled time, so a stall is not hidden by sending less) and report p50/p99, and (2) stream
//! payments as fast as the service takes them and report payments per second. Connections are
//! spread over the replicas, as a gRPC load balancer would. Client, servers and (on loopback)
//! the database share the machine's cores.
//!
//! The postings journal is read to its end before and after each phase: what a phase wrote,
//! over its time, is the postings written per second. A `WatchPostings` client subscribed from
//! the journal's end before the steady phase stamps each posting it receives, which gives the
//! delivery lag an AR system following the journal sees at that rate.

use crate::domain::Payment;
use crate::engine::EngineConfig;
use crate::grpc::pb::match_request::Input;
use crate::grpc::pb::matching_client::MatchingClient;
use crate::grpc::pb::postings_client::PostingsClient;
use crate::grpc::pb::{self, MatchRequest};
use crate::metrics::Metrics;
use crate::service::{Limits, Service};
use crate::store::postgres::testdb::TestDb;
use crate::store::{PgStore, SqliteStore, Store, StoreUrl};
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Client connections the steady-rate phase spreads its requests over.
const CONNECTIONS: usize = 8;
/// Concurrent streams in the throughput phase.
const STREAMS: usize = 4;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub invoices: usize,
    /// Single-payment requests per second in the latency phase.
    pub rate: u32,
    pub seconds: u32,
    /// Payments sent on streams in the throughput phase.
    pub streamed: usize,
    pub seed: u64,
    pub durability: crate::store::Durability,
    /// A PostgreSQL server (`postgres://USER@HOST:PORT/DB`, the database only connected to):
    /// the bench creates a database of its own there and drops it after. `None`: SQLite.
    pub store: Option<StoreUrl>,
    /// Replicas serving one PostgreSQL database (1 on SQLite).
    pub replicas: usize,
}

/// Synced writes timed by [`synced_write`].
const SYNC_PROBES: usize = 64;

/// The median time of a synced 4 KiB write in `dir`. Every commit under full durability waits
/// for one or more, and on the shared disks of the machines this runs on it has measured
/// 0.1-0.2 ms one day and 3.4-3.7 ms another: more than any change to the code moves the
/// latencies, so the figures are only comparable beside it.
fn synced_write(dir: &std::path::Path) -> anyhow::Result<Duration> {
    use std::io::Write as _;
    let path = dir.join("sync-probe");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let page = [0u8; 4096];
    let mut times = Vec::with_capacity(SYNC_PROBES);
    for _ in 0..SYNC_PROBES {
        let t = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        times.push(t.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    times.sort_unstable();
    Ok(percentile(&times, 0.5))
}

/// Where a bench's store lives; dropping a PostgreSQL one drops its database.
pub(super) enum Where {
    Sqlite(std::path::PathBuf),
    Postgres(TestDb),
}

impl Where {
    /// A service on the store, restored from what it holds.
    async fn service(&self, durability: crate::store::Durability) -> anyhow::Result<Arc<Service>> {
        let store: Arc<dyn Store> = match self {
            Where::Sqlite(dir) => Arc::new(SqliteStore::open_with(dir, durability)?),
            Where::Postgres(db) => Arc::new(PgStore::open_async(&db.url).await?),
        };
        let service =
            Service::open_shared(store, None, EngineConfig::default(), Limits::default()).await?;
        Ok(Arc::new(service))
    }
}

/// CPU time of this process and of the store's writer thread, from `/proc` (Linux only; `None`
/// elsewhere). The machines the bench runs on are shared and their disks' sync time varies, so
/// CPU per payment compares builds where wall time alone would not.
#[derive(Clone, Copy)]
struct CpuTimes {
    process: Duration,
    writer: Duration,
}

impl CpuTimes {
    /// The writer thread's name as `/proc` shows it (cut to 15 bytes): `cashmatch-store` on
    /// SQLite, `cashmatch-pg-st…` on PostgreSQL.
    const WRITERS: [&'static str; 2] = ["cashmatch-store", "cashmatch-pg-st"];

    fn now() -> Option<CpuTimes> {
        // utime and stime, fields 14 and 15, in USER_HZ (100 a second on Linux); the command
        // name (field 2) may hold spaces, so fields are counted after its closing parenthesis.
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let ticks: u64 = rest.next()?.parse::<u64>().ok()? + rest.next()?.parse::<u64>().ok()?;
        let mut writer = Duration::ZERO;
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !Self::WRITERS.contains(&comm.trim_end()) {
                continue;
            }
            // schedstat: nanoseconds on the CPU, then waiting, then time slices.
            let sched = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            if let Some(ns) = sched.split_whitespace().next().and_then(|n| n.parse().ok()) {
                writer += Duration::from_nanos(ns);
            }
        }
        Some(CpuTimes {
            process: Duration::from_millis(ticks * 10),
            writer,
        })
    }

    /// Microseconds of CPU per item between `self` and `later`: (process, writer thread).
    fn per_item(self, later: CpuTimes, items: usize) -> (f64, f64) {
        let us = |a: Duration, b: Duration| {
            b.saturating_sub(a).as_secs_f64() * 1e6 / items.max(1) as f64
        };
        (
            us(self.process, later.process),
            us(self.writer, later.writer),
        )
    }
}

fn request(p: &Payment) -> MatchRequest {
    MatchRequest {
        input: Some(Input::Payment(p.clone().into())),
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A service on a fresh store holding a generated ledger, and the payments generated with it.
pub(super) struct Generated {
    pub(super) service: Arc<Service>,
    pub(super) payments: Vec<Payment>,
    /// Ledger items stored.
    pub(super) invoices: usize,
    /// Seconds the ledger took to store and index.
    pub(super) load_secs: f64,
}

/// Generates a world with `invoices` ledger items and `payments` payments (not measured), and
/// loads its ledger into a service on the fresh store `at` (measured).
pub(super) async fn generated_service(
    invoices: usize,
    payments: usize,
    seed: u64,
    durability: crate::store::Durability,
    at: &Where,
) -> anyhow::Result<Generated> {
    let t = Instant::now();
    let world = tokio::task::spawn_blocking(move || {
        crate::synth::world_with_ledger(
            invoices,
            payments,
            seed,
            crate::synth::CustomerSizes::Typical,
        )
    })
    .await?;
    let (customers, split) = (world.customers, world.test);
    eprintln!(
        "generated {} customers, {} ledger items, {} payments in {:.1}s (not measured)",
        customers.len(),
        split.invoices.len(),
        split.payments.len(),
        t.elapsed().as_secs_f64()
    );
    if let Where::Sqlite(dir) = at {
        let _ = std::fs::remove_dir_all(dir);
    }
    let service = at.service(durability).await?;
    let t = Instant::now();
    let n_invoices = split.invoices.len();
    let loaded = service
        .upsert(
            customers
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i as u64, c))
                .collect(),
            split
                .invoices
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v))
                .collect(),
        )
        .await?;
    anyhow::ensure!(
        loaded.rejected.is_empty(),
        "generated ledger rejected: {:?}",
        loaded.rejected.first()
    );
    Ok(Generated {
        service,
        payments: split.payments,
        invoices: n_invoices,
        load_secs: t.elapsed().as_secs_f64(),
    })
}

/// The last posting sequence the store holds, found by reading the journal on from `after` (a
/// sequence known to be in it) as `cashmatch postings` exports it.
async fn journal_head(service: &Service, after: u64) -> anyhow::Result<u64> {
    let (_, last) = crate::store::journal::export_postings(
        service.store(),
        after,
        crate::store::journal::JournalFormat::Csv,
        std::io::sink(),
    )
    .await?;
    Ok(last)
}

/// A posting as a `WatchPostings` client received it.
struct Received {
    payment_id: String,
    /// The posting's recorded time (`at`, milliseconds): when the service made it, before its
    /// transaction committed.
    recorded: chrono::DateTime<chrono::Utc>,
    /// When the client had it.
    received: chrono::DateTime<chrono::Utc>,
}

/// A `WatchPostings` client following the journal from a sequence, as an AR system would,
/// stamping each posting as it arrives.
struct PostingsWatch {
    until: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<Received>>>,
}

impl PostingsWatch {
    /// Subscribes at `uri` to the postings after sequence `after`; the stream is open when this
    /// returns, so that nothing written after it is missed.
    async fn start(uri: &str, after: u64) -> anyhow::Result<PostingsWatch> {
        let ch = Channel::from_shared(uri.to_string())?
            .connect()
            .await
            .context("connecting the postings watcher")?;
        let mut stream = PostingsClient::new(ch)
            .watch_postings(pb::WatchPostingsRequest {
                after_sequence: after,
            })
            .await?
            .into_inner();
        let (until, mut stop_at) = tokio::sync::watch::channel(u64::MAX);
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut last = after;
            while last < *stop_at.borrow_and_update() {
                tokio::select! {
                    m = stream.message() => {
                        let Some(p) = m? else { break };
                        let received = crate::store::now();
                        let recorded = chrono::DateTime::parse_from_rfc3339(&p.at)
                            .with_context(|| format!("posting {}: at {:?}", p.sequence, p.at))?
                            .with_timezone(&chrono::Utc);
                        last = p.sequence;
                        got.push(Received { payment_id: p.payment_id, recorded, received });
                    }
                    changed = stop_at.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
            Ok(got)
        });
        Ok(PostingsWatch { until, task })
    }

    /// Waits until the watcher has every posting up to sequence `last` (at most `wait`), then
    /// returns what it received.
    async fn finish(self, last: u64, wait: Duration) -> anyhow::Result<Vec<Received>> {
        let _ = self.until.send(last);
        let got = tokio::time::timeout(wait, self.task)
            .await
            .context("the postings watcher did not catch up with the journal")???;
        Ok(got)
    }
}

/// WatchPostings delivery lag in milliseconds, sorted: from each posting's recorded time, and
/// from the moment the client that sent its payment had the response (the first posting of each
/// payment; negative when the stream was first).
fn delivery_lags(
    got: &[Received],
    answered: &std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
) -> (Vec<f64>, Vec<f64>) {
    let ms = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3;
    let mut from_recorded: Vec<f64> = got.iter().map(|r| ms(r.received - r.recorded)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut from_answer: Vec<f64> = got
        .iter()
        .filter(|r| seen.insert(r.payment_id.as_str()))
        .filter_map(|r| answered.get(&r.payment_id).map(|a| ms(r.received - *a)))
        .collect();
    from_recorded.sort_unstable_by(f64::total_cmp);
    from_answer.sort_unstable_by(f64::total_cmp);
    (from_recorded, from_answer)
}

/// `p50 …, p99 …, max … (n what)` of sorted milliseconds.
fn lag_row(sorted: &[f64], what: &str) -> String {
    let q = |q: f64| {
        if sorted.is_empty() {
            return 0.0;
        }
        sorted[(((sorted.len() - 1) as f64) * q).round() as usize]
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} {what})",
        q(0.5),
        q(0.99),
        sorted.last().copied().unwrap_or(0.0),
        sorted.len()
    )
}

/// Runs both phases and prints a table of figures.
pub fn run(config: BenchConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(config))
}

async fn run_async(cfg: BenchConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        cfg.replicas >= 1 && (cfg.store.is_some() || cfg.replicas == 1),
        "--replicas {}: one or more, and more than one only on PostgreSQL (--store)",
        cfg.replicas
    );
    let steady = (cfg.rate as usize) * (cfg.seconds as usize);
    let at = match &cfg.store {
        Some(url) => Where::Postgres(
            TestDb::create_on(url.as_str(), "bench_serve")
                .map_err(|e| anyhow::anyhow!("a database for the bench on {url:?}: {e}"))?,
        ),
        None => Where::Sqlite(
            std::env::temp_dir().join(format!("cashmatch-bench-serve-{}", std::process::id())),
        ),
    };
    let bench = generated_service(
        cfg.invoices,
        steady + cfg.streamed,
        cfg.seed,
        cfg.durability,
        &at,
    )
    .await?;
    let (service, n_invoices, load_secs) = (bench.service, bench.invoices, bench.load_secs);
    let split_payments = bench.payments;
    eprintln!("ledger stored and indexed in {load_secs:.1}s");

    // The other replicas start on the stored ledger, as a replica joining does.
    let mut replicas = vec![service];
    for _ in 1..cfg.replicas {
        replicas.push(at.service(cfg.durability).await?);
    }
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::with_capacity(replicas.len());
    let mut uris = Vec::with_capacity(replicas.len());
    for r in &replicas {
        r.follow();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        uris.push(format!("http://{}", listener.local_addr()?));
        let mut stop = stop_tx.subscribe();
        servers.push(tokio::spawn(crate::grpc::run(
            listener,
            async move {
                let _ = stop.recv().await;
            },
            Arc::clone(r),
            crate::service::auth::Auth::disabled(),
            Arc::new(Metrics::new()),
        )));
    }
    let service = Arc::clone(&replicas[0]);
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for k in 0..CONNECTIONS {
        let ch = Channel::from_shared(uris[k % uris.len()].clone())?
            .connect()
            .await
            .context("connecting")?;
        clients.push(MatchingClient::new(ch));
    }
    let payments = Arc::new(split_payments);
    let disk_sync = match &at {
        Where::Sqlite(dir) => {
            let dir = dir.clone();
            Some(tokio::task::spawn_blocking(move || synced_write(&dir)).await??)
        }
        Where::Postgres(_) => None,
    };
    // A WatchPostings client follows the journal through the steady phase.
    let seq_loaded = journal_head(&service, 0).await?;
    let watch = PostingsWatch::start(&uris[0], seq_loaded).await?;

    // Phase 1: single payments at a steady rate.
    let steady_cpu_before = CpuTimes::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(cfg.rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(steady);
    for i in 0..steady.min(payments.len()) {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let mut c = clients[i % CONNECTIONS].clone();
        let req = request(&payments[i]);
        let id = payments[i].payment_id.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.match_payment(req).await;
            (at.elapsed(), r.is_ok(), id, crate::store::now())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0usize;
    let mut answered = std::collections::HashMap::with_capacity(tasks.len());
    for t in tasks {
        let (d, ok, id, when) = t.await?;
        latencies.push(d);
        failed += usize::from(!ok);
        answered.insert(id, when);
    }
    let steady_secs = start.elapsed().as_secs_f64();
    let steady_cpu = steady_cpu_before
        .zip(CpuTimes::now())
        .map(|(a, b)| a.per_item(b, latencies.len()));
    let seq_steady = journal_head(&service, seq_loaded).await?;
    let watched = watch.finish(seq_steady, Duration::from_secs(60)).await?;
    let (lag_recorded, lag_answered) = delivery_lags(&watched, &answered);
    latencies.sort_unstable();
    // Whether checkpoints keep up: a WAL that only grows under steady load means they do not.
    let wal_mib = service.store().wal_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);

    // Phase 2: streams, as fast as the service takes them.
    let rest: Vec<Payment> = payments.iter().skip(steady).cloned().collect();
    let per_stream = rest.len().div_ceil(STREAMS).max(1);
    let cpu_before = CpuTimes::now();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (k, chunk) in rest.chunks(per_stream).enumerate() {
        let mut c = clients[k % CONNECTIONS].clone();
        let reqs: Vec<MatchRequest> = chunk.iter().map(request).collect();
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            let mut auto = 0usize;
            let mut stream = c
                .match_payments(tokio_stream::iter(reqs))
                .await?
                .into_inner();
            while let Some(r) = stream.message().await? {
                n += r.results.len();
                auto += r
                    .results
                    .iter()
                    .filter(|m| {
                        m.decision
                            .as_ref()
                            .is_some_and(|d| d.status == pb::DecisionStatus::Auto as i32)
                    })
                    .count();
            }
            Ok::<_, tonic::Status>((n, auto))
        }));
    }
    let (mut streamed, mut streamed_auto) = (0usize, 0usize);
    for t in tasks {
        let (n, a) = t.await??;
        streamed += n;
        streamed_auto += a;
    }
    let stream_secs = t.elapsed().as_secs_f64();
    let stream_cpu = cpu_before
        .zip(CpuTimes::now())
        .map(|(a, b)| a.per_item(b, streamed));
    let seq_streamed = journal_head(&service, seq_steady).await?;
    // From a commit on one replica to its change in another's memory (empty with one).
    let mut feed_ms: Vec<f64> = replicas
        .iter()
        .flat_map(|r| r.feed_stats().delays())
        .collect();
    feed_ms.sort_unstable_by(f64::total_cmp);
    let _ = stop_tx.send(());
    for s in servers {
        s.await??;
    }
    drop(service);
    for r in replicas {
        r.store().close();
    }
    let serving_rss = crate::eval::peak_rss_mib();
    let backup = match &at {
        Where::Sqlite(dir) => {
            let t = Instant::now();
            let copy = crate::store::sqlite::backup(dir, &dir.join("backup"))?;
            let secs = t.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(dir.join("backup"));
            Some((secs, copy.bytes))
        }
        Where::Postgres(_) => None,
    };
    // A restart: the ledger index, the decided ids and the queue come back from the store.
    let t = Instant::now();
    let restarted = at.service(cfg.durability).await?;
    let restart_secs = t.elapsed().as_secs_f64();
    restarted.store().close();
    drop(restarted);
    let db_mib = match &at {
        Where::Sqlite(dir) => std::fs::metadata(dir.join(crate::store::sqlite::DB_FILE))
            .map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0)),
        Where::Postgres(_) => 0.0,
    };
    if let Where::Sqlite(dir) = &at {
        let _ = std::fs::remove_dir_all(dir);
    }
    drop(at);
    let feed_q = |q: f64| {
        if feed_ms.is_empty() {
            return 0.0;
        }
        feed_ms[(((feed_ms.len() - 1) as f64) * q).round() as usize]
    };

    println!("| figure | value |");
    println!("|---|---:|");
    println!("| ledger items | {n_invoices} |");
    match &cfg.store {
        Some(_) => println!(
            "| store | PostgreSQL, {} replica(s), connections spread over them |",
            cfg.replicas
        ),
        None => println!("| store | SQLite, durability {:?} |", cfg.durability),
    }
    if let Some(d) = disk_sync {
        println!(
            "| disk: one synced 4 KiB write, median of {SYNC_PROBES} | {:.2} ms |",
            ms(d)
        );
    }
    println!("| ledger stored and indexed | {load_secs:.1} s |");
    println!(
        "| steady phase: target rate | {} requests/s for {} s |",
        cfg.rate, cfg.seconds
    );
    println!(
        "| steady phase: achieved | {:.0} requests/s |",
        latencies.len() as f64 / steady_secs.max(1e-9)
    );
    println!("| steady phase: failed requests | {failed} |");
    println!(
        "| steady phase: postings written | {} ({:.0} postings/s) |",
        seq_steady - seq_loaded,
        (seq_steady - seq_loaded) as f64 / steady_secs.max(1e-9)
    );
    println!(
        "| steady phase: WatchPostings lag from the posting's recorded time | {} |",
        lag_row(&lag_recorded, "postings")
    );
    println!(
        "| steady phase: WatchPostings lag from the response (first posting of each payment) | {} |",
        lag_row(&lag_answered, "payments")
    );
    println!(
        "| latency p50 | {:.2} ms |",
        ms(percentile(&latencies, 0.50))
    );
    println!(
        "| latency p90 | {:.2} ms |",
        ms(percentile(&latencies, 0.90))
    );
    println!(
        "| latency p99 | {:.2} ms |",
        ms(percentile(&latencies, 0.99))
    );
    println!(
        "| latency max | {:.2} ms |",
        ms(latencies.last().copied().unwrap_or_default())
    );
    if let Some((process, writer)) = steady_cpu {
        println!(
            "| steady phase: CPU per request, whole process (user+sys; clients included) | {process:.0} µs |"
        );
        println!("| steady phase: CPU per request, the store's writer thread | {writer:.0} µs |");
    }
    if cfg.store.is_none() {
        println!("| WAL after the steady phase | {wal_mib:.1} MiB |");
    }
    println!("| streamed payments | {streamed} on {STREAMS} streams |");
    println!(
        "| streamed throughput | {:.0} payments/s |",
        streamed as f64 / stream_secs.max(1e-9)
    );
    println!(
        "| streamed auto-applied | {:.1}% |",
        100.0 * streamed_auto as f64 / streamed.max(1) as f64
    );
    println!(
        "| streamed phase: postings written | {} ({:.0} postings/s) |",
        seq_streamed - seq_steady,
        (seq_streamed - seq_steady) as f64 / stream_secs.max(1e-9)
    );
    if let Some((process, writer)) = stream_cpu {
        println!(
            "| streamed phase: CPU per payment, whole process (user+sys; clients included) | {process:.0} µs |"
        );
        println!("| streamed phase: CPU per payment, the store's writer thread | {writer:.0} µs |");
    }
    if cfg.replicas > 1 {
        println!(
            "| change feed: another replica's commit to this one's memory | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} changes) |",
            feed_q(0.5),
            feed_q(0.99),
            feed_ms.last().copied().unwrap_or(0.0),
            feed_ms.len()
        );
    }
    if let Some((secs, bytes)) = backup {
        println!("| store file at the end | {db_mib:.0} MiB |");
        println!(
            "| `cashmatch backup` of the store | {secs:.1} s ({:.0} MiB) |",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    println!("| restart: store reopened, service restored | {restart_secs:.1} s |");
    println!("| peak RSS while serving | {serving_rss:.0} MiB |");
    println!(
        "| peak RSS with the restart | {:.0} MiB |",
        crate::eval::peak_rss_mib()
    );
    Ok(())
}
