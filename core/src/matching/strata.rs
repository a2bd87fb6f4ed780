//! The evidence stratum of a candidate: what kind of evidence the allocation rests on.
//!
//! The auto-apply threshold is certified per stratum (`model::threshold`, `train::fit`): a model
//! that is 99.8% right on exact references may be far worse on allocations found by amount
//! alone, and one pooled threshold would let the easy payments vouch for the hard ones. The
//! stratum must be known when the engine decides, so it is read from the best candidate itself,
//! never from the case family (which only the generator knows). This is the one definition:
//! training labels its calibration rows with it and the engine looks the threshold up with it.
//!
//! The weakest evidence present decides, checked in this order: a subset of open items adding
//! up to the payment; any invoice found by amount alone; any reference matched inexactly;
//! any amount explained by something other than the open amount (discount, deduction, fee,
//! partial or over-payment, cash left unapplied); references read from free text; several
//! invoices named on lines; one invoice named exactly on a line.

use crate::matching::amounts::AmountFit;
use crate::matching::candidates::{Candidate, Source};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Similarity at or above which a reference counts as matched exactly (equal normalised forms
/// score 1; equal cores 0.98 already count as inexact).
const EXACT_SIMILARITY: f32 = 0.999;

/// The kind of evidence a candidate allocation rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stratum {
    /// One remittance line naming its invoice exactly, for the open amount.
    ExactSingle,
    /// Several lines, each naming its invoice exactly, for the open amounts.
    MultiInvoice,
    /// Invoices named exactly in free text (memo, email, addenda).
    TextReference,
    /// Named exactly, but some amount differs from the open amount (discount, deduction, bank
    /// fee, partial or over-payment) or cash is left unapplied.
    Adjusted,
    /// Some reference matched only inexactly (typo, OCR, prefix, lost zeros, a prefix habit).
    FuzzyReference,
    /// Some invoice found by its amount alone (no reference names it).
    AmountOnly,
    /// A set of open items whose amounts add up to the payment.
    SubsetSum,
}

impl Stratum {
    /// Every stratum, from the strongest evidence to the weakest.
    pub const ALL: [Stratum; 7] = [
        Stratum::ExactSingle,
        Stratum::MultiInvoice,
        Stratum::TextReference,
        Stratum::Adjusted,
        Stratum::FuzzyReference,
        Stratum::AmountOnly,
        Stratum::SubsetSum,
    ];

    /// The name used in model.json, cards and explanations.
    pub fn name(self) -> &'static str {
        match self {
            Stratum::ExactSingle => "exact_single",
            Stratum::MultiInvoice => "multi_invoice",
            Stratum::TextReference => "text_reference",
            Stratum::Adjusted => "adjusted",
            Stratum::FuzzyReference => "fuzzy_reference",
            Stratum::AmountOnly => "amount_only",
            Stratum::SubsetSum => "subset_sum",
        }
    }

    /// Position in [`Stratum::ALL`], for compact per-stratum arrays.
    pub fn index(self) -> usize {
        Stratum::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

impl fmt::Display for Stratum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stratum of a candidate (see the module doc for the order).
pub fn stratum(c: &Candidate) -> Stratum {
    if c.source == Source::SubsetSum {
        return Stratum::SubsetSum;
    }
    if c.source == Source::SingleAmount || c.allocations.iter().any(|a| a.reference.is_none()) {
        return Stratum::AmountOnly;
    }
    if c.allocations
        .iter()
        .any(|a| a.reference.is_some_and(|r| r.1 < EXACT_SIMILARITY))
    {
        return Stratum::FuzzyReference;
    }
    if !c.unapplied.is_zero() || c.allocations.iter().any(|a| a.fit.kind != AmountFit::Exact) {
        return Stratum::Adjusted;
    }
    if c.source == Source::TextReferences {
        return Stratum::TextReference;
    }
    if c.allocations.len() > 1 {
        Stratum::MultiInvoice
    } else {
        Stratum::ExactSingle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RefField;
    use crate::matching::amounts::Fit;
    use crate::matching::candidates::CandidateAllocation;
    use rust_decimal::Decimal;

    fn alloc(sim: Option<f32>, kind: AmountFit) -> CandidateAllocation {
        CandidateAllocation {
            invoice: 0,
            fit: Fit {
                amount: Decimal::ONE,
                discount: Decimal::ZERO,
                deduction: Decimal::ZERO,
                reason_code: None,
                kind,
                excess: Decimal::ZERO,
            },
            reference: sim.map(|s| (0, s, RefField::InvoiceNumber)),
            line: Some(0),
        }
    }

    fn cand(source: Source, allocations: Vec<CandidateAllocation>) -> Candidate {
        Candidate {
            source,
            allocations,
            unapplied: Decimal::ZERO,
            prior: 0.0,
            completed: false,
            continues_list: false,
        }
    }

    #[test]
    fn the_weakest_evidence_decides() {
        let exact = || alloc(Some(1.0), AmountFit::Exact);
        assert_eq!(
            stratum(&cand(Source::Lines, vec![exact()])),
            Stratum::ExactSingle
        );
        assert_eq!(
            stratum(&cand(Source::Lines, vec![exact(), exact()])),
            Stratum::MultiInvoice
        );
        assert_eq!(
            stratum(&cand(Source::TextReferences, vec![exact(), exact()])),
            Stratum::TextReference
        );
        assert_eq!(
            stratum(&cand(
                Source::Lines,
                vec![exact(), alloc(Some(1.0), AmountFit::Discount)]
            )),
            Stratum::Adjusted
        );
        let mut left = cand(Source::Lines, vec![exact()]);
        left.unapplied = Decimal::ONE;
        assert_eq!(stratum(&left), Stratum::Adjusted);
        // A core match (0.98) with a discount is fuzzy first.
        assert_eq!(
            stratum(&cand(
                Source::Lines,
                vec![exact(), alloc(Some(0.98), AmountFit::Discount)]
            )),
            Stratum::FuzzyReference
        );
        // One line found by amount among exact ones: the amount is the weakest link.
        assert_eq!(
            stratum(&cand(
                Source::Lines,
                vec![
                    alloc(Some(0.9), AmountFit::Exact),
                    alloc(None, AmountFit::Exact)
                ]
            )),
            Stratum::AmountOnly
        );
        assert_eq!(
            stratum(&cand(
                Source::SingleAmount,
                vec![alloc(None, AmountFit::Exact)]
            )),
            Stratum::AmountOnly
        );
        assert_eq!(
            stratum(&cand(
                Source::SubsetSum,
                vec![alloc(None, AmountFit::Exact), alloc(None, AmountFit::Exact)]
            )),
            Stratum::SubsetSum
        );
    }

    #[test]
    fn names_are_distinct_and_indexes_round_trip() {
        let mut names: Vec<&str> = Stratum::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Stratum::ALL.len());
        for (i, s) in Stratum::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
    }
}
