//! Labelled history, read at scale: a directory of the project's files as CSV or Parquet.
//!
//! ```text
//! DIR/customers.{csv,parquet}       required
//! DIR/invoices.{csv,parquet}        required: the ledger as it stood before the first payment
//! DIR/remittances.{csv,parquet}     required: the payments, one row per remittance line
//! DIR/labels.{csv,parquet}          the truth from imported history (source `history`)
//! DIR/service_labels.{csv,parquet}  optional: the service's export, with a `source` column
//!                                   (`analyst` decisions, `auto` matches never reversed)
//! DIR/cases.{csv,parquet}           optional: case family per payment, for the breakdown
//! ```
//!
//! At least one labels file must be there. Columns are those of docs/formats.md; a labels file
//! may carry a `source` column (`analyst`, `auto`, `history`) and `labels.csv` rows without one
//! count as history. When sources disagree about a payment, the rows of the strongest source win
//! (analyst, then history, then auto): an analyst's correction overrides what was imported.
//!
//! Payments are put in time order (by payment date, stable, an undated payment keeping the
//! date of the one before it), since training and the holdout are cut by time.

mod frame;

pub use cashmatch_core::domain::LabelSource;

use cashmatch_core::domain::{Customer, Invoice, Label, Payment};
use cashmatch_core::formats::FormatError;
use cashmatch_core::io::Loaded;
use frame::PolarsTable;
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Faults that stop a history from loading at all (bad rows are reported, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{dir}: no {what} file ({what}.csv or {what}.parquet)")]
    Missing { dir: String, what: &'static str },
    #[error("{dir}: no labels (labels.csv/.parquet or service_labels.csv/.parquet)")]
    NoLabels { dir: String },
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// How many label rows each source gave, and how many payments a stronger source overrode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelCounts {
    /// Label rows kept, by source name.
    pub rows: BTreeMap<&'static str, usize>,
    /// Labelled payments, by the source whose rows were kept.
    pub payments: BTreeMap<&'static str, usize>,
    /// Payments labelled by more than one source, where the weaker source's rows were dropped.
    pub overridden: usize,
    /// Label rows naming a payment that is not in the remittances.
    pub unknown_payment: usize,
}

/// A labelled history in memory, in domain types.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub dir: PathBuf,
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    /// In time order.
    pub payments: Vec<Payment>,
    /// Only labelled payments have rows; see docs/formats.md for what an unlabelled one means.
    pub labels: Vec<Label>,
    /// Case family per payment id, where a cases file is given.
    pub cases: HashMap<String, String>,
    pub label_counts: LabelCounts,
    /// Rows that could not be read, each naming file, line and column; the rest was read.
    pub errors: Vec<FormatError>,
}

/// `DIR/NAME.parquet` or `DIR/NAME.csv`, whichever exists (Parquet first).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    ["parquet", "csv"]
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

impl History {
    /// Loads `dir` (see the module doc). `progress` shows the files read.
    pub fn load(dir: &Path, progress: &ProgressBar) -> Result<History, HistoryError> {
        let shown = dir.display().to_string();
        let need = |what: &'static str| {
            find(dir, what).ok_or_else(|| HistoryError::Missing {
                dir: shown.clone(),
                what,
            })
        };
        let mut h = History {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        let step = |name: &str| {
            progress.set_message(format!("reading {name}"));
            progress.inc(1);
        };
        // What each row means is `cashmatch_core::io`'s business; this only supplies the rows.
        fn keep<T>(got: Loaded<T>, rows: &mut Vec<T>, errors: &mut Vec<FormatError>) {
            rows.extend(got.rows);
            errors.extend(got.errors);
        }
        step("customers");
        let mut t = PolarsTable::open(&need("customers")?)?;
        keep(
            cashmatch_core::io::customers_from_table(&mut t)?,
            &mut h.customers,
            &mut h.errors,
        );
        step("invoices");
        let mut t = PolarsTable::open(&need("invoices")?)?;
        keep(
            cashmatch_core::io::invoices_from_table(&mut t)?,
            &mut h.invoices,
            &mut h.errors,
        );
        step("remittances");
        let mut t = PolarsTable::open(&need("remittances")?)?;
        cashmatch_core::io::for_each_remittance_in(&mut t, |p| match p {
            Ok(p) => h.payments.push(p),
            Err(e) => h.errors.push(e),
        })?;
        step("labels");
        let mut labels = Vec::new();
        let mut any = false;
        for (name, source) in [
            ("labels", LabelSource::History),
            ("service_labels", LabelSource::Auto),
        ] {
            if let Some(path) = find(dir, name) {
                any = true;
                let mut t = PolarsTable::open(&path)?;
                if name == "service_labels" && !t.has("source") {
                    // The service always says who decided; without it the rows are unsafe to
                    // rank, so they are taken as the weakest source.
                    progress.println(format!(
                        "{}: no source column; rows taken as auto-applied matches",
                        cashmatch_core::io::Table::file(&t)
                    ));
                }
                keep(
                    cashmatch_core::io::labels_from_table(&mut t, source)?,
                    &mut labels,
                    &mut h.errors,
                );
            }
        }
        if !any {
            return Err(HistoryError::NoLabels { dir: shown });
        }
        if let Some(path) = find(dir, "cases") {
            step("cases");
            let got = cashmatch_core::io::cases_from_table(&mut PolarsTable::open(&path)?)?;
            h.cases.extend(got.rows);
            h.errors.extend(got.errors);
        }
        sort_by_time(&mut h.payments);
        let (kept, counts) = merge_labels(labels, &h.payments);
        h.labels = kept;
        h.label_counts = counts;
        Ok(h)
    }
}

/// Copies every history file of `dir` that is CSV to Parquet in `out` (cases included).
/// Returns the files written.
pub fn convert_to_parquet(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, HistoryError> {
    std::fs::create_dir_all(out).map_err(|e| {
        FormatError::new(
            &out.display().to_string(),
            cashmatch_core::formats::Position::File,
            format!("cannot create: {e}"),
        )
    })?;
    let mut written = Vec::new();
    for name in [
        "customers",
        "invoices",
        "remittances",
        "labels",
        "service_labels",
        "cases",
    ] {
        let src = dir.join(format!("{name}.csv"));
        if src.is_file() {
            let dst = out.join(format!("{name}.parquet"));
            frame::csv_to_parquet(&src, &dst)?;
            written.push(dst);
        }
    }
    Ok(written)
}

/// Stable sort by payment date; an undated payment keeps the date of the one before it.
fn sort_by_time(payments: &mut Vec<Payment>) {
    let mut last = None;
    let keys: Vec<_> = payments
        .iter()
        .map(|p| {
            if p.payment_date.is_some() {
                last = p.payment_date;
            }
            last
        })
        .collect();
    if keys.windows(2).all(|w| w[0] <= w[1]) {
        return;
    }
    let mut order: Vec<usize> = (0..payments.len()).collect();
    order.sort_by_key(|&i| keys[i]);
    let mut slots: Vec<Option<Payment>> = std::mem::take(payments).into_iter().map(Some).collect();
    *payments = order.iter().filter_map(|&i| slots[i].take()).collect();
}

/// Keeps, for each payment, the rows of its strongest source; drops rows of unknown payments.
fn merge_labels(
    labels: Vec<(Label, LabelSource)>,
    payments: &[Payment],
) -> (Vec<Label>, LabelCounts) {
    let known: std::collections::HashSet<&str> =
        payments.iter().map(|p| p.payment_id.as_str()).collect();
    let mut best: HashMap<&str, (LabelSource, bool)> = HashMap::new();
    let mut counts = LabelCounts::default();
    for (l, s) in &labels {
        if !known.contains(l.payment_id.as_str()) {
            counts.unknown_payment += 1;
            continue;
        }
        best.entry(l.payment_id.as_str())
            .and_modify(|(b, mixed)| {
                if *b != *s {
                    *mixed = true;
                }
                if *s > *b {
                    *b = *s;
                }
            })
            .or_insert((*s, false));
    }
    counts.overridden = best.values().filter(|(_, mixed)| *mixed).count();
    for (s, _) in best.values() {
        *counts.payments.entry(s.name()).or_default() += 1;
    }
    let keep: HashMap<String, LabelSource> = best
        .into_iter()
        .map(|(k, (s, _))| (k.to_string(), s))
        .collect();
    let mut out = Vec::with_capacity(labels.len());
    for (l, s) in labels {
        if keep.get(&l.payment_id) == Some(&s) {
            *counts.rows.entry(s.name()).or_default() += 1;
            out.push(l);
        }
    }
    (out, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn label(p: &str, i: &str) -> Label {
        Label {
            payment_id: p.into(),
            invoice_id: i.into(),
            applied_amount: Decimal::ONE,
        }
    }

    #[test]
    fn analyst_rows_override_history_and_auto() {
        let payments: Vec<Payment> = ["P1", "P2"]
            .iter()
            .map(|id| Payment {
                payment_id: id.to_string(),
                format: "csv".into(),
                direction: Default::default(),
                payment_date: None,
                amount: Decimal::ONE,
                currency: cashmatch_core::domain::Currency::USD,
                payer: Default::default(),
                lines: vec![],
                free_text: vec![],
                warnings: vec![],
                returned: None,
            })
            .collect();
        let rows = vec![
            (label("P1", "I1"), LabelSource::History),
            (label("P1", "I2"), LabelSource::Analyst),
            (label("P2", "I3"), LabelSource::Auto),
            (label("P9", "I4"), LabelSource::History),
        ];
        let (kept, counts) = merge_labels(rows, &payments);
        assert_eq!(kept, vec![label("P1", "I2"), label("P2", "I3")]);
        assert_eq!(counts.overridden, 1);
        assert_eq!(counts.unknown_payment, 1);
    }
}
