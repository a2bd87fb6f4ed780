//! cashmatch-core: the cash-application engine, without the service around it.
//!
//! Money arrives through the bank; the remittance that says which invoices it pays arrives in
//! one of a dozen formats. This crate reads the remittance, works out who paid and which open
//! items the cash settles, and either applies it (when a calibrated model is confident and the
//! allocation balances) or hands it to an analyst with ranked, explained suggestions. It does no
//! networking and no storage: the service (the `cashmatch` package at the workspace root), the
//! retraining job (`training/`) and the fuzz targets (`fuzz/`) are built on it.
//!
//! Data flows one way through these modules; a module uses only those listed before it (the
//! exceptions are named), and `tests/module_graph.rs` fails on any import cycle. What nothing
//! outside the crate uses is `pub(crate)` or private, so that the compiler reports dead code:
//! `text::{references, names}`, `matching::{amounts, payer, habits, strata}` and
//! `model::{calibration, envelope, threshold}` are the crate's, their parents re-exporting the
//! few items used outside; the parts of the large formats, of candidate generation and of the
//! GBDT are private to their module.
//!
//! - [`domain`]: the shared types: customers, invoices, the canonical [`domain::Payment`] and
//!   the [`domain::Decision`].
//! - [`input`]: what reading a file gives: [`input::Parsed`] payments and the
//!   [`input::FormatError`]s that name file and [`input::Position`]; shared by `io` and
//!   `formats`, so that neither imports the other for them.
//! - [`io`]: the project's CSV files (ledger, remittances, labels) and the decisions JSON Lines,
//!   with errors that name file, line and column; each file's rules are written once against a
//!   `Table` of rows, and the retraining job passes its polars tables to the same readers.
//! - [`rules`]: the versioned rules file (write-off limits, what becomes of an overpayment,
//!   discount grace days), per currency and customer; uses only `domain`, and `terms` reads
//!   its default grace.
//! - [`terms`] and [`text`]: what an invoice's terms allow (the early-payment discount and its
//!   window, money rounded to cents) and what payers write made comparable (references
//!   normalised, reduced to their OCR-folded core, compared and found in free text; payer names
//!   normalised and compared). Below both `ledger` and `matching`, so that the ledger's indexes
//!   and the matcher's lookups use one implementation without importing each other.
//! - [`ledger`] and [`matching`]: the open-items ledger in memory with its indexes (invoice and
//!   PO numbers, exact and fuzzy; customers by bank account and by name), and from a payment to
//!   scored candidate allocations (payer identification, candidate generation, amount
//!   explanation, features); `matching` reads the ledger, never the other way round.
//! - [`model`]: the gradient-boosted trees, their calibration and the model artifact (it reads
//!   `matching`'s feature names and reference habits, which the artifact ships with the model).
//! - [`formats`]: the remittance and bank formats, each turning bytes into payments, with
//!   detection and streaming; the project CSV is read through `io`, references in free text are
//!   found with `text`.
//! - [`advice`]: bank receipts without detail and remittance advices without money, which
//!   arrive apart; linked by payer, amount, dates and references into payments for the engine.
//! - [`engine`]: the [`engine::Engine`] that ties ledger, matcher and model together and applies
//!   the auto-apply policy; the CLI and the service are thin shells over it.
//! - [`train`] and [`eval`]: learning a model from labelled history and measuring decisions;
//!   [`crossval`] measures what a model never saw: leave-one-family-out and across world
//!   profiles.
//! - [`synth`]: a seeded generator of realistic worlds for training, tests and benchmarks.

pub mod advice;
pub mod crossval;
pub mod domain;
pub mod engine;
pub mod eval;
pub mod formats;
pub mod input;
pub mod io;
pub mod ledger;
pub mod matching;
pub mod model;
pub mod rules;
pub mod synth;
pub mod terms;
pub mod text;
pub mod train;
