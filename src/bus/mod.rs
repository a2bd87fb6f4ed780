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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::pb;
    use prost::Message;
    use std::sync::Mutex;

    /// What happened to each delivery, by its name.
    type Settled = Arc<Mutex<Vec<(String, &'static str)>>>;

    struct FakeDelivery {
        name: String,
        body: Vec<u8>,
        settled: Settled,
    }

    impl FakeDelivery {
        fn settle(&self, how: &'static str) -> Result<(), BusError> {
            self.settled
                .lock()
                .expect("lock")
                .push((self.name.clone(), how));
            Ok(())
        }
    }

    impl Delivery for FakeDelivery {
        fn payload(&self) -> &[u8] {
            &self.body
        }
        fn describe(&self) -> String {
            self.name.clone()
        }
        async fn ack(&self) -> Result<(), BusError> {
            self.settle("ack")
        }
        async fn refuse(&self) -> Result<(), BusError> {
            self.settle("refuse")
        }
        async fn retry(&self, _after: Duration) -> Result<(), BusError> {
            self.settle("retry")
        }
    }

    /// A broker in memory: deliveries queued by the test, messages kept, publishing refused
    /// while `down`.
    #[derive(Default)]
    struct Fake {
        inbound: Mutex<Vec<FakeDelivery>>,
        published: Mutex<Vec<Outgoing>>,
        down: std::sync::atomic::AtomicBool,
    }

    impl Broker for Fake {
        type Delivery = FakeDelivery;

        async fn next_batch(
            &self,
            max: usize,
            wait: Duration,
        ) -> Result<Vec<FakeDelivery>, BusError> {
            let batch: Vec<FakeDelivery> = {
                let mut q = self.inbound.lock().expect("lock");
                let n = q.len().min(max);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                tokio::time::sleep(wait.min(Duration::from_millis(10))).await;
            }
            Ok(batch)
        }

        async fn publish(&self, batch: Vec<Outgoing>) -> Result<(), BusError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(BusError::new("publishing", "the broker is down"));
            }
            self.published.lock().expect("lock").extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_payment_is_acknowledged_once_durable_a_replay_too_and_garbage_is_refused() {
        crate::service::tests::runtime().block_on(async {
            let (service, dir) = crate::service::tests::cases_service("bus-fake").await;
            let decided = crate::io::read_remittances(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/cases/remittances.csv"),
            )
            .expect("fixture payments")
            .payments;
            let mut fresh = decided[0].clone();
            fresh.payment_id = "BUS-NEW-1".into();
            let settled = Settled::default();
            let body = |p: &crate::domain::Payment| {
                pb::MatchRequest {
                    input: Some(pb::match_request::Input::Payment(p.clone().into())),
                }
                .encode_to_vec()
            };
            let broker = Arc::new(Fake::default());
            for (name, b) in [
                ("replay", body(&decided[1])),
                ("garbage", vec![0xff, 0x01]),
                ("fresh", body(&fresh)),
            ] {
                broker.inbound.lock().expect("lock").push(FakeDelivery {
                    name: name.into(),
                    body: b,
                    settled: Arc::clone(&settled),
                });
            }
            let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
            let consumer = tokio::spawn(consume(
                Arc::clone(&broker),
                Arc::clone(&service),
                Arc::new(Metrics::new()),
                async move {
                    let _ = stop_rx.wait_for(|v| *v).await;
                },
            ));
            for _ in 0..400 {
                if settled.lock().expect("lock").len() == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = stop_tx.send(true);
            consumer.await.expect("task").expect("consumer");
            let mut got = settled.lock().expect("lock").clone();
            got.sort();
            assert_eq!(
                got,
                [
                    ("fresh".to_string(), "ack"),
                    ("garbage".into(), "refuse"),
                    ("replay".into(), "ack")
                ]
            );
            // Acknowledged means durable: the store has it.
            assert!(service.decision("BUS-NEW-1".into()).await.is_ok());

            // The outbox: nothing moves while the broker is down; then everything, once, under
            // stable ids; a second round publishes nothing.
            let metrics = Metrics::new();
            broker.down.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(publish_once(&*broker, &service, &metrics).await.is_err());
            assert_eq!(
                service.bus_cursor(Outbox::Decisions).await.expect("cursor"),
                0
            );
            broker
                .down
                .store(false, std::sync::atomic::Ordering::SeqCst);
            while publish_once(&*broker, &service, &metrics)
                .await
                .expect("publish")
                > 0
            {}
            let published = broker.published.lock().expect("lock").clone();
            let ids: Vec<&str> = published
                .iter()
                .filter(|m| m.topic == Topic::Decisions)
                .map(|m| m.id.as_str())
                .collect();
            let outbox: Vec<String> = service
                .decision_events(0, 10_000)
                .await
                .expect("outbox")
                .iter()
                .map(|e| format!("decision-{}", e.decision.payment.payment_id))
                .collect();
            assert_eq!(ids, outbox);
            assert!(ids.contains(&"decision-BUS-NEW-1"));
            let postings = service
                .postings(PostingFilter::All, 0, 10_000)
                .await
                .expect("journal");
            let posted: Vec<String> = published
                .iter()
                .filter(|m| m.topic == Topic::Postings)
                .map(|m| m.id.clone())
                .collect();
            let journal: Vec<String> = postings
                .iter()
                .map(|p| format!("posting-{}", p.sequence))
                .collect();
            assert_eq!(posted, journal);
            service.store().close();
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
}
