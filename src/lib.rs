//! cashmatch: an open-source cash-application engine.
//!
//! Money arrives through the bank; the remittance that says which invoices it pays arrives in
//! one of a dozen formats. cashmatch reads the remittance, works out who paid and which open
//! items the cash settles, and either applies it (when a calibrated model is confident and the
//! allocation balances) or hands it to an analyst with ranked, explained suggestions.
//!
//! Data flows one way through these modules; a module uses only those listed before it (the
//! exceptions are named), and `tests/module_graph.rs` fails on any import cycle.
//!
//! The engine:
//!
//! - [`domain`]: the shared types: customers, invoices, the canonical [`domain::Payment`] and
//!   the [`domain::Decision`].
//! - [`input`]: what reading a file gives: [`input::Parsed`] payments and the
//!   [`input::FormatError`]s that name file and [`input::Position`]; shared by `io` and
//!   `formats`, so that neither imports the other for them.
//! - [`io`]: the project's CSV files (ledger, remittances, labels) and the decisions JSON Lines,
//!   with errors that name file, line and column; each file's rules are written once against a
//!   `Table` of rows, and the retraining job passes its polars tables to the same readers.
//! - [`ledger`] and [`matching`]: the open-items ledger in memory with its indexes (invoice and
//!   PO numbers, exact and fuzzy; customers by bank account and by name), and from a payment to
//!   scored candidate allocations (reference normalisation, payer identification, candidate
//!   generation, amount explanation, features). The one known cycle: `ledger` normalises with
//!   `matching::references` and `matching::names` so that its indexes agree with the lookups;
//!   issue 15 moves that normalisation into a module below both.
//! - [`model`]: the gradient-boosted trees, their calibration and the model artifact (it reads
//!   `matching`'s feature names and reference habits).
//! - [`formats`]: the remittance and bank formats, each turning bytes into payments, with
//!   detection and streaming; the project CSV is read through `io` (`formats/text.rs` uses
//!   `matching`'s reference extraction).
//! - [`advice`]: bank receipts without detail and remittance advices without money, which
//!   arrive apart; linked by payer, amount, dates and references into payments for the engine.
//! - [`engine`]: the [`engine::Engine`] that ties ledger, matcher and model together and applies
//!   the auto-apply policy; the CLI and the service are thin shells over it.
//! - [`train`] and [`eval`]: learning a model from labelled history and measuring decisions;
//!   [`crossval`] measures what a model never saw: leave-one-family-out and across world
//!   profiles.
//! - [`synth`]: a seeded generator of realistic worlds for training, tests and benchmarks.
//! - [`bench`]: the engine's end-to-end benchmarks behind `cashmatch bench match|parse|strings`
//!   (the micro-benchmarks are in benches/, run by `cargo bench`).
//!
//! The service:
//!
//! - [`store`]: the storage boundary ([`store::Store`]) and its SQLite backend; the ordered,
//!   grouped write path (`store/writer.rs`) is the same for every backend, which applies a group
//!   of records in one transaction and serves the reads. `store::export` writes its labels for
//!   the retraining job (`cashmatch export-labels`).
//! - [`service`]: the service core: the engine behind a lock, idempotent matching, the ledger,
//!   the review queue and resolutions, model activation, each change made durable in the store
//!   before it is acknowledged. Its API types, and the store's records it hands out, are all an
//!   adapter sees: the adapters below never import `store`.
//! - [`tls`]: TLS in the binary (rustls): the certificate in force, followed on disk and
//!   reloaded without a restart, and a listener that completes handshakes off the accept loop;
//!   `grpc` and `web` serve over its streams.
//! - [`metrics`]: Prometheus metrics of the service and its gRPC requests on `GET /metrics`.
//! - [`grpc`]: the tonic adapter over [`service`] (package `cashmatch.v1`), the only module that
//!   names tonic or prost.
//! - [`web`]: the analysts' workbench, server-rendered pages over the same [`service`]; the only
//!   module that renders HTML.
//! - [`app`]: `cashmatch serve` itself: configuration, opening the store, restoring the service,
//!   the demo ledger, the follower of `models/ACTIVE`, starting the adapters above and shutting
//!   down; also `cashmatch bench serve`, which starts the same pieces in one process.

pub mod advice;
pub mod app;
pub mod bench;
pub mod crossval;
pub mod domain;
pub mod engine;
pub mod eval;
pub mod formats;
pub mod grpc;
pub mod input;
pub mod io;
pub mod ledger;
pub mod matching;
pub mod metrics;
pub mod model;
pub mod service;
pub mod store;
pub mod synth;
pub mod tls;
pub mod train;
pub mod web;
