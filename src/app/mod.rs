//! The application: what `cashmatch serve` is made of. It reads the configuration
//! ([`config::Settings`]), opens the SQLite store, restores the [`Service`] from it, seeds the demo
//! ledger when asked, starts the adapters over the service (gRPC in `crate::grpc`, the analysts'
//! workbench in `crate::web`, Prometheus metrics in `crate::metrics`) and the follower of
//! `models/ACTIVE`, and on ctrl-c or SIGTERM drains them and closes the store.
//!
//! The adapters know the service only; this module is the one place that knows which store
//! backs it. `cashmatch bench serve` ([`bench`]) starts the same pieces in one process to measure
//! them.

pub mod bench;
pub mod bench_bus;
pub mod config;
pub mod config_watch;
mod demo;
pub(crate) mod model_watch;
pub mod rules_watch;

use crate::engine::EngineConfig;
use crate::grpc::DRAIN_TIMEOUT;
use crate::metrics::Metrics;
use crate::service::auth::Auth;
use crate::service::{Service, ServiceError};
use crate::store::{PgStore, SqliteStore, Store, StoreError, StoreUrl};
use crate::tls::Tls;
use config::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why `cashmatch serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    Grpc(#[from] crate::grpc::ServeError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Rules(#[from] crate::rules::RulesError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
    let context = context.into();
    move |source| AppError::Io { context, source }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where the audit chain checked at start lives.
enum ChainAt {
    Sqlite(std::path::PathBuf),
    Postgres(StoreUrl),
}

/// What `cashmatch audit verify` checks, at start: a break is logged as an error naming the
/// event and shown as `cashmatch_audit_chain_broken 1` until the next start.
fn check_audit_chain(at: &ChainAt, metrics: &Metrics) {
    let report = match at {
        ChainAt::Sqlite(data_dir) => crate::store::sqlite::audit::verify(data_dir, None),
        ChainAt::Postgres(url) => crate::store::postgres::audit::verify(url, None),
    };
    match report {
        Ok(r) => match (&r.broken, &r.head) {
            (Some(b), _) => {
                metrics.audit_chain_broken(true);
                tracing::error!(
                    event = b.id,
                    reason = %b.reason,
                    "the audit trail's hash chain is BROKEN: an event was edited or deleted outside \
                     cashmatch (run `cashmatch audit verify` for the details)"
                );
            }
            (None, Some((id, hash))) => {
                tracing::info!(events = r.events, head = %format!("{id}:{hash}"), "audit chain intact")
            }
            (None, None) => tracing::info!("audit chain intact: no events yet"),
        },
        Err(e) => tracing::warn!(error = %e, "the audit chain could not be checked at start"),
    }
}

/// The event bus's tasks: the consumer of payments and the publisher of the outbox.
type BusTasks = (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>);

/// Connects to NATS (a server that cannot be reached stops the start) and starts the consumer
/// and the publisher (`crate::bus`), which stop when `stop` says so.
async fn start_bus(
    nats: crate::bus::nats::NatsConfig,
    service: &Arc<Service>,
    metrics: &Arc<Metrics>,
    stop: &watch::Receiver<bool>,
) -> Result<BusTasks, AppError> {
    let stream = nats.payments_stream();
    let broker = Arc::new(crate::bus::nats::JetStream::connect(nats.clone()).await?);
    tracing::info!(
        url = %nats.url,
        payments = %nats.payments_subject(),
        decisions = %nats.subject(crate::bus::Topic::Decisions),
        postings = %nats.subject(crate::bus::Topic::Postings),
        "event bus on NATS JetStream: taking payments from stream {stream}"
    );
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let (b, s, m, st) = (
        Arc::clone(&broker),
        Arc::clone(service),
        Arc::clone(metrics),
        until(stop.clone()),
    );
    let consumer = tokio::spawn(async move {
        if let Err(e) = crate::bus::consume(b, s, m, st).await {
            tracing::error!(error = %e, "the event bus stopped taking payments");
        }
    });
    let (s, m, st) = (
        Arc::clone(service),
        Arc::clone(metrics),
        until(stop.clone()),
    );
    let publisher = tokio::spawn(crate::bus::publish(broker, s, m, st));
    Ok((consumer, publisher))
}

/// `cashmatch serve`: opens the store in the data directory, restores the service, seeds the demo
/// ledger if asked (`demo`: over how long to feed its payments) and the store is empty, and
/// serves until ctrl-c or SIGTERM.
pub async fn serve(settings: Settings, demo: Option<Duration>) -> Result<(), AppError> {
    let auth = Arc::new(Auth::with_client_certs(
        settings.tokens.clone(),
        settings.client_certs.clone(),
    ));
    if !auth.enabled() {
        tracing::warn!(
            "no [[tokens]] configured: running WITHOUT authentication, listening on loopback only"
        );
    }
    // Read before anything listens: a certificate that cannot be used stops the start, naming
    // the file.
    let tls = match settings.tls.clone() {
        Some(files) => {
            let tls = Tls::new(files)?;
            tracing::info!(
                cert = %tls.certs().files().cert.display(),
                client_ca = ?tls.certs().files().client_ca,
                client_certs = settings.client_certs.len(),
                "TLS on: gRPC{} over TLS; the certificate files are re-read when they change",
                if settings.ui_tls { " and the workbench" } else { "" }
            );
            Some(tls)
        }
        None if settings.tls_terminated_by_proxy => {
            tracing::warn!(
                "no [tls]: plaintext gRPC and workbench, trusting the proxy in front to terminate \
                 TLS (tls_terminated_by_proxy = true)"
            );
            None
        }
        None => {
            tracing::warn!(
                "no [tls]: plaintext gRPC and workbench, so listening on loopback only (configure \
                 [tls], or put a TLS-terminating proxy in front: docs/operations.md)"
            );
            None
        }
    };
    // Rules that cannot be used stop the start, naming line, column and field.
    let rules = match &settings.rules {
        Some(path) => Some((path.clone(), rules_watch::read(path)?)),
        None => None,
    };
    let store: Arc<dyn Store> = match &settings.store {
        Some(url) => {
            let store = PgStore::open_async(url.as_str()).await?;
            tracing::info!(store = %url, "store opened (PostgreSQL, schema migrated)");
            Arc::new(store)
        }
        None => {
            let store = SqliteStore::open_with(&settings.data_dir, settings.durability)?;
            tracing::info!(path = %store.path().display(), durability = ?settings.durability, "store opened (SQLite, WAL)");
            Arc::new(store)
        }
    };
    let service = Arc::new(
        Service::open_shared(
            store,
            settings.model.as_deref(),
            EngineConfig {
                threshold: settings.threshold,
                unexplained_tolerance: settings.unexplained_tolerance,
                ..Default::default()
            },
            settings.limits,
        )
        .await?,
    );
    service.set_four_eyes(settings.four_eyes.clone());
    service.set_sla(settings.review_sla.clone());
    service.set_advice_settings(settings.advices.clone());
    if settings.advices.hold_receipts {
        tracing::info!(
            hold_business_days = settings.advices.link.hold_business_days,
            "receipts without remittance detail wait for their advices"
        );
    }
    let rules_file = match rules {
        Some((path, (r, bytes))) => {
            let version = r.version().to_string();
            service
                .load_rules(r, path.display().to_string(), rules_watch::ACTOR.into())
                .await?;
            tracing::info!(rules = %path.display(), version = %version, "rules in force; the file is re-read when it changes");
            Some((path, bytes))
        }
        None => None,
    };
    // Other replicas' changes on PostgreSQL; nothing on SQLite.
    if service.follow().is_some() {
        tracing::info!("following the other replicas' changes (the store's change feed)");
    }
    tracing::info!(above = %settings.four_eyes.above, currencies = ?settings.four_eyes.per_currency, "four eyes: write-offs, cash on account and manual allocations above these wait for a second analyst");
    let demo_payments = match demo {
        Some(span) if !span.is_zero() => demo::seed(&service, &settings.data_dir).await?,
        Some(_) => {
            demo::seed(&service, &settings.data_dir).await?;
            Vec::new()
        }
        None => Vec::new(),
    };
    let listener = TcpListener::bind(settings.addr)
        .await
        .map_err(io(format!("binding {}", settings.addr)))?;
    let local = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    let metrics = Arc::new(Metrics::new().with_auth(Arc::clone(&auth)));
    // The audit chain is checked once at start, beside serving (it reads the whole trail). On
    // a thread of its own: the PostgreSQL reader is the blocking client, which runs a runtime
    // of its own and so must not run on one of tokio's threads.
    let at = match &settings.store {
        Some(url) => ChainAt::Postgres(url.clone()),
        None => ChainAt::Sqlite(settings.data_dir.clone()),
    };
    let m = Arc::clone(&metrics);
    std::thread::spawn(move || check_audit_chain(&at, &m));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    if !demo_payments.is_empty() {
        let (s, stop) = (Arc::clone(&service), stopped(stop_rx.clone()));
        let span = demo.unwrap_or_default();
        tokio::spawn(demo::feed(s, demo_payments, span, stop));
    }
    {
        let (s, stop) = (Arc::clone(&service), stopped(stop_rx.clone()));
        tokio::spawn(advance_holds(s, stop));
    }
    if let Some((path, bytes)) = rules_file {
        let (s, stop) = (Arc::clone(&service), stopped(stop_rx.clone()));
        tokio::spawn(rules_watch::follow(s, path, bytes, rules_watch::POLL, stop));
    }
    if let Some(addr) = settings.metrics_addr {
        let l = TcpListener::bind(addr)
            .await
            .map_err(io(format!("binding {addr} for metrics")))?;
        tracing::info!(addr = %addr, "serving Prometheus metrics on /metrics");
        let (m, s, stop) = (
            Arc::clone(&metrics),
            Arc::clone(&service),
            stopped(stop_rx.clone()),
        );
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve_metrics(l, m, s, stop).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    if let Some(tls) = &tls {
        let (certs, stop) = (Arc::clone(tls.certs()), stopped(stop_rx.clone()));
        tokio::spawn(crate::tls::follow(certs, crate::tls::POLL, stop));
    }
    if let Some(path) = settings.config.clone() {
        let (a, s, flags, stop) = (
            Arc::clone(&auth),
            Arc::clone(&service),
            settings.overrides.clone(),
            stopped(stop_rx.clone()),
        );
        tokio::spawn(config_watch::follow(
            path,
            flags,
            a,
            s,
            config_watch::POLL,
            stop,
        ));
    }
    let mut workbench = None;
    if let Some(addr) = settings.ui_addr {
        let l = TcpListener::bind(addr)
            .await
            .map_err(io(format!("binding {addr} for the workbench")))?;
        let bound = l
            .local_addr()
            .map_err(io("reading the workbench's bound address"))?;
        let web_tls = tls
            .as_ref()
            .filter(|_| settings.ui_tls)
            .map(Tls::web_config);
        let scheme = if web_tls.is_some() { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{bound}/"), "serving the analysts' workbench");
        let (a, s, stop) = (
            Arc::clone(&auth),
            Arc::clone(&service),
            stopped(stop_rx.clone()),
        );
        workbench = Some(tokio::spawn(async move {
            let r = match web_tls {
                Some(config) => crate::web::run_tls(l, config, stop, s, a).await,
                None => crate::web::run(l, stop, s, a).await,
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "the workbench stopped");
            }
        }));
    }
    if let Some(models) = settings.models_dir.clone() {
        tracing::info!(models = %models.display(), "following models/ACTIVE");
        let (s, stop) = (Arc::clone(&service), stopped(stop_rx.clone()));
        tokio::spawn(model_watch::follow(s, models, model_watch::POLL, stop));
    }
    let bus = match settings.nats.clone() {
        Some(nats) => Some(start_bus(nats, &service, &metrics, &stop_rx).await?),
        None => None,
    };
    let model = service.model_info();
    tracing::info!(addr = %local, tls = tls.is_some(), model = %model.version, threshold = model.threshold, "serving gRPC");
    match &tls {
        Some(tls) => {
            crate::grpc::run_tls(
                listener,
                tls.grpc_config(),
                stopped(stop_rx),
                Arc::clone(&service),
                auth,
                metrics,
            )
            .await?
        }
        None => {
            crate::grpc::run(
                listener,
                stopped(stop_rx),
                Arc::clone(&service),
                auth,
                metrics,
            )
            .await?
        }
    }
    // A resolution posted from the workbench must commit before the store closes.
    if let Some(w) = workbench {
        if tokio::time::timeout(DRAIN_TIMEOUT, w).await.is_err() {
            tracing::warn!(
                "workbench requests still in flight after {DRAIN_TIMEOUT:?}; closing anyway"
            );
        }
    }
    // The batches the bus is deciding commit, and are acknowledged, before the store closes.
    if let Some((consumer, publisher)) = bus {
        if tokio::time::timeout(DRAIN_TIMEOUT, consumer).await.is_err() {
            tracing::warn!(
                "bus messages still being decided after {DRAIN_TIMEOUT:?}; closing anyway"
            );
        }
        // A round cut short publishes again, under the same ids, on the next start.
        publisher.abort();
    }
    service.store().close();
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

/// How often held receipts and advices are settled against the clock.
const HOLD_POLL: std::time::Duration = std::time::Duration::from_secs(60);

/// Settles held receipts and advices whose hold is over (and links a crash left undecided),
/// every [`HOLD_POLL`], until `stop`.
async fn advance_holds(service: Arc<Service>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(HOLD_POLL);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match service.advance_holds().await {
            Ok(n) if n != Default::default() => {
                tracing::info!(
                    links = n.links,
                    receipts_alone = n.receipts_alone,
                    advices_to_review = n.advices_to_review,
                    "holds settled"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "settling held receipts and advices failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditRecord;

    #[test]
    fn a_broken_audit_chain_found_at_start_shows_in_the_metrics() {
        crate::service::tests::runtime().block_on(async {
            let (service, dir) = crate::service::tests::cases_service("app-audit-chain").await;
            for i in 0..3 {
                service
                    .store()
                    .set_active_model(
                        format!("/models/v{i}"),
                        AuditRecord {
                            at: crate::store::now(),
                            actor: "ops".into(),
                            action: "activate_model".into(),
                            subject: format!("/models/v{i}"),
                            before: serde_json::Value::Null,
                            after: serde_json::Value::Null,
                        },
                    )
                    .await
                    .expect("audit event");
            }
            let metrics = Metrics::new();
            check_audit_chain(&ChainAt::Sqlite(dir.clone()), &metrics);
            assert!(
                metrics
                    .render(&service)
                    .contains("cashmatch_audit_chain_broken 0")
            );
            let conn = rusqlite::Connection::open(dir.join(crate::store::sqlite::DB_FILE))
                .expect("raw open");
            conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 2", [])
                .expect("edit");
            check_audit_chain(&ChainAt::Sqlite(dir.clone()), &metrics);
            assert!(
                metrics
                    .render(&service)
                    .contains("cashmatch_audit_chain_broken 1")
            );
            service.store().close();
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
