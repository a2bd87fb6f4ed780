//! Measuring decisions against labelled truth, and the rules baseline they are measured beside.
//!
//! - touchless rate: payments auto-applied correctly / payments that have a correct answer
//! - auto-apply precision: correct auto-applies / auto-applies
//! - wrong auto-applies per 1,000 payments: the error finance fears most
//! - review top-1: review items with a correct answer whose first suggestion is it
//!
//! A decision is correct when its (invoice, cash) pairs are exactly the label's.

use crate::domain::{Allocation, Decision, Label, Payment, Status, Suggestion};
use crate::engine::RULES_VERSION;
use crate::ledger::Ledger;
use crate::matching::references::normalize;
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
    /// Cash auto-applied correctly.
    pub auto_cash: Decimal,
}

impl Figures {
    pub fn touchless(&self) -> f64 {
        ratio(self.auto_correct, self.with_truth)
    }
    pub fn precision(&self) -> f64 {
        if self.auto == 0 {
            1.0
        } else {
            ratio(self.auto_correct, self.auto)
        }
    }
    pub fn wrong_per_1000(&self) -> f64 {
        1000.0 * ratio(self.auto - self.auto_correct, self.payments)
    }
    pub fn review_top1(&self) -> f64 {
        ratio(self.review_top1, self.review_with_truth)
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

fn key_of(allocs: &[Allocation]) -> Vec<(String, Decimal)> {
    let mut k: Vec<(String, Decimal)> = allocs
        .iter()
        .map(|a| (a.invoice_id.clone(), a.amount.normalize()))
        .collect();
    k.sort();
    k
}

/// Scores decisions against labels. Every decided payment counts as labelled: one with no label
/// rows had no correct answer. `cases` maps payment ids to their case family, where known.
pub fn evaluate(
    decisions: &[Decision],
    labels: &[Label],
    cases: &HashMap<String, String>,
) -> Report {
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
                    if t.is_some_and(|t| *t == key_of(&d.allocations)) {
                        f.auto_correct += 1;
                        f.auto_cash += d.allocations.iter().map(|a| a.amount).sum::<Decimal>();
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
            }
        }
    }
    report
}

/// Renders reports side by side as a Markdown table: one column group per named report.
pub fn render(reports: &[(&str, &Report)]) -> String {
    let mut out = String::new();
    out.push_str("| case | payments |");
    for (name, _) in reports {
        out.push_str(&format!(
            " {name} touchless | {name} precision | {name} wrong/1k | {name} review top-1 |"
        ));
    }
    out.push('\n');
    out.push_str("|---|---:|");
    for _ in reports {
        out.push_str("---:|---:|---:|---:|");
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
                " {:.1}% | {:.2}% | {:.1} | {} |",
                100.0 * f.touchless(),
                100.0 * f.precision(),
                f.wrong_per_1000(),
                if f.review_with_truth == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}%", 100.0 * f.review_top1())
                },
            ));
        }
        out.push('\n');
    }
    out
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
pub fn rules_baseline_by(
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
                rules_version: RULES_VERSION.into(),
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
