//! Choosing the auto-apply threshold with a finite-sample precision guarantee.
//!
//! Input: for each payment of a labelled calibration holdout, the score of its top candidate
//! and whether that candidate was the right answer. Output: the loosest threshold `t` such
//! that, with probability at least `confidence` over the holdout draw, the precision of
//! auto-applying every payment scoring `>= t` is at least the target.
//!
//! Each candidate threshold is a hypothesis test ("precision at `t` is below target") decided
//! by the exact one-sided Clopper-Pearson bound on the items scoring `>= t`. Candidates are the
//! distinct holdout scores, tested from the highest down, and the scan stops at the first that
//! fails: fixed-sequence testing in the Learn-then-Test framework (Angelopoulos et al., 2021),
//! which needs no multiplicity correction because no hypothesis is tested after a failure.
//! Thresholds above so few items that even zero errors could not certify the target are not
//! tested at all; that cut depends on the scores only, never on the labels.
//!
//! The guarantee assumes the holdout is exchangeable with future payments and that precision
//! does not rise as the threshold falls (true for a score that ranks at all). It is about the
//! population above the threshold, not about any one decision.
//!
//! The binomial tail is the regularized incomplete beta function, computed here (Lanczos
//! log-gamma and the Lentz continued fraction) rather than pulling in a statistics crate.

use serde::{Deserialize, Serialize};

/// Why a threshold could not be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// No holdout items.
    #[error("no calibration items to choose a threshold from")]
    Empty,
    /// The target precision is not strictly between 0 and 1.
    #[error("target precision {0} must be in (0, 1)")]
    InvalidTarget(f64),
    /// The confidence is not strictly between 0 and 1.
    #[error("confidence {0} must be in (0, 1)")]
    InvalidConfidence(f64),
    /// A NaN or infinite score.
    #[error("calibration item {index} has the non-finite score {value}")]
    NonFiniteScore {
        /// Zero-based position in the input.
        index: usize,
        /// The value found.
        value: f64,
    },
}

/// The chosen threshold and what the holdout says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdChoice {
    /// Auto-apply when the score is `>= threshold`; `None` when no threshold is certified and
    /// nothing may be auto-applied.
    pub threshold: Option<f64>,
    /// The precision the threshold was certified for.
    pub target_precision: f64,
    /// The confidence of the certificate.
    pub confidence: f64,
    /// Holdout items (payments) considered.
    pub n: usize,
    /// Holdout items at or above the threshold.
    pub n_auto: usize,
    /// Wrong top candidates among them.
    pub errors: usize,
    /// `n_auto / n`: the fraction of payments that would be auto-applied.
    pub coverage: f64,
    /// Observed precision among the auto-applied items (0 when there are none).
    pub precision: f64,
    /// The Clopper-Pearson lower confidence bound on that precision (0 when there are none).
    pub lower_bound: f64,
}

impl ThresholdChoice {
    /// Whether a payment whose top candidate has this score may be auto-applied.
    #[cfg(test)]
    pub(crate) fn auto_applies(&self, score: f64) -> bool {
        self.threshold.is_some_and(|t| score >= t)
    }
}

fn check_levels(target_precision: f64, confidence: f64) -> Result<(), ThresholdError> {
    if !(target_precision > 0.0 && target_precision < 1.0) {
        return Err(ThresholdError::InvalidTarget(target_precision));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(ThresholdError::InvalidConfidence(confidence));
    }
    Ok(())
}

/// Whether `errors` wrong among `n` certify `precision >= target` at this confidence: the
/// probability of at least `n - errors` successes if the precision were exactly `target` is
/// at most `1 - confidence`. Equivalent to `clopper_pearson_lower(..) >= target`.
fn certifies(n: usize, errors: usize, target: f64, confidence: f64) -> bool {
    n > 0 && errors <= n && binomial_upper_tail(n, n - errors, target) <= 1.0 - confidence
}

/// Chooses the loosest certified threshold from `(score, correct)` pairs, one per holdout
/// payment (its top candidate). Scores may be calibrated probabilities or raw margins: only
/// their order matters. The first threshold tested is the highest one with enough items that
/// zero errors would certify the target ([`labels_needed`] at rate 0).
pub(crate) fn choose_threshold(
    items: &[(f64, bool)],
    target_precision: f64,
    confidence: f64,
) -> Result<ThresholdChoice, ThresholdError> {
    choose_threshold_from(items, target_precision, confidence, 0)
}

/// As [`choose_threshold`], but the first threshold tested has at least `min_auto` items
/// above it. One error among the very top items fails the first test and ends the scan; a
/// later start survives that, at the price of never certifying fewer than `min_auto` items.
/// `min_auto` must be fixed without looking at the holdout labels (say, from the expected
/// coverage, or `labels_needed` at half the error budget), or the guarantee is lost.
pub(crate) fn choose_threshold_from(
    items: &[(f64, bool)],
    target_precision: f64,
    confidence: f64,
    min_auto: usize,
) -> Result<ThresholdChoice, ThresholdError> {
    check_levels(target_precision, confidence)?;
    if items.is_empty() {
        return Err(ThresholdError::Empty);
    }
    if let Some((index, &(value, _))) = items.iter().enumerate().find(|(_, i)| !i.0.is_finite()) {
        return Err(ThresholdError::NonFiniteScore { index, value });
    }
    let mut sorted = items.to_vec();
    sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let min_count = labels_needed(target_precision, confidence, 0.0)
        .unwrap_or(usize::MAX)
        .max(min_auto);

    let mut chosen: Option<(f64, usize, usize)> = None;
    let (mut count, mut errors) = (0usize, 0usize);
    let mut rest = sorted.as_slice();
    while let Some(&(t, _)) = rest.first() {
        // Every item tied at `t` is in or out together.
        let tied = rest.iter().take_while(|i| i.0 == t).count().max(1);
        let (group, tail) = rest.split_at(tied.min(rest.len()));
        count += group.len();
        errors += group.iter().filter(|i| !i.1).count();
        rest = tail;
        if count < min_count {
            continue;
        }
        if certifies(count, errors, target_precision, confidence) {
            chosen = Some((t, count, errors));
        } else {
            break;
        }
    }

    let n = items.len();
    Ok(match chosen {
        Some((t, n_auto, errors)) => ThresholdChoice {
            threshold: Some(t),
            target_precision,
            confidence,
            n,
            n_auto,
            errors,
            coverage: n_auto as f64 / n as f64,
            precision: (n_auto - errors) as f64 / n_auto as f64,
            lower_bound: clopper_pearson_lower(n_auto - errors, n_auto, confidence),
        },
        None => ThresholdChoice {
            threshold: None,
            target_precision,
            confidence,
            n,
            n_auto: 0,
            errors: 0,
            coverage: 0.0,
            precision: 0.0,
            lower_bound: 0.0,
        },
    })
}

/// The exact one-sided Clopper-Pearson lower bound on a success rate after `successes` of
/// `n` trials: the `p` at which `P(X >= successes) = 1 - confidence`. With no failures it is
/// `(1 - confidence)^(1/n)`. Returns 0 when `successes` or `n` is 0, or for a confidence
/// outside (0, 1). Rounded down (never overstates the bound).
pub(crate) fn clopper_pearson_lower(successes: usize, n: usize, confidence: f64) -> f64 {
    if successes == 0 || n == 0 || successes > n || !(confidence > 0.0 && confidence < 1.0) {
        return 0.0;
    }
    let alpha = 1.0 - confidence;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if binomial_upper_tail(n, successes, mid) < alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The smallest number of labelled items above a threshold at which the observed error rate
/// would certify `target_precision` at `confidence` (errors counted as
/// `ceil(observed_error_rate * n)`). With a zero rate this is `ceil(ln(1-confidence) /
/// ln(target))`, e.g. 998 for 99.7% at 95%. `None` when no sample size suffices (the rate is
/// at or above `1 - target`) or an argument is out of range. Divide by the coverage to get the
/// number of holdout payments to label.
pub fn labels_needed(
    target_precision: f64,
    confidence: f64,
    observed_error_rate: f64,
) -> Option<usize> {
    check_levels(target_precision, confidence).ok()?;
    if !(observed_error_rate >= 0.0 && observed_error_rate < 1.0 - target_precision) {
        return None;
    }
    let alpha = 1.0 - confidence;
    if observed_error_rate == 0.0 {
        // target^n <= alpha; the float estimate is nudged to the exact integer boundary.
        let mut n = (alpha.ln() / target_precision.ln()).ceil().max(1.0) as usize;
        while n > 1 && target_precision.powf((n - 1) as f64) <= alpha {
            n -= 1;
        }
        while target_precision.powf(n as f64) > alpha {
            n += 1;
        }
        return Some(n);
    }
    let errors_at = |n: usize| ((observed_error_rate * n as f64) - 1e-9).ceil().max(0.0) as usize;
    let passes = |n: usize| certifies(n, errors_at(n), target_precision, confidence);
    let mut hi = labels_needed(target_precision, confidence, 0.0)?;
    while !passes(hi) {
        hi = hi.checked_mul(2)?;
        if hi > 1 << 40 {
            return None;
        }
    }
    // The pass/fail boundary is monotone up to the rounding of the error count.
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) { hi = mid } else { lo = mid }
    }
    Some(hi)
}

// ---------------------------------------------------------------------------------------------
// Binomial tail via the regularized incomplete beta function

/// `P(X >= k)` for `X ~ Binomial(n, p)`.
pub(crate) fn binomial_upper_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    reg_inc_beta(p, k as f64, (n - k + 1) as f64)
}

/// `ln Γ(x)` for `x > 0`: Lanczos approximation (g = 7, nine terms), relative error ~1e-15.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let mut sum = C[0];
    for (i, &c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`.
fn reg_inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() + b * (-x).ln_1p() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b));
    // The continued fraction converges fast only left of the mode; use the symmetry
    // I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    let v = if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(1.0 - x, b, a) / b
    };
    v.clamp(0.0, 1.0)
}

/// The continued fraction of `I_x(a, b)` (DLMF 8.17.22), by the modified Lentz method.
fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    // Iterations grow like sqrt(max(a, b)); the cap only guards against a NaN loop.
    for m in 1..=1_000_000u32 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS || delta.is_nan() {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// `P(X >= k)` by summing binomial terms directly in log space.
    fn tail_by_summation(n: usize, k: usize, p: f64) -> f64 {
        (k..=n)
            .map(|j| {
                let ln_choose = ln_gamma(n as f64 + 1.0)
                    - ln_gamma(j as f64 + 1.0)
                    - ln_gamma((n - j) as f64 + 1.0);
                (ln_choose + j as f64 * p.ln() + (n - j) as f64 * (-p).ln_1p()).exp()
            })
            .sum()
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut fact = 1.0f64;
        for n in 1..30u32 {
            fact *= f64::from(n);
            let got = ln_gamma(f64::from(n) + 1.0);
            assert!(
                (got - fact.ln()).abs() < 1e-12 * fact.ln().max(1.0),
                "n = {n}"
            );
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn binomial_tail_matches_direct_summation() {
        for &(n, k, p) in &[
            (10, 9, 0.9),
            (10, 1, 0.05),
            (50, 45, 0.97),
            (200, 199, 0.997),
            (200, 150, 0.8),
            (1000, 990, 0.995),
            (7, 7, 0.5),
        ] {
            let exact = tail_by_summation(n, k, p);
            let got = binomial_upper_tail(n, k, p);
            assert!(
                (got - exact).abs() < 1e-12,
                "n {n} k {k} p {p}: {got} vs {exact}"
            );
        }
        assert_eq!(binomial_upper_tail(5, 0, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(5, 6, 0.3), 0.0);
    }

    #[test]
    fn zero_errors_lower_bound_is_alpha_to_the_one_over_n() {
        for n in [1usize, 2, 10, 100, 998, 10_000, 1_000_000] {
            for confidence in [0.9f64, 0.95, 0.99] {
                let expected = (1.0 - confidence).powf(1.0 / n as f64);
                let got = clopper_pearson_lower(n, n, confidence);
                // powf itself may be an ulp off, so compare loosely.
                assert!((got - expected).abs() < 1e-12, "n {n}: {got} vs {expected}");
            }
        }
    }

    #[test]
    fn lower_bound_solves_the_tail_equation() {
        for &(s, n) in &[(9usize, 10usize), (45, 50), (990, 1000), (1, 3)] {
            let lb = clopper_pearson_lower(s, n, 0.95);
            let tail = tail_by_summation(n, s, lb);
            assert!((tail - 0.05).abs() < 1e-9, "{s}/{n}: lb {lb} tail {tail}");
        }
        // One-sided 95% bound for 9 of 10, a textbook value.
        assert!((clopper_pearson_lower(9, 10, 0.95) - 0.6058).abs() < 1e-4);
        assert_eq!(clopper_pearson_lower(0, 10, 0.95), 0.0);
        assert_eq!(clopper_pearson_lower(5, 0, 0.95), 0.0);
    }

    #[test]
    fn lower_bound_moves_the_right_way() {
        // More trials with the same errors, fewer errors, or less confidence: a higher bound.
        let lb = |s: usize, n: usize, c: f64| clopper_pearson_lower(s, n, c);
        let mut last = 0.0;
        for n in [100usize, 200, 500, 1000, 5000] {
            let v = lb(n - 2, n, 0.95);
            assert!(v > last, "n {n}");
            last = v;
        }
        let mut last = 1.0;
        for errors in 0..10usize {
            let v = lb(1000 - errors, 1000, 0.95);
            assert!(v < last, "errors {errors}");
            last = v;
        }
        assert!(lb(990, 1000, 0.9) > lb(990, 1000, 0.95));
        assert!(lb(990, 1000, 0.95) > lb(990, 1000, 0.99));
    }

    #[test]
    fn labels_needed_for_known_cases() {
        assert_eq!(labels_needed(0.997, 0.95, 0.0), Some(998));
        assert_eq!(labels_needed(0.99, 0.95, 0.0), Some(299));
        assert!(0.997f64.powi(998) <= 0.05 && 0.997f64.powi(997) > 0.05);
        let n = labels_needed(0.99, 0.95, 0.002).unwrap();
        let errors = |n: usize| (0.002 * n as f64 - 1e-9).ceil() as usize;
        assert!(clopper_pearson_lower(n - errors(n), n, 0.95) >= 0.99);
        assert!(clopper_pearson_lower(n - 1 - errors(n - 1), n - 1, 0.95) < 0.99);
        assert!(labels_needed(0.99, 0.95, 0.004) > Some(n));
        assert_eq!(labels_needed(0.99, 0.95, 0.01), None);
        assert_eq!(labels_needed(0.99, 0.95, 0.02), None);
        assert_eq!(labels_needed(1.0, 0.95, 0.0), None);
        assert_eq!(labels_needed(0.99, f64::NAN, 0.0), None);
        // A tighter target needs more labels.
        assert!(labels_needed(0.999, 0.95, 0.0) > labels_needed(0.997, 0.95, 0.0));
    }

    #[test]
    fn threshold_is_certified_on_calibrated_scores() {
        // Scores are calibrated probabilities of being correct.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let items: Vec<(f64, bool)> = (0..20_000)
            .map(|_| {
                let s: f64 = rng.random_range(0.5..1.0);
                (s, rng.random::<f64>() < s)
            })
            .collect();
        let choice = choose_threshold(&items, 0.95, 0.95).unwrap();
        let t = choice.threshold.unwrap();
        assert!(choice.lower_bound >= 0.95, "{choice:?}");
        assert!(choice.precision >= choice.lower_bound);
        let above: Vec<_> = items.iter().filter(|i| i.0 >= t).collect();
        assert_eq!(above.len(), choice.n_auto);
        assert_eq!(above.iter().filter(|i| !i.1).count(), choice.errors);
        assert_eq!(choice.coverage, choice.n_auto as f64 / 20_000.0);
        assert!(choice.auto_applies(t) && !choice.auto_applies(t - 1e-9));
        // Precision among scores >= t is about (1 + t) / 2, so 0.95 is reached at t = 0.9;
        // the bound's margin costs a little more.
        assert!(t > 0.9 && t < 0.96, "t = {t}");
    }

    #[test]
    fn too_few_items_certify_nothing() {
        let items: Vec<(f64, bool)> = (0..500).map(|i| (f64::from(i), true)).collect();
        let choice = choose_threshold(&items, 0.997, 0.95).unwrap();
        assert_eq!(choice.threshold, None);
        assert_eq!(choice.coverage, 0.0);
        assert!(!choice.auto_applies(1e9));
        let items: Vec<(f64, bool)> = (0..2000).map(|i| (f64::from(i), true)).collect();
        let choice = choose_threshold(&items, 0.997, 0.95).unwrap();
        assert_eq!(choice.threshold, Some(0.0));
        assert_eq!(choice.coverage, 1.0);
    }

    #[test]
    fn scan_stops_at_the_first_failure() {
        // 1000 correct, then one wrong, then 5000 correct. 1 error in 6001 would pass, but the
        // test at 1001 items fails first and the scan must stop there.
        let mut items: Vec<(f64, bool)> =
            (0..6001).map(|i| (10_000.0 - f64::from(i), true)).collect();
        items[1000].1 = false;
        assert!(certifies(6001, 1, 0.997, 0.95));
        let choice = choose_threshold(&items, 0.997, 0.95).unwrap();
        assert_eq!(choice.n_auto, 1000);
        assert_eq!(choice.errors, 0);
        assert_eq!(choice.threshold, Some(10_000.0 - 999.0));
        // Starting the sequence at 2000 items, the single error no longer ends it.
        let later = choose_threshold_from(&items, 0.997, 0.95, 2000).unwrap();
        assert_eq!(later.n_auto, 6001);
        assert_eq!(later.errors, 1);
        assert!(later.lower_bound >= 0.997);
    }

    #[test]
    fn tied_scores_are_in_or_out_together() {
        let mut items: Vec<(f64, bool)> = (0..1000).map(|i| (2.0 + f64::from(i), true)).collect();
        items.extend((0..50).map(|_| (1.0, true)));
        items.extend((0..50).map(|_| (0.5, false)));
        let choice = choose_threshold(&items, 0.99, 0.95).unwrap();
        assert_eq!(choice.threshold, Some(1.0));
        assert_eq!(choice.n_auto, 1050);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let items = [(0.5, true)];
        assert_eq!(
            choose_threshold(&[], 0.99, 0.95),
            Err(ThresholdError::Empty)
        );
        assert_eq!(
            choose_threshold(&items, 1.0, 0.95),
            Err(ThresholdError::InvalidTarget(1.0))
        );
        assert!(matches!(
            choose_threshold(&items, 0.99, f64::NAN),
            Err(ThresholdError::InvalidConfidence(_))
        ));
        assert!(matches!(
            choose_threshold(&[(0.5, true), (f64::NAN, true)], 0.99, 0.95),
            Err(ThresholdError::NonFiniteScore { index: 1, .. })
        ));
    }
}
