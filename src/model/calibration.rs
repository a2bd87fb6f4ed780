//! Calibration of decision scores into probabilities (interim; replaced by the model branch).

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CalibrationError(String);

/// Isotonic regression by pool-adjacent-violators, interpolated between block centres.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Isotonic {
    pub fn fit(scores: &[f32], labels: &[bool]) -> Result<Self, CalibrationError> {
        if scores.is_empty() || scores.len() != labels.len() {
            return Err(CalibrationError("scores and labels must be non-empty and of equal length".into()));
        }
        let mut pts: Vec<(f64, f64)> = scores.iter().zip(labels).map(|(&s, &l)| (s as f64, l as u8 as f64)).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks: (sum x, sum y, weight).
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (x, y) in pts {
            blocks.push((x, y, 1.0));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.1 / a.2 >= b.1 / b.2 {
                    blocks.pop();
                    blocks[n - 2] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
                } else {
                    break;
                }
            }
        }
        Ok(Isotonic { xs: blocks.iter().map(|b| b.0 / b.2).collect(), ys: blocks.iter().map(|b| b.1 / b.2).collect() })
    }

    pub fn apply(&self, s: f64) -> f64 {
        let n = self.xs.len();
        if n == 0 {
            return s;
        }
        if s <= self.xs[0] {
            return self.ys[0];
        }
        if s >= self.xs[n - 1] {
            return self.ys[n - 1];
        }
        let i = self.xs.partition_point(|&x| x <= s);
        let (x0, x1, y0, y1) = (self.xs[i - 1], self.xs[i], self.ys[i - 1], self.ys[i]);
        if x1 > x0 { y0 + (y1 - y0) * (s - x0) / (x1 - x0) } else { y1 }
    }
}

/// The calibration a model carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Calibrator {
    Identity,
    Isotonic(Isotonic),
}

impl Calibrator {
    pub fn apply(&self, s: f64) -> f64 {
        match self {
            Calibrator::Identity => s,
            Calibrator::Isotonic(i) => i.apply(s),
        }
    }
}
