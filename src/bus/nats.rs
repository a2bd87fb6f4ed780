//! The [`Broker`] on NATS JetStream (`async-nats`).
//!
//! With the prefix `P` (default `cashmatch`) the service uses the subjects `P.payments` (in),
//! `P.decisions` and `P.postings` (out), in two streams it creates when they are missing:
//! `<NAME>_PAYMENTS` and `<NAME>_EVENTS`, where `NAME` is the prefix in capitals with dots as
//! underscores. Streams created beforehand (by an operator, with their own limits and replicas)
//! are used as they are. Payments are read by the durable pull consumer `<NAME>_MATCHER` with
//! explicit acknowledgement, shared by every replica; outgoing messages carry `Nats-Msg-Id`, which
//! the events stream uses to drop a copy published again within its duplicate window.

use super::{Broker, BusError, Delivery, Outgoing, Topic};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind};
use futures_util::{FutureExt, StreamExt};
use std::time::Duration;

/// How long the events stream remembers a message id. A publisher that crashed after the broker
/// stored a batch but before its cursor was stored publishes the batch again when it restarts:
/// within this window, the copies are dropped. Longer than JetStream's two-minute default, so that
/// a restart that takes a while still publishes nothing twice.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long a delivered payment may stay unacknowledged before JetStream delivers it again (to
/// this replica or another): a batch is decided and committed in milliseconds to seconds.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Where the service meets NATS.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// The subjects' prefix, `cashmatch` by default.
    pub prefix: String,
}

impl NatsConfig {
    /// The prefix as it appears in stream and consumer names, which allow no dots.
    fn name(&self) -> String {
        self.prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The subject payments arrive on.
    pub fn payments_subject(&self) -> String {
        format!("{}.payments", self.prefix)
    }

    /// The subject of `topic`.
    pub fn subject(&self, topic: Topic) -> String {
        match topic {
            Topic::Decisions => format!("{}.decisions", self.prefix),
            Topic::Postings => format!("{}.postings", self.prefix),
        }
    }

    /// The stream of incoming payments.
    pub fn payments_stream(&self) -> String {
        format!("{}_PAYMENTS", self.name())
    }

    /// The stream of decisions and postings.
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.name())
    }

    /// The durable consumer the service reads payments with.
    pub fn consumer(&self) -> String {
        format!("{}_MATCHER", self.name())
    }

    /// Checks the prefix: a subject token of letters, digits, `_` and `-`, dot-separated.
    pub fn validate(&self) -> Result<(), String> {
        let ok = !self.prefix.is_empty()
            && self.prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "--nats-prefix {:?}: dot-separated tokens of letters, digits, '_' and '-'",
                self.prefix
            ))
        }
    }
}

/// JetStream as the service's broker.
pub struct JetStream {
    config: NatsConfig,
    context: jetstream::Context,
    consumer: jetstream::consumer::PullConsumer,
    /// The consumer's message stream, opened on first use and again after it failed. A mutex:
    /// one batch is taken at a time.
    messages: tokio::sync::Mutex<Option<pull::Stream>>,
}

impl JetStream {
    /// Connects, and creates the streams and the consumer where missing.
    pub async fn connect(config: NatsConfig) -> Result<JetStream, BusError> {
        config
            .validate()
            .map_err(|m| BusError::new("the NATS prefix", m))?;
        let client = async_nats::connect(config.url.as_str())
            .await
            .map_err(|e| BusError::new(format!("connecting to {}", config.url), e))?;
        let context = jetstream::new(client);
        let payments = context
            .get_or_create_stream(jetstream::stream::Config {
                name: config.payments_stream(),
                subjects: vec![config.payments_subject()],
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::new(format!("stream {}", config.payments_stream()), e))?;
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: config.events_stream(),
                subjects: vec![
                    config.subject(Topic::Decisions),
                    config.subject(Topic::Postings),
                ],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| BusError::new(format!("stream {}", config.events_stream()), e))?;
        let name = config.consumer();
        let consumer = payments
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    // Every batch in flight, twice over, so that reading never waits on acks.
                    max_ack_pending: (2 * super::IN_FLIGHT * super::BATCH) as i64,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::new(format!("consumer {name}"), e))?;
        Ok(JetStream {
            config,
            context,
            consumer,
            messages: tokio::sync::Mutex::new(None),
        })
    }
}

/// A payment message from JetStream.
pub struct NatsDelivery(jetstream::Message);

impl Delivery for NatsDelivery {
    fn payload(&self) -> &[u8] {
        &self.0.payload
    }

    fn describe(&self) -> String {
        match self.0.info() {
            Ok(i) => format!(
                "{} sequence {} (delivery {})",
                i.stream, i.stream_sequence, i.delivered
            ),
            Err(_) => format!("a message on {}", self.0.subject),
        }
    }

    async fn ack(&self) -> Result<(), BusError> {
        self.0
            .ack()
            .await
            .map_err(|e| BusError::new("acknowledging a payment", e))
    }

    async fn refuse(&self) -> Result<(), BusError> {
        // JetStream delivers a terminated message no more and publishes the advisory
        // $JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>; the message stays in
        // the payments stream for as long as its limits keep it.
        self.0
            .ack_with(AckKind::Term)
            .await
            .map_err(|e| BusError::new("refusing a payment", e))
    }

    async fn retry(&self, after: Duration) -> Result<(), BusError> {
        self.0
            .ack_with(AckKind::Nak(Some(after)))
            .await
            .map_err(|e| BusError::new("handing a payment back", e))
    }
}

impl Broker for JetStream {
    type Delivery = NatsDelivery;

    async fn next_batch(&self, max: usize, wait: Duration) -> Result<Vec<NatsDelivery>, BusError> {
        let mut slot = self.messages.lock().await;
        if slot.is_none() {
            let s = self
                .consumer
                .stream()
                .max_messages_per_batch(max)
                .messages()
                .await
                .map_err(|e| BusError::new("reading payments", e))?;
            *slot = Some(s);
        }
        let Some(stream) = slot.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut next = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => return Ok(out),
            Ok(n) => n,
        };
        loop {
            match next {
                Some(Ok(m)) => out.push(NatsDelivery(m)),
                Some(Err(e)) => {
                    // Missed heartbeats, a deleted consumer: the stream is opened again next
                    // time; what was taken is decided.
                    *slot = None;
                    if out.is_empty() {
                        return Err(BusError::new("reading payments", e));
                    }
                    tracing::warn!(error = %e, "the payments stream failed; opening it again");
                    return Ok(out);
                }
                None => {
                    *slot = None;
                    return Ok(out);
                }
            }
            if out.len() >= max {
                return Ok(out);
            }
            match stream.next().now_or_never() {
                Some(n) => next = n,
                None => return Ok(out),
            }
        }
    }

    async fn publish(&self, batch: Vec<Outgoing>) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(batch.len());
        for Outgoing { topic, id, body } in batch {
            let ack = self
                .context
                .send_publish(
                    self.config.subject(topic),
                    PublishMessage::build().payload(body.into()).message_id(&id),
                )
                .await
                .map_err(|e| BusError::new(format!("publishing {id}"), e))?;
            acks.push((id, ack));
        }
        for (id, ack) in acks {
            ack.await
                .map_err(|e| BusError::new(format!("storing {id}"), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix_and_a_bad_prefix_is_refused() {
        let c = NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            prefix: "acme.cash-1".into(),
        };
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.payments_subject(), "acme.cash-1.payments");
        assert_eq!(c.subject(Topic::Decisions), "acme.cash-1.decisions");
        assert_eq!(c.payments_stream(), "ACME_CASH_1_PAYMENTS");
        assert_eq!(c.events_stream(), "ACME_CASH_1_EVENTS");
        assert_eq!(c.consumer(), "ACME_CASH_1_MATCHER");
        for bad in ["", "a..b", "a.*", "a b", "a.>"] {
            let c = NatsConfig {
                url: c.url.clone(),
                prefix: bad.into(),
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
