//! `cashmatch bench serve`: the service's latency and throughput over real gRPC on loopback.
//!
//! A server runs in this process on a fresh SQLite store holding a generated ledger; clients in
//! the same process then (1) send single payments at a steady rate (open loop: latency is
//! measured from each request's scheduled time, so a stall is not hidden by sending less) and
//! report p50/p99, and (2) stream payments as fast as the service takes them and report
//! payments per second. Client and server share the machine's cores.

use crate::domain::Payment;
use crate::engine::EngineConfig;
use crate::grpc::pb::match_request::Input;
use crate::grpc::pb::matching_client::MatchingClient;
use crate::grpc::pb::{self, MatchRequest};
use crate::metrics::Metrics;
use crate::service::{Limits, Service};
use crate::store::SqliteStore;
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
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    pub invoices: usize,
    /// Single-payment requests per second in the latency phase.
    pub rate: u32,
    pub seconds: u32,
    /// Payments sent on streams in the throughput phase.
    pub streamed: usize,
    pub seed: u64,
    pub durability: crate::store::Durability,
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

/// A service on a fresh SQLite store in `dir` holding a generated ledger, and the payments
/// generated with it.
pub(super) struct Generated {
    pub(super) service: Arc<Service>,
    pub(super) payments: Vec<Payment>,
    /// Ledger items stored.
    pub(super) invoices: usize,
    /// Seconds the ledger took to store and index.
    pub(super) load_secs: f64,
}

/// Generates a world with `invoices` ledger items and `payments` payments (not measured), and
/// loads its ledger into a service on a fresh store in `dir` (measured).
pub(super) async fn generated_service(
    invoices: usize,
    payments: usize,
    seed: u64,
    durability: crate::store::Durability,
    dir: &std::path::Path,
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
    let _ = std::fs::remove_dir_all(dir);
    let store = SqliteStore::open_with(dir, durability)?;
    let service =
        Arc::new(Service::open(store, None, EngineConfig::default(), Limits::default()).await?);
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

/// Runs both phases and prints a table of figures.
pub fn run(config: BenchConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(config))
}

async fn run_async(cfg: BenchConfig) -> anyhow::Result<()> {
    let steady = (cfg.rate as usize) * (cfg.seconds as usize);
    let dir = std::env::temp_dir().join(format!("cashmatch-bench-serve-{}", std::process::id()));
    let bench = generated_service(
        cfg.invoices,
        steady + cfg.streamed,
        cfg.seed,
        cfg.durability,
        &dir,
    )
    .await?;
    let (service, n_invoices, load_secs) = (bench.service, bench.invoices, bench.load_secs);
    let split_payments = bench.payments;
    eprintln!("ledger stored and indexed in {load_secs:.1}s");

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::grpc::run(
        listener,
        async move {
            let _ = stop_rx.await;
        },
        Arc::clone(&service),
        crate::service::auth::Auth::disabled(),
        Arc::new(Metrics::new()),
    ));
    let uri = format!("http://{addr}");
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let ch = Channel::from_shared(uri.clone())?
            .connect()
            .await
            .context("connecting")?;
        clients.push(MatchingClient::new(ch));
    }
    let payments = Arc::new(split_payments);

    // Phase 1: single payments at a steady rate.
    let interval = Duration::from_secs_f64(1.0 / f64::from(cfg.rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(steady);
    for i in 0..steady.min(payments.len()) {
        let at = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(at).await;
        let mut c = clients[i % CONNECTIONS].clone();
        let req = request(&payments[i]);
        tasks.push(tokio::spawn(async move {
            let r = c.match_payment(req).await;
            (at.elapsed(), r.is_ok())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0usize;
    for t in tasks {
        let (d, ok) = t.await?;
        latencies.push(d);
        failed += usize::from(!ok);
    }
    let steady_secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    // Whether checkpoints keep up: a WAL that only grows under steady load means they do not.
    let wal_mib = service.store().wal_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);

    // Phase 2: streams, as fast as the service takes them.
    let rest: Vec<Payment> = payments.iter().skip(steady).cloned().collect();
    let per_stream = rest.len().div_ceil(STREAMS).max(1);
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
    let _ = stop_tx.send(());
    server.await??;
    service.store().close();
    drop(service);
    let serving_rss = crate::eval::peak_rss_mib();
    let t = Instant::now();
    let copy = crate::store::sqlite::backup(&dir, &dir.join("backup"))?;
    let backup_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(dir.join("backup"));
    // A restart: the ledger index, the decided ids and the queue come back from the store.
    let t = Instant::now();
    let store = SqliteStore::open_with(&dir, cfg.durability)?;
    let restarted = Service::open(store, None, EngineConfig::default(), Limits::default()).await?;
    let restart_secs = t.elapsed().as_secs_f64();
    restarted.store().close();
    let db_mib = std::fs::metadata(dir.join(crate::store::sqlite::DB_FILE))
        .map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0));
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);

    println!("| figure | value |");
    println!("|---|---:|");
    println!("| ledger items | {n_invoices} |");
    println!("| store durability | {:?} |", cfg.durability);
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
    println!("| WAL after the steady phase | {wal_mib:.1} MiB |");
    println!("| streamed payments | {streamed} on {STREAMS} streams |");
    println!(
        "| streamed throughput | {:.0} payments/s |",
        streamed as f64 / stream_secs.max(1e-9)
    );
    println!(
        "| streamed auto-applied | {:.1}% |",
        100.0 * streamed_auto as f64 / streamed.max(1) as f64
    );
    println!("| store file at the end | {db_mib:.0} MiB |");
    println!(
        "| `cashmatch backup` of the store | {backup_secs:.1} s ({:.0} MiB) |",
        copy.bytes as f64 / (1024.0 * 1024.0)
    );
    println!("| restart: store reopened, service restored | {restart_secs:.1} s |");
    println!("| peak RSS while serving | {serving_rss:.0} MiB |");
    println!(
        "| peak RSS with the restart | {:.0} MiB |",
        crate::eval::peak_rss_mib()
    );
    Ok(())
}
