//! cashmatch-training: the batch retraining job, a crate of its own so that polars never
//! enters the `cashmatch` service binary.
//!
//! Data flows one way:
//!
//! - [`history`]: labelled history read at scale with polars (CSV or Parquet, streamed in
//!   batches) and handed row by row to `cashmatch_core::io`'s readers (one implementation of what a
//!   file means): customers, the ledger, payments, labels from the imported history and from
//!   the service's export (`cashmatch export-labels`), case families.
//! - [`evaluate`]: the history replayed in time order through `cashmatch_core::train::replay` (the
//!   engine's own candidates and features), cut at a time-ordered holdout; models run through
//!   the engine on that holdout and measured overall, by case family and by customer segment.
//! - [`retrain`]: a challenger fitted with `cashmatch_core::train::fit`, judged against the champion,
//!   published to the model directory with its `ACTIVE` pointer.
//! - [`report`] and [`plots`]: the Markdown report with SVG figures and the model card.
//! - [`export`]: the feature matrices as Parquet and the LightGBM comparison.
//! - [`jobs`]: the commands of `cashmatch-train` as functions; [`bench`]: its benchmark.

pub mod bench;
pub mod evaluate;
pub mod export;
pub mod history;
pub mod jobs;
pub mod plots;
pub mod report;
pub mod retrain;
