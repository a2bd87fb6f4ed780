//! Returned items sent through the normal submission path: a payment the parsers marked as
//! returned ([`crate::domain::Payment::returned`]: a NACHA return entry, a camt reversal, a BAI2
//! returned item) is not cash to apply. The service looks for the original payment it takes
//! back and reverses it with [`Service::reverse_payment`]; when the original cannot be
//! identified, or cannot be reversed, the returned item goes to the review queue
//! ([`ReviewReason::ReturnedItem`](crate::domain::ReviewReason::ReturnedItem)) with the reason in
//! its explanation.
//!
//! The original is, in this order:
//!
//! 1. the decided payment whose id is the return's original trace (NACHA trace numbers and camt
//!    end-to-end ids are the payment ids their parsers give), if its currency and amount are the
//!    return's: a partial return is for a person;
//! 2. else the one decided payment of the same currency and amount, dated on or before the
//!    return, from the same payer (same account, or the same name once normalised). None, or
//!    more than one, is for a person: the engine never guesses which payment bounced.
//!
//! Sending the same returned item again changes nothing: the reversal it made is found again
//! (its reason names the returned item) and replayed, and a returned item that went to review is
//! a decided payment id like any other.

use super::Service;
use super::api::*;
use crate::domain::{Payment, ReturnedItem, Status};
use crate::store::{ActorKind, StoredDecision};
use crate::text::normalize_name;
use std::sync::Arc;

/// Decided payments of the return's amount read at most when looking for its original.
const SEARCH_LIMIT: u32 = 200;

/// What became of a returned item.
pub(super) enum ReturnOutcome {
    /// Its original was reversed (or had been, by this same returned item).
    Reversed(Box<Matched>),
    /// It goes to the review queue, for this reason.
    Review(String),
}

/// The reason recorded with the reversal a returned item makes: it names the item, so that the
/// same item sent again finds its own reversal.
fn return_reason(ret: &Payment, item: &ReturnedItem) -> String {
    format!(
        "{} returned item {}{}{}",
        ret.format,
        ret.payment_id,
        if item.reason.is_some() { ": " } else { "" },
        item.reason.as_deref().unwrap_or("")
    )
}

/// Whether a decided payment was made by the same payer as the return: the same account, or
/// the same name once normalised. `None` when the return names no payer to compare.
fn same_payer(ret: &Payment, original: &Payment) -> Option<bool> {
    let (r, o) = (&ret.payer, &original.payer);
    let account = r.account.as_deref().filter(|a| !a.trim().is_empty());
    let name = r
        .name
        .as_deref()
        .map(normalize_name)
        .filter(|n| !n.is_empty());
    if account.is_none() && name.is_none() {
        return None;
    }
    let by_account = account.is_some_and(|a| o.account.as_deref().map(str::trim) == Some(a.trim()));
    let by_name = name.is_some_and(|n| o.name.as_deref().map(normalize_name) == Some(n));
    Some(by_account || by_name)
}

impl Service {
    /// Reverses the original of a returned item, or says why it must go to review. `Err` only
    /// when the service or its store fails.
    pub(super) async fn settle_return(
        self: &Arc<Self>,
        ret: &Payment,
        item: &ReturnedItem,
    ) -> Result<ReturnOutcome, ServiceError> {
        let reason = return_reason(ret, item);
        let original = match self.find_original(ret, item, &reason).await? {
            Ok(id) => id,
            Err(why) => return Ok(ReturnOutcome::Review(why)),
        };
        let req = ReverseRequest {
            payment_id: original.clone(),
            return_code: item.return_code.clone(),
            reason,
            by: Actor {
                kind: ActorKind::Engine,
                name: "engine".into(),
            },
        };
        match self.reverse_payment(req).await {
            Ok(r) => Ok(ReturnOutcome::Reversed(Box::new(Matched {
                decision: r.decision,
                replayed: r.replayed,
                held: None,
            }))),
            Err(e @ (ServiceError::FailedPrecondition(_) | ServiceError::NotFound(_))) => Ok(
                ReturnOutcome::Review(format!("original payment {original} not reversed: {e}")),
            ),
            Err(e) => Err(e),
        }
    }

    /// The id of the original payment, or why it cannot be named.
    async fn find_original(
        &self,
        ret: &Payment,
        item: &ReturnedItem,
        reason: &str,
    ) -> Result<Result<String, String>, ServiceError> {
        let mut notes = Vec::new();
        if let Some(trace) = item
            .original_trace
            .as_deref()
            .filter(|t| *t != ret.payment_id)
        {
            match self.store.decision(trace.to_string()).await? {
                Some(sd) => return self.check_traced(ret, sd, reason).await,
                None => notes.push(format!(
                    "its original trace {trace} names no decided payment"
                )),
            }
        }
        let Some(date) = ret.payment_date else {
            notes.push("it has no date to look for the original before".into());
            return Ok(Err(why_review(&notes)));
        };
        let found = self
            .store
            .decisions_by_amount(ret.currency, ret.amount, SEARCH_LIMIT)
            .await?;
        let mut fits: Vec<String> = Vec::new();
        let mut unnamed_payer = false;
        for sd in found {
            let p = &sd.payment;
            if p.payment_id == ret.payment_id
                || p.returned.is_some()
                || p.payment_date.is_some_and(|d| d > date)
            {
                continue;
            }
            match same_payer(ret, p) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    unnamed_payer = true;
                    continue;
                }
            }
            if sd.decision.status == Status::Returned {
                // Returned before: by this same item (sent again), or by another return.
                let earlier = self.store.payment_return(p.payment_id.clone()).await?;
                if earlier.is_some_and(|r| r.reason == reason) {
                    return Ok(Ok(p.payment_id.clone()));
                }
                continue;
            }
            fits.push(p.payment_id.clone());
        }
        match fits.as_slice() {
            [one] => Ok(Ok(one.clone())),
            [] => {
                notes.push(if unnamed_payer {
                    "it names no payer (account or name) to tell its original by".to_string()
                } else {
                    format!(
                        "no decided payment of {} {} from {} dated on or before {date} is open to \
                         return",
                        ret.amount,
                        ret.currency,
                        payer_label(ret)
                    )
                });
                Ok(Err(why_review(&notes)))
            }
            many => {
                notes.push(format!(
                    "{} decided payments of {} {} from {} fit ({}): a person must choose",
                    many.len(),
                    ret.amount,
                    ret.currency,
                    payer_label(ret),
                    many.join(", ")
                ));
                Ok(Err(why_review(&notes)))
            }
        }
    }

    /// The payment the original trace names, if it can be the original.
    async fn check_traced(
        &self,
        ret: &Payment,
        sd: StoredDecision,
        reason: &str,
    ) -> Result<Result<String, String>, ServiceError> {
        let p = &sd.payment;
        let id = p.payment_id.clone();
        if p.currency != ret.currency || p.amount != ret.amount {
            return Ok(Err(why_review(&[format!(
                "its original trace names payment {id} of {} {}, but {} {} is returned: a partial \
                 or mismatched return is for a person",
                p.amount, p.currency, ret.amount, ret.currency
            )])));
        }
        if sd.decision.status == Status::Returned {
            let earlier = self.store.payment_return(id.clone()).await?;
            if let Some(r) = earlier.filter(|r| r.reason != reason) {
                return Ok(Err(why_review(&[format!(
                    "its original payment {id} was already returned ({}: {}) at {}",
                    r.return_code,
                    r.reason,
                    r.at.to_rfc3339()
                )])));
            }
        }
        Ok(Ok(id))
    }
}

fn payer_label(p: &Payment) -> String {
    match (&p.payer.name, &p.payer.account) {
        (Some(n), Some(a)) => format!("{n} (account {a})"),
        (Some(n), None) => n.clone(),
        (None, Some(a)) => format!("account {a}"),
        (None, None) => "an unnamed payer".into(),
    }
}

fn why_review(notes: &[String]) -> String {
    format!(
        "returned item: the original payment was not identified: {}",
        notes.join("; ")
    )
}
