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
//! A write refused because another replica changed its rows first is reloaded and decided again
//! (`conflict`); what other replicas commit reaches memory through the store's change feed
//! (`follow`, PostgreSQL only). If a store write ever fails otherwise, memory and disk may
//! disagree: the service stops accepting changes (every later change is UNAVAILABLE) and a
//! restart restores the truth from the store. (The PostgreSQL store rides out a restart of the
//! database: its writes wait and are tried again, so a restart is not such a failure.)

mod advices;
mod api;
pub mod approval;
pub mod auth;
mod balances;
mod commit;
mod conflict;
pub mod dashboard;
mod follow;
#[cfg(test)]
mod follow_tests;
mod ledger;
mod matching;
mod models;
mod outbox;
mod postings;
mod rematch;
pub(crate) mod remittance;
mod resolve;
mod returns;
mod reversal;
mod review;
mod rules;
pub mod sessions;
mod state;
#[cfg(test)]
pub(crate) mod tests;
mod waiting_cash;

/// The store's records that callers of the service see, named through the service: an adapter
/// (gRPC, the workbench, metrics) speaks the service's types only and never imports the store.
pub use crate::store::{
    ActorKind, PaymentReturn, Posting, PostingFilter, PostingKind, PostingRecord, live_postings,
    replay_open_amounts,
};
pub use crate::store::{AdviceLink, HeldItem, HeldSide, HeldState, Unlink};
pub use crate::store::{Approval, ApprovalState};
pub use crate::store::{
    AuditEvent, AuditRecord, ExportQuery, OwnerFilter, Resolution, ResolutionAction, ReviewFilter,
    ReviewRecord, ReviewState, ReviewSummary, ReviewTotals, Sla, Store, StoreError, StoredDecision,
    TrainingExample, now,
};
pub use crate::store::{DecisionEvent, Outbox};
pub use advices::{
    AdviceSettings, AdviceStanding, AdvicesSubmitted, HoldsAdvanced, LinkUndone, Linked,
    ProposedLink, UnlinkedItem, UnlinkedView,
};
pub use api::{
    Actor, Counters, DEFAULT_FOUR_EYES_ABOVE, FourEyes, Held, Limits, MatchOutcome, Matched,
    ModelInfo, Rejected, ResolveAction, ResolveRequest, ReverseRequest, Reversed, ServiceError,
    Unapplied, UnapplyRequest, UpsertOutcome,
};
pub use approval::{ApprovalDecision, ResolveOutcome};
pub use balances::{AGE_BUCKETS, Balance, Waiting, WaitingCash, WaitingPayment};
pub use follow::FeedStats;
pub use review::Assignment;
pub use waiting_cash::{ApplyCashRequest, CashApplied};

use crate::engine::{Engine, EngineConfig};
use crate::ledger::{Ledger, Settlement};
use crate::model::artifact::Model;
use models::load_model;
use state::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

/// The service: engine, store and the bookkeeping between them.
pub struct Service {
    core: RwLock<Core>,
    /// Decisions queued for the store and not yet committed, for replays to wait on.
    pending: Mutex<HashMap<String, watch::Receiver<bool>>>,
    /// One store type whatever the backend: the service never needs to know which it is, and a
    /// generic would be threaded through every adapter that holds a service.
    store: Arc<dyn Store>,
    limits: Limits,
    stopped: AtomicBool,
    active: Mutex<ActiveModel>,
    counters: Counters,
    /// Bumped after every committed write, so that journal watchers read the postings it added.
    journal: watch::Sender<u64>,
    /// Held by a resolution, an unapply or a reversal from before its reads of the store until
    /// its write commits: each reads the store with the one before it committed, so what it
    /// reverses is what is posted. They are a person's or a bank's pace, not the matcher's.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The change feed's position in the snapshot restored at start: [`Service::follow`]
    /// applies what other replicas changed after it.
    restored_seq: u64,
    /// Whether [`Service::follow`] was called.
    following: AtomicBool,
    feed: FeedStats,
    /// Held receipts and advices and their links (`advices`): under an async lock, as settling
    /// them awaits the store and the matcher.
    advices: tokio::sync::Mutex<advices::Book>,
    advice_settings: Mutex<AdviceSettings>,
}

impl Service {
    /// Restores the ledger, the decided payments and the review queue from the store, with the
    /// model of `model_dir`, else the one last activated, else the built-in one.
    pub async fn open(
        store: impl Store,
        model_dir: Option<&Path>,
        config: EngineConfig,
        limits: Limits,
    ) -> Result<Service, ServiceError> {
        Service::open_shared(Arc::new(store), model_dir, config, limits).await
    }

    /// [`Service::open`] on a store chosen at run time (`--store`).
    pub async fn open_shared(
        store: Arc<dyn Store>,
        model_dir: Option<&Path>,
        config: EngineConfig,
        limits: Limits,
    ) -> Result<Service, ServiceError> {
        let snap = store.load().await?;
        let restored_seq = snap.change_seq;
        let pending = store.pending_approvals().await?;
        let book = store.advice_book().await?;
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
        let (mut ledger, errors) = Ledger::new(snap.customers, snap.invoices);
        for e in &errors {
            tracing::warn!(error = %e, "a stored invoice does not fit the ledger; left out");
        }
        // Who paid each closed item, so that a remittance quoting it after a restart still names
        // the earlier payment (the ledger keeps it only for closed items).
        for a in snap.last_applied {
            if let Some(idx) = ledger.invoice_idx(&a.invoice_id) {
                ledger.record_settlement(
                    idx,
                    Settlement {
                        payment_id: a.payment_id,
                        paid_on: a.paid_on,
                    },
                );
            }
        }
        tracing::info!(
            customers = ledger.customers().len(),
            invoices = ledger.invoices().len(),
            decisions = snap.decided.len(),
            open_reviews = snap.open_reviews.len(),
            model = %model.version,
            "restored from the store"
        );
        let engine = Engine::new(ledger, Arc::new(model), config);
        let open_reviews: std::collections::HashSet<String> =
            snap.open_reviews.into_iter().collect();
        let mut awaiting = HashMap::new();
        for a in pending {
            if open_reviews.contains(&a.payment_id) {
                awaiting.insert(a.payment_id.clone(), a);
            } else {
                // Approved (or closed by a return) without its request being marked: the
                // resolution and the mark are two writes, and a crash came between them.
                tracing::info!(approval = %a.id, "an approval request on an item no longer open is not pending");
            }
        }
        if !awaiting.is_empty() {
            tracing::info!(
                pending = awaiting.len(),
                "resolutions awaiting a second analyst's approval"
            );
        }
        Ok(Service {
            core: RwLock::new(Core {
                engine,
                epoch: 0,
                tick: 0,
                touched: HashMap::new(),
                decided: snap.decided.into_iter().collect(),
                open_reviews,
                awaiting,
                four_eyes: FourEyes::default(),
                sla: Sla::default(),
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
            journal: watch::channel(0).0,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            restored_seq,
            following: AtomicBool::new(false),
            feed: FeedStats::default(),
            advices: tokio::sync::Mutex::new(advices::Book::restore(book)),
            advice_settings: Mutex::new(AdviceSettings::default()),
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
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
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
}
