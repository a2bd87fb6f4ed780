//! `cashmatch serve --demo`: a small synthetic ledger for trying the service, seeded into an empty
//! store, with remittances to send against it written beside the store, and a feed that sends
//! those payments to the service over a minute and a half, as a bank's stream would, so that a
//! newcomer who opens the workbench watches the queue, the dashboard and the postings fill.

use super::{AppError, io};
use crate::domain::{Payment, Status};
use crate::service::{Service, ServiceError};
use crate::synth::{self, SynthConfig};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the demo's remittances are written, and read back on a later start.
fn remittances_path(data_dir: &Path) -> PathBuf {
    data_dir.join("demo").join("remittances.csv")
}

/// Seeds the demo ledger into an empty store and returns the demo payments still to be decided:
/// all of them on the first start, the ones a stopped feed had not sent on a later one.
pub(super) async fn seed(
    service: &Arc<Service>,
    data_dir: &Path,
) -> Result<Vec<Payment>, AppError> {
    if service.ledger_size() != (0, 0) {
        let path = remittances_path(data_dir);
        if !path.exists() {
            tracing::info!("--demo: the store already holds a ledger; not seeding");
            return Ok(Vec::new());
        }
        let parsed = tokio::task::spawn_blocking(move || crate::io::read_remittances(&path))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(format!("--demo: {e}")))?;
        let left: Vec<Payment> = parsed
            .payments
            .into_iter()
            .filter(|p| !service.is_decided(&p.payment_id))
            .collect();
        tracing::info!(
            left = left.len(),
            "--demo: the store already holds the demo ledger; feeding the payments not yet decided"
        );
        return Ok(left);
    }
    let world =
        tokio::task::spawn_blocking(|| synth::generate(&SynthConfig::new(20_261_127, 100, 1_000)))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let customers: Vec<_> = world
        .customers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, c)| (i as u64, c))
        .collect();
    let invoices: Vec<_> = world
        .test
        .invoices
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    let outcome = service.upsert(customers, invoices).await?;
    let path = remittances_path(data_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    let file = std::fs::File::create(&path).map_err(io(format!("creating {}", path.display())))?;
    crate::io::write_remittances(std::io::BufWriter::new(file), &world.test.payments)
        .map_err(io(format!("writing {}", path.display())))?;
    tracing::info!(
        records = outcome.accepted,
        rejected = outcome.rejected.len(),
        remittances = %path.display(),
        "--demo: seeded a synthetic ledger; its payments are in the remittances file and will be fed to the service"
    );
    Ok(world.test.payments)
}

/// Sends the payments to the service in small batches spread over `span` (by default 90 s: slow
/// enough to watch the queue grow, short enough to see the whole picture within two minutes),
/// through the
/// same path as a `MatchPayments` call, until they are all sent or `stop` resolves. A payment the
/// service refuses is logged and skipped: the demo must not stop the service.
pub(super) async fn feed(
    service: Arc<Service>,
    payments: Vec<Payment>,
    span: Duration,
    stop: impl Future<Output = ()>,
) {
    if payments.is_empty() {
        return;
    }
    // One batch a second (or one in all for a span under a second).
    let ticks = span.as_secs().clamp(1, payments.len() as u64) as usize;
    let batch = payments.len().div_ceil(ticks);
    let mut interval = tokio::time::interval(span / ticks as u32);
    let (mut auto, mut review, mut refused) = (0usize, 0usize, 0usize);
    let total = payments.len();
    let mut chunks = payments.into_iter().peekable();
    tokio::pin!(stop);
    while chunks.peek().is_some() {
        // Biased: a stop that resolved is never polled again.
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = interval.tick() => {}
        }
        let next: Vec<Payment> = chunks.by_ref().take(batch).collect();
        match service.match_payments(next).await {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(m) if m.decision.status == Status::Auto => auto += 1,
                        Ok(_) => review += 1,
                        Err(e) => {
                            refused += 1;
                            tracing::warn!(error = %e, "--demo: a demo payment was refused");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "--demo: the feed stopped");
                return;
            }
        }
    }
    tracing::info!(
        sent = auto + review + refused,
        of = total,
        auto,
        review,
        refused,
        "--demo: feed finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::service::Limits;
    use crate::store::SqliteStore;

    async fn demo_service(dir: &Path) -> Arc<Service> {
        Arc::new(
            Service::open(
                SqliteStore::open(dir).expect("store"),
                None,
                EngineConfig::default(),
                Limits::default(),
            )
            .await
            .expect("service"),
        )
    }

    /// A newcomer who stops the demo mid-feed and starts it again sees the feed finish the
    /// payments it had not sent, and every demo payment decided once.
    #[test]
    fn the_demo_feed_decides_every_demo_payment_and_resumes_after_a_restart() {
        crate::service::tests::runtime().block_on(async {
            let dir =
                std::env::temp_dir().join(format!("cashmatch-demo-feed-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let service = demo_service(&dir).await;
            let payments = seed(&service, &dir).await.expect("seed");
            let all: Vec<String> = payments.iter().map(|p| p.payment_id.clone()).collect();
            assert!(all.len() > 100, "the demo has payments to feed");
            // Ten batches a second apart, stopped after the second: the first is sent at once.
            feed(
                Arc::clone(&service),
                payments,
                Duration::from_secs(10),
                tokio::time::sleep(Duration::from_millis(1_500)),
            )
            .await;
            let sent = all.iter().filter(|id| service.is_decided(id)).count();
            assert!(
                sent > 0 && sent < all.len(),
                "the stopped feed sent {sent} of {}",
                all.len()
            );
            drop(service);

            let service = demo_service(&dir).await;
            let left = seed(&service, &dir).await.expect("second start");
            assert_eq!(
                left.len(),
                all.len() - sent,
                "a restart feeds only what is left"
            );
            feed(
                Arc::clone(&service),
                left,
                Duration::from_secs(1),
                std::future::pending(),
            )
            .await;
            for id in &all {
                assert!(service.is_decided(id), "{id} was never decided");
            }
            let queue = service.queue_depth();
            assert!(queue > 0, "the demo leaves review items for the workbench");
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
