//! The engine: a ledger, a model and the auto-apply policy.
//!
//! [`Engine::decide`] is pure: it reads the ledger and returns a [`Decision`]. Applying a
//! decision is separate ([`Engine::apply`]), checks every invoice before it changes any, and is
//! refused rather than ever taking an open amount past zero. [`Engine::run_batch`] decides a
//! batch in parallel against the ledger as it stands, then applies in payment order; a payment
//! whose invoices an earlier one in the batch has already taken is decided again.

use crate::domain::{
    Allocation, Decision, Direction, Leftover, Payment, ReviewReason, RulesApplied, Status,
    Suggestion, WriteOffLine,
};
use crate::ledger::{InvoiceIdx, Ledger, LedgerError, Settlement};
use crate::matching::amounts::{AmountFit, RUN_MAX_SKIPPED};
use crate::matching::candidates::{
    self, Candidate, CandidateAllocation, CandidateLimits, PaymentCandidates, RefQuery, Source,
    due_gaps, left_out_after_the_list,
};
use crate::matching::features;
use crate::matching::payer::PayerVia;
use crate::matching::strata;
use crate::model::artifact::{Model, decision_score};
use crate::rules::{Overpayment, Policy, Rules};
use crate::text::references::one_slip_apart;
use rayon::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

/// Suggestions shown to an analyst for a review item.
const MAX_SUGGESTIONS: usize = 3;

/// Items a cut list's continuation may leave out and still be applied without a person: with
/// one left out, a few dozen items after the list give a thousand sets, too few for a sum in
/// cents to be met by chance; with two, tens of thousands.
const CONTINUATION_SURE_LEFT_OUT: usize = 1;

/// What the engine may change about how it decides.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub limits: CandidateLimits,
    /// Overrides the model's own auto-apply threshold.
    pub threshold: Option<f64>,
    /// Cash an auto decision may leave unapplied without the remittance accounting for it, in
    /// the payment's currency ([`DEFAULT_UNEXPLAINED_TOLERANCE`] by default). An overpayment a
    /// remittance line states (the line pays more than the invoice has open) is accounted for
    /// and does not count against it.
    pub unexplained_tolerance: Decimal,
    /// Write-offs, overpayments and discount grace ([`Rules`]); their version is recorded in
    /// every decision.
    pub rules: Arc<Rules>,
}

/// The default of [`EngineConfig::unexplained_tolerance`]: one currency unit, so that rounding
/// on the payer's side is not a review item, and a remittance that accounts for only part of
/// the cash always is.
pub const DEFAULT_UNEXPLAINED_TOLERANCE: Decimal = Decimal::ONE;

/// How far around an amount found alone the payer's open items are counted: 2% either side.
const CHANCE_WINDOW: Decimal = Decimal::from_parts(2, 0, 0, false, 2);

/// Items of exactly an amount that chance may put among a payer's open items before an item
/// found by that amount alone is no evidence: 0.3%, what a certified threshold allows wrong.
const CHANCE_MAX: Decimal = Decimal::from_parts(3, 0, 0, false, 3);

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: CandidateLimits::default(),
            threshold: None,
            unexplained_tolerance: DEFAULT_UNEXPLAINED_TOLERANCE,
            rules: Arc::new(Rules::default()),
        }
    }
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
    /// The feature row of the best candidate (empty when there is none), for the model's
    /// out-of-distribution guard.
    pub best_row: Vec<f32>,
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

    /// The rules in force.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.config.rules
    }

    /// Swaps the rules; decisions from now on are made under them and carry their version.
    pub fn set_rules(&mut self, rules: Arc<Rules>) {
        self.config.rules = rules;
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
        self.regrade_discounts(payment, &mut pc);
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
        let mut probabilities: Vec<f64> = order.iter().map(|&i| probs[i]).collect();
        // Where each sorted candidate's feature row is, kept through the promotion below.
        let mut rows: Vec<usize> = order.clone();
        let mut sorted: Vec<Candidate> = Vec::with_capacity(order.len());
        let mut old: Vec<Option<Candidate>> = pc.candidates.drain(..).map(Some).collect();
        for i in order {
            if let Some(c) = old[i].take() {
                sorted.push(c);
            }
        }
        promote_completions(&mut sorted, &mut probabilities, &mut rows);
        keep_the_list_first(&pc, &mut sorted, &mut probabilities, &mut rows);
        let best_row = rows.first().map(|&i| x.row(i).to_vec()).unwrap_or_default();
        pc.candidates = sorted;
        Scored {
            candidates: pc,
            probabilities,
            best_row,
        }
    }

    /// Decides one payment against the ledger as it stands. Changes nothing.
    pub fn decide(&self, payment: &Payment) -> Decision {
        let mut d = self.blank(payment);
        // A returned item is the bank taking cash back: applying it to invoices would count
        // money twice. The service reverses the original it names; here it only waits.
        if let Some(r) = &payment.returned {
            d.review_reason = Some(ReviewReason::ReturnedItem);
            d.explanation.push(format!(
                "returned item ({}{}{}): the bank took back an earlier payment{}; never matched to \
                 invoices",
                r.return_code,
                if r.reason.is_some() { ": " } else { "" },
                r.reason.as_deref().unwrap_or(""),
                r.original_trace
                    .as_deref()
                    .map(|t| format!(" (original trace {t})"))
                    .unwrap_or_default()
            ));
            return d;
        }
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
        let direct_payer = pc.payers.iter().find(|p| p.via != PayerVia::Reference);
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
        let duplicates = self.possible_duplicates(payment, pc);
        let duplicate = !duplicates.is_empty();
        for &(qi, idx) in &duplicates {
            d.explanation.push(self.paid_reference(pc, qi, idx));
        }
        let Some(best) = pc.candidates.first() else {
            let no_customer = pc.payers.is_empty();
            d.review_reason = Some(if duplicate {
                ReviewReason::PossibleDuplicate
            } else if no_customer {
                ReviewReason::NoCustomer
            } else {
                ReviewReason::NoCandidate
            });
            d.explanation.push(if duplicate {
                "review: possible duplicate payment, and no open item explains the payment".into()
            } else if no_customer {
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
        // The threshold of the best candidate's evidence stratum; a stratum the model could not
        // certify never auto-applies, whatever `--threshold` says.
        let stratum = strata::stratum(best);
        let threshold = match self.model.threshold_for(stratum) {
            Some(t) => self.config.threshold.unwrap_or(t),
            None => {
                d.explanation.push(format!(
                    "not applied automatically: the model has too few labelled {stratum} payments to certify a threshold for them"
                ));
                f64::INFINITY
            }
        };
        // A model never auto-applies a candidate unlike anything it was trained on.
        let unseen = self
            .model
            .envelope
            .as_ref()
            .and_then(|e| e.unseen(&s.best_row));
        if let Some(why) = &unseen {
            d.explanation.push(format!(
                "not applied automatically: unlike the model's training data: {why}"
            ));
        }
        let consistent = self.check(payment, best).is_ok();
        // Another allocation with the same claim and the same evidence: nothing in the data
        // can tell them apart, so a person must, whatever the model's scores.
        let tied = pc
            .candidates
            .iter()
            .skip(1)
            .any(|r| equally_explained(&self.ledger, payment, best, r));
        let policy = self
            .config
            .rules
            .policy(payment.currency, d.customer_id.as_deref());
        // Cash left over that the rules write off is accounted for: it no longer counts against
        // the tolerance for unexplained cash. Every other safety rule stands as it is.
        let overpay_written_off = policy.writes_off_overpayment(best.unapplied, payment.amount);
        let absorbed = if overpay_written_off {
            best.unapplied
        } else {
            Decimal::ZERO
        };
        let guarded = if duplicate {
            Some("the remittance quotes an item already paid".to_string())
        } else {
            self.guard(payment, pc, best, absorbed)
        };
        if let Some(why) = &guarded {
            d.explanation
                .push(format!("not applied automatically: {why}"));
        }
        let refund_review = policy.overpayment == Overpayment::RefundReview
            && best.unapplied > Decimal::ZERO
            && !overpay_written_off;
        if refund_review {
            d.explanation.push(format!(
                "not applied automatically: the rules ({}) send an overpayment of {} to refund review",
                self.config.rules.version(),
                best.unapplied
            ));
        }
        if confidence >= threshold
            && consistent
            && !tied
            && guarded.is_none()
            && unseen.is_none()
            && !refund_review
        {
            d.status = Status::Auto;
            d.allocations = self.allocations(best);
            d.unapplied = best.unapplied;
            d.explanation.extend(self.explain(payment, pc, best));
            self.settle_differences(&mut d, best, &policy, overpay_written_off);
            d.explanation.push(format!(
                "auto-applied: confidence {confidence:.4} >= threshold {threshold:.4} ({stratum} evidence)"
            ));
            return d;
        }
        d.review_reason = Some(if duplicate {
            ReviewReason::PossibleDuplicate
        } else if tied || (rival > 0.5 && same_claim(best, &pc.candidates[1])) {
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
        });
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
            "review: {}; best suggestion confidence {confidence:.4} ({})",
            match d.review_reason {
                Some(ReviewReason::PossibleDuplicate) =>
                    "the remittance quotes an item already paid: possibly a second payment of it",
                Some(ReviewReason::Ambiguous) =>
                    "two or more allocations explain the payment about equally well",
                Some(ReviewReason::AmountMismatch) =>
                    "the amounts leave a difference the engine cannot explain",
                Some(ReviewReason::Deduction) => "a deduction or late discount needs approval",
                _ => "not confident enough to apply",
            },
            if threshold.is_finite() {
                format!("threshold {threshold:.4}, {stratum} evidence")
            } else {
                format!("no certified threshold for {stratum} evidence")
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
        // A residual written off closes the invoice beside the cash: checked with it.
        for w in &d.by_rules.write_offs {
            let idx = self
                .ledger
                .invoice_idx(&w.invoice_id)
                .ok_or_else(|| LedgerError::UnknownInvoice(w.invoice_id.clone()))?;
            match plan.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, r)) => *r += w.amount,
                None => plan.push((idx, w.amount)),
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
            if self.ledger.invoice(idx).open_amount.is_zero() {
                // Remembered so that a later remittance quoting the item is shown as a possible
                // second payment of it, naming this one.
                self.ledger.record_settlement(
                    idx,
                    Settlement {
                        payment_id: payment.payment_id.clone(),
                        paid_on: payment.payment_date,
                    },
                );
            }
        }
        Ok(())
    }

    fn demote(&self, mut d: Decision, why: &str) -> Decision {
        d.status = Status::Review;
        d.review_reason = Some(ReviewReason::LowConfidence);
        d.unapplied += d.allocations.iter().map(|a| a.amount).sum::<Decimal>();
        d.allocations.clear();
        d.by_rules = RulesApplied::default();
        d.explanation.push(format!("review: {why}"));
        d
    }

    /// Evidence too thin to apply without a person, whatever the model says (a possible
    /// duplicate payment is decided before): a quoted reference the candidate leaves aside
    /// (it resolves to nothing open, to a paid item, or to items the candidate does not pay)
    /// while the cash would go by amount alone to another invoice; a line whose amount is not
    /// its invoice's but another open item's whose number reads like the reference; cash the
    /// remittance does not account for beyond the tolerance; an invoice found by amount alone
    /// whose amount does not match (partial, overpaid, fee); a completion of a cut list or a
    /// subset of open items that is one of several, or a subset that ignores the references the
    /// payer gave.
    ///
    /// `absorbed` is cash left over that the rules write off: accounted for, so not unexplained.
    fn guard(
        &self,
        payment: &Payment,
        pc: &PaymentCandidates,
        c: &Candidate,
        absorbed: Decimal,
    ) -> Option<String> {
        // Linking found no advice for a receipt that has only its amount (docs/advices.md).
        if let Some(w) = payment
            .warnings
            .iter()
            .find(|w| w.starts_with(crate::advice::REVIEW_ALONE))
        {
            return Some(w.clone());
        }
        // A reference that found items of another customer (another entity's numbers share
        // digits with ours) is left aside just as one that found nothing.
        if let Some(qi) = (0..pc.queries.len())
            .filter(|&qi| {
                !c.pays_through(qi) && (pc.queries[qi].named || pc.unresolved().any(|u| u == qi))
            })
            .find(|&qi| self.by_amount_elsewhere(&pc.queries[qi], c))
        {
            let found = if pc.unresolved().any(|u| u == qi) {
                "names nothing open"
            } else {
                "names items this allocation does not pay"
            };
            return Some(format!(
                "reference {:?} {found}, and the cash is not applied by amount alone to another \
                 invoice",
                pc.queries[qi].text
            ));
        }
        if let Some(why) = self.listed_item_left_unpaid(payment, pc, c) {
            return Some(why);
        }
        if let Some(why) = self.foreign_item_misfit(pc, c) {
            return Some(why);
        }
        if let Some(why) = self.shared_reference(pc, c) {
            return Some(why);
        }
        if let Some(why) = self.amount_found_among_equals(c) {
            return Some(why);
        }
        if let Some(why) = self.amount_found_by_chance(c) {
            return Some(why);
        }
        if let Some(why) = self.mistyped_reference(payment, pc, c) {
            return Some(why);
        }
        if let Some(why) = self.line_paid_short(payment, pc, c) {
            return Some(why);
        }
        let unexplained = (unexplained(&self.ledger, payment, c) - absorbed).max(Decimal::ZERO);
        if unexplained > self.config.unexplained_tolerance {
            return Some(format!(
                "{unexplained} of {} is accounted for by nothing the remittance says (tolerance {})",
                payment.amount, self.config.unexplained_tolerance
            ));
        }
        if c.completed && pc.completions > 1 {
            return Some(format!(
                "{} sets of open items complete the listed references",
                pc.completions
            ));
        }
        if c.completed {
            // Among a few dozen items after the list, leaving out two or more of them makes
            // some set add up to almost any amount: the sum no longer picks the set.
            let k = left_out_after_the_list(&self.ledger, payment, c, &self.config.limits);
            if k > CONTINUATION_SURE_LEFT_OUT {
                return Some(format!(
                    "the open items that complete the listed references leave {k} of those that \
                     follow the list open, and sets that skip that many add up by chance"
                ));
            }
            // The rest of a cut list is the rest of the payer's run: items that add up but
            // leave many others due among them open are a coincidence of amounts.
            let rest: Vec<CandidateAllocation> = c
                .allocations
                .iter()
                .filter(|a| a.reference.is_none())
                .cloned()
                .collect();
            if let Some((_, within)) =
                due_gaps(&self.ledger, payment, &rest).filter(|g| g.1 > RUN_MAX_SKIPPED)
            {
                return Some(format!(
                    "the open items that complete the listed references are no run of what fell \
                     due: {within} other items due among them stay open"
                ));
            }
        }
        let unreferenced_mismatch = c.allocations.iter().any(|a| {
            a.reference.is_none() && !matches!(a.fit.kind, AmountFit::Exact | AmountFit::Discount)
        });
        if unreferenced_mismatch {
            return Some(
                "an invoice found by amount alone does not match the amount exactly".into(),
            );
        }
        // Two weak signs do not make a strong one: a reference that is not the number as
        // written (another entity's `CA-2026-0133557` reads as our `2026-0133557`) paying an
        // amount the invoice does not ask for, or asks for less a wire fee nobody stated (a fee
        // explains any small shortfall, so it fits another entity's invoice of a near amount).
        if let Some(a) = c.allocations.iter().find(|a| {
            a.reference.is_some_and(|r| r.1 < 1.0)
                && matches!(
                    a.fit.kind,
                    AmountFit::Partial | AmountFit::Overpaid | AmountFit::BankFee
                )
        }) {
            return Some(format!(
                "{} is read from a reference that is not its number as written, and the amount \
                 does not fit it",
                self.ledger.invoice(a.invoice).number
            ));
        }
        if c.source == Source::SubsetSum {
            if pc.subset_solutions > 1 {
                return Some(format!(
                    "{} sets of open items add up to the payment",
                    pc.subset_solutions
                ));
            }
            // A bare number that finds nothing well (`AP RUN 0534`, `BATCH 88346`: the payer's
            // own run or batch) says nothing of which items were paid.
            let quoted = (0..pc.queries.len()).any(|qi| {
                pc.queries[qi].named
                    || pc
                        .hits
                        .get(qi)
                        .is_some_and(|h| h.iter().any(|h| h.sim >= 0.9))
            });
            if quoted {
                return Some(
                    "the payer's references do not name the open items that add up".into(),
                );
            }
        }
        None
    }

    /// A line that quotes a reference and states an amount for it, which the allocation leaves
    /// unpaid while it spends the cash elsewhere: the payer said what it paid, and a decision
    /// that ignores part of it is not the remittance's (a credit memo netted without a line takes
    /// the cash a listed invoice was due; a mistyped reference pays another item). Paying the
    /// listed lines in order until the cash runs out skips the last ones this way.
    fn listed_item_left_unpaid(
        &self,
        payment: &Payment,
        pc: &PaymentCandidates,
        c: &Candidate,
    ) -> Option<String> {
        let paid_lines: Vec<usize> = c.allocations.iter().filter_map(|a| a.line).collect();
        (0..pc.queries.len()).find_map(|qi| {
            let q = &pc.queries[qi];
            let line = q.line?;
            let stated = payment.lines.get(line)?.amount_paid?;
            let used = paid_lines.contains(&line)
                || q.also_lines.iter().any(|l| paid_lines.contains(l))
                || c.pays_through(qi);
            // An item found by amount for the line's cash stands for the line (its reference
            // mistyped beyond finding): whether that is safe is the rule on amounts alone.
            let by_amount = c.allocations.iter().any(|a| {
                a.line.is_none()
                    && a.reference.is_none()
                    && (a.fit.amount == stated || a.fit.relieved() == stated)
            });
            (!used && !by_amount && !stated.is_zero()).then(|| {
                let found = match pc.hits.get(qi).and_then(|h| h.first()) {
                    Some(h) => format!("it reads as {}", self.ledger.invoice(h.invoice).number),
                    None => "it finds nothing open".to_string(),
                };
                format!(
                    "the line quoting {:?} says it pays {stated} ({found}), and the allocation \
                     pays nothing on it",
                    q.text
                )
            })
        })
    }

    /// An invoice of a customer that is not the payer, reached by a reference, whose amount does
    /// not fit: when the bank account or the name says who paid, a reference that lands on
    /// another customer's item with the wrong amount is a mistyped number far likelier than a
    /// payment on someone else's behalf (those pay what the item asks).
    fn foreign_item_misfit(&self, pc: &PaymentCandidates, c: &Candidate) -> Option<String> {
        let known = pc
            .payers
            .iter()
            .any(|p| matches!(p.via, PayerVia::Account | PayerVia::Name));
        if !known {
            return None;
        }
        c.allocations
            .iter()
            .filter(|a| {
                !matches!(
                    a.fit.kind,
                    AmountFit::Exact | AmountFit::Discount | AmountFit::LateDiscount
                )
            })
            .find(|a| {
                let owner = self.ledger.invoice_customer(a.invoice);
                !pc.payers
                    .iter()
                    .any(|p| p.customer == owner && p.via != PayerVia::Reference)
            })
            .map(|a| {
                format!(
                    "{} belongs to a customer that did not pay, and the amount does not fit it",
                    self.ledger.invoice(a.invoice).number
                )
            })
    }

    /// A reference that reads as well as another open item with the same open amount, which the
    /// allocation leaves alone: a blanket PO quoted for one of several invoices billed against it
    /// at the same price says nothing of which one, so picking one is a guess.
    fn shared_reference(&self, pc: &PaymentCandidates, c: &Candidate) -> Option<String> {
        c.allocations.iter().find_map(|a| {
            let (qi, sim, _) = a.reference?;
            let q = pc.queries.get(qi)?;
            let open = self.ledger.invoice(a.invoice).open_amount;
            // The hits are cut to a few per reference; a PO on fifteen invoices needs the index
            // itself when the reading is exact.
            let exact = (sim >= 0.98)
                .then(|| self.ledger.lookup_norm(&q.key.norm))
                .into_iter()
                .flatten();
            pc.hits
                .get(qi)?
                .iter()
                .map(|h| h.invoice)
                .chain(exact)
                .find(|&o| {
                    let k = self.ledger.invoice_keys(o);
                    o != a.invoice
                        && !c.allocations.iter().any(|x| x.invoice == o)
                        && self.ledger.invoice(o).open_amount == open
                        && q.key.similarity(&k.number).max(q.key.similarity(&k.po)) + 1e-6
                            >= f64::from(sim)
                })
                .map(|o| {
                    format!(
                        "reference {:?} reads as {} and as {} alike, both with {open} open",
                        q.text,
                        self.ledger.invoice(a.invoice).number,
                        self.ledger.invoice(o).number
                    )
                })
        })
    }

    /// An item found by its amount alone while another open item of the same customer, which
    /// the allocation leaves alone, has the same amount open: a line without its reference (or a
    /// payment without detail) says nothing of which one it pays, and a key account holds
    /// dozens of items of any common amount.
    fn amount_found_among_equals(&self, c: &Candidate) -> Option<String> {
        c.allocations
            .iter()
            .filter(|a| a.reference.is_none())
            .find_map(|a| {
                let inv = self.ledger.invoice(a.invoice);
                let customer = self.ledger.invoice_customer(a.invoice);
                let alike = self
                    .ledger
                    .open_items(customer)
                    .count_with_amount(inv.open_amount);
                let taken = c
                    .allocations
                    .iter()
                    .filter(|x| {
                        self.ledger.invoice_customer(x.invoice) == customer
                            && self.ledger.invoice(x.invoice).open_amount == inv.open_amount
                    })
                    .count();
                (alike > taken).then(|| {
                    format!(
                        "{} is found by its amount alone, and {} other open item(s) of the \
                         customer have {} open too",
                        inv.number,
                        alike - taken,
                        inv.open_amount
                    )
                })
            })
    }

    /// An item found by its amount alone where the payer's open items lie so close together
    /// around that amount that one of exactly it is there by chance: a key account with tens of
    /// thousands of open items has one at nearly any amount, and a consolidated payment without
    /// detail (whose set the searches cannot reach there) then lands on it as if it paid it. The
    /// density is read from the customer's amount index: the items within
    /// [`CHANCE_WINDOW`] of the amount, per cent of that window, is how many items of exactly
    /// this amount chance alone puts there. From [`CHANCE_MAX`] on, that is more than the model's
    /// certificate allows to be wrong (it never saw such a payer), so a person decides.
    fn amount_found_by_chance(&self, c: &Candidate) -> Option<String> {
        if c.source != Source::SingleAmount {
            return None;
        }
        c.allocations
            .iter()
            .filter(|a| a.reference.is_none())
            .find_map(|a| {
                let inv = self.ledger.invoice(a.invoice);
                let amount = inv.open_amount;
                let reach = amount.checked_mul(CHANCE_WINDOW)?;
                // In cents; chance puts an item on one of them with `near / cents` expected.
                let cents = reach.checked_mul(Decimal::from(200))?.floor();
                if cents <= Decimal::ZERO {
                    return None;
                }
                let needed = (cents * CHANCE_MAX).ceil().to_usize()?;
                let near = self
                    .ledger
                    .open_items(self.ledger.invoice_customer(a.invoice))
                    .by_open_amount(
                        Bound::Included(amount - reach),
                        Bound::Included(amount + reach),
                    )
                    .filter(|&i| i != a.invoice)
                    .take(needed)
                    .count();
                (near >= needed).then(|| {
                    format!(
                        "{} is found by its amount alone, and the customer has {near} or more \
                         other open items within {}% of {amount}: at that density an item of \
                         exactly the amount is there by chance",
                        inv.number,
                        (CHANCE_WINDOW * Decimal::ONE_HUNDRED).normalize()
                    )
                })
            })
    }

    /// A line that says it pays an amount, of which the allocation applies less to the line's
    /// invoice with nothing stated for the difference: the cash fell short of what the
    /// remittance lists, so something the remittance does not show took the rest (a credit
    /// memo netted silently, an unlisted deduction). Paying the listed invoices in order until
    /// the cash runs out leaves a later line half paid, on an invoice the payer said it paid in
    /// full; a person must find what was netted. A gap a wire fee explains is not this.
    fn line_paid_short(
        &self,
        payment: &Payment,
        pc: &PaymentCandidates,
        c: &Candidate,
    ) -> Option<String> {
        c.allocations
            .iter()
            .filter(|a| a.fit.kind == AmountFit::Partial)
            .find_map(|a| {
                let line = payment.lines.get(a.line?)?;
                let stated = line.amount_paid.filter(|s| *s > Decimal::ZERO)?;
                let given = a.fit.relieved();
                // A wire fee is taken from the cash by the banks on the way, not netted by the
                // payer: a gap the amount rules would read as a fee is one.
                let gap = stated - given;
                let open = self.ledger.invoice(a.invoice).open_amount;
                let fee =
                    gap <= crate::matching::amounts::BANK_FEE_MAX && gap * Decimal::TEN < open;
                (gap > Decimal::ZERO && !fee).then(|| {
                    let quoted = a
                        .reference
                        .and_then(|r| pc.queries.get(r.0))
                        .map_or_else(|| "a line".to_string(), |q| format!("{:?}", q.text));
                    format!(
                        "the line quoting {quoted} says it pays {stated}, and the cash leaves only \
                         {given} for {}: the remittance does not say what took the difference",
                        self.ledger.invoice(a.invoice).number
                    )
                })
            })
    }

    /// A line whose reference found an invoice its amount does not fit, while another open item
    /// of that customer, whose number reads like the reference, has exactly the line's amount
    /// open: one mistyped digit that lands on a real invoice (`2026-0148283` for `...281`) looks
    /// like an overpayment or a short pay of the wrong item.
    fn mistyped_reference(
        &self,
        payment: &Payment,
        pc: &PaymentCandidates,
        c: &Candidate,
    ) -> Option<String> {
        let min_similarity = f64::from(self.config.limits.min_similarity);
        c.allocations
            .iter()
            .filter(|a| {
                matches!(
                    a.fit.kind,
                    AmountFit::Overpaid | AmountFit::Partial | AmountFit::StatedDeduction
                )
            })
            .find_map(|a| {
                let q = &pc.queries[a.reference?.0];
                let line = payment.lines.get(a.line?)?;
                if features::line_states_open_amount(line, self.ledger.invoice(a.invoice)) {
                    // The line's amount is its own invoice's (a fee or short pay of the cash).
                    return None;
                }
                // What the line accounts for: the cash, and for a stated deduction the cash with
                // the deduction, which is the invoice amount the payer had in front of it.
                let stated = if a.fit.kind == AmountFit::StatedDeduction {
                    line.amount_paid?
                        + line.discount.unwrap_or_default()
                        + line.adjustments.iter().map(|x| x.amount).sum::<Decimal>()
                } else {
                    line.amount_paid?
                };
                let open = self
                    .ledger
                    .open_items(self.ledger.invoice_customer(a.invoice));
                open.by_open_amount(Bound::Included(stated), Bound::Included(stated))
                    .chain(open.by_net_amount(stated))
                    .find(|&o| {
                        let k = self.ledger.invoice_keys(o);
                        !c.allocations.iter().any(|x| x.invoice == o)
                            && q.key.similarity(&k.number).max(q.key.similarity(&k.po))
                                >= min_similarity
                    })
                    .map(|o| {
                        format!(
                            "the line quoting {:?} pays {stated}, which is what {} has open, \
                             not {}: the reference may be mistyped",
                            q.text,
                            self.ledger.invoice(o).number,
                            self.ledger.invoice(a.invoice).number
                        )
                    })
            })
    }

    /// Whether a candidate applies cash by amount alone to an invoice other than the one a
    /// quoted reference could be: an allocation with no reference, unless the reference is
    /// one slip of the keyboard from its number (a mis-keyed digit that landed on a paid item
    /// or on someone else's: the amount then says which invoice was meant) or is the start of
    /// its number (a list the bank's field cut in the middle of a number). Another entity's
    /// `CA-2027-0150424` is two slips from our `2026-0150427`, however alike their tails.
    fn by_amount_elsewhere(&self, q: &RefQuery, c: &Candidate) -> bool {
        let digits = |s: &str| -> String { s.chars().filter(|ch| ch.is_ascii_digit()).collect() };
        let cut = digits(&q.key.norm);
        c.allocations.iter().any(|a| {
            let k = self.ledger.invoice_keys(a.invoice);
            let number = digits(&k.number.norm);
            let continues = cut.len() >= 3 && number.len() > cut.len() && number.starts_with(&cut);
            let slip = one_slip_apart(&q.key, &k.number) || one_slip_apart(&q.key, &k.po);
            a.reference.is_none() && !continues && !slip
        })
    }

    /// The quoted paid items that make the payment a possible duplicate: those whose amount
    /// the remittance pays (the line's amount, or the payment's when it quotes one reference,
    /// within the terms' discount), or whose amount it does not say. A reference that lands on
    /// a paid item while the amount is another invoice's is a mis-keyed reference, left to the
    /// rule on references that find nothing open.
    fn possible_duplicates(
        &self,
        payment: &Payment,
        pc: &PaymentCandidates,
    ) -> Vec<(usize, InvoiceIdx)> {
        let quoted = pc.queries.iter().filter(|q| q.named).count();
        pc.paid_refs
            .iter()
            .copied()
            .filter(|&(qi, idx)| {
                let inv = self.ledger.invoice(idx);
                let stated = pc
                    .queries
                    .get(qi)
                    .and_then(|q| q.line)
                    .and_then(|l| payment.lines.get(l))
                    .and_then(|l| l.amount_paid);
                let paid = match stated {
                    Some(a) => a,
                    None if quoted == 1 => payment.amount,
                    None => return true,
                };
                let discount =
                    crate::terms::terms_discount(inv, None).map_or(Decimal::ZERO, |(d, _)| d);
                paid <= inv.amount + self.config.unexplained_tolerance
                    && paid >= inv.amount - discount - self.config.unexplained_tolerance
            })
            .collect()
    }

    /// What the explanation says of a quoted item already paid: which payment paid it and when,
    /// or that it arrived closed from the AR system.
    fn paid_reference(&self, pc: &PaymentCandidates, qi: usize, idx: InvoiceIdx) -> String {
        let inv = self.ledger.invoice(idx);
        let by = match self.ledger.settlement(idx) {
            Some(s) => format!(
                "paid by payment {}{}",
                s.payment_id,
                s.paid_on.map(|d| format!(" of {d}")).unwrap_or_default()
            ),
            None => "closed in the ledger".to_string(),
        };
        format!(
            "possible duplicate payment: reference {:?} names {} ({}, {} {}), already {by}",
            pc.queries.get(qi).map_or("", |q| q.text.as_str()),
            inv.number,
            inv.id,
            inv.amount,
            inv.currency
        )
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
            let relieved = a.fit.relieved();
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
            rules_version: self.config.rules.version().to_string(),
            by_rules: RulesApplied::default(),
        }
    }

    /// What the rules make of an auto decision's differences: a residual its cash leaves on an
    /// invoice is written off when within the write-off or small-balance limits (the invoice is
    /// then closed, never taken past zero), and the cash left over is written off, kept on the
    /// payer's account or left unapplied. Called only once the decision is auto on its own
    /// merits: the rules never make an unsure match sure.
    fn settle_differences(
        &self,
        d: &mut Decision,
        c: &Candidate,
        policy: &Policy,
        overpay_written_off: bool,
    ) {
        let version = self.config.rules.version();
        // One residual per invoice, should a candidate name one twice.
        let mut relieved: Vec<(InvoiceIdx, Decimal)> = Vec::new();
        for a in &c.allocations {
            match relieved.iter_mut().find(|(i, _)| *i == a.invoice) {
                Some((_, r)) => *r += a.fit.relieved(),
                None => relieved.push((a.invoice, a.fit.relieved())),
            }
        }
        for (idx, r) in relieved {
            let inv = self.ledger.invoice(idx);
            if inv.is_credit() {
                continue;
            }
            let residual = inv.open_amount - r;
            if let Some(closing) = policy.close_short_pay(residual, inv.open_amount) {
                d.explanation.push(format!(
                    "{}: the {residual} left open is written off ({}, {} rule of {version})",
                    inv.id, closing.reason_code, closing.rule
                ));
                d.by_rules.write_offs.push(WriteOffLine {
                    invoice_id: inv.id.clone(),
                    amount: residual,
                    reason_code: closing.reason_code,
                });
            }
        }
        if d.unapplied <= Decimal::ZERO {
            return;
        }
        d.by_rules.leftover = if overpay_written_off {
            d.explanation.push(format!(
                "the {} left over is written off ({}, write-off rule of {version})",
                d.unapplied, policy.write_off.reason_code
            ));
            Leftover::WriteOff {
                reason_code: policy.write_off.reason_code.clone(),
            }
        } else if policy.overpayment == Overpayment::OnAccount && d.customer_id.is_some() {
            d.explanation.push(format!(
                "the {} left over is kept on the customer's account (rules {version})",
                d.unapplied
            ));
            Leftover::OnAccount
        } else {
            Leftover::Unapplied
        };
    }

    /// Grades a terms discount as within terms or late by the rules' grace days for the
    /// invoice's customer, before the features are read, so that the model sees what the rules
    /// allow. The candidates are generated with the default grace; only other graces change them.
    fn regrade_discounts(&self, payment: &Payment, pc: &mut PaymentCandidates) {
        let Some(paid_on) = payment.payment_date else {
            return;
        };
        for c in &mut pc.candidates {
            for a in &mut c.allocations {
                if !matches!(a.fit.kind, AmountFit::Discount | AmountFit::LateDiscount)
                    || !a.fit.deduction.is_zero()
                {
                    continue;
                }
                let inv = self.ledger.invoice(a.invoice);
                let grace = self
                    .config
                    .rules
                    .discount_grace_days(inv.currency, &inv.customer_id);
                if grace == crate::rules::DEFAULT_DISCOUNT_GRACE_DAYS
                    || !crate::terms::is_terms_discount(inv, a.fit.discount)
                {
                    continue;
                }
                a.fit.kind = if crate::terms::days_past_window(inv, paid_on) <= i64::from(grace) {
                    AmountFit::Discount
                } else {
                    AmountFit::LateDiscount
                };
            }
        }
    }
}

/// Puts each list completed by open items the bank's field cut off (`Candidate::completed`)
/// ahead of the listed part it completes, and the completion that continues the list in its
/// own order (`Candidate::continues_list`) ahead of the other completions, keeping the model's
/// order otherwise: the part explains only some of the cash, so it is never the whole answer
/// while a completion exists.
fn promote_completions(cands: &mut Vec<Candidate>, probs: &mut Vec<f64>, rows: &mut Vec<usize>) {
    for i in 0..cands.len() {
        if !cands[i].completed {
            continue;
        }
        let part_of = |base: &Candidate| {
            !base.completed
                && !base.allocations.is_empty()
                && base
                    .allocations
                    .iter()
                    .all(|a| cands[i].allocations.iter().any(|b| b.invoice == a.invoice))
        };
        if let Some(j) = (0..i).find(|&j| part_of(&cands[j])) {
            move_ahead(cands, probs, rows, i, j);
        }
    }
    // Of the completions, the one that goes on where the field cut the list first: the other
    // sets add up as well, but only this one reads as the rest of the payer's own listing.
    let first = cands.iter().position(|c| c.completed);
    let continues = cands.iter().position(|c| c.continues_list);
    if let (Some(j), Some(i)) = (first, continues) {
        if i > j {
            move_ahead(cands, probs, rows, i, j);
        }
    }
}

/// How closely a listed reference must read as an open item for the list to outrank what the
/// amounts alone find: the payer's own numbers, up to a dropped prefix or separator.
const LISTED_SIMILARITY: f32 = 0.98;

/// Moves the first candidate that pays an item of the payer's list ahead of those that pay none
/// of them, when the payment lists two or more references that each read
/// as an open item: a payer who names several of its invoices is not paying some other item an
/// amount happens to fit, so the list (or its part) is the suggestion an analyst starts from. One
/// reference is left to the model: a mistyped one reads well as a neighbour while the amount
/// finds the right invoice.
fn keep_the_list_first(
    pc: &PaymentCandidates,
    cands: &mut Vec<Candidate>,
    probs: &mut Vec<f64>,
    rows: &mut Vec<usize>,
) {
    let listed: Vec<InvoiceIdx> = (0..pc.queries.len())
        .filter(|&qi| pc.queries[qi].named)
        .filter_map(|qi| pc.hits.get(qi)?.first())
        .filter(|h| h.sim >= LISTED_SIMILARITY)
        .map(|h| h.invoice)
        .collect();
    if listed.len() < 2 {
        return;
    }
    // By the invoices, not by how the candidate found them: a set the amounts found that pays
    // the listed items is the list's answer as much as one read through the references.
    let pays_the_list = |c: &Candidate| c.allocations.iter().any(|a| listed.contains(&a.invoice));
    let Some(j) = cands.iter().position(pays_the_list) else {
        return;
    };
    if j == 0 {
        return;
    }
    move_ahead(cands, probs, rows, j, 0);
}

/// Moves the sorted candidate at `from` to `to`, with its probability and feature row.
fn move_ahead(
    cands: &mut Vec<Candidate>,
    probs: &mut Vec<f64>,
    rows: &mut Vec<usize>,
    from: usize,
    to: usize,
) {
    let c = cands.remove(from);
    cands.insert(to, c);
    let p = probs.remove(from);
    probs.insert(to, p);
    let r = rows.remove(from);
    rows.insert(to, r);
}

/// Cash a candidate leaves unapplied that the remittance does not account for: everything
/// unapplied except the excess of lines that state paying more than their invoice has open,
/// as far as payers overpay.
fn unexplained(ledger: &Ledger, payment: &Payment, c: &Candidate) -> Decimal {
    let stated: Decimal = c
        .allocations
        .iter()
        .filter(|a| {
            a.fit.kind == AmountFit::Overpaid
                && candidates::states_amount(payment, a)
                && plausible_overpayment(ledger.invoice(a.invoice), a.fit.amount + a.fit.excess)
        })
        .map(|a| a.fit.excess)
        .sum();
    (c.unapplied - stated).max(Decimal::ZERO)
}

/// Whether a line paying `paid` on this invoice overpays it the way payers do: the original
/// amount of an item already part-paid (the payer missed the earlier payment or a credit), the
/// open amount rounded up to the hundred, or a tenth more. A line paying several times what an
/// item asks is more likely a reference mistyped onto the wrong item, and its excess is not
/// accounted for.
fn plausible_overpayment(inv: &crate::domain::Invoice, paid: Decimal) -> bool {
    let hundred = Decimal::ONE_HUNDRED;
    let rounded_up = (inv.open_amount / hundred).ceil() * hundred;
    let tenth_more = inv.open_amount + inv.open_amount / Decimal::TEN;
    paid <= inv.amount.max(rounded_up).max(tenth_more)
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
