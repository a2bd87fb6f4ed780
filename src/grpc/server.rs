//! Serving: [`run`] takes a bound listener and a shutdown future (so tests bind port 0 and stop
//! the server at will); [`serve`] is `cashmatch serve`: settings to a running service that drains
//! on ctrl-c or SIGTERM.

use super::ledger::LedgerApi;
use super::matching::MatchingApi;
use super::metrics::{Metrics, serve_metrics};
use super::models::ModelsApi;
use super::pb::ledger_server::LedgerServer;
use super::pb::matching_server::MatchingServer;
use super::pb::models_server::ModelsServer;
use super::pb::review_server::ReviewServer;
use super::review::ReviewApi;
use super::{FILE_DESCRIPTOR_SET, require};
use crate::service::auth::{Auth, Role};
use crate::service::config::Settings;
use crate::service::{Service, ServiceError};
use crate::store::{SqliteStore, Store, StoreError};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The services reported by the health service (besides the whole server, "").
const SERVICES: [&str; 4] = [
    "cashmatch.v1.Ledger",
    "cashmatch.v1.Matching",
    "cashmatch.v1.Review",
    "cashmatch.v1.Models",
];

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// Serves the four cashmatch services, health checking and reflection on `listener` until
/// `shutdown` resolves, then drains requests in flight (for at most 30 seconds).
pub async fn run<S: Store>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Arc<Service<S>>,
    auth: impl Into<Arc<Auth>>,
    metrics: Arc<Metrics>,
) -> Result<(), ServeError> {
    let auth: Arc<Auth> = auth.into();
    let limit = service.limits().max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in SERVICES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    // Older grpcurl and tools speak only the v1alpha reflection protocol.
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let ledger = LedgerServer::new(LedgerApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let matching = MatchingServer::new(MatchingApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let review = ReviewServer::new(ReviewApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let models = ModelsServer::new(ModelsApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);

    let (drain_tx, drain_rx) = oneshot::channel::<()>();
    let signal = {
        let health = health.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests; draining those in flight");
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in SERVICES {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            let _ = drain_tx.send(());
        }
    };
    let server = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(InterceptedService::new(
            ledger,
            require(Arc::clone(&auth), Role::ArSystem),
        ))
        .add_service(InterceptedService::new(
            matching,
            require(Arc::clone(&auth), Role::ArSystem),
        ))
        .add_service(InterceptedService::new(
            review,
            require(Arc::clone(&auth), Role::Analyst),
        ))
        .add_service(InterceptedService::new(
            models,
            require(Arc::clone(&auth), Role::Admin),
        ))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a small response waits for the client's delayed ACK (~40 ms).
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            signal,
        );
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r?,
        _ = async {
            if drain_rx.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; closing anyway"),
    }
    Ok(())
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

/// `cashmatch serve`: opens the store in the data directory, restores the service, seeds the demo
/// ledger if asked and the store is empty, and serves until ctrl-c or SIGTERM.
pub async fn serve(settings: Settings, demo: bool) -> Result<(), ServeError> {
    if !settings.auth.enabled() {
        tracing::warn!(
            "no [[tokens]] configured: running WITHOUT authentication, listening on loopback only"
        );
    }
    let store = SqliteStore::open_with(&settings.data_dir, settings.durability)?;
    tracing::info!(path = %store.path().display(), durability = ?settings.durability, "store opened (SQLite, WAL)");
    let service = Arc::new(
        Service::open(
            store,
            settings.model.as_deref(),
            settings.threshold,
            settings.limits,
        )
        .await?,
    );
    if demo {
        seed_demo(&service, &settings.data_dir).await?;
    }
    let listener = TcpListener::bind(settings.addr)
        .await
        .map_err(io(format!("binding {}", settings.addr)))?;
    let local = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
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
            if let Err(e) = serve_metrics(l, m, s, stop).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    let auth = Arc::new(settings.auth);
    let mut workbench = None;
    if let Some(addr) = settings.ui_addr {
        let l = TcpListener::bind(addr)
            .await
            .map_err(io(format!("binding {addr} for the workbench")))?;
        let bound = l
            .local_addr()
            .map_err(io("reading the workbench's bound address"))?;
        tracing::info!(url = %format!("http://{bound}/"), "serving the analysts' workbench");
        let (a, s, stop) = (
            Arc::clone(&auth),
            Arc::clone(&service),
            stopped(stop_rx.clone()),
        );
        let sla = settings.review_sla_hours;
        workbench = Some(tokio::spawn(async move {
            if let Err(e) = crate::web::run(l, stop, s, a, sla).await {
                tracing::error!(error = %e, "the workbench stopped");
            }
        }));
    }
    if let Some(models) = settings.models_dir.clone() {
        tracing::info!(models = %models.display(), "following models/ACTIVE");
        let (s, stop) = (Arc::clone(&service), stopped(stop_rx.clone()));
        tokio::spawn(crate::service::model_watch::follow(
            s,
            models,
            crate::service::model_watch::POLL,
            stop,
        ));
    }
    let model = service.model_info();
    tracing::info!(addr = %local, model = %model.version, threshold = model.threshold, "serving gRPC");
    run(
        listener,
        stopped(stop_rx),
        Arc::clone(&service),
        auth,
        metrics,
    )
    .await?;
    // A resolution posted from the workbench must commit before the store closes.
    if let Some(w) = workbench {
        if tokio::time::timeout(DRAIN_TIMEOUT, w).await.is_err() {
            tracing::warn!(
                "workbench requests still in flight after {DRAIN_TIMEOUT:?}; closing anyway"
            );
        }
    }
    service.store().close();
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

/// A small synthetic ledger for trying the service, with remittances to send against it.
async fn seed_demo(service: &Arc<Service<SqliteStore>>, data_dir: &Path) -> Result<(), ServeError> {
    use crate::synth::{self, SynthConfig};
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
