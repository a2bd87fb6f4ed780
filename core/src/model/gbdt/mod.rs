//! Histogram gradient-boosted decision trees for binary classification (logloss).
//!
//! No maintained stable-Rust GBDT crate fits the project (see CRATES.md), so this is a compact
//! one of our own, in three types: [`GbdtParams`] (hyperparameters as the user wrote them),
//! [`ValidGbdtParams`] (checked) and the fitted [`Gbdt`] (what ships in the model artifact).
//!
//! Training bins every feature into at most 256 quantile bins (`u8`), grows each tree best-first
//! (leaf-wise, bounded by `max_depth` and `max_leaves`) from gradient histograms, builds only the
//! smaller child's histogram and gets its sibling by subtraction from the parent, and scores
//! splits by the L2-regularised second-order gain.
//!
//! Determinism: the same inputs and seed give a bit-identical model whatever the thread count.
//! Every float sum has an order fixed by the data, not by the scheduler: a feature's histogram
//! is built by one task walking its rows in partition order, per-row work is independent, and
//! every reduction over features or leaves runs sequentially in index order, ties going to the
//! lowest index. Randomness (row and column sampling) comes from one `ChaCha8Rng` on the calling
//! thread.
//!
//! Prediction never touches bins: each split stores the raw `f32` cut, and a row goes right when
//! `value > threshold`, the same comparison that assigned the training bins, so training margins
//! and [`Gbdt::predict_margin`] agree bit for bit. For speed the fitted model keeps, beside the
//! serialised per-tree arrays, one flat node array in which leaves point to themselves: every
//! tree is then walked for a fixed number of steps with no data-dependent branch, 32 trees
//! at a time so that the memory loads of independent trees overlap.
//!
//! The parts: `params` (the hyperparameters and their checks), `train` (binning, boosting and
//! growing trees), `model` (the fitted ensemble and prediction); the errors and the AUC metric
//! are here.

use std::fmt;

mod model;
mod params;
mod train;

pub use model::Gbdt;
pub use params::{GbdtParams, ValidGbdtParams};
pub(crate) use train::{bin_of, compute_cuts};

/// Which data set a data error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSet {
    /// The rows the model is fitted on.
    Training,
    /// The rows used for early stopping.
    Validation,
}

impl fmt::Display for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataSet::Training => "training",
            DataSet::Validation => "validation",
        })
    }
}

/// Why a model could not be fitted or loaded.
#[derive(Debug, thiserror::Error)]
pub enum GbdtError {
    /// A hyperparameter is out of range.
    #[error("invalid GBDT parameter `{name}`: {reason}")]
    InvalidParam {
        /// The field of [`GbdtParams`].
        name: &'static str,
        /// What range it must be in.
        reason: String,
    },
    /// A data set has no rows.
    #[error("the {set} set has no rows")]
    NoRows {
        /// Which set.
        set: DataSet,
    },
    /// The training matrix has no columns.
    #[error("the training set has no feature columns")]
    NoFeatures,
    /// Row indices are stored as `u32`.
    #[error("the training set has {rows} rows; at most {max} are supported", max = u32::MAX)]
    TooManyRows {
        /// Rows given.
        rows: usize,
    },
    /// Labels or weights do not have one entry per row.
    #[error("the {set} set has {rows} rows but {len} {what}")]
    LengthMismatch {
        /// Which set.
        set: DataSet,
        /// "labels" or "weights".
        what: &'static str,
        /// Rows of the feature matrix.
        rows: usize,
        /// Entries of the other array.
        len: usize,
    },
    /// The validation matrix is not as wide as the training matrix.
    #[error("the validation set has {found} feature columns but the training set has {expected}")]
    FeatureCountMismatch {
        /// Training columns.
        expected: usize,
        /// Validation columns.
        found: usize,
    },
    /// NaN or infinite feature value.
    #[error("the {set} set has the non-finite feature value {value} at row {row}, column {column}")]
    NonFiniteFeature {
        /// Which set.
        set: DataSet,
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        column: usize,
        /// The value found.
        value: f32,
    },
    /// A label other than 0 or 1.
    #[error("the {set} set has the label {value} at row {row}; labels must be 0 or 1")]
    InvalidLabel {
        /// Which set.
        set: DataSet,
        /// Zero-based row.
        row: usize,
        /// The value found.
        value: f32,
    },
    /// A negative or non-finite sample weight.
    #[error("the training weight at row {row} is {value}; weights must be finite and >= 0")]
    InvalidWeight {
        /// Zero-based row.
        row: usize,
        /// The value found.
        value: f32,
    },
    /// Only one class carries weight, so there is nothing to separate.
    #[error("the training set has weight on one class only; a classifier needs both")]
    SingleClass,
    /// `early_stopping_rounds` is set but no validation set was given.
    #[error("early stopping needs a validation set")]
    EarlyStoppingWithoutValidation,
    /// A deserialised model is inconsistent (corrupt or hand-edited artifact).
    #[error("invalid GBDT model: {0}")]
    InvalidModel(String),
    /// Raised by linfa's trait plumbing.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Area under the ROC curve (the probability that a random positive outscores a random
/// negative, ties counting one half). NaN when the lengths differ or a class is absent.
pub fn auc(scores: &[f32], labels: &[bool]) -> f64 {
    if scores.len() != labels.len() {
        return f64::NAN;
    }
    let mut order: Vec<(f32, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let (mut wins, mut neg_below, mut pos_total) = (0.0f64, 0u64, 0u64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0u64, 0u64);
        while j < order.len() && order[j].0 == order[i].0 {
            if order[j].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            j += 1;
        }
        // NaN never equals itself; step past it alone.
        if j == i {
            if order[i].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            j = i + 1;
        }
        wins += pos as f64 * (neg_below as f64 + 0.5 * neg as f64);
        neg_below += neg;
        pos_total += pos;
        i = j;
    }
    if pos_total == 0 || neg_below == 0 {
        return f64::NAN;
    }
    wins / (pos_total as f64 * neg_below as f64)
}

#[cfg(test)]
mod tests;
