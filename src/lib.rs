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
//! The engine is the `cashmatch-core` crate (core/, its map in core/src/lib.rs): [`domain`],
//! [`input`], [`io`], [`terms`], [`text`], [`ledger`], [`matching`], [`model`], [`formats`],
//! [`advice`], [`engine`], [`train`], [`eval`], [`crossval`] and [`synth`], re-exported here
//! under the same names, so `cashmatch::engine` is `cashmatch_core::engine`. It has no tonic,
//! prost, rusqlite, postgres, axum or tokio; the retraining job (training/) and the fuzz targets
//! (fuzz/) depend on it alone.
//! The `cashmatch` binary (src/main.rs) declares and carries out its subcommands in `src/cli`;
//! the end-to-end benchmarks `cashmatch bench match|parse|strings|advices` are a private module
//! of the binary (src/bench), outside this library; the micro-benchmarks are in benches/, run by
//! `cargo bench` (docs/benchmarks.md says which is which).
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
//! - [`tls`]: TLS in the binary (rustls): the certificate and client CA in force, followed on
//!   disk and reloaded without a restart, and a listener that completes handshakes off the
//!   accept loop; `grpc` and `web` serve over its streams. Which role a verified client
//!   certificate has is `service::auth`'s to say.
//! - [`metrics`]: Prometheus metrics of the service and its gRPC requests on `GET /metrics`.
//! - [`grpc`]: the tonic adapter over [`service`] (package `cashmatch.v1`), the only module that
//!   names tonic or prost.
//! - [`web`]: the analysts' workbench, server-rendered pages over the same [`service`]; the only
//!   module that renders HTML.
//! - [`bus`]: the event bus over the same [`service`]: payments in from a message broker (NATS
//!   JetStream, behind a small trait), decided by `grpc`'s matching code from the same protobuf
//!   messages; decisions and postings out from the store's outbox, each exactly once.
//! - [`app`]: `cashmatch serve` itself: configuration, opening the store, restoring the service,
//!   the demo ledger, the follower of `models/ACTIVE`, starting the adapters above and shutting
//!   down; also `cashmatch bench serve`, which starts the same pieces in one process.

pub use cashmatch_core::{
    advice, crossval, domain, engine, eval, formats, input, io, ledger, matching, model, rules,
    synth, terms, text, train,
};

pub mod app;
pub mod bus;
pub mod grpc;
pub mod metrics;
pub mod service;
pub mod store;
pub mod tls;
pub mod web;
