//! Prometheus metrics: requests and their latency by method and status code, decisions by status
//! (the auto rate is their ratio), and the review queue's depth, rendered on `GET /metrics` of a
//! small HTTP listener of its own.

use crate::service::Service;
use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    decisions: Family<StatusLabels, Counter>,
    queue_depth: Gauge,
    auto_rate: Gauge<f64, AtomicU64>,
    wal_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Latency buckets in seconds: single payments take about a millisecond, big files seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cashmatch");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "grpc_requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "grpc_request_duration_seconds",
            "gRPC request latency by method",
            latency.clone(),
        );
        let decisions = Family::<StatusLabels, Counter>::default();
        registry.register(
            "decisions",
            "Payments decided (replays not counted), by status: auto or review",
            decisions.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "review_queue_depth",
            "Review items waiting for an analyst",
            queue_depth.clone(),
        );
        let auto_rate = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "auto_rate",
            "Share of payments decided since start that were applied automatically",
            auto_rate.clone(),
        );
        let wal_bytes = Gauge::default();
        registry.register(
            "store_wal_bytes",
            "Size of the store's write-ahead log file; it stays under about 64 MiB unless a long \
             reader or a slow disk keeps checkpoints from catching up",
            wal_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            decisions,
            queue_depth,
            auto_rate,
            wal_bytes,
        }
    }

    /// Records one request.
    pub fn request(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                code: format!("{code:?}"),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Renders the text exposition, reading the service's gauges now.
    pub fn render<S: Store>(&self, service: &Service<S>) -> String {
        let c = service.counters();
        let auto = c.decisions_auto.load(Ordering::Relaxed);
        let review = c.decisions_review.load(Ordering::Relaxed);
        self.set_counter("auto", auto);
        self.set_counter("review", review);
        self.queue_depth
            .set(i64::try_from(service.queue_depth()).unwrap_or(i64::MAX));
        let total = auto + review;
        self.auto_rate.set(if total == 0 {
            0.0
        } else {
            auto as f64 / total as f64
        });
        if let Some(b) = service.store().wal_bytes() {
            self.wal_bytes.set(i64::try_from(b).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Brings a decision counter up to the service's count (the service counts; this mirrors).
    fn set_counter(&self, status: &str, value: u64) {
        let c = self.decisions.get_or_create(&StatusLabels {
            status: status.to_string(),
        });
        let now = c.get();
        if value > now {
            c.inc_by(value - now);
        }
    }
}

/// Serves `GET /metrics` until `shutdown` resolves.
pub async fn serve_metrics<S: Store>(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    service: Arc<Service<S>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render(&service);
            async move {
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    body,
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
