//! Matching payments: steps 1 to 3 of the module documentation of `crate::service`, for
//! structured payments, raw remittances and replays.

use super::Service;
use super::api::*;
use super::conflict::demote;
use super::remittance;
use super::returns::ReturnOutcome;
use super::state::*;
use crate::domain::{Decision, Payment, Status};
use crate::formats::{Format, FormatError, Position};
use crate::store::{DecisionRecord, PostedBy, decision_postings};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

impl Service {
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
    ///
    /// A returned item not decided before is settled first (`service/returns.rs`): its result
    /// is the decision of the original payment it reversed (status returned), or, when the
    /// original cannot be identified, it is decided like any payment (the engine sends it to
    /// review) with the reason added to its explanation. Returns are settled before the rest of
    /// their batch is decided: a return and its original in one request finds no original.
    ///
    /// With holding on, bank receipts without remittance detail are held for their advices
    /// instead (`service/advices.rs`); the rest are decided here.
    pub(super) async fn match_all(
        self: &Arc<Self>,
        payments: Vec<Payment>,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        if !payments.iter().any(|p| self.holds(p)) {
            return self.match_now(payments, HashMap::new()).await;
        }
        let n = payments.len();
        let (mut receipts, mut others) = (Vec::new(), Vec::new());
        let mut held = Vec::with_capacity(n);
        for p in payments {
            let h = self.holds(&p);
            held.push(h);
            if h { receipts.push(p) } else { others.push(p) }
        }
        let mut r = self
            .receive_receipts(receipts, "ar_system")
            .await?
            .into_iter();
        let mut o = self.match_now(others, HashMap::new()).await?.into_iter();
        held.into_iter()
            .map(|h| {
                if h { r.next() } else { o.next() }
                    .ok_or_else(|| ServiceError::Internal("a payment went undecided".into()))
            })
            .collect()
    }

    /// Decides payments now, holding none; `notes` add a line to the explanation of the
    /// payments they name.
    pub(super) async fn match_now(
        self: &Arc<Self>,
        payments: Vec<Payment>,
        mut notes: HashMap<String, String>,
    ) -> Result<Vec<Result<Matched, ServiceError>>, ServiceError> {
        let n = payments.len();
        let mut settled: Vec<Option<Result<Matched, ServiceError>>> = Vec::new();
        let mut rest = Vec::with_capacity(n);
        for (i, p) in payments.into_iter().enumerate() {
            let fresh = !self.read().decided.contains(&p.payment_id);
            if let (Some(item), true) = (p.returned.as_ref(), fresh) {
                match self.settle_return(&p, item).await? {
                    ReturnOutcome::Reversed(m) => {
                        settled.resize_with(n, || None);
                        settled[i] = Some(Ok(*m));
                        continue;
                    }
                    ReturnOutcome::Review(why) => {
                        notes.insert(p.payment_id.clone(), why);
                    }
                }
            }
            rest.push((i, p));
        }
        let (order, rest): (Vec<usize>, Vec<Payment>) = rest.into_iter().unzip();
        let this = Arc::clone(self);
        let steps = tokio::task::spawn_blocking(move || this.decide_and_apply(rest, &notes))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if settled.is_empty() {
            settled.resize_with(n, || None);
        }
        for (i, (payment, step)) in order.into_iter().zip(steps) {
            settled[i] = Some(match step {
                Ok(step) => self.finish(payment, step).await,
                Err(e) => Err(e),
            });
        }
        settled
            .into_iter()
            .map(|r| r.ok_or_else(|| ServiceError::Internal("a payment went undecided".into())))
            .collect()
    }

    /// `notes` add a line to the explanation of the payments they name (why a returned item
    /// goes to review).
    pub(super) fn decide_and_apply(
        self: &Arc<Self>,
        payments: Vec<Payment>,
        notes: &HashMap<String, String>,
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
                let note = notes.get(&payment.payment_id).map(String::as_str);
                let step = self.apply_one(&payment, first, epoch, tick, note);
                out.push((payment, step));
            }
        }
        out
    }

    pub(super) fn apply_one(
        self: &Arc<Self>,
        payment: &Payment,
        first: Option<Decision>,
        epoch: u64,
        tick: u64,
        note: Option<&str>,
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
        if let Some(note) = note {
            d.explanation.push(note.to_string());
        }
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
        let at = crate::store::now();
        // A review decision moves no cash: the analyst's resolution posts it.
        let postings = match d.status {
            Status::Auto => decision_postings(payment, &d, &PostedBy::engine(&d), at),
            Status::Review | Status::Returned => Vec::new(),
        };
        let write = self.store.record_decision(DecisionRecord {
            payment: payment.clone(),
            decision: d.clone(),
            changes,
            at,
            postings,
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
                    Status::Review | Status::Returned => &this.counters.decisions_review,
                };
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Step::New {
            decision: Box::new(d),
            commit,
        })
    }

    pub(super) async fn finish(
        self: &Arc<Self>,
        payment: Payment,
        step: Step,
    ) -> Result<Matched, ServiceError> {
        match step {
            Step::New { decision, commit } => match Self::commit(commit).await {
                Ok(()) => Ok(Matched {
                    decision: *decision,
                    replayed: false,
                    held: None,
                }),
                Err(e) if super::conflict::is_conflict(&e) => {
                    self.redecide(payment, *decision).await
                }
                Err(e) => Err(e),
            },
            Step::Seen { wait } => self.replay(payment, wait).await,
        }
    }

    /// The stored decision of a payment already decided, once its commit (`wait`, if still in
    /// flight) is done; a different payment under the same id is refused.
    pub(super) async fn replay(
        &self,
        payment: Payment,
        wait: Option<watch::Receiver<bool>>,
    ) -> Result<Matched, ServiceError> {
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
            held: None,
        })
    }

    /// Whether the payment id has a decision (in this replica's view).
    pub fn is_decided(&self, payment_id: &str) -> bool {
        self.read().decided.contains(payment_id)
    }

    /// The stored decision of a payment.
    pub async fn decision(&self, payment_id: String) -> Result<Decision, ServiceError> {
        let d = self.store.decision(payment_id.clone()).await?;
        d.map(|d| d.decision)
            .ok_or_else(|| ServiceError::NotFound(format!("payment {payment_id} is not decided")))
    }
}
