//! The event bus's outbox through the service (`store::outbox`): first decisions in commit
//! order, and the publisher's cursors.

use super::Service;
use super::api::*;
use super::{DecisionEvent, Outbox};
use std::sync::atomic::Ordering;

impl Service {
    /// Whether a failed store write stopped the service (it takes no more changes until a
    /// restart): a consumer of the bus stops reading then, rather than fail every message.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// First decisions after outbox sequence `after`, in sequence order, at most `limit`; only
    /// committed ones, and never one without every one before it.
    pub async fn decision_events(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<DecisionEvent>, ServiceError> {
        Ok(self.store.decision_events(after, limit).await?)
    }

    /// How far the bus publisher got in `outbox`.
    pub async fn bus_cursor(&self, outbox: Outbox) -> Result<u64, ServiceError> {
        Ok(self.store.bus_cursor(outbox).await?)
    }

    /// Moves the publisher's cursor in `outbox` forward to `position` (never back); resolves
    /// once durable.
    pub async fn set_bus_cursor(&self, outbox: Outbox, position: u64) -> Result<(), ServiceError> {
        Ok(self.store.set_bus_cursor(outbox, position).await?)
    }
}
