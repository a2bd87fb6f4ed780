//! The service's API types: what its callers send and get back. The store's records that callers
//! see are re-exported beside them by `crate::service`.

use crate::domain::{Allocation, Currency, Decision};
use crate::formats::FormatError;
use crate::model::artifact::TrainingMetrics;
use crate::store::{ActorKind, PaymentReturn, Posting, ReviewRecord, StoreError};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::sync::atomic::AtomicU64;

/// Per-request limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request message, in bytes (a raw remittance travels whole in one).
    pub max_message_bytes: usize,
    /// Remittance lines one payment may carry.
    pub max_lines_per_remittance: usize,
    /// Payments one raw remittance may hold.
    pub max_payments_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 * 1024 * 1024,
            max_lines_per_remittance: 10_000,
            max_payments_per_request: 10_000,
        }
    }
}

/// The limit when the config names none: 10,000.00 in the payment's currency.
pub const DEFAULT_FOUR_EYES_ABOVE: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// Above which amounts a resolution needs a second analyst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FourEyes {
    /// The limit in any currency not in `per_currency`.
    pub above: Decimal,
    /// Limits of their own for some currencies (10,000 yen is not 10,000 dollars).
    pub per_currency: std::collections::BTreeMap<Currency, Decimal>,
}

impl Default for FourEyes {
    fn default() -> Self {
        FourEyes {
            above: DEFAULT_FOUR_EYES_ABOVE,
            per_currency: std::collections::BTreeMap::new(),
        }
    }
}

impl FourEyes {
    /// The limit for amounts in `currency`.
    pub fn limit(&self, currency: Currency) -> Decimal {
        self.per_currency
            .get(&currency)
            .copied()
            .unwrap_or(self.above)
    }
}

/// Why a call failed; `crate::grpc` maps each variant to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    /// A remittance file that cannot be read at all.
    #[error("{0}")]
    Input(FormatError),
    #[error("{0}")]
    NotFound(String),
    /// The request is well formed but the state does not allow it: an item already resolved,
    /// an allocation that no longer fits the open amounts.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller may not do this, whatever the state: an analyst approving their own
    /// resolution.
    #[error("{0}")]
    PermissionDenied(String),
    /// A payment id reused for a different payment.
    #[error("{0}")]
    AlreadyExists(String),
    /// A request over a limit.
    #[error("{0}")]
    TooLarge(String),
    /// The service stopped accepting changes after a store failure.
    #[error("the service stopped accepting changes after a store failure; restart it")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A missing or malformed request field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A decision returned to a caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    pub decision: Decision,
    /// The payment id had been decided before; nothing changed.
    pub replayed: bool,
    /// A bank receipt without remittance detail, held for its advice: `decision` is only a
    /// placeholder (status review, nothing applied, not stored) saying so.
    pub held: Option<Held>,
}

/// A bank receipt the service holds for its remittance advice instead of deciding it
/// (`service/advices.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The last day it waits for its advice; after it, it is decided alone.
    pub until: chrono::NaiveDate,
}

/// The outcome of a request that may hold several payments.
#[derive(Clone, Debug, Default)]
pub struct MatchOutcome {
    pub results: Vec<Matched>,
    /// Transactions that could not be read or decided; the others were.
    pub errors: Vec<FormatError>,
}

/// A record of a bulk load that was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub index: u64,
    pub id: String,
    pub message: String,
}

/// What a bulk load stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    pub accepted: u64,
    pub rejected: Vec<Rejected>,
    /// Payments waiting in review that the new invoices explain: decided again and applied by
    /// the engine (`service/rematch.rs`).
    pub rematched: Vec<String>,
}

/// What an analyst does with a review item.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolveAction {
    /// Apply the decision's suggestion with this index (0-based).
    AcceptSuggestion(u32),
    /// Apply these allocations; the rest of the payment stays unapplied. With `unapplied`, the
    /// caller states the rest it expects, and the resolution is refused unless the two balance.
    ApplyAllocation {
        allocations: Vec<Allocation>,
        unapplied: Option<Decimal>,
    },
    LeaveUnapplied,
    /// Keep the cash on this customer's account.
    PutOnAccount(String),
}

/// A resolution request, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolveRequest {
    pub payment_id: String,
    pub analyst: String,
    pub action: ResolveAction,
    pub note: String,
}

/// Who undoes an application: the AR system or an analyst, by the name their token carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
}

/// A payment the bank returned, to be reversed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseRequest {
    pub payment_id: String,
    /// The bank's return reason code (`R01`, `AC04`, ...): required.
    pub return_code: String,
    pub reason: String,
    pub by: Actor,
}

/// A returned payment: its decision (status returned), the return, and the reversal postings.
#[derive(Clone, Debug, PartialEq)]
pub struct Reversed {
    pub decision: Decision,
    pub returned: PaymentReturn,
    /// The reversals the return wrote, in sequence order (none when nothing had been posted).
    pub postings: Vec<Posting>,
    /// The payment had been returned before with the same code and reason: nothing changed.
    pub replayed: bool,
}

/// An application to undo: the payment goes back to the review queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnapplyRequest {
    pub payment_id: String,
    /// Why: required, and shown to the analyst who resolves it again.
    pub note: String,
    pub by: Actor,
}

/// An unapplied payment: its review item, open again, and the reversal postings.
#[derive(Clone, Debug)]
pub struct Unapplied {
    pub item: ReviewRecord,
    pub postings: Vec<Posting>,
}

/// The active model as reported.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub version: String,
    pub threshold: f64,
    pub model_threshold: f64,
    pub rules_version: String,
    pub metrics: TrainingMetrics,
    pub training_data: String,
    /// The directory it came from, or `embedded`.
    pub source: String,
    pub activated_at: DateTime<Utc>,
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub decisions_auto: AtomicU64,
    pub decisions_review: AtomicU64,
    pub replays: AtomicU64,
    pub redecided: AtomicU64,
}
