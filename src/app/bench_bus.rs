//! `cashmatch bench bus`: payments per second end to end through NATS JetStream.
//!
//! The service runs in this process on a fresh SQLite store holding a generated ledger, with the
//! event bus (`crate::bus`) on streams of its own on the given NATS server. A producer publishes
//! every payment to the payments stream as fast as JetStream stores them, while the bus decides
//! them and publishes the decisions; the clock runs from the first payment published to the last
//! decision received on the decisions subject. The streams are deleted at the end.

use crate::bus::Topic;
use crate::bus::nats::{JetStream, NatsConfig};
use crate::grpc::pb::{self, match_request::Input};
use crate::metrics::Metrics;
use anyhow::Context;
use futures_util::StreamExt;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BusBenchConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    pub invoices: usize,
    pub payments: usize,
    pub seed: u64,
    pub durability: crate::store::Durability,
}

/// Publishes in flight at most before the producer waits for JetStream's acknowledgements.
const PRODUCER_WINDOW: usize = 512;

/// Runs the measurement and prints a table of figures.
pub fn run(config: BusBenchConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(config))
}

async fn run_async(cfg: BusBenchConfig) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("cashmatch-bench-bus-{}", std::process::id()));
    let at = super::bench::Where::Sqlite(dir.clone());
    let bench =
        super::bench::generated_service(cfg.invoices, cfg.payments, cfg.seed, cfg.durability, &at)
            .await?;
    let (service, n_invoices) = (bench.service, bench.invoices);

    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).context("a random stream name")?;
    let suffix: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let nats = NatsConfig {
        url: cfg.url.clone(),
        prefix: format!("cmbench-{}-{suffix}", std::process::id()),
    };
    let client = async_nats::connect(cfg.url.as_str())
        .await
        .with_context(|| format!("connecting to {}", cfg.url))?;
    let js = async_nats::jetstream::new(client.clone());
    let broker = Arc::new(JetStream::connect(nats.clone()).await?);
    let mut decisions = client
        .subscribe(nats.subject(Topic::Decisions))
        .await
        .context("subscribing to the decisions")?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let metrics = Arc::new(Metrics::new());
    let consumer = tokio::spawn(crate::bus::consume(
        Arc::clone(&broker),
        Arc::clone(&service),
        Arc::clone(&metrics),
        until(stop_rx.clone()),
    ));
    let publisher = tokio::spawn(crate::bus::publish(
        broker,
        Arc::clone(&service),
        metrics,
        until(stop_rx),
    ));

    let bodies: Vec<Vec<u8>> = bench
        .payments
        .iter()
        .map(|p| {
            pb::MatchRequest {
                input: Some(Input::Payment(p.clone().into())),
            }
            .encode_to_vec()
        })
        .collect();
    let n = bodies.len();
    let start = Instant::now();
    let producer = {
        let (js, subject) = (js.clone(), nats.payments_subject());
        tokio::spawn(async move {
            let mut acks = Vec::with_capacity(PRODUCER_WINDOW);
            for body in bodies {
                acks.push(js.publish(subject.clone(), body.into()).await?);
                if acks.len() >= PRODUCER_WINDOW {
                    for a in acks.drain(..) {
                        a.await?;
                    }
                }
            }
            for a in acks {
                a.await?;
            }
            Ok::<_, anyhow::Error>(start.elapsed())
        })
    };
    let mut received = 0usize;
    let mut auto = 0usize;
    while received < n {
        let next = tokio::time::timeout(Duration::from_secs(60), decisions.next()).await;
        let Ok(Some(m)) = next else {
            anyhow::bail!("no decision for 60 s after {received} of {n}");
        };
        let d = pb::Decision::decode(m.payload.as_ref()).context("a decision message")?;
        auto += usize::from(d.status == pb::DecisionStatus::Auto as i32);
        received += 1;
    }
    let end_to_end = start.elapsed();
    let produced = producer.await??;

    let _ = stop_tx.send(true);
    consumer.await??;
    publisher.await?;
    service.store().close();
    let _ = js.delete_stream(nats.payments_stream()).await;
    let _ = js.delete_stream(nats.events_stream()).await;
    let _ = std::fs::remove_dir_all(&dir);

    let secs = end_to_end.as_secs_f64().max(1e-9);
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| ledger items | {n_invoices} |");
    println!("| store durability | {:?} |", cfg.durability);
    println!("| payments | {n} |");
    println!(
        "| payments published to JetStream | {:.0} /s ({:.1} s) |",
        n as f64 / produced.as_secs_f64().max(1e-9),
        produced.as_secs_f64()
    );
    println!("| end to end: first payment published to last decision received | {secs:.1} s |");
    println!(
        "| end-to-end throughput | {:.0} payments/s |",
        n as f64 / secs
    );
    println!(
        "| auto-applied | {:.1}% |",
        100.0 * auto as f64 / n.max(1) as f64
    );
    Ok(())
}
