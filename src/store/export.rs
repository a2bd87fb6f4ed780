//! The labels the service has learnt, written for the retraining job: `cashmatch export-labels`.
//!
//! Every resolved review item (source `analyst`: what the analyst applied, or nothing) and every
//! auto-applied decision old enough that a reversal would have been seen (source `auto`), one
//! row per invoice the cash paid, in the labels format the retraining job's history reader takes
//! as `service_labels.csv` (docs/training.md). The payments themselves can go beside them in the
//! remittance format, so a payment with no label rows still says "paid no open invoice".
//! Read a page at a time, so neither the store nor the files are ever held whole.

use super::{ExportQuery, Store, StoreError};
use crate::domain::{Label, LabelSource};
use crate::io::{LabelsWriter, RemittancesWriter};
use chrono::{DateTime, Utc};
use std::io::Write;

/// Labelled payments read from the store at a time.
const PAGE: u32 = 1_000;

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Also auto-applied decisions, beside analysts' resolutions.
    pub include_auto: bool,
    /// Auto-applied decisions made at or after this instant are left out: nobody has had the
    /// time to reverse them yet. `None` exports them all.
    pub auto_decided_before: Option<DateTime<Utc>>,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportCounts {
    /// Resolved review items exported.
    pub analyst: usize,
    /// Auto-applied decisions exported.
    pub auto: usize,
    /// Label rows written (a payment that paid no open invoice has none).
    pub rows: usize,
}

/// A fault of an export: reading the store or writing a file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the store's labelled payments: label rows with their source to `labels`, and each
/// payment to `remittances` when given.
pub async fn export_labels<S: Store + ?Sized>(
    store: &S,
    options: &ExportOptions,
    labels: impl Write,
    remittances: Option<impl Write>,
) -> Result<ExportCounts, ExportError> {
    let mut labels = LabelsWriter::new(labels, true)?;
    let mut remittances = remittances.map(RemittancesWriter::new).transpose()?;
    let mut counts = ExportCounts::default();
    let mut query = ExportQuery {
        include_auto: options.include_auto,
        auto_decided_before: options.auto_decided_before,
        after: 0,
        limit: PAGE,
    };
    loop {
        let page = store.training_examples(query.clone()).await?;
        for e in &page {
            match e.source {
                LabelSource::Auto => counts.auto += 1,
                _ => counts.analyst += 1,
            }
            for (invoice_id, amount) in &e.allocations {
                let label = Label {
                    payment_id: e.payment.payment_id.clone(),
                    invoice_id: invoice_id.clone(),
                    applied_amount: *amount,
                };
                labels.write(&label, e.source)?;
                counts.rows += 1;
            }
            if let Some(r) = remittances.as_mut() {
                r.write(&e.payment)?;
            }
        }
        match page.last() {
            Some(last) if page.len() >= PAGE as usize => query.after = last.position,
            _ => break,
        }
    }
    labels.finish()?;
    if let Some(r) = remittances {
        r.finish()?;
    }
    Ok(counts)
}
