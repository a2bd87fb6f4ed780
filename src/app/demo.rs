//! `cashmatch serve --demo`: a small synthetic ledger for trying the service, seeded into an empty
//! store, with remittances to send against it written beside the store.

use super::{AppError, io};
use crate::service::{Service, ServiceError};
use crate::synth::{self, SynthConfig};
use std::path::Path;
use std::sync::Arc;

/// A small synthetic ledger for trying the service, with remittances to send against it.
pub(super) async fn seed(service: &Arc<Service>, data_dir: &Path) -> Result<(), AppError> {
    if service.ledger_size() != (0, 0) {
        tracing::info!("--demo: the store already holds a ledger; not seeding");
        return Ok(());
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
    let dir = data_dir.join("demo");
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join("remittances.csv");
    let file = std::fs::File::create(&path).map_err(io(format!("creating {}", path.display())))?;
    crate::io::write_remittances(std::io::BufWriter::new(file), &world.test.payments)
        .map_err(io(format!("writing {}", path.display())))?;
    tracing::info!(
        records = outcome.accepted,
        rejected = outcome.rejected.len(),
        remittances = %path.display(),
        "--demo: seeded a synthetic ledger; its payments are in the remittances file"
    );
    Ok(())
}
