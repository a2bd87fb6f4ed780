//! The hyperparameters: [`GbdtParams`] as the user wrote them (serialised in the artifact),
//! checked once into [`ValidGbdtParams`], which is what fits.

use super::GbdtError;
use super::model::Gbdt;
use ndarray::{ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

/// Hyperparameters of a [`Gbdt`], unchecked. Defaults suit 20-60 features and 10k-1M rows.
///
/// Trees grow best-first: the leaf with the largest gain is split next, until `max_leaves`
/// leaves exist or no leaf has a split that passes the limits. With `max_leaves >= 2^max_depth`
/// this gives the same trees as depth-wise growth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    /// Boosting rounds (trees), an upper bound when early stopping is on.
    pub n_rounds: usize,
    /// Shrinkage applied to every leaf value, in (0, 1].
    pub learning_rate: f64,
    /// Maximum depth of a tree (the root is depth 0), 1 to 30.
    pub max_depth: usize,
    /// Maximum leaves per tree, 2 to 65536.
    pub max_leaves: usize,
    /// Minimum sum of hessians (weighted `p(1-p)`) in each child of a split.
    pub min_child_hessian: f64,
    /// Minimum training rows in each child of a split, at least 1.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values.
    pub lambda_l2: f64,
    /// A split must gain more than this.
    pub min_split_gain: f64,
    /// Histogram bins per feature, 2 to 256.
    pub max_bins: usize,
    /// Fraction of rows drawn (without replacement, each row independently) for each tree, (0, 1].
    pub row_subsample: f64,
    /// Fraction of features drawn for each tree, (0, 1].
    pub col_subsample: f64,
    /// Seed of the row and column sampling.
    pub seed: u64,
    /// Stop when the validation logloss has not improved for this many rounds, and keep the
    /// trees up to the best round. Needs a validation set.
    pub early_stopping_rounds: Option<usize>,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            n_rounds: 300,
            learning_rate: 0.1,
            max_depth: 6,
            max_leaves: 31,
            min_child_hessian: 1.0,
            min_samples_leaf: 20,
            lambda_l2: 1.0,
            min_split_gain: 0.0,
            max_bins: 255,
            row_subsample: 1.0,
            col_subsample: 1.0,
            seed: 0,
            early_stopping_rounds: None,
        }
    }
}

/// Hyperparameters that passed [`GbdtParams::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGbdtParams(pub(super) GbdtParams);

fn require(ok: bool, name: &'static str, reason: &str) -> Result<(), GbdtError> {
    if ok {
        Ok(())
    } else {
        Err(GbdtError::InvalidParam {
            name,
            reason: reason.to_owned(),
        })
    }
}

fn in_unit_interval(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= 1.0
}

fn non_negative(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

impl GbdtParams {
    /// Checks every hyperparameter's range.
    pub fn validate(&self) -> Result<ValidGbdtParams, GbdtError> {
        require(self.n_rounds >= 1, "n_rounds", "must be at least 1")?;
        require(
            in_unit_interval(self.learning_rate),
            "learning_rate",
            "must be in (0, 1]",
        )?;
        require(
            (1..=30).contains(&self.max_depth),
            "max_depth",
            "must be 1 to 30",
        )?;
        require(
            (2..=65_536).contains(&self.max_leaves),
            "max_leaves",
            "must be 2 to 65536",
        )?;
        require(
            non_negative(self.min_child_hessian),
            "min_child_hessian",
            "must be finite and >= 0",
        )?;
        require(
            self.min_samples_leaf >= 1,
            "min_samples_leaf",
            "must be at least 1",
        )?;
        require(
            non_negative(self.lambda_l2),
            "lambda_l2",
            "must be finite and >= 0",
        )?;
        require(
            non_negative(self.min_split_gain),
            "min_split_gain",
            "must be finite and >= 0",
        )?;
        require(
            (2..=256).contains(&self.max_bins),
            "max_bins",
            "must be 2 to 256",
        )?;
        require(
            in_unit_interval(self.row_subsample),
            "row_subsample",
            "must be in (0, 1]",
        )?;
        require(
            in_unit_interval(self.col_subsample),
            "col_subsample",
            "must be in (0, 1]",
        )?;
        require(
            self.early_stopping_rounds != Some(0),
            "early_stopping_rounds",
            "must be at least 1 when set",
        )?;
        Ok(ValidGbdtParams(self.clone()))
    }

    /// Validates the parameters, then fits; see [`ValidGbdtParams::fit`].
    pub fn fit(
        &self,
        x: ArrayView2<f32>,
        y: ArrayView1<f32>,
        weights: Option<ArrayView1<f32>>,
        valid: Option<(ArrayView2<f32>, ArrayView1<f32>)>,
    ) -> Result<Gbdt, GbdtError> {
        self.validate()?.fit(x, y, weights, valid)
    }
}
