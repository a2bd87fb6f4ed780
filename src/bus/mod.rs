//! The event bus: payments in from a message broker, decisions and postings out through the
//! outbox, beside gRPC and over the same service.
//!
//! A [`Broker`] is the little the service needs of one: batches of inbound deliveries to
//! acknowledge, refuse or hand back, and ordered publishing of messages under ids the broker
//! de-duplicates. [`nats`] implements it on NATS JetStream; Kafka or RabbitMQ would implement the
//! same two traits.
//!
//! In ([`consume`]): each delivery is a `cashmatch.v1.MatchRequest` decided by the code that
//! decides a gRPC `MatchPayments` batch (`grpc::bus`). It is acknowledged only once its decision
//! is durable; a delivery lost before that comes again and is a replay, which returns the stored
//! decision and changes nothing. At-least-once delivery and idempotent decisions make every
//! payment decided exactly once.
//!
//! Out ([`publish`]): the postings journal and the decision outbox are written in the
//! transaction of the change (`store::outbox`); the publisher reads them from its cursors,
//! publishes in order with stable ids (`posting-<sequence>`, `decision-<payment id>`), and
//! stores each cursor after the broker acknowledged. A crash between the two publishes the same
//! ids again, and the broker drops them within its duplicate window. docs/api.md, "Event bus",
//! says what that means for a consumer.

pub mod nats;

use crate::grpc::bus::{Verdict, decide_payloads, encode_decision, encode_posting};
use crate::metrics::Metrics;
use crate::service::{Outbox, PostingFilter, Service, ServiceError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries taken in one batch at most: decided together, as one group commit.
pub const BATCH: usize = 256;

/// Batches being decided at once: while one waits for its commit, the next is read and decided.
const IN_FLIGHT: usize = 4;

/// How long a delivery the service could not decide waits before the broker sends it again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long the publisher waits for a commit before it looks at the outbox anyway (another
/// replica's writes on PostgreSQL do not wake it).
const PUBLISH_POLL: Duration = Duration::from_millis(500);

/// A failure of the broker or of the connection to it.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {message}")]
pub struct BusError {
    pub context: String,
    pub message: String,
}

impl BusError {
    pub(crate) fn new(context: impl Into<String>, message: impl ToString) -> BusError {
        BusError {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

/// Where an outgoing message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `cashmatch.v1.Decision`, one per payment.
    Decisions,
    /// `cashmatch.v1.Posting`, one per journal entry.
    Postings,
}

/// A message to publish: its body under an id that the broker uses to drop a second copy.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub topic: Topic,
    pub id: String,
    pub body: Vec<u8>,
}

/// One inbound message, until it is settled.
pub trait Delivery: Send + Sync + 'static {
    /// The message body.
    fn payload(&self) -> &[u8];
    /// Where the message is in the broker, for logs.
    fn describe(&self) -> String;
    /// Settled: the broker delivers it no more.
    fn ack(&self) -> impl Future<Output = Result<(), BusError>> + Send;
    /// Never to be settled: the broker delivers it no more, and keeps a record of the refusal
    /// where its kind of broker does (a dead-letter queue, an advisory).
    fn refuse(&self) -> impl Future<Output = Result<(), BusError>> + Send;
    /// Not settled now: the broker delivers it again after `after`.
    fn retry(&self, after: Duration) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// A message broker as the service uses it.
pub trait Broker: Send + Sync + 'static {
    type Delivery: Delivery;

    /// Up to `max` inbound deliveries: waits at most `wait` for the first, then takes what has
    /// already arrived. An empty batch when nothing came.
    fn next_batch(
        &self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Self::Delivery>, BusError>> + Send;

    /// Publishes `batch` in order; resolves once the broker has stored every message (a
    /// duplicate id it dropped counts as stored).
    fn publish(&self, batch: Vec<Outgoing>) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// Decides the payments the broker delivers until `stop` resolves, then lets the batches in
/// flight finish. Returns early, with the error, when the service stops taking writes.
pub async fn consume<B: Broker>(
    broker: Arc<B>,
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut stop = std::pin::pin!(stop);
    let outcome = loop {
        if service.is_stopped() {
            break Err(ServiceError::Stopped);
        }
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break Ok(());
        };
        let batch = tokio::select! {
            () = &mut stop => break Ok(()),
            b = broker.next_batch(BATCH, Duration::from_secs(1)) => b,
        };
        let batch = match batch {
            Ok(b) if b.is_empty() => continue,
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading payments from the bus failed; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let (service, metrics) = (Arc::clone(&service), Arc::clone(&metrics));
        tokio::spawn(async move {
            settle(&service, &metrics, batch).await;
            drop(slot);
        });
    };
    // Every batch in flight settles before the store closes.
    let _ = slots.acquire_many(IN_FLIGHT as u32).await;
    outcome
}

/// Decides one batch and settles each delivery by its verdict.
async fn settle<D: Delivery>(service: &Arc<Service>, metrics: &Metrics, batch: Vec<D>) {
    let payloads: Vec<&[u8]> = batch.iter().map(Delivery::payload).collect();
    let verdicts = decide_payloads(service, &payloads).await;
    for (d, v) in batch.iter().zip(verdicts) {
        let settled = match v {
            Verdict::Decided => {
                metrics.bus_message("decided");
                d.ack().await
            }
            Verdict::Refused(why) => {
                metrics.bus_message("refused");
                tracing::error!(message = %d.describe(), reason = %why, "a message from the bus can never be decided: refused, not delivered again");
                d.refuse().await
            }
            Verdict::Failed(why) => {
                metrics.bus_message("retried");
                tracing::warn!(message = %d.describe(), reason = %why, "a message from the bus could not be decided now; it comes again");
                d.retry(RETRY_AFTER).await
            }
        };
        if let Err(e) = settled {
            // The broker delivers it again after its ack wait: a replay, which changes nothing.
            tracing::warn!(message = %d.describe(), error = %e, "settling a message on the bus failed");
        }
    }
}

/// Publishes the postings journal and the decision outbox, from the cursors stored in the
/// store, until `stop` resolves. Each cursor moves only after the broker stored what it covers.
pub async fn publish<B: Broker>(
    broker: Arc<B>,
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send,
) {
    let mut stop = std::pin::pin!(stop);
    let mut changes = service.journal_changes();
    loop {
        changes.borrow_and_update();
        let published = match publish_once(&*broker, &service, &metrics).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "publishing to the bus failed; trying again from the stored cursors");
                0
            }
        };
        if published > 0 {
            continue;
        }
        tokio::select! {
            () = &mut stop => return,
            _ = changes.changed() => {}
            () = tokio::time::sleep(PUBLISH_POLL) => {}
        }
    }
}

/// Why one round of publishing stopped.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// One page of each outbox from its cursor: how many messages were published.
async fn publish_once<B: Broker>(
    broker: &B,
    service: &Arc<Service>,
    metrics: &Metrics,
) -> Result<usize, PublishError> {
    // Decisions first: a subscriber sees a payment's decision before the cash it moved.
    let after = service.bus_cursor(Outbox::Decisions).await?;
    let decisions: Vec<(u64, Outgoing)> = service
        .decision_events(after, BATCH as u32)
        .await?
        .into_iter()
        .map(|e| {
            let id = format!("decision-{}", e.decision.payment.payment_id);
            let body = encode_decision(e.decision.decision);
            (
                e.sequence,
                Outgoing {
                    topic: Topic::Decisions,
                    id,
                    body,
                },
            )
        })
        .collect();
    let mut published =
        publish_page(broker, service, metrics, Outbox::Decisions, decisions).await?;
    let after = service.bus_cursor(Outbox::Postings).await?;
    let postings: Vec<(u64, Outgoing)> = service
        .postings(PostingFilter::All, after, BATCH as u32)
        .await?
        .into_iter()
        .map(|p| {
            let (seq, id) = (p.sequence, format!("posting-{}", p.sequence));
            (
                seq,
                Outgoing {
                    topic: Topic::Postings,
                    id,
                    body: encode_posting(p),
                },
            )
        })
        .collect();
    published += publish_page(broker, service, metrics, Outbox::Postings, postings).await?;
    Ok(published)
}

/// Publishes one page of an outbox, each message with its outbox sequence, and moves the cursor
/// to the last once the broker has stored them all.
async fn publish_page<B: Broker>(
    broker: &B,
    service: &Arc<Service>,
    metrics: &Metrics,
    outbox: Outbox,
    page: Vec<(u64, Outgoing)>,
) -> Result<usize, PublishError> {
    let Some(last) = page.last().map(|(seq, _)| *seq) else {
        return Ok(0);
    };
    let n = page.len();
    broker
        .publish(page.into_iter().map(|(_, m)| m).collect())
        .await?;
    service.set_bus_cursor(outbox, last).await?;
    metrics.bus_published(outbox.name(), n as u64);
    Ok(n)
}
