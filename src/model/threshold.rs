//! Auto-apply threshold with a finite-sample precision guarantee (interim; replaced by the model branch).

/// The chosen threshold and what it achieved on the holdout.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdChoice {
    pub threshold: f64,
    pub coverage: f64,
    pub precision: f64,
    pub lower_bound: f64,
    pub n: usize,
}

/// ln C(n, k) p^k (1-p)^(n-k) summed for k <= errors: P(at most `errors` errors).
fn binom_cdf(errors: usize, n: usize, p_err: f64) -> f64 {
    let mut total = 0.0;
    let mut log_c = 0.0f64;
    for k in 0..=errors.min(n) {
        if k > 0 {
            log_c += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        total += (log_c + k as f64 * p_err.ln() + (n - k) as f64 * (1.0 - p_err).ln()).exp();
    }
    total
}

/// One-sided Clopper-Pearson lower bound of precision with `errors` wrong out of `n`.
pub fn precision_lower_bound(n: usize, errors: usize, confidence: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let alpha = 1.0 - confidence;
    // Largest error rate q with P(X <= errors | q) >= alpha, by bisection.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if binom_cdf(errors, n, mid) >= alpha { lo = mid } else { hi = mid }
    }
    1.0 - hi
}

/// The loosest threshold whose precision lower bound meets the target, scanning down.
pub fn choose_threshold(probs: &[f64], correct: &[bool], target: f64, confidence: f64) -> ThresholdChoice {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let mut best = ThresholdChoice { threshold: 1.0 + f64::EPSILON, coverage: 0.0, precision: 1.0, lower_bound: 0.0, n: 0 };
    let (mut n, mut errors) = (0usize, 0usize);
    let mut k = 0;
    while k < idx.len() {
        let t = probs[idx[k]];
        while k < idx.len() && probs[idx[k]] == t {
            n += 1;
            errors += (!correct[idx[k]]) as usize;
            k += 1;
        }
        let lb = precision_lower_bound(n, errors, confidence);
        if lb < target {
            if n >= 50 { break; }
            continue;
        }
        best = ThresholdChoice { threshold: t, coverage: n as f64 / probs.len() as f64, precision: 1.0 - errors as f64 / n as f64, lower_bound: lb, n };
    }
    best
}

/// Smallest number of auto-applied labels at which the observed error rate certifies `target`.
pub fn labels_needed(target: f64, confidence: f64, observed_error_rate: f64) -> usize {
    let mut n = 1usize;
    while n < 10_000_000 {
        let errors = (observed_error_rate * n as f64).round() as usize;
        if precision_lower_bound(n, errors, confidence) >= target {
            return n;
        }
        n = (n as f64 * 1.05).ceil() as usize + 1;
    }
    n
}
