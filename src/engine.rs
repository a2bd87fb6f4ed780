//! The engine: a ledger, a model and the auto-apply policy.
//!
//! [`Engine::decide`] is pure: it reads the ledger and returns a [`Decision`]. Applying a
//! decision is separate ([`Engine::apply`]), checks every invoice before it changes any, and is
//! refused rather than ever taking an open amount past zero. [`Engine::run_batch`] decides a
//! batch in parallel against the ledger as it stands, then applies in payment order; a payment
//! whose invoices an earlier one in the batch has already taken is decided again.

use crate::domain::{Allocation, Decision, Direction, Payment, ReviewReason, Status, Suggestion};
use crate::ledger::{InvoiceIdx, Ledger, LedgerError};
use crate::matching::amounts::AmountFit;
use crate::matching::candidates::{self, Candidate, CandidateLimits, PaymentCandidates, Source};
use crate::matching::features;
use crate::model::artifact::{Model, decision_score};
use rayon::prelude::*;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

/// Version of the candidate rules and policy, recorded in every decision beside the model's.
pub const RULES_VERSION: &str = "rules-2026.11";

/// Suggestions shown to an analyst for a review item.
const MAX_SUGGESTIONS: usize = 3;

/// What the engine may change about how it decides.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    pub limits: CandidateLimits,
    /// Overrides the model's own auto-apply threshold.
    pub threshold: Option<f64>,
}

/// The matching engine.
pub struct Engine {
    ledger: Ledger,
    model: Arc<Model>,
    config: EngineConfig,
}

/// A payment scored: its candidates and their probabilities, best first.
pub struct Scored {
    pub candidates: PaymentCandidates,
    /// Raw candidate probabilities, aligned with `candidates.candidates`.
    pub probabilities: Vec<f64>,
}

impl Engine {
    pub fn new(ledger: Ledger, model: Arc<Model>, config: EngineConfig) -> Engine {
        Engine {
            ledger,
            model,
            config,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Swaps the model; decisions from now on carry its version.
    pub fn set_model(&mut self, model: Arc<Model>) {
        self.model = model;
    }

    /// The auto-apply threshold in force.
    pub fn threshold(&self) -> f64 {
        self.config.threshold.unwrap_or(self.model.threshold)
    }

    /// Candidates of a payment with their probabilities, sorted best first.
    pub fn score(&self, payment: &Payment) -> Scored {
        let mut pc = candidates::generate(
            &self.ledger,
            payment,
            &self.model.habits,
            &self.config.limits,
        );
        // An allocation in another currency is never right: the ledger does not convert.
        pc.candidates.retain(|c| {
            c.allocations
                .iter()
                .all(|a| self.ledger.invoice(a.invoice).currency == payment.currency)
        });
        let x = features::matrix(&self.ledger, payment, &pc);
        let probs = self.model.candidate_probabilities(x.view());
        let mut order: Vec<usize> = (0..pc.candidates.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let probabilities = order.iter().map(|&i| probs[i]).collect();
        let mut sorted: Vec<Candidate> = Vec::with_capacity(order.len());
        let mut old: Vec<Option<Candidate>> = pc.candidates.drain(..).map(Some).collect();
        for i in order {
            if let Some(c) = old[i].take() {
                sorted.push(c);
            }
        }
        pc.candidates = sorted;
        Scored {
            candidates: pc,
            probabilities,
        }
    }

    /// Decides one payment against the ledger as it stands. Changes nothing.
    pub fn decide(&self, payment: &Payment) -> Decision {
        let mut d = self.blank(payment);
        if payment.direction == Direction::Debit {
            d.review_reason = Some(ReviewReason::NotMatchable);
            d.explanation.push("debit: reported, never matched".into());
            return d;
        }
        if payment.amount <= Decimal::ZERO {
            d.review_reason = Some(ReviewReason::NotMatchable);
            d.explanation.push(format!(
                "amount {} is not a positive payment",
                payment.amount
            ));
            return d;
        }
        let s = self.score(payment);
        let pc = &s.candidates;
        let direct_payer = pc
            .payers
            .iter()
            .find(|p| p.via != crate::matching::payer::PayerVia::Reference);
        if let Some(p) = direct_payer {
            let c = self.ledger.customer(p.customer);
            d.customer_id = Some(c.id.clone());
            d.explanation.push(format!(
                "payer identified as {} ({}) by {}{}",
                c.name,
                c.id,
                p.via.describe(),
                if p.score < 1.0 {
                    format!(", similarity {:.2}", p.score)
                } else {
                    String::new()
                }
            ));
        } else if let Some(name) = payment.payer.name.as_deref() {
            d.explanation
                .push(format!("payer {name:?} is not a known customer"));
        }
        if pc.closed_hits > 0 {
            d.explanation.push(format!(
                "{} reference(s) name an invoice that is already paid: possible duplicate payment",
                pc.closed_hits
            ));
        }
        let Some(best) = pc.candidates.first() else {
            let no_customer = pc.payers.is_empty();
            d.review_reason = Some(if no_customer {
                ReviewReason::NoCustomer
            } else {
                ReviewReason::NoCandidate
            });
            d.explanation.push(if no_customer {
                "no customer and no open invoice matches the payer or the references".into()
            } else {
                "no combination of open items explains the payment".into()
            });
            return d;
        };
        let rival = s.probabilities.get(1).copied().unwrap_or(0.0);
        let confidence = self
            .model
            .calibrator
            .apply(decision_score(s.probabilities[0], rival) as f32);
        d.confidence = confidence;
        if d.customer_id.is_none() {
            if let Some(a) = best.allocations.first() {
                d.customer_id = Some(self.ledger.invoice(a.invoice).customer_id.clone());
            }
        }
        let threshold = self.threshold();
        let consistent = self.check(payment, best).is_ok();
        // Another allocation with the same claim and the same evidence: nothing in the data
        // can tell them apart, so a person must, whatever the model's scores.
        let tied = pc
            .candidates
            .iter()
            .skip(1)
            .any(|r| equally_explained(&self.ledger, payment, best, r));
        let guarded = self.guard(pc, best);
        if let Some(why) = &guarded {
            d.explanation
                .push(format!("not applied automatically: {why}"));
        }
        if confidence >= threshold && consistent && !tied && guarded.is_none() {
            d.status = Status::Auto;
            d.allocations = self.allocations(best);
            d.unapplied = best.unapplied;
            d.explanation.extend(self.explain(payment, pc, best));
            d.explanation.push(format!(
                "auto-applied: confidence {confidence:.4} >= threshold {threshold:.4}"
            ));
            return d;
        }
        d.review_reason = Some(
            if tied || (rival > 0.5 && same_claim(best, &pc.candidates[1])) {
                ReviewReason::Ambiguous
            } else if !best.unapplied.is_zero()
                || best
                    .allocations
                    .iter()
                    .any(|a| matches!(a.fit.kind, AmountFit::Partial | AmountFit::Overpaid))
            {
                ReviewReason::AmountMismatch
            } else if best.allocations.iter().any(|a| {
                matches!(
                    a.fit.kind,
                    AmountFit::StatedDeduction | AmountFit::BankFee | AmountFit::LateDiscount
                )
            }) {
                ReviewReason::Deduction
            } else {
                ReviewReason::LowConfidence
            },
        );
        for (i, c) in pc.candidates.iter().take(MAX_SUGGESTIONS).enumerate() {
            let r = if i == 0 { rival } else { s.probabilities[0] };
            d.suggestions.push(Suggestion {
                confidence: self
                    .model
                    .calibrator
                    .apply(decision_score(s.probabilities[i], r) as f32),
                allocations: self.allocations(c),
                unapplied: c.unapplied,
                explanation: self.explain(payment, pc, c),
            });
        }
        d.explanation.push(format!(
            "review: {}; best suggestion confidence {confidence:.4} (threshold {threshold:.4})",
            match d.review_reason {
                Some(ReviewReason::Ambiguous) =>
                    "two or more allocations explain the payment about equally well",
                Some(ReviewReason::AmountMismatch) =>
                    "the amounts leave a difference the engine cannot explain",
                Some(ReviewReason::Deduction) => "a deduction or late discount needs approval",
                _ => "not confident enough to apply",
            }
        ));
        d
    }

    /// Decides many payments in parallel against the ledger as it stands. Changes nothing.
    pub fn decide_all(&self, payments: &[Payment]) -> Vec<Decision> {
        payments.par_iter().map(|p| self.decide(p)).collect()
    }

    /// Decides and applies a batch: in parallel, then applied in order, deciding again any
    /// payment whose invoices an earlier payment of the batch took. A payment id seen before in
    /// the batch gets the earlier decision back and changes nothing.
    pub fn run_batch(&mut self, payments: &[Payment]) -> Vec<Decision> {
        let first = self.decide_all(payments);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<Decision> = Vec::with_capacity(payments.len());
        for (i, (p, mut d)) in payments.iter().zip(first).enumerate() {
            if let Some(&j) = seen.get(p.payment_id.as_str()) {
                let again = out[j].clone();
                out.push(again);
                continue;
            }
            seen.insert(&p.payment_id, i);
            if d.status == Status::Auto && self.apply(p, &d).is_err() {
                d = self.decide(p);
                if d.status == Status::Auto && self.apply(p, &d).is_err() {
                    // Cannot happen after a fresh decision on this ledger; refuse rather than
                    // over-apply if it somehow does.
                    d = self.demote(d, "the allocation no longer fits the ledger");
                }
            }
            out.push(d);
        }
        out
    }

    /// Applies a decision's allocations to the ledger: all or nothing.
    pub fn apply(&mut self, payment: &Payment, d: &Decision) -> Result<(), LedgerError> {
        // One entry per invoice: two allocations naming the same invoice are checked and applied
        // as their sum, so the check below covers what is really applied.
        let mut plan: Vec<(InvoiceIdx, Decimal)> = Vec::with_capacity(d.allocations.len());
        for a in &d.allocations {
            let idx = self
                .ledger
                .invoice_idx(&a.invoice_id)
                .ok_or_else(|| LedgerError::UnknownInvoice(a.invoice_id.clone()))?;
            match plan.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, r)) => *r += a.relieved(),
                None => plan.push((idx, a.relieved())),
            }
        }
        let applied: Decimal = d.allocations.iter().map(|a| a.amount).sum();
        if applied + d.unapplied != payment.amount {
            return Err(LedgerError::InvalidInvoice {
                invoice_id: d
                    .allocations
                    .first()
                    .map(|a| a.invoice_id.clone())
                    .unwrap_or_default(),
                message: format!(
                    "allocations {applied} + unapplied {} != payment {}",
                    d.unapplied, payment.amount
                ),
            });
        }
        // Check everything first so that a refusal leaves the ledger as it was.
        for &(idx, relieved) in &plan {
            let inv = self.ledger.invoice(idx);
            let after = inv.open_amount - relieved;
            let crosses = if inv.is_credit() {
                after > Decimal::ZERO
            } else {
                after < Decimal::ZERO
            };
            if crosses || (inv.open_amount.is_zero() && !relieved.is_zero()) {
                return Err(LedgerError::OverApplied {
                    invoice_id: inv.id.clone(),
                    open: inv.open_amount,
                    relieved,
                });
            }
        }
        for (idx, relieved) in plan {
            self.ledger.relieve(idx, relieved)?;
        }
        Ok(())
    }

    fn demote(&self, mut d: Decision, why: &str) -> Decision {
        d.status = Status::Review;
        d.review_reason = Some(ReviewReason::LowConfidence);
        d.unapplied += d.allocations.iter().map(|a| a.amount).sum::<Decimal>();
        d.allocations.clear();
        d.explanation.push(format!("review: {why}"));
        d
    }

    /// Evidence too thin to apply without a person, whatever the model says: an invoice found by
    /// amount alone whose amount does not match (partial, overpaid, fee), or a subset of open
    /// items that is one of several, or that ignores the references the payer gave.
    fn guard(&self, pc: &PaymentCandidates, c: &Candidate) -> Option<String> {
        let unreferenced_mismatch = c.allocations.iter().any(|a| {
            a.reference.is_none() && !matches!(a.fit.kind, AmountFit::Exact | AmountFit::Discount)
        });
        if unreferenced_mismatch {
            return Some(
                "an invoice found by amount alone does not match the amount exactly".into(),
            );
        }
        if c.source == Source::SubsetSum {
            if pc.subset_solutions > 1 {
                return Some(format!(
                    "{} sets of open items add up to the payment",
                    pc.subset_solutions
                ));
            }
            if !pc.queries.is_empty() {
                return Some(
                    "the payer's references do not name the open items that add up".into(),
                );
            }
        }
        None
    }

    /// Whether a candidate may be applied: it balances and no invoice goes past zero.
    fn check(&self, payment: &Payment, c: &Candidate) -> Result<(), String> {
        if c.applied() + c.unapplied != payment.amount {
            return Err("does not balance".into());
        }
        if c.unapplied < Decimal::ZERO {
            return Err("applies more than the payment".into());
        }
        for a in &c.allocations {
            let inv = self.ledger.invoice(a.invoice);
            let relieved = a.fit.amount + a.fit.discount + a.fit.deduction;
            let ok = if inv.is_credit() {
                relieved >= inv.open_amount && relieved <= Decimal::ZERO
            } else {
                relieved <= inv.open_amount && relieved >= Decimal::ZERO
            };
            if !ok {
                return Err(format!("{} would go past zero", inv.id));
            }
        }
        Ok(())
    }

    fn allocations(&self, c: &Candidate) -> Vec<Allocation> {
        c.allocations
            .iter()
            .map(|a| Allocation {
                invoice_id: self.ledger.invoice(a.invoice).id.clone(),
                amount: a.fit.amount,
                discount: a.fit.discount,
                deduction: a.fit.deduction,
                reason_code: a.fit.reason_code.clone(),
            })
            .collect()
    }

    /// One line per allocation: which reference matched which invoice and how closely, and how
    /// the amount was explained.
    fn explain(&self, payment: &Payment, pc: &PaymentCandidates, c: &Candidate) -> Vec<String> {
        let mut out = Vec::with_capacity(c.allocations.len() + 1);
        for a in &c.allocations {
            let inv = self.ledger.invoice(a.invoice);
            let matched = match a.reference {
                Some((qi, sim, field)) => {
                    let q = &pc.queries[qi];
                    let what = match field {
                        crate::ledger::RefField::InvoiceNumber => "invoice number",
                        crate::ledger::RefField::PoNumber => "PO number",
                    };
                    let how = if sim >= 0.999 {
                        "exactly".to_string()
                    } else {
                        format!("similarity {sim:.2}")
                    };
                    format!("reference {:?} matched {what} {} {how}", q.text, inv.number)
                }
                None => match c.source {
                    Source::SubsetSum => format!(
                        "{} found by amount (open items adding up to the payment)",
                        inv.number
                    ),
                    _ => format!("{} found by amount", inv.number),
                },
            };
            let mut amount = format!(
                "{}: applied {} of {} open, {}",
                inv.id,
                a.fit.amount,
                inv.open_amount,
                a.fit.kind.describe()
            );
            if !a.fit.discount.is_zero() {
                amount.push_str(&format!(", discount {}", a.fit.discount));
            }
            if !a.fit.deduction.is_zero() {
                amount.push_str(&format!(
                    ", deduction {}{}",
                    a.fit.deduction,
                    a.fit
                        .reason_code
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
            out.push(format!("{matched}; {amount}"));
        }
        if !c.unapplied.is_zero() {
            out.push(format!(
                "{} of {} left unapplied",
                c.unapplied, payment.amount
            ));
        }
        out
    }

    fn blank(&self, payment: &Payment) -> Decision {
        Decision {
            payment_id: payment.payment_id.clone(),
            status: Status::Review,
            confidence: 0.0,
            customer_id: None,
            allocations: Vec::new(),
            unapplied: payment.amount,
            suggestions: Vec::new(),
            explanation: Vec::new(),
            review_reason: None,
            model_version: self.model.version.clone(),
            rules_version: RULES_VERSION.to_string(),
        }
    }
}

/// Whether two candidates claim the same and rest on the same evidence: the same references (as
/// closely), the same customers, and the remittance lines stating the open amounts of as many of
/// their invoices. Two open items of one customer with the same amount and no reference to tell
/// them apart; or two a short reference fits (`INV-0067` for `INV-0067505` and `INV-0067512`)
/// when the line's amount fits both or neither.
fn equally_explained(ledger: &Ledger, payment: &Payment, a: &Candidate, b: &Candidate) -> bool {
    let stating = |c: &Candidate| {
        c.allocations
            .iter()
            .filter(|x| {
                x.line.and_then(|l| payment.lines.get(l)).is_some_and(|l| {
                    features::line_states_open_amount(l, ledger.invoice(x.invoice))
                })
            })
            .count()
    };
    let sims = |c: &Candidate| {
        let mut v: Vec<i32> = c
            .allocations
            .iter()
            .map(|x| x.reference.map_or(-1, |r| (r.1 * 1000.0).round() as i32))
            .collect();
        v.sort_unstable();
        v
    };
    let customers = |c: &Candidate| {
        let mut v: Vec<u32> = c
            .allocations
            .iter()
            .map(|x| ledger.invoice_customer(x.invoice))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    same_claim(a, b)
        && sims(a) == sims(b)
        && customers(a) == customers(b)
        && stating(a) == stating(b)
}

/// Whether two candidates claim the same kind of explanation for the payment (same number of
/// invoices, same unapplied cash, same amount fits): if both score alike, nobody can tell them
/// apart from the data, and a person must.
fn same_claim(a: &Candidate, b: &Candidate) -> bool {
    let kinds = |c: &Candidate| {
        let mut k: Vec<AmountFit> = c.allocations.iter().map(|x| x.fit.kind).collect();
        k.sort();
        k
    };
    a.allocations.len() == b.allocations.len() && a.unapplied == b.unapplied && kinds(a) == kinds(b)
}
