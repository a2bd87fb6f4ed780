//! cashmatch: an open-source cash-application engine.
//!
//! Money arrives through the bank; the remittance that says which invoices it pays arrives in
//! one of a dozen formats. cashmatch reads the remittance, works out who paid and which open
//! items the cash settles, and either applies it (when a calibrated model is confident and the
//! allocation balances) or hands it to an analyst with ranked, explained suggestions.
//!
//! Data flows one way through these modules:
//!
//! - [`domain`]: the shared types: customers, invoices, the canonical [`domain::Payment`] and
//!   the [`domain::Decision`].
//! - [`io`]: the project's CSV files (ledger, remittances, labels) and the decisions JSON Lines,
//!   with errors that name file, line and column; each file's rules are written once against a
//!   `Table` of rows, and the retraining job passes its polars tables to the same readers.
//! - [`ledger`]: the open-items ledger in memory with its indexes: invoice and PO numbers
//!   (exact and fuzzy), customers by bank account and by name.
//! - [`matching`]: from a payment to scored candidate allocations: reference normalisation,
//!   payer identification, candidate generation, amount explanation, features.
//! - [`model`]: the gradient-boosted trees, their calibration and the model artifact.
//! - [`engine`]: the [`engine::Engine`] that ties ledger, matcher and model together and applies
//!   the auto-apply policy; the CLI and the service are thin shells over it.
//! - [`train`] and [`eval`]: learning a model from labelled history and measuring decisions.
//! - [`synth`]: a seeded generator of realistic worlds for training, tests and benchmarks.
//! - [`service`]: the service core: the engine behind a lock, idempotent matching, the review
//!   queue and model activation, each change made durable in the [`store`] before it is
//!   acknowledged. [`store`] is the storage boundary (SQLite embedded); `store::export` writes
//!   its labels for the retraining job (`cashmatch export-labels`).
//! - [`grpc`]: the tonic adapter over [`service`] (package `cashmatch.v1`), the only module that
//!   names tonic or prost; `cashmatch serve` runs it.
//! - [`web`]: the analysts' workbench, server-rendered pages over the same [`service`], served by
//!   `cashmatch serve` beside gRPC; the only module that renders HTML.

pub mod bench;
pub mod domain;
pub mod engine;
pub mod eval;
pub mod formats;
pub mod grpc;
pub mod io;
pub mod ledger;
pub mod matching;
pub mod model;
pub mod service;
pub mod store;
pub mod synth;
pub mod train;
pub mod web;
