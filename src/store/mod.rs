//! The service's durable state: the ledger, every decision with the cash it applied, the review
//! queue with its resolutions, and the audit trail.
//!
//! [`Store`] is the boundary. It speaks in domain types and whole records, one record per
//! transaction, so that a PostgreSQL implementation for several replicas could take the same
//! calls: every change of an open amount carries the amount its writer saw before
//! ([`OpenAmountChange::before`]) and the store refuses the record when the row says otherwise,
//! which is the check a second replica would need. [`SqliteStore`] is the embedded default;
//! [`PgStore`] serves several replicas on one PostgreSQL database.
//!
//! Writes are ordered by the *call*, not by the await: the service calls a write method while it
//! holds the engine's lock, then releases the lock and awaits the commit. The store must apply
//! writes in call order, so it sees the open amounts change in the order the engine changed them.
//! The returned future resolves once the write is durable (committed and synced).
//!
//! Money is stored as decimal text, exactly as `rust_decimal` prints it.

pub mod advice;
pub mod approval;
pub mod export;
pub mod feed;
pub mod journal;
pub mod outbox;
pub mod postgres;
pub mod posting;
pub mod session;
pub mod sqlite;
pub(crate) mod writer;

pub use advice::{
    AdviceBook, AdviceLink, AdviceWrite, HeldExpect, HeldItem, HeldSide, HeldState, Unlink,
};
pub use approval::{Approval, ApprovalState, ApprovalWrite};
pub use feed::{ChangeBatch, FeedReceiver, RowKey};
pub use outbox::{DecisionEvent, Outbox};
pub use postgres::{PgStore, StoreUrl};
pub use posting::{
    ActorKind, PostedBy, Posting, PostingFilter, PostingKind, PostingRecord, decision_postings,
    live_postings, payment_postings, replay_open_amounts, reversal_postings,
};
pub use session::{SessionRecord, SessionWrite};
pub use sqlite::{Durability, SqliteStore};

use crate::domain::{
    Allocation, Currency, Customer, Decision, Invoice, LabelSource, Payment, ReviewReason,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;

/// What every store call returns: a future that owns what it needs (it borrows nothing from the
/// store), so the caller may queue a write under a lock and await it after releasing the lock.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The current instant. (Through `SystemTime`, which needs no time-zone support from chrono.)
pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// A fault of the store. The service treats a failed write as fatal for its in-memory state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed: I/O, a full disk, a locked file.
    #[error("store: {context}: {message}")]
    Backend { context: String, message: String },
    /// A stored record could not be read back.
    #[error("store: corrupt {what}: {message}")]
    Corrupt { what: String, message: String },
    /// A write whose premise no longer holds: an open amount that is not what its writer saw, a
    /// payment decided twice, a review item resolved twice. Nothing was written.
    #[error("store: conflict: {0}")]
    Conflict(String),
    /// The store was shut down or its writer died.
    #[error("store: closed")]
    Closed,
}

/// What the service restores on start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub customers: Vec<Customer>,
    /// In the order they were first stored, with their current open amounts.
    pub invoices: Vec<Invoice>,
    /// Every decided payment id.
    pub decided: Vec<String>,
    /// Payment ids of the review items still open.
    pub open_reviews: Vec<String>,
    /// The model directory last activated, if any.
    pub active_model: Option<String>,
    /// Per invoice with applications, the last payment applied to it: the payment that closed
    /// it, for the items that are closed (a possible duplicate payment names it).
    pub last_applied: Vec<LastApplied>,
    /// The change feed's position at the snapshot (see [`Store::follow`]); 0 without a feed.
    pub change_seq: u64,
}

/// The last payment applied to an invoice, and the payment's date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastApplied {
    pub invoice_id: String,
    pub payment_id: String,
    pub paid_on: Option<NaiveDate>,
}

/// An invoice's open amount moving from `before` to `after`. The store refuses the whole record
/// when the stored open amount is not `before`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenAmountChange {
    pub invoice_id: String,
    pub before: Decimal,
    pub after: Decimal,
}

/// One recorded action, with the state before and after it.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `resolve`, `close_invoice`, `adjust_invoice`, `activate_model`.
    pub action: String,
    /// The payment, invoice or model the action was on.
    pub subject: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// An [`AuditRecord`] as stored, with its sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub id: u64,
    pub record: AuditRecord,
}

/// A decision with everything that must become durable with it, in one transaction.
#[derive(Clone, Debug)]
pub struct DecisionRecord {
    pub payment: Payment,
    pub decision: Decision,
    /// Open amounts the decision's allocations reduce; empty for a review decision.
    pub changes: Vec<OpenAmountChange>,
    pub at: DateTime<Utc>,
    /// The cash the decision moved (applied, unapplied), journalled with it.
    pub postings: Vec<PostingRecord>,
}

/// A ledger change from the AR system: customers and invoices stored whole, replacing rows with
/// the same id.
#[derive(Clone, Debug, Default)]
pub struct LedgerWrite {
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    pub audit: Option<AuditRecord>,
    /// The open-amount differences the AR system made, journalled with them.
    pub postings: Vec<PostingRecord>,
}

/// What an analyst did with a review item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionAction {
    AcceptSuggestion,
    ApplyAllocation,
    LeaveUnapplied,
    PutOnAccount,
}

impl ResolutionAction {
    /// The name stored and shown in the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            ResolutionAction::AcceptSuggestion => "accept_suggestion",
            ResolutionAction::ApplyAllocation => "apply_allocation",
            ResolutionAction::LeaveUnapplied => "leave_unapplied",
            ResolutionAction::PutOnAccount => "put_on_account",
        }
    }
}

/// The outcome of a review item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub action: ResolutionAction,
    pub analyst: String,
    pub resolved_at: DateTime<Utc>,
    /// The cash applied; empty when nothing was.
    pub allocations: Vec<Allocation>,
    pub unapplied: Decimal,
    /// For cash kept on account: whose.
    pub customer_id: Option<String>,
    /// For an accepted suggestion: which one (0-based).
    pub suggestion_index: Option<u32>,
    pub note: String,
}

/// A resolution with the open-amount changes and the audit event that must be durable with it.
#[derive(Clone, Debug)]
pub struct ResolutionRecord {
    pub payment_id: String,
    pub resolution: Resolution,
    pub changes: Vec<OpenAmountChange>,
    pub audit: AuditRecord,
    /// The cash the resolution moved, journalled with it.
    pub postings: Vec<PostingRecord>,
}

/// Waiting cash of a payment (unapplied or on account) applied to invoices later: the invoices'
/// open-amount changes, the applications, the postings (the waiting cash reversed, the cash
/// applied, what still waits) and the audit event.
#[derive(Clone, Debug)]
pub struct CashRecord {
    pub payment_id: String,
    pub allocations: Vec<Allocation>,
    pub changes: Vec<OpenAmountChange>,
    pub audit: AuditRecord,
    pub postings: Vec<PostingRecord>,
}

/// A payment the bank returned (NSF, an ACH return): why, and who reversed it when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentReturn {
    /// The bank's return reason code (`R01`, `AC04`, ...).
    pub return_code: String,
    /// Free text: what the bank or the AR system said.
    pub reason: String,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// What a reversal does to the payment besides reversing its postings.
#[derive(Clone, Debug)]
pub enum ReversalKind {
    /// The bank returned the payment: the decision becomes returned and its review item, if it
    /// has one, leaves the queue.
    Return(PaymentReturn),
    /// The application is undone and the payment waits in the review queue again: its resolved
    /// item is reopened (`reopen`), or a new item is opened for an auto decision.
    Unapply { reopen: bool },
}

/// A reversal of every live posting of a payment, with the open amounts it restores, the
/// decision as it stands after, and its audit event, in one transaction.
#[derive(Clone, Debug)]
pub struct ReversalRecord {
    pub payment: Payment,
    /// The decision after: status returned, or (unapplied) a review decision.
    pub decision: Decision,
    pub kind: ReversalKind,
    /// Open amounts restored; the store refuses the record when a stored amount is not `before`.
    pub changes: Vec<OpenAmountChange>,
    /// One reversal per live posting of the payment.
    pub postings: Vec<PostingRecord>,
    pub audit: AuditRecord,
    pub at: DateTime<Utc>,
}

/// Whether a review item still waits for an analyst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewState {
    Open,
    Resolved,
    /// The bank returned the payment: it left the queue (or its resolution was reversed).
    Returned,
}

/// A review item as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewSummary {
    pub payment_id: String,
    pub customer_id: Option<String>,
    pub amount: Decimal,
    pub currency: Currency,
    pub reason: Option<ReviewReason>,
    pub confidence: f64,
    pub created_at: DateTime<Utc>,
    pub state: ReviewState,
    /// The analyst who claimed the item or was assigned it; `None` while anyone may take it.
    pub owner: Option<String>,
}

impl ReviewSummary {
    /// Days since the item entered the queue.
    pub fn age_days(&self, now: DateTime<Utc>) -> f64 {
        ((now - self.created_at).num_milliseconds() as f64 / 86_400_000.0).max(0.0)
    }

    /// Large old items first: the amount weighted by one plus the age in days. A float, because
    /// it only orders the queue; no money is computed from it.
    pub fn priority(&self, now: DateTime<Utc>) -> f64 {
        use rust_decimal::prelude::ToPrimitive;
        self.amount.to_f64().unwrap_or(0.0) * (1.0 + self.age_days(now))
    }
}

/// A review item with everything an analyst needs.
#[derive(Clone, Debug)]
pub struct ReviewRecord {
    pub summary: ReviewSummary,
    pub payment: Payment,
    pub decision: Decision,
    pub resolution: Option<Resolution>,
}

/// Which review items to list.
#[derive(Clone, Debug)]
pub struct ReviewFilter {
    pub customer_id: Option<String>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    pub min_age_days: Option<u32>,
    pub max_age_days: Option<u32>,
    /// Only items in review for this reason.
    pub reason: Option<ReviewReason>,
    /// Only the items of one analyst, or only those nobody owns.
    pub owner: Option<OwnerFilter>,
    pub include_resolved: bool,
    pub limit: u32,
    pub offset: u32,
    /// The instant ages are measured from.
    pub now: DateTime<Utc>,
}

impl ReviewFilter {
    /// The open items, the first `limit` in the queue's order, with ages measured from `now`.
    pub fn open(limit: u32, now: DateTime<Utc>) -> ReviewFilter {
        ReviewFilter {
            owner: None,
            customer_id: None,
            min_amount: None,
            max_amount: None,
            min_age_days: None,
            max_age_days: None,
            reason: None,
            include_resolved: false,
            limit,
            offset: 0,
            now,
        }
    }
}

/// Whose review items a filter selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerFilter {
    /// Items nobody has claimed or been assigned.
    Unassigned,
    /// The items of this analyst.
    Analyst(String),
}

/// A review item claimed, assigned or released, with its audit event, in one transaction.
#[derive(Clone, Debug)]
pub struct AssignmentWrite {
    pub payment_id: String,
    /// The new owner; `None` releases the item.
    pub owner: Option<String>,
    /// A claim: refused (a [`StoreError::Conflict`]) when another analyst owns the item by then.
    /// Without it (assigning, releasing) the item changes hands whoever held it.
    pub unless_owned_by_other_than: Option<String>,
    pub audit: AuditRecord,
}

/// How long a review item may wait before it is marked overdue, unless configured.
pub const DEFAULT_SLA_HOURS: u32 = 48;

/// How long a review item may wait before it is overdue: one limit, and others for some review
/// reasons (a possible duplicate payment may be urgent where an unexplained short pay is not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sla {
    pub default: chrono::Duration,
    pub by_reason: Vec<(ReviewReason, chrono::Duration)>,
}

impl From<u32> for Sla {
    fn from(hours: u32) -> Sla {
        Sla::hours(hours)
    }
}

impl Default for Sla {
    fn default() -> Sla {
        Sla::hours(DEFAULT_SLA_HOURS)
    }
}

impl Sla {
    /// The same limit for every reason.
    pub fn hours(hours: u32) -> Sla {
        Sla {
            default: chrono::Duration::hours(i64::from(hours)),
            by_reason: Vec::new(),
        }
    }

    /// The limit of items in review for `reason`.
    pub fn limit(&self, reason: Option<ReviewReason>) -> chrono::Duration {
        self.by_reason
            .iter()
            .find(|(r, _)| Some(*r) == reason)
            .map_or(self.default, |(_, d)| *d)
    }

    /// Whether an item in review for `reason` since `entered` is overdue at `now`.
    pub fn overdue(
        &self,
        reason: Option<ReviewReason>,
        entered: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        now - entered > self.limit(reason)
    }
}

/// Counts and cash of the review items a filter selects (its limit and offset aside).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewTotals {
    /// Items and the sum of their payments, per currency, in currency order.
    pub by_currency: Vec<(Currency, u64, Decimal)>,
    /// Items per review reason, counted without the filter's own reason (so that a page can
    /// show what the other reasons hold); `None` is an item without a recorded reason.
    pub by_reason: Vec<(Option<ReviewReason>, u64)>,
    /// Open items waiting longer than the SLA of their reason.
    pub past_sla: u64,
}

/// What happened on one UTC day: the figures the dashboard draws.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayActivity {
    pub day: NaiveDate,
    /// Payments decided that day.
    pub decided: u64,
    /// ... of which applied without a person.
    pub auto: u64,
    /// Payments sent to review that day, per reason.
    pub review_by_reason: Vec<(Option<ReviewReason>, u64)>,
    /// Review items resolved that day.
    pub resolved: u64,
    /// ... of which the engine had made at least one suggestion.
    pub resolved_with_suggestion: u64,
    /// ... of which the analyst accepted the first suggestion.
    pub accepted_top: u64,
}

/// A review item's stay in the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueSpan {
    pub amount: Decimal,
    pub currency: Currency,
    pub entered: DateTime<Utc>,
    /// When it was resolved; `None` while it waits.
    pub left: Option<DateTime<Utc>>,
    /// Why it is (or was) in review.
    pub reason: Option<ReviewReason>,
}

/// Why cash of a decided payment is not on any invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RemainderKind {
    /// An application (automatic or an analyst's) used less than the payment.
    Excess,
    /// An analyst left the payment unapplied.
    LeftUnapplied,
    /// An analyst kept it on the customer's account.
    OnAccount,
}

/// Cash that a decision or a resolution left unapplied.
#[derive(Clone, Debug, PartialEq)]
pub struct Remainder {
    pub kind: RemainderKind,
    pub amount: Decimal,
    pub currency: Currency,
    /// When the payment was decided (received by the service).
    pub received: DateTime<Utc>,
}

/// A stored decision with the payment it was made for.
#[derive(Clone, Debug)]
pub struct StoredDecision {
    pub payment: Payment,
    pub decision: Decision,
    pub decided_at: DateTime<Utc>,
}

/// A payment with the invoices its cash really paid: `(invoice_id, cash applied)`. No
/// allocations means it paid no open invoice.
#[derive(Clone, Debug)]
pub struct TrainingExample {
    pub payment: Payment,
    /// [`LabelSource::Analyst`] for a resolved review item, [`LabelSource::Auto`] for an
    /// auto-applied decision.
    pub source: LabelSource,
    pub allocations: Vec<(String, Decimal)>,
    pub decided_at: DateTime<Utc>,
    /// Where the example is in the export order: pass the last one of a page as
    /// [`ExportQuery::after`] to get the next page.
    pub position: u64,
}

/// One page of labelled payments for retraining, in the order the payments were decided.
#[derive(Clone, Debug)]
pub struct ExportQuery {
    /// Also auto-applied decisions, beside analysts' resolutions.
    pub include_auto: bool,
    /// Auto-applied decisions made at or after this instant are left out: too recent to know
    /// that nobody reversed them. `None` keeps them all.
    pub auto_decided_before: Option<DateTime<Utc>>,
    /// Examples after this position (0: from the start).
    pub after: u64,
    /// Examples in the page at most.
    pub limit: u32,
}

/// The storage boundary of the service; see the module documentation for its contract.
///
/// The call itself fixes a write's order; its future resolves when the write is durable.
pub trait Store: Send + Sync + 'static {
    /// Everything the service restores on start.
    fn load(&self) -> StoreFuture<Snapshot>;

    /// Stores customers and invoices whole, with an optional audit event.
    fn write_ledger(&self, write: LedgerWrite) -> StoreFuture<()>;

    /// Stores a decision, its applications and open-amount changes, and (for review) its review
    /// item, in one transaction. A payment id already stored is a [`StoreError::Conflict`].
    fn record_decision(&self, record: DecisionRecord) -> StoreFuture<()>;

    /// Closes a review item with its resolution, applications, open-amount changes and audit
    /// event, in one transaction. An item not open is a [`StoreError::Conflict`].
    fn resolve(&self, record: ResolutionRecord) -> StoreFuture<()>;

    /// Applies waiting cash of a payment to invoices, in one transaction: refused as a
    /// [`StoreError::Conflict`] when an open amount is not what the service saw.
    fn apply_cash(&self, record: CashRecord) -> StoreFuture<()>;

    /// Reverses a payment's postings (a bank return or an unapply) with its open-amount changes,
    /// decision, review item and audit event, in one transaction. A payment already returned,
    /// or (unapply) an item already open, is a [`StoreError::Conflict`].
    fn reverse(&self, record: ReversalRecord) -> StoreFuture<()>;

    /// The return of a payment the bank returned.
    fn payment_return(&self, payment_id: String) -> StoreFuture<Option<PaymentReturn>>;

    /// Stores a four-eyes request, or its outcome, with its audit event, in one transaction. A
    /// request decided already is a [`StoreError::Conflict`].
    fn write_approval(&self, write: ApprovalWrite) -> StoreFuture<()>;

    /// Gives an open review item an owner, or none, with its audit event. An item not open, or
    /// (a claim) owned by another analyst, is a [`StoreError::Conflict`].
    fn assign(&self, write: AssignmentWrite) -> StoreFuture<()>;

    /// Stores held receipts and advices and the links between them, with their audit events, in
    /// one transaction (`store::advice`).
    fn write_advice(&self, write: AdviceWrite) -> StoreFuture<()>;

    /// Every held receipt and advice and every link, for the service to restore.
    fn advice_book(&self) -> StoreFuture<AdviceBook>;

    /// The four-eyes requests still pending, oldest first.
    fn pending_approvals(&self) -> StoreFuture<Vec<Approval>>;

    /// Starts, touches or ends a workbench session. Idempotent: a write repeated after a lost
    /// answer changes nothing more.
    fn write_session(&self, write: SessionWrite) -> StoreFuture<()>;

    /// A workbench session by the hash of its id.
    fn session(&self, id_hash: String) -> StoreFuture<Option<SessionRecord>>;

    /// Remembers the active model directory, with its audit event.
    fn set_active_model(&self, directory: String, audit: AuditRecord) -> StoreFuture<()>;

    /// A stored decision; sees every write whose future has resolved.
    fn decision(&self, payment_id: String) -> StoreFuture<Option<StoredDecision>>;

    /// Decided payments of `amount` in `currency`, written at any scale (`100`, `100.0` and
    /// `100.00` are one amount), the most recently decided first, at most `limit`: where the
    /// original of a returned item is looked for when the return names no payment id the store
    /// holds.
    fn decisions_by_amount(
        &self,
        currency: Currency,
        amount: Decimal,
        limit: u32,
    ) -> StoreFuture<Vec<StoredDecision>>;

    /// An invoice with its committed open amount.
    fn invoice(&self, invoice_id: String) -> StoreFuture<Option<Invoice>>;

    /// Review items matching the filter, highest priority first, and how many match in all.
    fn review_items(&self, filter: ReviewFilter) -> StoreFuture<(Vec<ReviewSummary>, u64)>;

    /// One review item.
    fn review_item(&self, payment_id: String) -> StoreFuture<Option<ReviewRecord>>;

    /// Audit events on one subject (or all), in order, after an id.
    fn audit_events(
        &self,
        subject: Option<String>,
        after_id: u64,
        limit: u32,
    ) -> StoreFuture<Vec<AuditEvent>>;

    /// A page of labelled payments for retraining: resolved review items, and auto decisions
    /// when asked, in decision order. A page shorter than the limit is the last.
    fn training_examples(&self, query: ExportQuery) -> StoreFuture<Vec<TrainingExample>>;
    /// Counts and cash of the review items `filter` selects; open items waiting longer than
    /// their reason's `sla` at the filter's `now` are past it.
    fn review_totals(&self, filter: ReviewFilter, sla: Sla) -> StoreFuture<ReviewTotals>;

    /// Activity per UTC day from `since` on, in day order; days without any are left out.
    fn daily_activity(&self, since: NaiveDate) -> StoreFuture<Vec<DayActivity>>;

    /// Every review item that was in the queue at some moment since `since`.
    fn queue_spans(&self, since: DateTime<Utc>) -> StoreFuture<Vec<QueueSpan>>;

    /// Cash that decisions and resolutions left unapplied, one entry per payment.
    fn unapplied_remainders(&self) -> StoreFuture<Vec<Remainder>>;

    /// Postings after sequence `after` that `filter` selects, in sequence order, at most
    /// `limit`. Sees every write whose future has resolved, and never a posting without every
    /// posting before it.
    fn postings(&self, filter: PostingFilter, after: u64, limit: u32) -> StoreFuture<Vec<Posting>>;

    /// First decisions after outbox sequence `after`, in sequence order, at most `limit` (see
    /// `store::outbox`). Like [`Store::postings`], never one without every one before it.
    fn decision_events(&self, after: u64, limit: u32) -> StoreFuture<Vec<DecisionEvent>>;

    /// How far the bus publisher got in `outbox`: 0 before it published anything.
    fn bus_cursor(&self, outbox: Outbox) -> StoreFuture<u64>;

    /// Moves the publisher's cursor in `outbox` to `position`, never back: replicas publishing
    /// the same events may store their cursors in any order.
    fn set_bus_cursor(&self, outbox: Outbox, position: u64) -> StoreFuture<()>;

    /// The changes other processes make to the store after feed position `after` (the
    /// snapshot's [`Snapshot::change_seq`]), re-read from the store, in order, until the store
    /// is closed; `None` for a store no other process writes (SQLite). See `store::feed`.
    fn follow(&self, _after: u64) -> Option<FeedReceiver> {
        None
    }

    /// Size of the write-ahead log file, for a backend that has one (the metrics report it: a
    /// WAL that keeps growing means checkpoints cannot catch up).
    fn wal_bytes(&self) -> Option<u64> {
        None
    }

    /// Stops taking writes after those already queued, and waits until they are durable.
    fn close(&self);
}
