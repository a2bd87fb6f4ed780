//! Measuring decisions against labelled truth, and the rules baseline they are measured beside.
//!
//! - touchless rate: payments auto-applied correctly / payments that have a correct answer
//! - auto-apply precision: correct auto-applies / auto-applies
//! - wrong auto-applies per 1,000 payments, split in two kinds that cost differently:
//!   - misapplied: cash put on an invoice the payer did not pay (or more cash on one than the
//!     payer sent for it): the error finance fears most, since someone else's receivable or a
//!     duplicate payment now looks settled;
//!   - incomplete: only invoices the payer paid, but not all of them, or not all the cash: the
//!     rest is left unapplied by an auto decision, so nobody is asked to look at it;
//! - review top-1: review items with a correct answer whose first suggestion is it
//!
//! A decision is correct when its (invoice, cash) pairs are exactly the label's.

use crate::domain::{Allocation, Decision, Label, Payment, Status, Suggestion};
use crate::ledger::Ledger;
use crate::rules::DEFAULT_VERSION;
use crate::text::references::normalize;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

/// The figures of one group of payments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub payments: usize,
    pub with_truth: usize,
    pub auto: usize,
    pub auto_correct: usize,
    pub review: usize,
    pub review_with_truth: usize,
    pub review_top1: usize,
    /// Auto-applies that put cash on an invoice the payer did not pay ([`AutoOutcome::Misapplied`]).
    pub auto_misapplied: usize,
    /// Auto-applies to paid invoices only that leave some of the truth out
    /// ([`AutoOutcome::Incomplete`]).
    pub auto_incomplete: usize,
    /// Cash auto-applied correctly.
    pub auto_cash: Decimal,
}

impl Figures {
    pub fn touchless(&self) -> f64 {
        ratio(self.auto_correct, self.with_truth)
    }
    /// Auto-apply precision; 1 when nothing was auto-applied (a threshold search reads it so).
    /// Shown to people through [`Figures::precision_text`], which says "n/a" then.
    pub fn precision(&self) -> f64 {
        self.auto_precision().unwrap_or(1.0)
    }
    /// Auto-apply precision, `None` when the group had no auto-apply: nothing was measured.
    pub(crate) fn auto_precision(&self) -> Option<f64> {
        (self.auto > 0).then(|| ratio(self.auto_correct, self.auto))
    }
    /// Precision as a percentage with `decimals` places, or "n/a" with no auto-apply.
    pub fn precision_text(&self, decimals: usize) -> String {
        match self.auto_precision() {
            Some(p) => format!("{:.decimals$}%", 100.0 * p),
            None => "n/a".to_string(),
        }
    }
    pub fn wrong_per_1000(&self) -> f64 {
        1000.0 * ratio(self.auto - self.auto_correct, self.payments)
    }
    /// Auto-applies per 1,000 payments that put cash on an invoice the payer did not pay.
    pub fn misapplied_per_1000(&self) -> f64 {
        1000.0 * ratio(self.auto_misapplied, self.payments)
    }
    /// Auto-applies per 1,000 payments to paid invoices that left part of the truth unapplied.
    pub fn incomplete_per_1000(&self) -> f64 {
        1000.0 * ratio(self.auto_incomplete, self.payments)
    }
    pub fn review_top1(&self) -> f64 {
        ratio(self.review_top1, self.review_with_truth)
    }
    /// Adds another group's counts to this one (figures of a union of payments).
    pub(crate) fn absorb(&mut self, other: &Figures) {
        self.payments += other.payments;
        self.with_truth += other.with_truth;
        self.auto += other.auto;
        self.auto_correct += other.auto_correct;
        self.review += other.review;
        self.review_with_truth += other.review_with_truth;
        self.review_top1 += other.review_top1;
        self.auto_misapplied += other.auto_misapplied;
        self.auto_incomplete += other.auto_incomplete;
        self.auto_cash += other.auto_cash;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Figures overall and per case family.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub overall: Figures,
    pub by_case: BTreeMap<String, Figures>,
}

/// What an auto decision did, measured against the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoOutcome {
    /// Exactly the label's (invoice, cash) pairs.
    Correct,
    /// Cash on an invoice the payer did not pay, or more cash on a paid one than the payer sent
    /// for it; every auto-apply of a payment with no correct match is this.
    Misapplied,
    /// Only invoices the payer paid, with no more cash than it sent for each, but an invoice of
    /// the truth missing or part of its cash left unapplied.
    Incomplete,
}

/// Classifies an auto decision's allocations against the truth (`None`: the payment had no
/// correct match). Both sides as (invoice id, cash) pairs; an invoice may appear once.
pub(crate) fn classify_auto(
    allocations: &[(String, Decimal)],
    truth: Option<&[(String, Decimal)]>,
) -> AutoOutcome {
    let Some(truth) = truth else {
        return AutoOutcome::Misapplied;
    };
    let mut a: Vec<(String, Decimal)> = allocations
        .iter()
        .map(|(i, c)| (i.clone(), c.normalize()))
        .collect();
    a.sort();
    let mut t: Vec<(String, Decimal)> = truth
        .iter()
        .map(|(i, c)| (i.clone(), c.normalize()))
        .collect();
    t.sort();
    if a == t {
        return AutoOutcome::Correct;
    }
    let paid: HashMap<&str, Decimal> = t.iter().map(|(i, c)| (i.as_str(), *c)).collect();
    // A credit memo's cash is negative: "more than the payer sent" is a larger magnitude.
    let within = |i: &str, cash: Decimal| {
        paid.get(i).is_some_and(|&want| {
            cash.is_sign_negative() == want.is_sign_negative() && cash.abs() <= want.abs()
        })
    };
    if a.iter().all(|(i, c)| within(i, *c)) {
        AutoOutcome::Incomplete
    } else {
        AutoOutcome::Misapplied
    }
}

fn key_of(allocs: &[Allocation]) -> Vec<(String, Decimal)> {
    let mut k: Vec<(String, Decimal)> = allocs
        .iter()
        .map(|a| (a.invoice_id.clone(), a.amount.normalize()))
        .collect();
    k.sort();
    k
}

/// The labels as each payment's (invoice id, cash) pairs, sorted, as [`key_of`] gives a
/// decision's.
fn truth_of(labels: &[Label]) -> HashMap<&str, Vec<(String, Decimal)>> {
    let mut truth: HashMap<&str, Vec<(String, Decimal)>> = HashMap::new();
    for l in labels {
        truth
            .entry(l.payment_id.as_str())
            .or_default()
            .push((l.invoice_id.clone(), l.applied_amount.normalize()));
    }
    for v in truth.values_mut() {
        v.sort();
    }
    truth
}

/// An auto decision that is not the truth, with what it applied and what was paid (each as
/// sorted (invoice id, cash) pairs; the truth empty when the payment had no correct match).
pub struct WrongAuto<'a> {
    pub decision: &'a Decision,
    pub outcome: AutoOutcome,
    pub applied: Vec<(String, Decimal)>,
    pub truth: Vec<(String, Decimal)>,
}

/// The auto decisions that are misapplied or incomplete against the labels, in decision order,
/// judged as [`evaluate`] judges them.
pub fn wrong_autos<'a>(decisions: &'a [Decision], labels: &[Label]) -> Vec<WrongAuto<'a>> {
    let truth = truth_of(labels);
    decisions
        .iter()
        .filter(|d| d.status == Status::Auto)
        .filter_map(|d| {
            let t = truth.get(d.payment_id.as_str());
            let applied = key_of(&d.allocations);
            match classify_auto(&applied, t.map(Vec::as_slice)) {
                AutoOutcome::Correct => None,
                outcome => Some(WrongAuto {
                    decision: d,
                    outcome,
                    applied,
                    truth: t.cloned().unwrap_or_default(),
                }),
            }
        })
        .collect()
}

/// Scores decisions against labels. Every decided payment counts as labelled: one with no label
/// rows had no correct answer. `cases` maps payment ids to their case family, where known.
pub fn evaluate(
    decisions: &[Decision],
    labels: &[Label],
    cases: &HashMap<String, String>,
) -> Report {
    let truth = truth_of(labels);
    let mut report = Report::default();
    for d in decisions {
        let t = truth.get(d.payment_id.as_str());
        let case = cases
            .get(&d.payment_id)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        for f in [&mut report.overall, report.by_case.entry(case).or_default()] {
            f.payments += 1;
            f.with_truth += t.is_some() as usize;
            match d.status {
                Status::Auto => {
                    f.auto += 1;
                    match classify_auto(&key_of(&d.allocations), t.map(Vec::as_slice)) {
                        AutoOutcome::Correct => {
                            f.auto_correct += 1;
                            f.auto_cash += d.allocations.iter().map(|a| a.amount).sum::<Decimal>();
                        }
                        AutoOutcome::Misapplied => f.auto_misapplied += 1,
                        AutoOutcome::Incomplete => f.auto_incomplete += 1,
                    }
                }
                Status::Review => {
                    f.review += 1;
                    if let Some(t) = t {
                        f.review_with_truth += 1;
                        if d.suggestions
                            .first()
                            .is_some_and(|s| *t == key_of(&s.allocations))
                        {
                            f.review_top1 += 1;
                        }
                    }
                }
                // The engine never decides a return; a returned payment is no matching outcome.
                Status::Returned => {}
            }
        }
    }
    report
}

/// Renders reports side by side as a Markdown table: one column group per named report.
/// Precision reads "n/a" for a group with no auto-apply, review top-1 "-" for one with no
/// review item that has an answer.
pub fn render(reports: &[(&str, &Report)]) -> String {
    let mut out = String::new();
    out.push_str("| case | payments |");
    for (name, _) in reports {
        out.push_str(&format!(
            " {name} touchless | {name} precision | {name} wrong/1k | {name} misapplied/1k | \
             {name} incomplete/1k | {name} review top-1 |"
        ));
    }
    out.push('\n');
    out.push_str("|---|---:|");
    for _ in reports {
        out.push_str("---:|---:|---:|---:|---:|---:|");
    }
    out.push('\n');
    let Some((_, first)) = reports.first() else {
        return out;
    };
    let mut rows: Vec<(&str, Vec<&Figures>)> =
        vec![("**all**", reports.iter().map(|r| &r.1.overall).collect())];
    let empty = Figures::default();
    for case in first.by_case.keys() {
        rows.push((
            case,
            reports
                .iter()
                .map(|r| r.1.by_case.get(case).unwrap_or(&empty))
                .collect(),
        ));
    }
    for (case, figs) in rows {
        out.push_str(&format!("| {case} | {} |", figs[0].payments));
        for f in figs {
            out.push_str(&format!(
                " {:.1}% | {} | {:.1} | {:.1} | {:.1} | {} |",
                100.0 * f.touchless(),
                f.precision_text(2),
                f.wrong_per_1000(),
                f.misapplied_per_1000(),
                f.incomplete_per_1000(),
                review_top1_text(f),
            ));
        }
        out.push('\n');
    }
    out
}

/// Review top-1 as a percentage, or "-" when no review item had an answer.
pub(crate) fn review_top1_text(f: &Figures) -> String {
    if f.review_with_truth == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * f.review_top1())
    }
}

/// The plain rules baseline that exact-match engines implement: every remittance line's
/// reference must equal an open invoice number once normalised (case, spacing, punctuation),
/// and the cash must equal that invoice's open amount; then the payment is applied, otherwise
/// it goes to review. Applied in order, so a second payment of the same invoice is refused.
pub fn rules_baseline(ledger: &mut Ledger, payments: &[Payment]) -> Vec<Decision> {
    rules_baseline_by(ledger, payments, normalize)
}

/// [`rules_baseline`] with references and invoice numbers compared by `key` instead of the
/// normalised form (the generator's tests try a looser, digits-only key).
pub(crate) fn rules_baseline_by(
    ledger: &mut Ledger,
    payments: &[Payment],
    key: impl Fn(&str) -> String,
) -> Vec<Decision> {
    let mut by_number: HashMap<String, Vec<u32>> = HashMap::new();
    for (i, inv) in ledger.invoices().iter().enumerate() {
        by_number
            .entry(key(&inv.number))
            .or_default()
            .push(i as u32);
    }
    payments
        .iter()
        .map(|p| {
            let mut d = Decision {
                payment_id: p.payment_id.clone(),
                status: Status::Review,
                confidence: 0.0,
                customer_id: None,
                allocations: vec![],
                unapplied: p.amount,
                suggestions: vec![],
                explanation: vec![],
                review_reason: None,
                model_version: "rules-baseline".into(),
                rules_version: DEFAULT_VERSION.into(),
                by_rules: Default::default(),
            };
            let single = p.lines.len() == 1;
            let mut allocs: Vec<(u32, Decimal)> = Vec::new();
            let all = !p.lines.is_empty()
                && p.lines.iter().all(|l| {
                    let Some(r) = l.reference.as_deref() else {
                        return false;
                    };
                    let cash = match (l.amount_paid, single) {
                        (Some(a), _) => a,
                        (None, true) => p.amount,
                        (None, false) => return false,
                    };
                    let hit = by_number.get(&key(r)).and_then(|v| {
                        v.iter().copied().find(|&i| {
                            let inv = ledger.invoice(i);
                            inv.open_amount == cash && !cash.is_zero() && inv.currency == p.currency
                        })
                    });
                    match hit {
                        Some(i) if !allocs.iter().any(|a| a.0 == i) => {
                            allocs.push((i, cash));
                            true
                        }
                        _ => false,
                    }
                });
            let total: Decimal = allocs.iter().map(|a| a.1).sum();
            if all && total == p.amount {
                for &(i, cash) in &allocs {
                    // Open amount equals the cash, checked above: this closes the invoice.
                    let _ = ledger.relieve(i, cash);
                }
                d.status = Status::Auto;
                d.unapplied = Decimal::ZERO;
                d.allocations = allocs
                    .iter()
                    .map(|&(i, cash)| Allocation {
                        invoice_id: ledger.invoice(i).id.clone(),
                        amount: cash,
                        discount: Decimal::ZERO,
                        deduction: Decimal::ZERO,
                        reason_code: None,
                    })
                    .collect();
            } else if !allocs.is_empty() {
                let applied: Decimal = allocs.iter().map(|a| a.1).sum();
                d.suggestions.push(Suggestion {
                    confidence: 0.0,
                    allocations: allocs
                        .iter()
                        .map(|&(i, cash)| Allocation {
                            invoice_id: ledger.invoice(i).id.clone(),
                            amount: cash,
                            discount: Decimal::ZERO,
                            deduction: Decimal::ZERO,
                            reason_code: None,
                        })
                        .collect(),
                    unapplied: p.amount - applied,
                    explanation: vec![],
                });
            }
            d
        })
        .collect()
}

/// A model's figures on one labelled period beside the rules baseline's.
pub struct Comparison {
    pub model: Report,
    pub rules: Report,
    pub decisions: Vec<Decision>,
    /// Wall-clock seconds the engine took for the batch.
    pub seconds: f64,
}

/// Matches a labelled period with a model and with the rules baseline, each on its own copy of
/// the ledger, and scores both.
pub fn compare(
    model: std::sync::Arc<crate::model::artifact::Model>,
    customers: &[crate::domain::Customer],
    invoices: &[crate::domain::Invoice],
    payments: &[Payment],
    labels: &[Label],
    cases: &HashMap<String, String>,
) -> Result<Comparison, crate::ledger::LedgerError> {
    let ledger = |_: ()| {
        let (l, errs) = Ledger::new(customers.to_vec(), invoices.to_vec());
        match errs.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(l),
        }
    };
    let mut engine = crate::engine::Engine::new(ledger(())?, model, Default::default());
    let t = std::time::Instant::now();
    let decisions = engine.run_batch(payments);
    let seconds = t.elapsed().as_secs_f64();
    let rules = rules_baseline(&mut ledger(())?, payments);
    Ok(Comparison {
        model: evaluate(&decisions, labels, cases),
        rules: evaluate(&rules, labels, cases),
        decisions,
        seconds,
    })
}

/// Peak resident memory of this process so far, in MiB, from `/proc/self/status` (Linux); 0
/// where that is not available. The memory figure of the benchmarks (`cashmatch bench`,
/// `cashmatch-train bench`).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, i64)]) -> Vec<(String, Decimal)> {
        v.iter()
            .map(|&(i, c)| (i.to_string(), Decimal::new(c, 2)))
            .collect()
    }

    #[test]
    fn an_auto_apply_is_correct_misapplied_or_incomplete() {
        use AutoOutcome::*;
        let truth = pairs(&[("A", 10_000), ("B", 5_000), ("CM", -2_000)]);
        let t = Some(truth.as_slice());
        let same_other_order = pairs(&[("CM", -2_000), ("B", 5_000), ("A", 10_000)]);
        assert_eq!(classify_auto(&same_other_order, t), Correct);
        // The listed part of a consolidated payment, the rest of the cash left unapplied.
        assert_eq!(classify_auto(&pairs(&[("A", 10_000)]), t), Incomplete);
        assert_eq!(classify_auto(&pairs(&[("A", 4_000)]), t), Incomplete);
        // The credit memo taken for less than the payer took: still only what it paid.
        let less_credit = pairs(&[("A", 10_000), ("B", 5_000), ("CM", -1_000)]);
        assert_eq!(classify_auto(&less_credit, t), Incomplete);
        // An invoice the payer did not pay, even beside the right ones.
        let twin = pairs(&[("A", 10_000), ("B", 5_000), ("CM", -2_000), ("X", 100)]);
        assert_eq!(classify_auto(&twin, t), Misapplied);
        assert_eq!(classify_auto(&pairs(&[("X", 10_000)]), t), Misapplied);
        // More cash on a paid invoice than the payer sent for it.
        assert_eq!(classify_auto(&pairs(&[("B", 15_000)]), t), Misapplied);
        // A credit memo the payer did not take, or took for more than it has.
        assert_eq!(classify_auto(&pairs(&[("CM", -3_000)]), t), Misapplied);
        // A payment with no correct match: any auto-apply misapplies its cash.
        assert_eq!(classify_auto(&pairs(&[("A", 10_000)]), None), Misapplied);
    }

    fn decision(id: &str, status: Status, allocs: &[(&str, i64)]) -> Decision {
        Decision {
            payment_id: id.into(),
            status,
            confidence: 0.9,
            customer_id: None,
            allocations: allocs
                .iter()
                .map(|&(i, c)| Allocation {
                    invoice_id: i.into(),
                    amount: Decimal::new(c, 2),
                    discount: Decimal::ZERO,
                    deduction: Decimal::ZERO,
                    reason_code: None,
                })
                .collect(),
            unapplied: Decimal::ZERO,
            suggestions: vec![],
            explanation: vec![],
            review_reason: None,
            model_version: "t".into(),
            rules_version: "t".into(),
            by_rules: Default::default(),
        }
    }

    #[test]
    fn figures_count_each_kind_and_show_no_precision_without_auto() {
        let label = |p: &str, i: &str, c: i64| Label {
            payment_id: p.into(),
            invoice_id: i.into(),
            applied_amount: Decimal::new(c, 2),
        };
        let labels = vec![
            label("P1", "A", 100),
            label("P2", "B", 100),
            label("P2", "C", 200),
            label("P4", "E", 100),
        ];
        let decisions = vec![
            decision("P1", Status::Auto, &[("A", 100)]),
            decision("P2", Status::Auto, &[("B", 100)]),
            // P3 has no correct match (a duplicate payment): applying it misapplies.
            decision("P3", Status::Auto, &[("D", 100)]),
            decision("P4", Status::Review, &[]),
        ];
        let cases: HashMap<String, String> = [
            ("P1", "clean"),
            ("P2", "clean"),
            ("P3", "dup"),
            ("P4", "review_only"),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
        let r = evaluate(&decisions, &labels, &cases);
        let o = &r.overall;
        assert_eq!(
            (o.auto, o.auto_correct, o.auto_misapplied, o.auto_incomplete),
            (3, 1, 1, 1)
        );
        assert!((o.misapplied_per_1000() - 250.0).abs() < 1e-9);
        assert!((o.incomplete_per_1000() - 250.0).abs() < 1e-9);
        assert!((o.wrong_per_1000() - 500.0).abs() < 1e-9);
        let review_only = &r.by_case["review_only"];
        assert_eq!(review_only.auto_precision(), None);
        assert_eq!(review_only.precision_text(2), "n/a");
        let table = render(&[("model", &r)]);
        let row = table
            .lines()
            .find(|l| l.starts_with("| review_only |"))
            .unwrap_or_default();
        assert!(row.contains("| n/a |"), "{row}");
        assert!(!row.contains("100.00%"), "{row}");
    }
}
