//! Calibration: turning model scores into probabilities that match observed rates.
//!
//! The GBDT's logistic output is well ranked but not trustworthy as a probability (boosting
//! overfits the training margins, and the training set's class balance is not the holdout's).
//! A calibrator is fitted on a holdout of (score, outcome) pairs. [`Platt`] fits a two-parameter
//! logistic curve: smooth and data-frugal, right when the distortion is a shift and a scale of
//! the log-odds. [`Isotonic`] fits the best non-decreasing step function (pool adjacent
//! violators) and interpolates linearly between block centres: it follows any monotone
//! distortion but needs more data. Either is fitted on raw margins
//! ([`crate::model::gbdt::Gbdt::predict_margin`]) or on probabilities; margins keep resolution
//! where the logistic saturates.
//!
//! Every calibrator maps a NaN score to its lowest probability: a broken score must never look
//! confident.

use serde::{Deserialize, Serialize};

/// Why a calibrator could not be fitted or loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// No (score, label) pairs.
    #[error("no calibration data")]
    Empty,
    /// The two inputs differ in length.
    #[error("{scores} calibration scores but {labels} labels")]
    LengthMismatch {
        /// Scores given.
        scores: usize,
        /// Labels given.
        labels: usize,
    },
    /// A NaN or infinite score.
    #[error("calibration score {index} is {value}; scores must be finite")]
    NonFiniteScore {
        /// Zero-based position.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// Every label is the same, so there is no rate to fit.
    #[error("every calibration label is {0}; both outcomes are needed")]
    SingleClass(bool),
    /// A deserialised calibrator is inconsistent.
    #[error("invalid calibrator: {0}")]
    Invalid(String),
}

/// Checks the inputs; returns the counts of positive and negative labels.
fn check_inputs(scores: &[f32], labels: &[bool]) -> Result<(usize, usize), CalibrationError> {
    if scores.len() != labels.len() {
        return Err(CalibrationError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(CalibrationError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(CalibrationError::NonFiniteScore { index, value });
    }
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(CalibrationError::SingleClass(pos > 0));
    }
    Ok((pos, neg))
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

// ---------------------------------------------------------------------------------------------
// Platt scaling

/// Platt scaling: `p = 1 / (1 + exp(-(a * score + b)))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlattFields")]
pub struct Platt {
    a: f64,
    b: f64,
}

#[derive(Deserialize)]
struct PlattFields {
    a: f64,
    b: f64,
}

impl TryFrom<PlattFields> for Platt {
    type Error = CalibrationError;

    fn try_from(f: PlattFields) -> Result<Self, Self::Error> {
        if f.a.is_finite() && f.b.is_finite() {
            Ok(Platt { a: f.a, b: f.b })
        } else {
            Err(CalibrationError::Invalid(format!(
                "Platt coefficients {} and {} must be finite",
                f.a, f.b
            )))
        }
    }
}

impl Platt {
    /// Fits `a` and `b` by maximum likelihood with Platt's smoothed targets
    /// (`(n+ + 1)/(n+ + 2)` for positives, `1/(n- + 2)` for negatives), which keep a separable
    /// holdout from driving the curve to a step. Newton's method with a backtracking line
    /// search, as Lin, Lin and Weng (2007) recommend.
    pub fn fit(scores: &[f32], labels: &[bool]) -> Result<Platt, CalibrationError> {
        let (pos, neg) = check_inputs(scores, labels)?;
        let t_pos = (pos as f64 + 1.0) / (pos as f64 + 2.0);
        let t_neg = 1.0 / (neg as f64 + 2.0);
        let data: Vec<(f64, f64)> = scores
            .iter()
            .zip(labels)
            .map(|(&s, &l)| (f64::from(s), if l { t_pos } else { t_neg }))
            .collect();
        let loss = |a: f64, b: f64| -> f64 {
            data.iter()
                .map(|&(s, t)| {
                    let z = a * s + b;
                    t * softplus(-z) + (1.0 - t) * softplus(z)
                })
                .sum()
        };
        let (mut a, mut b) = (0.0, ((pos as f64 + 1.0) / (neg as f64 + 1.0)).ln());
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(s, t) in &data {
                let p = sigmoid(a * s + b);
                let w = p * (1.0 - p);
                ga += (p - t) * s;
                gb += p - t;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            if ga.abs() < 1e-9 && gb.abs() < 1e-9 {
                break;
            }
            // A tiny ridge keeps the 2x2 solve defined when every score is equal.
            let (haa, hbb) = (haa + 1e-12, hbb + 1e-12);
            let det = haa * hbb - hab * hab;
            if det.is_nan() || det <= 0.0 {
                break;
            }
            let da = -(hbb * ga - hab * gb) / det;
            let db = -(haa * gb - hab * ga) / det;
            let slope = ga * da + gb * db;
            let mut step = 1.0;
            let mut moved = false;
            while step >= 1e-10 {
                let (na, nb) = (a + step * da, b + step * db);
                let next = loss(na, nb);
                if next <= current + 1e-4 * step * slope {
                    (a, b, current) = (na, nb, next);
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved {
                break;
            }
        }
        Ok(Platt { a, b })
    }

    /// The calibrated probability of a score; NaN gives 0.
    pub fn apply(&self, score: f32) -> f64 {
        if score.is_nan() {
            return 0.0;
        }
        sigmoid(self.a * f64::from(score) + self.b)
    }

    /// The slope `a` and intercept `b`.
    #[cfg(test)]
    pub(crate) fn coefficients(&self) -> (f64, f64) {
        (self.a, self.b)
    }
}

// ---------------------------------------------------------------------------------------------
// Isotonic regression

/// Isotonic regression: the non-decreasing step function closest (least squares) to the
/// outcomes, kept as one knot per block at the block's mean score and interpolated linearly
/// between knots, flat beyond the ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "IsotonicFields")]
pub struct Isotonic {
    /// Block centres, strictly increasing.
    x: Vec<f64>,
    /// Block positive rates, strictly increasing, in [0, 1].
    y: Vec<f64>,
}

#[derive(Deserialize)]
struct IsotonicFields {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl TryFrom<IsotonicFields> for Isotonic {
    type Error = CalibrationError;

    fn try_from(f: IsotonicFields) -> Result<Self, Self::Error> {
        let invalid = |m: &str| Err(CalibrationError::Invalid(format!("isotonic: {m}")));
        if f.x.is_empty() || f.x.len() != f.y.len() {
            return invalid("knot arrays must be non-empty and of equal length");
        }
        if !f.x.iter().all(|v| v.is_finite()) || !f.x.windows(2).all(|w| w[0] < w[1]) {
            return invalid("knot positions must be finite and strictly increasing");
        }
        if !f.y.iter().all(|v| (0.0..=1.0).contains(v)) || !f.y.windows(2).all(|w| w[0] <= w[1]) {
            return invalid("knot values must be in [0, 1] and non-decreasing");
        }
        Ok(Isotonic { x: f.x, y: f.y })
    }
}

/// A run of adjacent scores pooled into one rate.
struct Block {
    positives: f64,
    count: f64,
    score_sum: f64,
}

impl Block {
    fn rate(&self) -> f64 {
        self.positives / self.count
    }
}

impl Isotonic {
    /// Fits by pool adjacent violators over the scores in increasing order. Equal scores start
    /// in one block (they must get one value), and adjacent blocks with equal rates are pooled
    /// too, so the knots' values are strictly increasing.
    pub fn fit(scores: &[f32], labels: &[bool]) -> Result<Isotonic, CalibrationError> {
        check_inputs(scores, labels)?;
        let mut pairs: Vec<(f32, bool)> =
            scores.iter().copied().zip(labels.iter().copied()).collect();
        pairs.sort_unstable_by(|p, q| p.0.total_cmp(&q.0));
        let mut blocks: Vec<Block> = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let score = pairs[i].0;
            let mut block = Block {
                positives: 0.0,
                count: 0.0,
                score_sum: 0.0,
            };
            // `==` so that -0.0 and 0.0 pool, as they compare equal everywhere else.
            while i < pairs.len() && pairs[i].0 == score {
                block.positives += f64::from(u8::from(pairs[i].1));
                block.count += 1.0;
                block.score_sum += f64::from(pairs[i].0);
                i += 1;
            }
            blocks.push(block);
            while blocks.len() >= 2 {
                let n = blocks.len();
                if blocks[n - 2].rate() < blocks[n - 1].rate() {
                    break;
                }
                if let Some(last) = blocks.pop() {
                    if let Some(prev) = blocks.last_mut() {
                        prev.positives += last.positives;
                        prev.count += last.count;
                        prev.score_sum += last.score_sum;
                    }
                }
            }
        }
        let x = blocks.iter().map(|b| b.score_sum / b.count).collect();
        let y = blocks.iter().map(Block::rate).collect();
        Ok(Isotonic { x, y })
    }

    /// The calibrated probability of a score; NaN gives the lowest value.
    pub fn apply(&self, score: f32) -> f64 {
        let (Some(&first), Some(&last)) = (self.y.first(), self.y.last()) else {
            return 0.0;
        };
        let s = f64::from(score);
        if s.is_nan() || self.x.first().is_none_or(|&x0| s <= x0) {
            return first;
        }
        if self.x.last().is_none_or(|&xn| s >= xn) {
            return last;
        }
        // First knot right of `s`; the guards above put it in 1..len.
        let k = self.x.partition_point(|&x| x <= s);
        match (
            self.x.get(k - 1),
            self.x.get(k),
            self.y.get(k - 1),
            self.y.get(k),
        ) {
            (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) => {
                (y0 + (y1 - y0) * (s - x0) / (x1 - x0)).clamp(y0, y1)
            }
            _ => first,
        }
    }

    /// The knots: block centres and their rates.
    #[cfg(test)]
    pub(crate) fn knots(&self) -> (&[f64], &[f64]) {
        (&self.x, &self.y)
    }
}

// ---------------------------------------------------------------------------------------------

/// The calibrator shipped in a model artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Calibrator {
    /// Scores are already probabilities; clamped to [0, 1].
    Identity,
    /// Platt scaling.
    Platt(Platt),
    /// Isotonic regression.
    Isotonic(Isotonic),
}

impl Calibrator {
    /// The calibrated probability of a score, in [0, 1]; NaN gives the lowest value.
    pub fn apply(&self, score: f32) -> f64 {
        match self {
            Calibrator::Identity => {
                if score.is_nan() {
                    0.0
                } else {
                    f64::from(score).clamp(0.0, 1.0)
                }
            }
            Calibrator::Platt(p) => p.apply(score),
            Calibrator::Isotonic(i) => i.apply(score),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Scores uniform on [-4, 4], outcomes with probability `truth(score)`.
    fn sample(n: usize, seed: u64, truth: impl Fn(f64) -> f64) -> (Vec<f32>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let s: f64 = rng.random_range(-4.0..4.0);
                (s as f32, rng.random::<f64>() < truth(s))
            })
            .unzip()
    }

    /// Groups held-out points by calibrated probability and returns the worst gap between the
    /// mean prediction and the observed rate in a group.
    fn worst_gap(predict: impl Fn(f32) -> f64, scores: &[f32], labels: &[bool]) -> f64 {
        let mut pairs: Vec<(f64, bool)> = scores
            .iter()
            .map(|&s| predict(s))
            .zip(labels.iter().copied())
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        pairs
            .chunks(pairs.len() / 10)
            .map(|c| {
                let p = c.iter().map(|x| x.0).sum::<f64>() / c.len() as f64;
                let r = c.iter().filter(|x| x.1).count() as f64 / c.len() as f64;
                (p - r).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn pav_pools_violators_and_interpolates() {
        let iso = Isotonic::fit(&[1.0, 2.0, 3.0, 4.0], &[true, false, true, true]).unwrap();
        assert_eq!(iso.knots(), (&[1.5, 3.5][..], &[0.5, 1.0][..]));
        assert_eq!(iso.apply(2.5), 0.75);
        assert_eq!(iso.apply(-10.0), 0.5);
        assert_eq!(iso.apply(10.0), 1.0);
        assert_eq!(iso.apply(f32::NAN), 0.5);
    }

    #[test]
    fn equal_scores_share_one_value() {
        let iso = Isotonic::fit(
            &[0.0, 1.0, 1.0, 1.0, 2.0],
            &[false, true, false, false, true],
        )
        .unwrap();
        assert_eq!(iso.knots().0, &[0.0, 1.0, 2.0][..]);
        assert_eq!(iso.knots().1, &[0.0, 1.0 / 3.0, 1.0][..]);
        let iso = Isotonic::fit(&[-0.0, 0.0], &[true, false]).unwrap();
        assert_eq!(iso.knots().1, &[0.5][..]);
    }

    #[test]
    fn isotonic_matches_empirical_rates() {
        // A monotone but non-logistic truth: Platt cannot follow it, isotonic can.
        let truth = |s: f64| 0.02 + 0.96 * ((s + 4.0) / 8.0).powi(3);
        let (s, l) = sample(20_000, 1, truth);
        let iso = Isotonic::fit(&s, &l).unwrap();
        let (ts, tl) = sample(20_000, 2, truth);
        let gap = worst_gap(|x| iso.apply(x), &ts, &tl);
        assert!(gap < 0.03, "worst decile gap {gap}");
        let err: f64 = (0..80)
            .map(|i| -4.0 + 0.1 * f64::from(i) + 0.05)
            .map(|x| (iso.apply(x as f32) - truth(x)).abs())
            .sum::<f64>()
            / 80.0;
        assert!(err < 0.03, "mean error against the truth {err}");
    }

    #[test]
    fn platt_recovers_a_logistic_truth() {
        let truth = |s: f64| sigmoid(1.5 * s - 0.5);
        let (s, l) = sample(20_000, 3, truth);
        let platt = Platt::fit(&s, &l).unwrap();
        let (a, b) = platt.coefficients();
        assert!(
            (a - 1.5).abs() < 0.1 && (b + 0.5).abs() < 0.1,
            "a {a}, b {b}"
        );
        let (ts, tl) = sample(20_000, 4, truth);
        let gap = worst_gap(|x| platt.apply(x), &ts, &tl);
        assert!(gap < 0.03, "worst decile gap {gap}");
    }

    #[test]
    fn platt_stays_finite_on_separable_data() {
        let platt = Platt::fit(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]).unwrap();
        let (a, b) = platt.coefficients();
        assert!(a.is_finite() && b.is_finite() && a > 0.0);
        assert!(platt.apply(0.9) < 1.0 && platt.apply(0.1) > 0.0);
        assert_eq!(platt.apply(f32::NAN), 0.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(Isotonic::fit(&[], &[]), Err(CalibrationError::Empty));
        assert_eq!(
            Platt::fit(&[0.1], &[true, false]),
            Err(CalibrationError::LengthMismatch {
                scores: 1,
                labels: 2
            })
        );
        assert!(matches!(
            Isotonic::fit(&[0.1, f32::INFINITY], &[true, false]),
            Err(CalibrationError::NonFiniteScore { index: 1, .. })
        ));
        assert_eq!(
            Platt::fit(&[0.1, 0.2], &[true, true]),
            Err(CalibrationError::SingleClass(true))
        );
    }

    #[test]
    fn calibrators_round_trip_through_json() {
        let (s, l) = sample(2_000, 5, sigmoid);
        for cal in [
            Calibrator::Identity,
            Calibrator::Platt(Platt::fit(&s, &l).unwrap()),
            Calibrator::Isotonic(Isotonic::fit(&s, &l).unwrap()),
        ] {
            let json = serde_json::to_string(&cal).unwrap();
            let back: Calibrator = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cal);
            for &x in &s[..50] {
                assert_eq!(back.apply(x).to_bits(), cal.apply(x).to_bits());
            }
        }
        let bad = r#"{"kind":"isotonic","x":[1.0,0.5],"y":[0.1,0.2]}"#;
        assert!(serde_json::from_str::<Calibrator>(bad).is_err());
        let bad = r#"{"kind":"platt","a":1.0,"b":null}"#;
        assert!(serde_json::from_str::<Calibrator>(bad).is_err());
    }

    proptest! {
        #[test]
        fn isotonic_is_monotone_and_bounded(
            data in proptest::collection::vec((-100.0f32..100.0, any::<bool>()), 2..200),
            probes in proptest::collection::vec(-200.0f32..200.0, 1..50),
        ) {
            let (s, l): (Vec<f32>, Vec<bool>) = data.into_iter().unzip();
            prop_assume!(l.iter().any(|&x| x) && l.iter().any(|&x| !x));
            let iso = Isotonic::fit(&s, &l).unwrap();
            let (kx, ky) = iso.knots();
            prop_assert!(kx.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(ky.windows(2).all(|w| w[0] < w[1]));
            let mut probes = probes;
            probes.sort_by(f32::total_cmp);
            let out: Vec<f64> = probes.iter().map(|&p| iso.apply(p)).collect();
            prop_assert!(out.iter().all(|p| (0.0..=1.0).contains(p)));
            prop_assert!(out.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
