//! Prometheus metrics: requests and their latency by method and status code, decisions by status
//! (the auto rate is their ratio), the review queue's depth, failed authentications by reason and
//! re-reads of the config's tokens, rendered on `GET /metrics` of a small HTTP listener of its
//! own.

use crate::service::Service;
use crate::service::auth::{Auth, FailureReason};
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
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
    auth_failures: Family<ReasonLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
    audit_chain_broken: Gauge,
    feed_position: Gauge,
    feed_changes: Counter,
    feed_delay: Family<QuantileLabels, Gauge<f64, AtomicU64>>,
    bus_messages: Family<ResultLabels, Counter>,
    bus_published: Family<TopicLabels, Counter>,
    /// Whose failures and reloads to show; none without [`Metrics::with_auth`].
    auth: Option<Arc<Auth>>,
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
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Calls and workbench sign-ins refused for their bearer token, by reason: missing, \
             unknown, forbidden (a role the token lacks), rate_limited (the client address had \
             too many unknown tokens within a minute)",
            auth_failures.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Changes of the config file read while serving, by result: ok (its tokens are in \
             force) or error (it could not be used; the tokens before it stay)",
            config_reloads.clone(),
        );
        let audit_chain_broken = Gauge::default();
        registry.register(
            "audit_chain_broken",
            "1 when the check of the audit trail's hash chain at start found an event edited or \
             deleted outside cashmatch (the log names it; `cashmatch audit verify` too), else 0",
            audit_chain_broken.clone(),
        );
        let feed_position = Gauge::default();
        registry.register(
            "feed_position",
            "PostgreSQL: the change feed's sequence this replica has applied (every other \
             replica's change up to it is in its memory); 0 on SQLite",
            feed_position.clone(),
        );
        let feed_changes = Counter::default();
        registry.register(
            "feed_changes",
            "PostgreSQL: other replicas' write groups applied to this replica's memory",
            feed_changes.clone(),
        );
        let feed_delay = Family::<QuantileLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "feed_delay_seconds",
            "PostgreSQL: from another replica's commit (the database's clock) to its change in \
             this replica's memory, over the last 4,096 changes, by quantile (0.5, 0.99)",
            feed_delay.clone(),
        );
        let bus_messages = Family::<ResultLabels, Counter>::default();
        registry.register(
            "bus_messages",
            "Payment messages taken from the event bus, by result: decided (durable, or a replay; \
             acknowledged), refused (never decidable: terminated, not delivered again; the log \
             names each), retried (the service could not decide it now: delivered again)",
            bus_messages.clone(),
        );
        let bus_published = Family::<TopicLabels, Counter>::default();
        registry.register(
            "bus_published",
            "Messages the event bus's publisher had stored by the broker, by topic: decisions, \
             postings (a message published again after a crash counts again)",
            bus_published.clone(),
        );
        Metrics {
            registry,
            bus_messages,
            bus_published,
            feed_position,
            feed_changes,
            feed_delay,
            audit_chain_broken,
            auth_failures,
            config_reloads,
            auth: None,
            requests,
            latency,
            decisions,
            queue_depth,
            auto_rate,
            wal_bytes,
        }
    }

    /// Shows the failed authentications and config reloads of `auth`.
    pub fn with_auth(mut self, auth: Arc<Auth>) -> Metrics {
        self.auth = Some(auth);
        self
    }

    /// Whether the audit chain was found broken.
    pub fn audit_chain_broken(&self, broken: bool) {
        self.audit_chain_broken.set(i64::from(broken));
    }

    /// Counts one message from the event bus by its result (`crate::bus`).
    pub fn bus_message(&self, result: &str) {
        self.bus_messages
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Counts messages the broker stored for the event bus's publisher.
    pub fn bus_published(&self, topic: &str, n: u64) {
        self.bus_published
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .inc_by(n);
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
    pub fn render(&self, service: &Service) -> String {
        let c = service.counters();
        let auto = c.decisions_auto.load(Ordering::Relaxed);
        let review = c.decisions_review.load(Ordering::Relaxed);
        for (status, value) in [("auto", auto), ("review", review)] {
            mirror(
                &self.decisions.get_or_create(&StatusLabels {
                    status: status.to_string(),
                }),
                value,
            );
        }
        if let Some(auth) = &self.auth {
            let c = auth.counters();
            for reason in FailureReason::ALL {
                mirror(
                    &self.auth_failures.get_or_create(&ReasonLabels {
                        reason: reason.label().to_string(),
                    }),
                    c.failures(reason),
                );
            }
            for (result, value) in [
                ("ok", c.reloads_ok.load(Ordering::Relaxed)),
                ("error", c.reloads_failed.load(Ordering::Relaxed)),
            ] {
                mirror(
                    &self.config_reloads.get_or_create(&ResultLabels {
                        result: result.to_string(),
                    }),
                    value,
                );
            }
        }
        self.queue_depth
            .set(i64::try_from(service.queue_depth()).unwrap_or(i64::MAX));
        let total = auto + review;
        self.auto_rate.set(if total == 0 {
            0.0
        } else {
            auto as f64 / total as f64
        });
        let feed = service.feed_stats();
        self.feed_position
            .set(i64::try_from(feed.position.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        mirror(&self.feed_changes, feed.changes.load(Ordering::Relaxed));
        let mut delays = feed.delays();
        if !delays.is_empty() {
            delays.sort_by(f64::total_cmp);
            for (label, q) in [("0.5", 0.5), ("0.99", 0.99)] {
                let i = ((delays.len() - 1) as f64 * q).round() as usize;
                self.feed_delay
                    .get_or_create(&QuantileLabels {
                        quantile: label.to_string(),
                    })
                    .set(delays[i.min(delays.len() - 1)] / 1000.0);
            }
        }
        if let Some(b) = service.store().wal_bytes() {
            self.wal_bytes.set(i64::try_from(b).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Brings a counter up to a count kept elsewhere (the service and the authenticator count; the
/// metrics mirror).
fn mirror(c: &Counter, value: u64) {
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}

/// Serves `GET /metrics` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    service: Arc<Service>,
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
