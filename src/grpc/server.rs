//! Serving: [`run`] takes a bound listener and a shutdown future, so tests bind port 0 and stop
//! the server at will; `crate::app` starts it for `cashmatch serve`.

use super::advices::AdvicesApi;
use super::ledger::LedgerApi;
use super::matching::MatchingApi;
use super::models::ModelsApi;
use super::pb::advices_server::AdvicesServer;
use super::pb::ledger_server::LedgerServer;
use super::pb::matching_server::MatchingServer;
use super::pb::models_server::ModelsServer;
use super::pb::postings_server::PostingsServer;
use super::pb::reversals_server::ReversalsServer;
use super::pb::review_server::ReviewServer;
use super::postings::PostingsApi;
use super::reversals::ReversalsApi;
use super::review::ReviewApi;
use super::{FILE_DESCRIPTOR_SET, require, require_any};
use crate::metrics::Metrics;
use crate::service::Service;
use crate::service::auth::{Auth, Role};
use crate::tls::{ServerConfig, TlsListener};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::Router;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The services reported by the health service (besides the whole server, "").
const SERVICES: [&str; 7] = [
    "cashmatch.v1.Ledger",
    "cashmatch.v1.Matching",
    "cashmatch.v1.Review",
    "cashmatch.v1.Models",
    "cashmatch.v1.Postings",
    "cashmatch.v1.Reversals",
    "cashmatch.v1.Advices",
];

/// Why the gRPC server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server reflection: {0}")]
    Reflection(String),
    #[error("listener: {0}")]
    Listener(std::io::Error),
}

/// Serves the seven cashmatch services, health checking and reflection on `listener` until
/// `shutdown` resolves, then drains requests in flight (for at most 30 seconds).
pub async fn run(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Arc<Service>,
    auth: impl Into<Arc<Auth>>,
    metrics: Arc<Metrics>,
) -> Result<(), ServeError> {
    let (router, signal, drain_rx) = routes(shutdown, service, auth.into(), metrics).await?;
    // Without TCP_NODELAY a small response waits for the client's delayed ACK (~40 ms).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    drain(
        router.serve_with_incoming_shutdown(incoming, signal),
        drain_rx,
    )
    .await
}

/// [`run`] over TLS with `tls` (`crate::tls`): the certificate it resolves is served from each
/// handshake on, and a client certificate it verified reaches the interceptors.
pub async fn run_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Arc<Service>,
    auth: impl Into<Arc<Auth>>,
    metrics: Arc<Metrics>,
) -> Result<(), ServeError> {
    let (router, signal, drain_rx) = routes(shutdown, service, auth.into(), metrics).await?;
    let listener = TlsListener::new(listener, tls).map_err(ServeError::Listener)?;
    let incoming = futures_util::stream::unfold(listener, |mut l| async move {
        l.next()
            .await
            .map(|(tls, _)| (Ok::<_, std::io::Error>(tls), l))
    });
    drain(
        router.serve_with_incoming_shutdown(incoming, signal),
        drain_rx,
    )
    .await
}

/// Awaits the server; once shutdown has begun, for at most [`DRAIN_TIMEOUT`].
async fn drain(
    server: impl Future<Output = Result<(), tonic::transport::Error>>,
    drain_rx: oneshot::Receiver<()>,
) -> Result<(), ServeError> {
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

/// The services behind their interceptors, the shutdown signal that reports NOT_SERVING and
/// ends the watch streams, and the receiver told when draining begins.
async fn routes(
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Arc<Service>,
    auth: Arc<Auth>,
    metrics: Arc<Metrics>,
) -> Result<
    (
        Router,
        impl Future<Output = ()> + Send + 'static,
        oneshot::Receiver<()>,
    ),
    ServeError,
> {
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
    let reversals = ReversalsServer::new(ReversalsApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let advices = AdvicesServer::new(AdvicesApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    // Watch streams never end on their own: told to end at shutdown, so that draining does
    // not wait the whole timeout for them.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let postings = PostingsServer::new(PostingsApi {
        service: Arc::clone(&service),
        metrics: Arc::clone(&metrics),
        closing,
    })
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);

    let (drain_tx, drain_rx) = oneshot::channel::<()>();
    let signal = {
        let health = health.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests; draining those in flight");
            let _ = closing_tx.send(true);
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
        // The journal is what the AR system books.
        .add_service(InterceptedService::new(
            postings,
            require(Arc::clone(&auth), Role::ArSystem),
        ))
        // A bank return reaches the AR system; a wrong application is found by either.
        .add_service(InterceptedService::new(
            reversals,
            require_any(Arc::clone(&auth), vec![Role::ArSystem, Role::Analyst]),
        ))
        // Advices come from the AR system; analysts link them (each method checks its role).
        .add_service(InterceptedService::new(
            advices,
            require_any(Arc::clone(&auth), vec![Role::ArSystem, Role::Analyst]),
        ));
    Ok((server, signal, drain_rx))
}
