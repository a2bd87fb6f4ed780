//! The out-of-distribution guard: where the training data had little or nothing.
//!
//! A gradient-boosted tree extrapolates flat: a value beyond anything seen lands in the outermost
//! bin and is scored as if it were the most extreme value seen, and a combination of evidence no
//! training row had is scored by whichever trees happen to fire. The calibrated threshold says
//! nothing about such candidates, because none of its labels was like them. So the model carries
//! an envelope of its training rows and the engine does not auto-apply a best candidate outside
//! it (docs/engine.md):
//!
//! - **Per feature**, the range of the training rows and their count in quantile bins cut as the
//!   booster cuts its own, but coarser ([`ENVELOPE_BINS`]). A value outside the range, or in a bin
//!   with fewer training rows than the booster needs to make a leaf (`min_samples_leaf`, 20 by
//!   default), lies where no tree could have learnt anything about it.
//! - **Jointly**, the evidence pattern of the rows that were right: the candidate's source, which
//!   amount explanations it uses, how many invoices, how the payer was found, how much of it is
//!   referenced and how closely, and whether cash is left over. Each feature may be ordinary
//!   while the combination is not (six invoices found by amount with a bank fee each, from a payer
//!   known only by the references); a pattern with fewer right answers in training than a leaf
//!   needs is one the model never learnt to call right.
//!
//! Both checks are a binary search per feature and one lookup in a sorted table, for the best
//! candidate only: nothing to speak of beside scoring.
//!
//! The envelope is fitted on the rows the trees grew on. On payments exchangeable with those, a
//! value beyond the training range of one feature has probability about 2/(n+1) for n training
//! rows, so the guard costs touchless only where the data really moved; the model card reports
//! the share it flagged on its test slice.

use crate::matching::features::FEATURE_NAMES;
use crate::model::gbdt::{bin_of, compute_cuts};
use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Quantile bins per feature. The booster's 255 hold about n/255 rows each, so on a history of
/// a few thousand payments every continuous feature would look sparse everywhere; 32 merge
/// neighbouring booster bins, while a feature with at most 32 distinct values (counts, flags,
/// one-hot columns) still gets a bin per value, which is where a rare value shows.
pub(crate) const ENVELOPE_BINS: usize = 32;

/// One feature's training rows: their range, the booster's cuts and the rows in each bin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpan {
    pub min: f32,
    pub max: f32,
    /// Ascending cuts: bin `b` holds `(cuts[b-1], cuts[b]]`.
    pub cuts: Vec<f32>,
    /// Training rows per bin (`cuts.len() + 1` bins).
    pub rows: Vec<u32>,
}

/// Where the training rows lie (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Fewer training rows than this in a bin or a pattern is "little or nothing".
    pub min_rows: u32,
    /// One span per feature column, in schema order.
    pub features: Vec<FeatureSpan>,
    /// Evidence patterns of the right answers among the training rows, with their counts,
    /// sorted by pattern.
    pub patterns: Vec<(u32, u32)>,
}

/// Why a candidate is outside the envelope.
#[derive(Clone, Debug, PartialEq)]
pub enum Unseen {
    /// A value beyond the range of the training rows.
    OutOfRange {
        feature: &'static str,
        value: f32,
        min: f32,
        max: f32,
    },
    /// A value in a bin that held too few training rows.
    SparseBin {
        feature: &'static str,
        value: f32,
        rows: u32,
    },
    /// An evidence pattern too few right answers in training had.
    Pattern { pattern: u32, rows: u32 },
}

impl fmt::Display for Unseen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unseen::OutOfRange {
                feature,
                value,
                min,
                max,
            } => write!(
                f,
                "{feature} = {value} lies outside what the model was trained on ({min} to {max})"
            ),
            Unseen::SparseBin {
                feature,
                value,
                rows,
            } => write!(
                f,
                "{feature} = {value} lies where the model saw only {rows} training candidate(s)"
            ),
            Unseen::Pattern { pattern, rows } => write!(
                f,
                "the model saw {rows} right answer(s) with this evidence ({}) in training",
                describe_pattern(*pattern)
            ),
        }
    }
}

/// Column of a feature in the schema (the schema is fixed at compile time, so every name used
/// here exists; a typo would make every lookup read column 0 and fail the tests below).
fn col(name: &str) -> usize {
    FEATURE_NAMES.iter().position(|&n| n == name).unwrap_or(0)
}

const SOURCES: [&str; 4] = [
    "source_lines",
    "source_text",
    "source_single_amount",
    "source_subset_sum",
];
const FITS: [&str; 7] = [
    "fit_exact",
    "fit_discount",
    "fit_late_discount",
    "fit_stated_deduction",
    "fit_bank_fee",
    "fit_partial",
    "fit_overpaid",
];
const VIAS: [&str; 4] = [
    "payer_via_account",
    "payer_via_name",
    "payer_via_parent",
    "payer_via_reference",
];

/// The evidence pattern of a feature row, packed in bits: source (2), amount explanations
/// present (7), invoices 1/2/3-5/6+ (2), payer found by account/name/parent/reference/none (3),
/// share of invoices referenced none/some/all (2), weakest reference exact/>=0.95/>=0.8/lower
/// (2), cash left unapplied (1).
pub(crate) fn pattern(row: &[f32]) -> u32 {
    let v = |name: &str| row.get(col(name)).copied().unwrap_or(0.0);
    let source = SOURCES.iter().position(|s| v(s) > 0.5).unwrap_or(0) as u32;
    let fits = FITS
        .iter()
        .enumerate()
        .fold(0u32, |acc, (i, s)| acc | (u32::from(v(s) > 0.0) << i));
    let n = v("n_allocations");
    let size = if n <= 1.0 {
        0
    } else if n <= 2.0 {
        1
    } else if n <= 5.0 {
        2
    } else {
        3
    };
    let via = VIAS.iter().position(|s| v(s) > 0.5).unwrap_or(VIAS.len()) as u32;
    let referenced = v("frac_allocations_referenced");
    let referenced = if referenced <= 0.0 {
        0
    } else if referenced < 1.0 {
        1
    } else {
        2
    };
    let sim = v("ref_sim_min");
    let sim = if sim >= 0.999 {
        0
    } else if sim >= 0.95 {
        1
    } else if sim >= 0.8 {
        2
    } else {
        3
    };
    let left = u32::from(v("unapplied_rel") > 0.0);
    source | fits << 2 | size << 9 | via << 11 | referenced << 14 | sim << 16 | left << 18
}

/// The pattern in words, for explanations.
pub(crate) fn describe_pattern(p: u32) -> String {
    let source = [
        "lines",
        "free-text references",
        "single amount",
        "subset-sum",
    ][(p & 3) as usize]
        .to_string();
    let fits: Vec<&str> = FITS
        .iter()
        .enumerate()
        .filter(|(i, _)| p >> (2 + i) & 1 == 1)
        .map(|(_, s)| s.trim_start_matches("fit_"))
        .collect();
    let size = ["1 invoice", "2 invoices", "3-5 invoices", "6+ invoices"][(p >> 9 & 3) as usize];
    let via = [
        "payer by account",
        "payer by name",
        "payer by parent",
        "payer by reference",
        "payer unknown",
    ]
    .get((p >> 11 & 7) as usize)
    .copied()
    .unwrap_or("payer unknown");
    let referenced = ["none referenced", "some referenced", "all referenced"]
        .get((p >> 14 & 3) as usize)
        .copied()
        .unwrap_or("");
    let sim = [
        "references exact",
        "weakest reference >= 0.95",
        "weakest reference >= 0.8",
        "weakest reference below 0.8",
    ][(p >> 16 & 3) as usize];
    let left = if p >> 18 & 1 == 1 {
        ", cash left unapplied"
    } else {
        ""
    };
    format!(
        "{source}, {size}, amounts {}, {via}, {referenced}, {sim}{left}",
        if fits.is_empty() {
            "unexplained".to_string()
        } else {
            fits.join("+")
        }
    )
}

impl Envelope {
    /// The envelope of training rows `x` (labels `y`: 1 for the right candidate), in quantile
    /// bins cut as the booster cuts its own (`seed` picks the same sample of rows), but at most
    /// [`ENVELOPE_BINS`] of them.
    pub fn fit(x: ArrayView2<f32>, y: ArrayView1<f32>, seed: u64, min_rows: u32) -> Envelope {
        let cuts = compute_cuts(x, ENVELOPE_BINS, seed);
        let features = cuts
            .into_iter()
            .enumerate()
            .map(|(j, cuts)| {
                let mut rows = vec![0u32; cuts.len() + 1];
                let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
                for &v in x.column(j) {
                    rows[bin_of(&cuts, v) as usize] += 1;
                    min = min.min(v);
                    max = max.max(v);
                }
                FeatureSpan {
                    min,
                    max,
                    cuts,
                    rows,
                }
            })
            .collect();
        let mut seen: Vec<u32> = x
            .rows()
            .into_iter()
            .zip(y)
            .filter(|(_, l)| **l > 0.5)
            .map(|(r, _)| pattern(&r.to_vec()))
            .collect();
        seen.sort_unstable();
        let mut patterns: Vec<(u32, u32)> = Vec::new();
        for p in seen {
            match patterns.last_mut() {
                Some((q, n)) if *q == p => *n += 1,
                _ => patterns.push((p, 1)),
            }
        }
        Envelope {
            min_rows,
            features,
            patterns,
        }
    }

    /// Right answers in training with this pattern.
    pub(crate) fn pattern_rows(&self, p: u32) -> u32 {
        self.patterns
            .binary_search_by_key(&p, |&(q, _)| q)
            .map_or(0, |i| self.patterns[i].1)
    }

    /// Why the candidate with this feature row lies outside the envelope, if it does. The
    /// first reason found is given: features in schema order, then the pattern.
    pub fn unseen(&self, row: &[f32]) -> Option<Unseen> {
        for ((span, &v), &feature) in self.features.iter().zip(row).zip(FEATURE_NAMES.iter()) {
            if v.is_nan() || v < span.min || v > span.max {
                return Some(Unseen::OutOfRange {
                    feature,
                    value: v,
                    min: span.min,
                    max: span.max,
                });
            }
            let rows = span
                .rows
                .get(bin_of(&span.cuts, v) as usize)
                .copied()
                .unwrap_or(0);
            if rows < self.min_rows {
                return Some(Unseen::SparseBin {
                    feature,
                    value: v,
                    rows,
                });
            }
        }
        let p = pattern(row);
        let rows = self.pattern_rows(p);
        (rows < self.min_rows).then_some(Unseen::Pattern { pattern: p, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::features::N_FEATURES;
    use ndarray::{Array1, Array2};

    fn named(row: &mut [f32], name: &str, v: f32) {
        let j = FEATURE_NAMES.iter().position(|&n| n == name).unwrap();
        row[j] = v;
    }

    /// 2,000 rows: one exact line per payment, referenced exactly, by account; every other row a
    /// wrong reading of it. `days_since_invoice` runs 0..=399, five rows each.
    fn training() -> (Array2<f32>, Array1<f32>) {
        let mut x = Array2::zeros((2_000, N_FEATURES));
        let mut y = Array1::zeros(2_000);
        for i in 0..2_000 {
            let mut r = vec![0.0f32; N_FEATURES];
            named(&mut r, "source_lines", 1.0);
            named(&mut r, "fit_exact", 1.0);
            named(&mut r, "n_allocations", 1.0);
            named(&mut r, "payer_via_account", 1.0);
            named(&mut r, "frac_allocations_referenced", 1.0);
            named(&mut r, "ref_sim_min", if i % 2 == 0 { 1.0 } else { 0.9 });
            named(&mut r, "days_since_invoice", (i % 400) as f32);
            x.row_mut(i).assign(&Array1::from(r));
            y[i] = if i % 2 == 0 { 1.0 } else { 0.0 };
        }
        (x, y)
    }

    #[test]
    fn every_schema_name_used_exists() {
        for name in SOURCES.iter().chain(&FITS).chain(&VIAS).chain(&[
            "n_allocations",
            "frac_allocations_referenced",
            "ref_sim_min",
            "unapplied_rel",
        ]) {
            assert!(FEATURE_NAMES.contains(name), "{name}");
        }
    }

    #[test]
    fn a_training_row_is_inside_and_extremes_are_not() {
        let (x, y) = training();
        let env = Envelope::fit(x.view(), y.view(), 7, 20);
        let row = x.row(10).to_vec();
        assert_eq!(env.unseen(&row), None);
        // Ten years after the invoice: beyond any training row.
        let mut late = row.clone();
        named(&mut late, "days_since_invoice", 3650.0);
        assert!(matches!(
            env.unseen(&late),
            Some(Unseen::OutOfRange {
                feature: "days_since_invoice",
                ..
            })
        ));
        // A value inside the range but in a bin of 1 training row (a constant column's bin
        // has them all; a discrete value seen once gets its own bin).
        let mut x2 = x.clone();
        x2[[3, col("n_credit_memos")]] = 2.0;
        let env2 = Envelope::fit(x2.view(), y.view(), 7, 20);
        let mut rare = row.clone();
        named(&mut rare, "n_credit_memos", 2.0);
        assert!(
            matches!(env2.unseen(&rare), Some(Unseen::SparseBin { rows: 1, .. })),
            "{:?}",
            env2.unseen(&rare)
        );
    }

    #[test]
    fn an_unseen_pattern_of_ordinary_values_is_caught() {
        let (x, y) = training();
        let env = Envelope::fit(x.view(), y.view(), 7, 20);
        // The wrong rows (weakest reference 0.9) are in training, but never as a right answer.
        let row = x.row(11).to_vec();
        let got = env.unseen(&row);
        assert!(
            matches!(got, Some(Unseen::Pattern { rows: 0, .. })),
            "{got:?}"
        );
        let text = got.unwrap().to_string();
        assert!(text.contains("weakest reference >= 0.8"), "{text}");
        assert_eq!(env.pattern_rows(pattern(&x.row(10).to_vec())), 1_000);
    }

    #[test]
    fn patterns_tell_evidence_apart() {
        let (x, _) = training();
        let base = x.row(10).to_vec();
        let p = pattern(&base);
        let mut text = base.clone();
        named(&mut text, "source_lines", 0.0);
        named(&mut text, "source_text", 1.0);
        assert_ne!(pattern(&text), p);
        for (name, v) in [
            ("fit_bank_fee", 0.5),
            ("n_allocations", 3.0),
            ("payer_via_account", 0.0),
            ("frac_allocations_referenced", 0.5),
            ("ref_sim_min", 0.5),
            ("unapplied_rel", 0.1),
        ] {
            let mut r = base.clone();
            named(&mut r, name, v);
            assert_ne!(pattern(&r), p, "{name}");
        }
        assert!(describe_pattern(p).starts_with("lines, 1 invoice, amounts exact"));
    }
}
