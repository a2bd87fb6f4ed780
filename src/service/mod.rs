//! The service core: the engine behind a lock, the store behind it, and the rules that keep the
//! two in step. It knows nothing of gRPC; `crate::grpc` is a thin adapter over it.
//!
//! Matching one payment:
//!
//! 1. Under the read lock, an id already decided is a replay: the stored decision is returned
//!    (after its commit, if it is still in flight) and nothing changes. Otherwise the engine
//!    decides, many payments at once in parallel.
//! 2. Under the write lock, the id is checked again; if the ledger moved under the decision (its
//!    invoices changed, or any ledger upsert or model swap happened), it is decided again; an
//!    auto decision is applied to the in-memory ledger, all or nothing. The store write is
//!    *queued* before the lock is released, so the store sees open amounts change in the order
//!    the engine changed them.
//! 3. Without any lock, a task of its own awaits the commit and does the bookkeeping after it
//!    (so a cancelled request cannot leave it undone); the caller awaits that task, and only
//!    then is the decision acknowledged.
//!
//! If a store write ever fails, memory and disk may disagree: the service stops accepting
//! changes (every later change is UNAVAILABLE) and a restart restores the truth from the store.

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod model_watch;
pub(crate) mod remittance;
#[cfg(test)]
pub(crate) mod tests;

use crate::domain::{
    Allocation, Customer, Decision, Invoice, Payment, ReviewReason, Status, Suggestion,
};
use crate::engine::{Engine, EngineConfig, RULES_VERSION};
use crate::formats::{Format, FormatError, Position};
use crate::ledger::Ledger;
use crate::model::artifact::{Model, TrainingMetrics};
use crate::store::{
    AuditEvent, AuditRecord, DecisionRecord, LedgerWrite, OpenAmountChange, Resolution,
    ResolutionAction, ResolutionRecord, ReviewFilter, ReviewRecord, ReviewState, ReviewSummary,
    ReviewTotals, Store, StoreError, StoreFuture, TrainingExample,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

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

/// Payments decided together under one hold of the read lock.
const DECIDE_CHUNK: usize = 256;

/// Entries of the changed-invoice map before it is reset (forcing one round of re-decisions).
const MAX_TOUCHED: usize = 100_000;

/// Engine state that changes together, under one lock.
struct Core {
    engine: Engine,
    /// Bumped by every change that may alter any decision: ledger upserts, a model swap.
    epoch: u64,
    /// Bumped by every open-amount change.
    tick: u64,
    /// Invoice id -> the tick of its last open-amount change.
    touched: HashMap<String, u64>,
    decided: HashSet<String>,
    open_reviews: HashSet<String>,
}

impl Core {
    /// Whether a decision made at `(epoch, tick)` rests on a ledger that has since moved.
    fn stale(&self, d: &Decision, epoch: u64, tick: u64) -> bool {
        if self.epoch != epoch {
            return true;
        }
        let moved = |a: &Allocation| self.touched.get(&a.invoice_id).is_some_and(|&t| t > tick);
        d.allocations.iter().any(moved)
            || d.suggestions
                .iter()
                .any(|s| s.allocations.iter().any(moved))
    }

    /// Applies allocations to the ledger, all or nothing, and reports the open-amount changes.
    fn apply(
        &mut self,
        payment: &Payment,
        d: &Decision,
    ) -> Result<Vec<OpenAmountChange>, crate::ledger::LedgerError> {
        let mut before: Vec<(String, Decimal)> = Vec::new();
        for a in &d.allocations {
            if before.iter().any(|(id, _)| *id == a.invoice_id) {
                // Engine::apply would check both against the same open amount: refuse instead.
                return Err(crate::ledger::LedgerError::InvalidInvoice {
                    invoice_id: a.invoice_id.clone(),
                    message: "named by two allocations of one payment".into(),
                });
            }
            if let Some(idx) = self.engine.ledger().invoice_idx(&a.invoice_id) {
                before.push((
                    a.invoice_id.clone(),
                    self.engine.ledger().invoice(idx).open_amount,
                ));
            }
        }
        self.engine.apply(payment, d)?;
        self.tick += 1;
        let mut changes = Vec::with_capacity(before.len());
        for (id, b) in before {
            let after = self
                .engine
                .ledger()
                .invoice_idx(&id)
                .map(|i| self.engine.ledger().invoice(i).open_amount)
                .unwrap_or(b);
            self.touched.insert(id.clone(), self.tick);
            changes.push(OpenAmountChange {
                invoice_id: id,
                before: b,
                after,
            });
        }
        if self.touched.len() > MAX_TOUCHED {
            self.touched.clear();
            self.epoch += 1;
        }
        Ok(changes)
    }
}

/// Where the active model came from.
#[derive(Clone, Debug)]
struct ActiveModel {
    source: String,
    activated_at: DateTime<Utc>,
}

/// One payment through steps 1 and 2 of the module documentation.
enum Step {
    New {
        decision: Box<Decision>,
        commit: Commit,
    },
    Seen {
        wait: Option<watch::Receiver<bool>>,
    },
}

/// A queued store write being awaited by a task of its own, so that the bookkeeping after the
/// commit happens even when the request that caused it is cancelled.
type Commit = tokio::task::JoinHandle<Result<(), ServiceError>>;

/// The service: engine, store and the bookkeeping between them.
pub struct Service<S: Store> {
    core: RwLock<Core>,
    /// Decisions queued for the store and not yet committed, for replays to wait on.
    pending: Mutex<HashMap<String, watch::Receiver<bool>>>,
    store: S,
    limits: Limits,
    stopped: AtomicBool,
    active: Mutex<ActiveModel>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open amounts of a ledger's invoices, for the audit trail.
fn open_amounts(ledger: &Ledger, ids: &[&str]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = ids
        .iter()
        .filter_map(|id| {
            let idx = ledger.invoice_idx(id)?;
            Some((
                id.to_string(),
                json!(ledger.invoice(idx).open_amount.to_string()),
            ))
        })
        .collect();
    serde_json::Value::Object(map)
}

/// A review decision in place of an auto decision that can no longer be applied.
fn demote(mut d: Decision, why: &str) -> Decision {
    let allocations = std::mem::take(&mut d.allocations);
    d.suggestions.insert(
        0,
        Suggestion {
            confidence: d.confidence,
            allocations,
            unapplied: d.unapplied,
            explanation: d.explanation.clone(),
        },
    );
    d.unapplied += d.suggestions[0]
        .allocations
        .iter()
        .map(|a| a.amount)
        .sum::<Decimal>();
    d.status = Status::Review;
    d.review_reason = Some(ReviewReason::LowConfidence);
    d.explanation.push(format!("review: {why}"));
    d
}

/// Whether a resolution does what the engine proposed first: accepting (or re-entering) its first
/// suggestion, or, when it had none, applying nothing. Anything else overrides the engine and
/// needs a note.
fn follows_engine(suggestions: &[Suggestion], action: &ResolveAction) -> bool {
    match (suggestions.first(), action) {
        (_, ResolveAction::AcceptSuggestion(0)) => true,
        (Some(top), ResolveAction::ApplyAllocation { allocations, .. }) => {
            *allocations == top.allocations
        }
        (None, ResolveAction::LeaveUnapplied | ResolveAction::PutOnAccount(_)) => true,
        _ => false,
    }
}

/// What an analyst's own allocations must satisfy before the ledger is consulted.
fn check_analyst_allocations(allocations: &[Allocation]) -> Result<(), ServiceError> {
    for (i, a) in allocations.iter().enumerate() {
        let field = |f: &str| format!("allocations[{i}].{f}");
        if a.discount < Decimal::ZERO {
            return Err(ServiceError::invalid(
                field("discount"),
                format!(
                    "{} is negative; a discount reduces what is owed",
                    a.discount
                ),
            ));
        }
        if a.deduction < Decimal::ZERO {
            return Err(ServiceError::invalid(
                field("deduction"),
                format!(
                    "{} is negative; a deduction is what the customer kept back",
                    a.deduction
                ),
            ));
        }
        let code = a.reason_code.as_deref().map(str::trim).unwrap_or_default();
        if !a.deduction.is_zero() && code.is_empty() {
            return Err(ServiceError::invalid(
                field("reason_code"),
                format!(
                    "the deduction of {} on invoice {} needs a reason code",
                    a.deduction, a.invoice_id
                ),
            ));
        }
        if a.amount.is_zero() && a.discount.is_zero() && a.deduction.is_zero() {
            return Err(ServiceError::invalid(
                field("amount"),
                format!(
                    "the allocation to invoice {} applies nothing; leave it out",
                    a.invoice_id
                ),
            ));
        }
    }
    Ok(())
}

impl<S: Store> Service<S> {
    /// Restores the ledger, the decided payments and the review queue from the store, with the
    /// model of `model_dir`, else the one last activated, else the built-in one.
    pub async fn open(
        store: S,
        model_dir: Option<&Path>,
        threshold: Option<f64>,
        limits: Limits,
    ) -> Result<Service<S>, ServiceError> {
        let snap = store.load().await?;
        let dir: Option<PathBuf> = model_dir
            .map(Path::to_path_buf)
            .or_else(|| snap.active_model.as_ref().map(PathBuf::from));
        let (model, source) = match &dir {
            Some(d) => {
                let m = load_model(d.clone()).await?;
                (m, d.display().to_string())
            }
            None => (
                Model::embedded_default().map_err(|e| ServiceError::Internal(e.to_string()))?,
                "embedded".to_string(),
            ),
        };
        let (ledger, errors) = Ledger::new(snap.customers, snap.invoices);
        for e in &errors {
            tracing::warn!(error = %e, "a stored invoice does not fit the ledger; left out");
        }
        tracing::info!(
            customers = ledger.customers().len(),
            invoices = ledger.invoices().len(),
            decisions = snap.decided.len(),
            open_reviews = snap.open_reviews.len(),
            model = %model.version,
            "restored from the store"
        );
        let engine = Engine::new(
            ledger,
            Arc::new(model),
            EngineConfig {
                threshold,
                ..Default::default()
            },
        );
        Ok(Service {
            core: RwLock::new(Core {
                engine,
                epoch: 0,
                tick: 0,
                touched: HashMap::new(),
                decided: snap.decided.into_iter().collect(),
                open_reviews: snap.open_reviews.into_iter().collect(),
            }),
            pending: Mutex::new(HashMap::new()),
            store,
            limits,
            stopped: AtomicBool::new(false),
            active: Mutex::new(ActiveModel {
                source,
                activated_at: crate::store::now(),
            }),
            counters: Counters::default(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The counters behind the metrics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Review items waiting for an analyst.
    pub fn queue_depth(&self) -> usize {
        self.read().open_reviews.len()
    }

    /// Customers and invoices in the ledger.
    pub fn ledger_size(&self) -> (usize, usize) {
        let core = self.read();
        (
            core.engine.ledger().customers().len(),
            core.engine.ledger().invoices().len(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Core> {
        self.core.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Core>, ServiceError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        let core = self.core.write().unwrap_or_else(|p| p.into_inner());
        if self.stopped.load(Ordering::SeqCst) {
            return Err(ServiceError::Stopped);
        }
        Ok(core)
    }

    /// Watches a queued store write on a task of its own, then runs `then` (with whether it
    /// committed). A failure stops the service: memory is ahead of the disk. Must be called
    /// within the tokio runtime (the blocking pool is).
    fn spawn_commit(
        self: &Arc<Self>,
        write: StoreFuture<()>,
        then: impl FnOnce(&Self, bool) + Send + 'static,
    ) -> Commit {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let r = write.await;
            if let Err(e) = &r {
                this.stopped.store(true, Ordering::SeqCst);
                tracing::error!(error = %e, "a store write failed: no more changes until a restart");
            }
            then(&this, r.is_ok());
            r.map_err(ServiceError::Store)
        })
    }

    /// Awaits a watched write.
    async fn commit(commit: Commit) -> Result<(), ServiceError> {
        commit
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
    }

    // ----- matching -----

    /// Decides one structured payment.
    pub async fn match_payment(
        self: &Arc<Self>,
        payment: Payment,
    ) -> Result<Matched, ServiceError> {
        let mut out = self.match_payments(vec![payment]).await?;
        out.pop()
            .ok_or_else(|| ServiceError::Internal("no result".into()))?
    }

    /// Decides structured payments together (one pass of the engine over the batch, one group
    /// commit): the result of each in order. A payment over the line limit is refused on its own;
    /// `Err` only when the service itself fails.
    pub async fn match_payments(
        self: &Arc<Self>,
        payments: Vec<Payment>,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        let max = self.limits.max_lines_per_remittance;
        let mut refused: Vec<Option<ServiceError>> = Vec::with_capacity(payments.len());
        let mut accepted = Vec::with_capacity(payments.len());
        for p in payments {
            if p.lines.len() > max {
                refused.push(Some(ServiceError::TooLarge(format!(
                    "payment.lines: {} remittance lines exceed the limit of {max}",
                    p.lines.len()
                ))));
            } else {
                refused.push(None);
                accepted.push(p);
            }
        }
        let mut decided = self.match_all(accepted).await?.into_iter();
        refused
            .into_iter()
            .map(|r| match r {
                Some(e) => Ok(Err(e)),
                None => decided
                    .next()
                    .ok_or_else(|| ServiceError::Internal("a payment went undecided".into())),
            })
            .collect()
    }

    /// Reads a raw remittance and decides each payment in it.
    pub async fn match_raw(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        file: String,
        format: Option<Format>,
    ) -> Result<MatchOutcome, ServiceError> {
        let limits = self.limits;
        let parsed = tokio::task::spawn_blocking(move || {
            let mut parsed = remittance::parse_remittance(&bytes, &file, format)?;
            remittance::enforce_line_limit(&mut parsed, &file, limits.max_lines_per_remittance);
            if parsed.payments.len() > limits.max_payments_per_request {
                return Err(FormatError::new(
                    &file,
                    Position::File,
                    format!(
                        "{} payments exceed the limit of {} per request",
                        parsed.payments.len(),
                        limits.max_payments_per_request
                    ),
                ));
            }
            Ok((parsed, file))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let (parsed, file) = parsed.map_err(ServiceError::Input)?;
        let ids: Vec<String> = parsed
            .payments
            .iter()
            .map(|p| p.payment_id.clone())
            .collect();
        let mut out = MatchOutcome {
            results: Vec::new(),
            errors: parsed.errors,
        };
        for (r, id) in self.match_all(parsed.payments).await?.into_iter().zip(ids) {
            match r {
                Ok(m) => out.results.push(m),
                Err(
                    e
                    @ (ServiceError::Stopped | ServiceError::Store(_) | ServiceError::Internal(_)),
                ) => {
                    return Err(e);
                }
                Err(e) => out.errors.push(FormatError::new(
                    &file,
                    Position::File,
                    format!("payment {id}: {e}"),
                )),
            }
        }
        Ok(out)
    }

    /// Decides payments: in parallel under the read lock, then applied one by one; every store
    /// write queued before any is awaited, so they commit together.
    async fn match_all(
        self: &Arc<Self>,
        payments: Vec<Payment>,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        let this = Arc::clone(self);
        let steps = tokio::task::spawn_blocking(move || this.decide_and_apply(payments))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut out = Vec::with_capacity(steps.len());
        for (payment, step) in steps {
            out.push(match step {
                Ok(step) => self.finish(payment, step).await,
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    fn decide_and_apply(
        self: &Arc<Self>,
        payments: Vec<Payment>,
    ) -> Vec<(Payment, Result<Step, ServiceError>)> {
        use rayon::prelude::*;
        let mut out = Vec::with_capacity(payments.len());
        let mut payments = payments.into_iter().peekable();
        while payments.peek().is_some() {
            // In chunks, so that a large file does not hold the read lock (and every writer
            // waiting behind it) for its whole length.
            let chunk: Vec<Payment> = payments.by_ref().take(DECIDE_CHUNK).collect();
            let (first, epoch, tick) = {
                let core = self.read();
                let decide = |p: &Payment| {
                    (!core.decided.contains(&p.payment_id)).then(|| core.engine.decide(p))
                };
                // One payment is decided on this thread: handing it to the pool and waiting for
                // it there costs two thread wake-ups on the latency of every single request.
                let first: Vec<Option<Decision>> = if chunk.len() == 1 {
                    chunk.iter().map(decide).collect()
                } else {
                    chunk.par_iter().map(decide).collect()
                };
                (first, core.epoch, core.tick)
            };
            for (payment, first) in chunk.into_iter().zip(first) {
                let step = self.apply_one(&payment, first, epoch, tick);
                out.push((payment, step));
            }
        }
        out
    }

    fn apply_one(
        self: &Arc<Self>,
        payment: &Payment,
        first: Option<Decision>,
        epoch: u64,
        tick: u64,
    ) -> Result<Step, ServiceError> {
        let id = &payment.payment_id;
        let mut core = self.write()?;
        let seen = || Step::Seen {
            wait: lock(&self.pending).get(id).cloned(),
        };
        if core.decided.contains(id) {
            return Ok(seen());
        }
        let mut d = match first {
            Some(d) if !core.stale(&d, epoch, tick) => d,
            _ => {
                self.counters.redecided.fetch_add(1, Ordering::Relaxed);
                core.engine.decide(payment)
            }
        };
        let mut changes = Vec::new();
        if d.status == Status::Auto {
            match core.apply(payment, &d) {
                Ok(c) => changes = c,
                Err(e) => {
                    // Cannot happen after a decision on this very ledger; refuse to over-apply.
                    tracing::warn!(payment_id = %id, error = %e, "an auto decision did not fit; sent to review");
                    d = demote(d, &format!("the allocation no longer fits the ledger: {e}"));
                }
            }
        }
        core.decided.insert(id.clone());
        if d.status == Status::Review {
            core.open_reviews.insert(id.clone());
        }
        let (done, wait) = watch::channel(false);
        lock(&self.pending).insert(id.clone(), wait);
        let write = self.store.record_decision(DecisionRecord {
            payment: payment.clone(),
            decision: d.clone(),
            changes,
            at: crate::store::now(),
        });
        drop(core);
        let (pid, status) = (id.clone(), d.status);
        let commit = self.spawn_commit(write, move |this, ok| {
            lock(&this.pending).remove(&pid);
            if ok {
                // Replays waiting on it read the stored decision now; none waiting is fine.
                let _ = done.send(true);
                let c = match status {
                    Status::Auto => &this.counters.decisions_auto,
                    Status::Review => &this.counters.decisions_review,
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Step::New {
            decision: Box::new(d),
            commit,
        })
    }

    async fn finish(&self, payment: Payment, step: Step) -> Result<Matched, ServiceError> {
        match step {
            Step::New { decision, commit } => {
                Self::commit(commit).await?;
                Ok(Matched {
                    decision: *decision,
                    replayed: false,
                })
            }
            Step::Seen { wait } => {
                if let Some(mut w) = wait {
                    w.wait_for(|v| *v)
                        .await
                        .map_err(|_| ServiceError::Stopped)?;
                }
                let stored = self
                    .store
                    .decision(payment.payment_id.clone())
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(format!(
                            "payment {} is decided but not stored",
                            payment.payment_id
                        ))
                    })?;
                if stored.payment != payment {
                    return Err(ServiceError::AlreadyExists(format!(
                        "payment_id {} was already decided for a different payment",
                        payment.payment_id
                    )));
                }
                self.counters.replays.fetch_add(1, Ordering::Relaxed);
                Ok(Matched {
                    decision: stored.decision,
                    replayed: true,
                })
            }
        }
    }

    /// The stored decision of a payment.
    pub async fn decision(&self, payment_id: String) -> Result<Decision, ServiceError> {
        let d = self.store.decision(payment_id.clone()).await?;
        d.map(|d| d.decision)
            .ok_or_else(|| ServiceError::NotFound(format!("payment {payment_id} is not decided")))
    }

    // ----- the ledger -----

    /// Adds or replaces customers and invoices (each with its position in the request, for
    /// rejections); what the ledger refuses is listed, the rest stored.
    pub async fn upsert(
        self: &Arc<Self>,
        customers: Vec<(u64, Customer)>,
        invoices: Vec<(u64, Invoice)>,
    ) -> Result<UpsertOutcome, ServiceError> {
        let this = Arc::clone(self);
        let (outcome, commit) =
            tokio::task::spawn_blocking(move || this.upsert_blocking(customers, invoices))
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(outcome)
    }

    fn upsert_blocking(
        self: &Arc<Self>,
        customers: Vec<(u64, Customer)>,
        invoices: Vec<(u64, Invoice)>,
    ) -> Result<(UpsertOutcome, Commit), ServiceError> {
        let mut core = self.write()?;
        let mut outcome = UpsertOutcome::default();
        let mut write = LedgerWrite::default();
        let ledger = core.engine.ledger_mut();
        for (_, c) in customers {
            ledger.upsert_customer(c.clone());
            write.customers.push(c);
        }
        if !write.customers.is_empty() {
            ledger.link_parents();
        }
        for (index, inv) in invoices {
            let id = inv.id.clone();
            match ledger.upsert_invoice(inv.clone()) {
                Ok(_) => write.invoices.push(inv),
                Err(e) => outcome.rejected.push(Rejected {
                    index,
                    id,
                    message: e.to_string(),
                }),
            }
        }
        outcome.accepted = (write.customers.len() + write.invoices.len()) as u64;
        core.epoch += 1;
        let commit = self.spawn_commit(self.store.write_ledger(write), |_, _| {});
        Ok((outcome, commit))
    }

    /// Sets an invoice's open amount (zero to close it), recording who and why.
    pub async fn set_open_amount(
        self: &Arc<Self>,
        invoice_id: String,
        open_amount: Decimal,
        action: &'static str,
        reason: String,
        actor: String,
    ) -> Result<Invoice, ServiceError> {
        let this = Arc::clone(self);
        let (inv, commit) = tokio::task::spawn_blocking(move || {
            this.set_open_amount_blocking(invoice_id, open_amount, action, reason, actor)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(inv)
    }

    fn set_open_amount_blocking(
        self: &Arc<Self>,
        invoice_id: String,
        open_amount: Decimal,
        action: &'static str,
        reason: String,
        actor: String,
    ) -> Result<(Invoice, Commit), ServiceError> {
        let mut core = self.write()?;
        let ledger = core.engine.ledger_mut();
        let idx = ledger.invoice_idx(&invoice_id).ok_or_else(|| {
            ServiceError::NotFound(format!("invoice {invoice_id} is not in the ledger"))
        })?;
        let mut inv = ledger.invoice(idx).clone();
        let before = inv.open_amount;
        inv.open_amount = open_amount;
        ledger
            .upsert_invoice(inv.clone())
            .map_err(|e| ServiceError::invalid("open_amount", e.to_string()))?;
        core.epoch += 1;
        let audit = AuditRecord {
            at: crate::store::now(),
            actor,
            action: action.to_string(),
            subject: invoice_id,
            before: json!({ "open_amount": before.to_string() }),
            after: json!({ "open_amount": open_amount.to_string(), "reason": reason }),
        };
        let write = LedgerWrite {
            customers: vec![],
            invoices: vec![inv.clone()],
            audit: Some(audit),
        };
        Ok((
            inv,
            self.spawn_commit(self.store.write_ledger(write), |_, _| {}),
        ))
    }

    /// An invoice with its committed open amount.
    pub async fn invoice(&self, invoice_id: String) -> Result<Invoice, ServiceError> {
        self.store
            .invoice(invoice_id.clone())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("invoice {invoice_id} is not in the ledger"))
            })
    }

    // ----- review -----

    /// Review items, highest priority first, and the number matching the filter.
    pub async fn review_items(
        &self,
        filter: ReviewFilter,
    ) -> Result<(Vec<ReviewSummary>, u64), ServiceError> {
        Ok(self.store.review_items(filter).await?)
    }

    /// One review item.
    pub async fn review_item(&self, payment_id: String) -> Result<ReviewRecord, ServiceError> {
        self.store
            .review_item(payment_id.clone())
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("no review item for payment {payment_id}"))
            })
    }

    /// Counts and cash of the review items a filter selects; open items that entered the queue
    /// before `sla_cutoff` are past the SLA.
    pub async fn review_totals(
        &self,
        filter: ReviewFilter,
        sla_cutoff: DateTime<Utc>,
    ) -> Result<ReviewTotals, ServiceError> {
        Ok(self.store.review_totals(filter, sla_cutoff).await?)
    }

    /// A customer and its open items as the ledger holds them now, oldest due first.
    pub fn customer_open_items(&self, customer_id: &str) -> Option<(Customer, Vec<Invoice>)> {
        let core = self.read();
        let ledger = core.engine.ledger();
        let c = ledger.customer_idx(customer_id)?;
        let mut open: Vec<Invoice> = ledger
            .customer_open_invoices(c)
            .iter()
            .map(|&i| ledger.invoice(i).clone())
            .filter(|i| !i.open_amount.is_zero())
            .collect();
        open.sort_by(|a, b| (a.due_date, &a.number).cmp(&(b.due_date, &b.number)));
        Some((ledger.customer(c).clone(), open))
    }

    /// Invoices as the ledger holds them now; ids it does not hold are left out.
    pub fn invoices_now<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Invoice> {
        let core = self.read();
        let ledger = core.engine.ledger();
        ids.into_iter()
            .filter_map(|id| ledger.invoice_idx(id).map(|i| ledger.invoice(i).clone()))
            .collect()
    }

    /// A customer's name, if the ledger holds the customer.
    pub fn customer_name(&self, customer_id: &str) -> Option<String> {
        let core = self.read();
        let ledger = core.engine.ledger();
        ledger
            .customer_idx(customer_id)
            .map(|c| ledger.customer(c).name.clone())
    }

    /// The dashboard's figures: per UTC day over the query's window, and the unapplied cash now.
    pub async fn dashboard(
        &self,
        q: dashboard::DashboardQuery,
    ) -> Result<dashboard::Dashboard, ServiceError> {
        let first = q.first_day();
        let since = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(q.now);
        let activity = self.store.daily_activity(first).await?;
        let spans = self.store.queue_spans(since).await?;
        let remainders = self.store.unapplied_remainders().await?;
        Ok(dashboard::compute(&q, &activity, &spans, &remainders))
    }

    /// Resolves an open review item: applies the chosen cash (checking the open amounts as they
    /// are now) and records who did what, before and after, in one transaction.
    pub async fn resolve(
        self: &Arc<Self>,
        req: ResolveRequest,
    ) -> Result<ReviewRecord, ServiceError> {
        let item = self.review_item(req.payment_id.clone()).await?;
        if item.resolution.is_some() {
            return Err(ServiceError::FailedPrecondition(format!(
                "review item {} is already resolved",
                req.payment_id
            )));
        }
        let this = Arc::clone(self);
        let (item, commit) = tokio::task::spawn_blocking(move || this.resolve_blocking(item, req))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(item)
    }

    fn resolve_blocking(
        self: &Arc<Self>,
        mut item: ReviewRecord,
        req: ResolveRequest,
    ) -> Result<(ReviewRecord, Commit), ServiceError> {
        let ResolveRequest {
            payment_id,
            analyst,
            action,
            note,
        } = req;
        let payment = &item.payment;
        let follows_engine = follows_engine(&item.decision.suggestions, &action);
        let (kind, allocations, customer_id, suggestion_index, expected) = match action {
            ResolveAction::AcceptSuggestion(k) => {
                let s = item.decision.suggestions.get(k as usize).ok_or_else(|| {
                    ServiceError::invalid(
                        "accept_suggestion.index",
                        format!(
                            "the decision has {} suggestion(s)",
                            item.decision.suggestions.len()
                        ),
                    )
                })?;
                (
                    ResolutionAction::AcceptSuggestion,
                    s.allocations.clone(),
                    None,
                    Some(k),
                    None,
                )
            }
            ResolveAction::ApplyAllocation {
                allocations,
                unapplied,
            } => {
                if allocations.is_empty() {
                    return Err(ServiceError::invalid(
                        "apply_allocation.allocations",
                        "at least one allocation; use leave_unapplied to apply nothing",
                    ));
                }
                check_analyst_allocations(&allocations)?;
                (
                    ResolutionAction::ApplyAllocation,
                    allocations,
                    None,
                    None,
                    unapplied,
                )
            }
            ResolveAction::LeaveUnapplied => {
                (ResolutionAction::LeaveUnapplied, vec![], None, None, None)
            }
            ResolveAction::PutOnAccount(c) => {
                (ResolutionAction::PutOnAccount, vec![], Some(c), None, None)
            }
        };
        if !follows_engine && note.trim().is_empty() {
            return Err(ServiceError::invalid(
                "note",
                "is required when the resolution differs from the engine's first suggestion: \
                 say why",
            ));
        }
        // Checked: the amounts are the analyst's, and the engine sums them again unchecked.
        let overflow = || ServiceError::invalid("allocations", "amounts too large to add up");
        let mut applied = Decimal::ZERO;
        for a in &allocations {
            a.amount
                .checked_add(a.discount)
                .and_then(|r| r.checked_add(a.deduction))
                .ok_or_else(overflow)?;
            applied = applied.checked_add(a.amount).ok_or_else(overflow)?;
        }
        let unapplied = payment.amount.checked_sub(applied).ok_or_else(overflow)?;
        if unapplied < Decimal::ZERO {
            return Err(ServiceError::invalid(
                "allocations",
                format!(
                    "apply {applied} in all, more than the payment's {}",
                    payment.amount
                ),
            ));
        }
        if let Some(expected) = expected {
            if expected != unapplied {
                let total = applied.checked_add(expected).ok_or_else(overflow)?;
                return Err(ServiceError::invalid(
                    "unapplied",
                    format!(
                        "the amounts do not balance: {applied} applied + {expected} unapplied = \
                         {total}, but the payment is {}",
                        payment.amount
                    ),
                ));
            }
        }
        let mut core = self.write()?;
        if !core.open_reviews.contains(&payment_id) {
            return Err(ServiceError::FailedPrecondition(format!(
                "review item {payment_id} is already resolved"
            )));
        }
        let ledger = core.engine.ledger();
        if let Some(c) = &customer_id {
            if ledger.customer_idx(c).is_none() {
                return Err(ServiceError::invalid(
                    "put_on_account.customer_id",
                    format!("customer {c} is not in the ledger"),
                ));
            }
        }
        for (i, a) in allocations.iter().enumerate() {
            // Engine::apply checks each allocation against the open amount before any is
            // applied, so the same invoice twice could pass both checks and then cross zero.
            if allocations[..i]
                .iter()
                .any(|b| b.invoice_id == a.invoice_id)
            {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!(
                        "invoice {} appears twice; give one allocation per invoice",
                        a.invoice_id
                    ),
                ));
            }
            let idx = ledger.invoice_idx(&a.invoice_id).ok_or_else(|| {
                ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!("invoice {} is not in the ledger", a.invoice_id),
                )
            })?;
            let inv = ledger.invoice(idx);
            if inv.currency != payment.currency {
                return Err(ServiceError::invalid(
                    format!("allocations[{i}].invoice_id"),
                    format!(
                        "invoice {} is in {}, the payment in {}",
                        inv.id, inv.currency, payment.currency
                    ),
                ));
            }
            // Engine::apply refuses this too; checked here to say which invoice and by how much.
            let relieved = a.relieved();
            let fits = if inv.is_credit() {
                relieved >= inv.open_amount && relieved <= Decimal::ZERO
            } else {
                relieved <= inv.open_amount && relieved >= Decimal::ZERO
            };
            if !fits {
                return Err(ServiceError::FailedPrecondition(format!(
                    "invoice {} ({}) has {} open, and allocation {} would relieve {} of it \
                     (cash {} + discount {} + deduction {}); nothing was applied",
                    inv.number,
                    inv.id,
                    inv.open_amount,
                    i + 1,
                    relieved,
                    a.amount,
                    a.discount,
                    a.deduction
                )));
            }
        }
        let ids: Vec<&str> = allocations.iter().map(|a| a.invoice_id.as_str()).collect();
        let before_open = open_amounts(ledger, &ids);
        let mut changes = Vec::new();
        if !allocations.is_empty() {
            let applied_decision = Decision {
                status: Status::Auto,
                allocations: allocations.clone(),
                unapplied,
                ..item.decision.clone()
            };
            changes = core.apply(payment, &applied_decision).map_err(|e| {
                ServiceError::FailedPrecondition(format!("the allocation no longer fits: {e}"))
            })?;
        }
        let after_open = open_amounts(core.engine.ledger(), &ids);
        core.open_reviews.remove(&payment_id);
        let resolution = Resolution {
            action: kind,
            analyst: analyst.clone(),
            resolved_at: crate::store::now(),
            allocations,
            unapplied,
            customer_id,
            suggestion_index,
            note,
        };
        let audit = AuditRecord {
            at: resolution.resolved_at,
            actor: analyst,
            action: "resolve".into(),
            subject: payment_id.clone(),
            before: json!({ "state": "open", "unapplied": payment.amount.to_string(), "open_amounts": before_open }),
            after: json!({
                "state": "resolved",
                "resolution": serde_json::to_value(&resolution).unwrap_or_default(),
                "open_amounts": after_open,
            }),
        };
        let write = self.store.resolve(ResolutionRecord {
            payment_id,
            resolution: resolution.clone(),
            changes,
            audit,
        });
        drop(core);
        let commit = self.spawn_commit(write, |_, _| {});
        item.summary.state = ReviewState::Resolved;
        item.resolution = Some(resolution);
        Ok((item, commit))
    }

    /// Audit events on a subject (or all) after an id.
    pub async fn audit_events(
        &self,
        subject: Option<String>,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ServiceError> {
        Ok(self.store.audit_events(subject, after_id, limit).await?)
    }

    /// A page of labelled payments for the retraining job.
    pub async fn training_examples(
        &self,
        query: crate::store::ExportQuery,
    ) -> Result<Vec<TrainingExample>, ServiceError> {
        Ok(self.store.training_examples(query).await?)
    }

    // ----- models -----

    /// The active model.
    pub fn model_info(&self) -> ModelInfo {
        let core = self.read();
        let m = core.engine.model();
        let active = lock(&self.active).clone();
        ModelInfo {
            version: m.version.clone(),
            threshold: core.engine.threshold(),
            model_threshold: m.threshold,
            rules_version: RULES_VERSION.to_string(),
            metrics: m.metrics.clone(),
            training_data: m.training_data.clone(),
            source: active.source,
            activated_at: active.activated_at,
        }
    }

    /// Loads a model directory and makes it active. Decisions under way finish on the old model
    /// (they hold the read lock the swap waits for); a decision made on the old model but not yet
    /// applied is made again on the new one.
    pub async fn activate_model(
        self: &Arc<Self>,
        dir: PathBuf,
        actor: String,
    ) -> Result<ModelInfo, ServiceError> {
        let model = load_model(dir.clone()).await?;
        let this = Arc::clone(self);
        let commit = tokio::task::spawn_blocking(move || this.swap_model(model, dir, actor))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        Self::commit(commit).await?;
        Ok(self.model_info())
    }

    fn swap_model(
        self: &Arc<Self>,
        model: Model,
        dir: PathBuf,
        actor: String,
    ) -> Result<Commit, ServiceError> {
        let source = dir.display().to_string();
        let mut core = self.write()?;
        let before =
            json!({ "version": core.engine.model().version, "source": lock(&self.active).source });
        let after = json!({ "version": model.version, "source": source });
        core.engine.set_model(Arc::new(model));
        core.epoch += 1;
        let at = crate::store::now();
        *lock(&self.active) = ActiveModel {
            source: source.clone(),
            activated_at: at,
        };
        let audit = AuditRecord {
            at,
            actor,
            action: "activate_model".into(),
            subject: source.clone(),
            before,
            after,
        };
        Ok(self.spawn_commit(self.store.set_active_model(source, audit), |_, _| {}))
    }
}

async fn load_model(dir: PathBuf) -> Result<Model, ServiceError> {
    let shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || Model::load(&dir))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::FailedPrecondition(format!("model directory {shown}: {e}")))
}
