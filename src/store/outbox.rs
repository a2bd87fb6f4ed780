//! The outbox of the event bus (`crate::bus`): what the publisher reads, and where it remembers
//! how far it got.
//!
//! Two tables are written in the transaction of the change they announce, so that an event can
//! be neither lost nor invented: the postings journal (`store::posting`, already gap-free) and
//! the decision outbox, one row per first decision of a payment, numbered like the journal (the
//! largest plus one under the store's single writer: gap-free, in commit order). The publisher
//! keeps one cursor per outbox in `bus_cursors`, stored after the broker acknowledged what it
//! published: after a crash it publishes again from the cursor, under the same message ids, and
//! the broker drops the duplicates.

use super::StoredDecision;

/// A payment's first decision as the outbox numbers it.
#[derive(Clone, Debug)]
pub struct DecisionEvent {
    /// The outbox sequence: 1, 2, 3, ... in commit order, without gaps.
    pub sequence: u64,
    /// The decision as stored now (a later return or unapply changes its status; the postings
    /// journal says how).
    pub decision: StoredDecision,
}

/// The outboxes a publisher keeps a cursor in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    /// The postings journal, by posting sequence.
    Postings,
    /// The decision outbox, by [`DecisionEvent::sequence`].
    Decisions,
}

impl Outbox {
    /// The cursor's key in `bus_cursors`.
    pub fn name(self) -> &'static str {
        match self {
            Outbox::Postings => "postings",
            Outbox::Decisions => "decisions",
        }
    }
}
