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

use std::fmt;

use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, ArrayView1, ArrayView2, Data, Ix2, Zip};
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
pub struct ValidGbdtParams(GbdtParams);

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

impl ValidGbdtParams {
    /// The checked hyperparameters.
    pub fn params(&self) -> &GbdtParams {
        &self.0
    }

    /// Fits a model on `x` (rows x features, all finite) and labels `y` (0 or 1), with optional
    /// non-negative sample weights. `valid` (features, labels) is scored after every round; its
    /// logloss drives early stopping and is kept in [`Gbdt::valid_logloss`].
    pub fn fit(
        &self,
        x: ArrayView2<f32>,
        y: ArrayView1<f32>,
        weights: Option<ArrayView1<f32>>,
        valid: Option<(ArrayView2<f32>, ArrayView1<f32>)>,
    ) -> Result<Gbdt, GbdtError> {
        self.train(x, y, weights, valid).map(|(model, _)| model)
    }

    /// Fits and also returns the final training margins (for the consistency tests).
    fn train(
        &self,
        x: ArrayView2<f32>,
        y: ArrayView1<f32>,
        weights: Option<ArrayView1<f32>>,
        valid: Option<(ArrayView2<f32>, ArrayView1<f32>)>,
    ) -> Result<(Gbdt, Vec<f32>), GbdtError> {
        let p = &self.0;
        let (n, nf) = x.dim();
        check_data(x, y, DataSet::Training)?;
        if nf == 0 {
            return Err(GbdtError::NoFeatures);
        }
        if n > u32::MAX as usize {
            return Err(GbdtError::TooManyRows { rows: n });
        }
        let y: Vec<f32> = y.to_vec();
        let w: Option<Vec<f32>> = match weights {
            Some(w) => Some(check_weights(w, n)?),
            None => None,
        };
        let base_score = base_margin(&y, w.as_deref())?;
        let valid = match valid {
            Some((vx, vy)) => {
                check_data(vx, vy, DataSet::Validation)?;
                if vx.ncols() != nf {
                    return Err(GbdtError::FeatureCountMismatch {
                        expected: nf,
                        found: vx.ncols(),
                    });
                }
                Some((row_major(vx), vy.to_vec()))
            }
            None => None,
        };
        if p.early_stopping_rounds.is_some() && valid.is_none() {
            return Err(GbdtError::EarlyStoppingWithoutValidation);
        }

        let cuts = compute_cuts(x, p.max_bins, p.seed);
        let nbins: Vec<usize> = cuts.iter().map(|c| c.len() + 1).collect();
        let bins = bin_matrix(x, &cuts);
        let mut margin = vec![base_score; n];
        let mut gh = vec![[0f32; 2]; n];
        let mut valid_margin = valid.as_ref().map(|(_, vy)| vec![base_score; vy.len()]);
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let mut trees: Vec<Tree> = Vec::new();
        let mut history = Vec::new();
        let mut best: Option<(f64, usize)> = None;
        let mut scratch = Vec::new();

        for round in 0..p.n_rounds {
            compute_gradients(&margin, &y, w.as_deref(), &mut gh);
            let features = sample_features(&mut rng, nf, p.col_subsample);
            let mut rows = sample_rows(&mut rng, n, p.row_subsample);
            let ts = TrainSet {
                bins: &bins,
                n_rows: n,
                nbins: &nbins,
                cuts: &cuts,
                gh: &gh,
            };
            let tree = grow_tree(&ts, p, &features, &mut rows, &mut scratch);
            update_train_margins(&tree, &bins, n, &mut margin);
            trees.push(tree);

            if let (Some((vx, vy)), Some(vm)) = (valid.as_ref(), valid_margin.as_mut()) {
                if let Some(tree) = trees.last() {
                    update_raw_margins(tree, vx, nf, vm);
                }
                let loss = logloss(vm, vy);
                history.push(loss);
                match best {
                    Some((best_loss, _)) if loss >= best_loss => {}
                    _ => best = Some((loss, round)),
                }
                if let (Some(patience), Some((_, best_round))) = (p.early_stopping_rounds, best) {
                    if round - best_round >= patience {
                        break;
                    }
                }
            }
        }

        let best_iteration = match (p.early_stopping_rounds, best) {
            (Some(_), Some((_, best_round))) => {
                trees.truncate(best_round + 1);
                Some(best_round + 1)
            }
            _ => None,
        };
        let mut importance = vec![0.0; nf];
        for tree in &mut trees {
            tree.bin = Vec::new();
            for (i, &gain) in tree.gain.iter().enumerate() {
                if !tree.is_leaf(i) {
                    if let Some(slot) = importance.get_mut(tree.feature[i] as usize) {
                        *slot += gain;
                    }
                }
            }
        }
        let model = Gbdt::from_fields(GbdtFields {
            n_features: nf,
            base_score,
            trees,
            feature_importance: importance,
            params: p.clone(),
            valid_logloss: history,
            best_iteration,
        })?;
        Ok((model, margin))
    }
}

fn check_data(x: ArrayView2<f32>, y: ArrayView1<f32>, set: DataSet) -> Result<(), GbdtError> {
    if x.nrows() == 0 {
        return Err(GbdtError::NoRows { set });
    }
    if y.len() != x.nrows() {
        return Err(GbdtError::LengthMismatch {
            set,
            what: "labels",
            rows: x.nrows(),
            len: y.len(),
        });
    }
    for (row, values) in x.rows().into_iter().enumerate() {
        for (column, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(GbdtError::NonFiniteFeature {
                    set,
                    row,
                    column,
                    value,
                });
            }
        }
    }
    for (row, &value) in y.iter().enumerate() {
        if value != 0.0 && value != 1.0 {
            return Err(GbdtError::InvalidLabel { set, row, value });
        }
    }
    Ok(())
}

fn check_weights(w: ArrayView1<f32>, n: usize) -> Result<Vec<f32>, GbdtError> {
    if w.len() != n {
        return Err(GbdtError::LengthMismatch {
            set: DataSet::Training,
            what: "weights",
            rows: n,
            len: w.len(),
        });
    }
    for (row, &value) in w.iter().enumerate() {
        if !(value.is_finite() && value >= 0.0) {
            return Err(GbdtError::InvalidWeight { row, value });
        }
    }
    Ok(w.to_vec())
}

/// The log-odds of the weighted positive rate: the best constant model.
fn base_margin(y: &[f32], w: Option<&[f32]>) -> Result<f32, GbdtError> {
    let (mut pos, mut total) = (0.0f64, 0.0f64);
    for (i, &label) in y.iter().enumerate() {
        let wt = w.and_then(|w| w.get(i)).map_or(1.0, |&v| f64::from(v));
        pos += wt * f64::from(label);
        total += wt;
    }
    let neg = total - pos;
    if pos <= 0.0 || neg <= 0.0 {
        return Err(GbdtError::SingleClass);
    }
    Ok((pos / neg).ln() as f32)
}

/// A row-major copy of a matrix, so rows are plain slices.
fn row_major(x: ArrayView2<f32>) -> Vec<f32> {
    match x.as_slice() {
        Some(s) => s.to_vec(),
        None => x.iter().copied().collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Binning

/// Quantile cuts come from at most this many rows: beyond it they barely move, and sorting every
/// column of a million rows would dominate small fits.
const BIN_SAMPLE_ROWS: usize = 200_000;
/// Keeps the binning sample independent of the per-round sampling stream.
const BIN_SEED_SALT: u64 = 0x9E37_79B9_7F4A_7C15;

/// The quantile cuts of every column as the booster bins them; the out-of-distribution
/// envelope (`model::envelope`) counts its training rows in the same bins.
pub(crate) fn compute_cuts(x: ArrayView2<f32>, max_bins: usize, seed: u64) -> Vec<Vec<f32>> {
    let n = x.nrows();
    let sample: Option<Vec<usize>> = (n > BIN_SAMPLE_ROWS).then(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ BIN_SEED_SALT);
        let mut rows = index::sample(&mut rng, n, BIN_SAMPLE_ROWS).into_vec();
        rows.sort_unstable();
        rows
    });
    (0..x.ncols())
        .into_par_iter()
        .map(|f| {
            let col = x.column(f);
            let mut values: Vec<f32> = match &sample {
                Some(rows) => rows.iter().filter_map(|&r| col.get(r).copied()).collect(),
                None => col.to_vec(),
            };
            feature_cuts(&mut values, max_bins)
        })
        .collect()
}

/// Ascending cuts of one feature: bin `b` holds the values in `(cuts[b-1], cuts[b]]`.
fn feature_cuts(values: &mut [f32], max_bins: usize) -> Vec<f32> {
    values.sort_unstable_by(f32::total_cmp);
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for &v in values.iter() {
        match distinct.last_mut() {
            // `==` rather than total order, so -0.0 and 0.0 share a bin as they share a branch.
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= max_bins {
        return distinct
            .windows(2)
            .map(|w| midpoint(w[0].0, w[1].0))
            .collect();
    }
    // Equal-count bins, re-aimed after every cut so a heavy tie (say, 60% zeros) takes one bin
    // and the remaining bins still share the rest evenly.
    let mut cuts = Vec::with_capacity(max_bins - 1);
    let mut remaining = values.len() as f64;
    let mut bins_left = max_bins as f64;
    let mut acc = 0usize;
    for w in distinct.windows(2) {
        acc += w[0].1;
        if acc as f64 >= remaining / bins_left {
            cuts.push(midpoint(w[0].0, w[1].0));
            remaining -= acc as f64;
            acc = 0;
            bins_left -= 1.0;
            if cuts.len() + 1 >= max_bins {
                break;
            }
        }
    }
    cuts
}

/// A cut `c` with `a <= c < b`, so `a` goes left and `b` right; the midpoint when f32 has one.
fn midpoint(a: f32, b: f32) -> f32 {
    let m = a * 0.5 + b * 0.5;
    if m >= a && m < b { m } else { a }
}

pub(crate) fn bin_of(cuts: &[f32], v: f32) -> u8 {
    // At most 255 cuts, so the count fits.
    cuts.partition_point(|&c| c < v) as u8
}

/// Feature-major bins: feature `f` of row `r` is at `f * n + r`.
fn bin_matrix(x: ArrayView2<f32>, cuts: &[Vec<f32>]) -> Vec<u8> {
    let n = x.nrows();
    let mut bins = vec![0u8; n * x.ncols()];
    bins.par_chunks_mut(n)
        .zip(cuts.par_iter())
        .enumerate()
        .for_each(|(f, (out, cuts))| {
            for (o, &v) in out.iter_mut().zip(x.column(f).iter()) {
                *o = bin_of(cuts, v);
            }
        });
    bins
}

// ---------------------------------------------------------------------------------------------
// Boosting

fn sigmoid64(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn compute_gradients(margin: &[f32], y: &[f32], w: Option<&[f32]>, gh: &mut [[f32; 2]]) {
    gh.par_iter_mut()
        .zip(margin.par_iter().zip(y.par_iter()))
        .enumerate()
        .for_each(|(r, (out, (&m, &label)))| {
            let p = sigmoid64(f64::from(m));
            let wt = w.and_then(|w| w.get(r)).map_or(1.0, |&v| f64::from(v));
            // The floor keeps leaves of saturated rows from dividing by ~0 when lambda is 0.
            let h = (p * (1.0 - p)).max(1e-16) * wt;
            *out = [((p - f64::from(label)) * wt) as f32, h as f32];
        });
}

fn sample_features(rng: &mut ChaCha8Rng, nf: usize, fraction: f64) -> Vec<usize> {
    if fraction >= 1.0 {
        return (0..nf).collect();
    }
    let k = ((fraction * nf as f64).round() as usize).clamp(1, nf);
    let mut features = index::sample(rng, nf, k).into_vec();
    features.sort_unstable();
    features
}

fn sample_rows(rng: &mut ChaCha8Rng, n: usize, fraction: f64) -> Vec<u32> {
    if fraction >= 1.0 {
        return (0..n as u32).collect();
    }
    (0..n as u32)
        .filter(|_| rng.random::<f64>() < fraction)
        .collect()
}

fn logloss(margins: &[f32], y: &[f32]) -> f64 {
    let total: f64 = margins
        .iter()
        .zip(y)
        .map(|(&m, &label)| {
            let m = f64::from(m);
            if label == 1.0 {
                softplus(-m)
            } else {
                softplus(m)
            }
        })
        .sum();
    total / margins.len().max(1) as f64
}

fn update_train_margins(tree: &Tree, bins: &[u8], n: usize, margin: &mut [f32]) {
    margin.par_iter_mut().enumerate().for_each(|(r, m)| {
        let mut i = 0usize;
        while !tree.is_leaf(i) {
            let bin = bins
                .get(tree.feature[i] as usize * n + r)
                .copied()
                .unwrap_or(0);
            i = if bin <= tree.bin[i] {
                tree.left[i] as usize
            } else {
                tree.right[i] as usize
            };
        }
        *m += tree.value[i];
    });
}

fn update_raw_margins(tree: &Tree, x: &[f32], nf: usize, margin: &mut [f32]) {
    margin
        .par_iter_mut()
        .zip(x.par_chunks(nf))
        .for_each(|(m, row)| *m += tree.leaf_value(row));
}

// ---------------------------------------------------------------------------------------------
// Growing one tree

struct TrainSet<'a> {
    bins: &'a [u8],
    n_rows: usize,
    nbins: &'a [usize],
    cuts: &'a [Vec<f32>],
    gh: &'a [[f32; 2]],
}

impl TrainSet<'_> {
    fn column(&self, f: usize) -> &[u8] {
        let start = f * self.n_rows;
        self.bins.get(start..start + self.n_rows).unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct BinStat {
    g: f64,
    h: f64,
    n: u32,
}

/// One histogram per sampled feature, in the order of the sampled-feature list.
type Hist = Vec<Vec<BinStat>>;

/// Below this many (row, feature) updates a histogram is built on the calling thread: rayon's
/// task overhead would exceed the work. The result is the same either way.
const PARALLEL_HIST_WORK: usize = 32_768;

fn build_hist(ts: &TrainSet<'_>, features: &[usize], rows: &[u32]) -> Hist {
    let one = |&f: &usize| {
        let mut hist = vec![BinStat::default(); ts.nbins.get(f).copied().unwrap_or(1)];
        let col = ts.column(f);
        for &r in rows {
            let r = r as usize;
            if let (Some(&b), Some(&[g, h])) = (col.get(r), ts.gh.get(r)) {
                if let Some(s) = hist.get_mut(b as usize) {
                    s.g += f64::from(g);
                    s.h += f64::from(h);
                    s.n += 1;
                }
            }
        }
        hist
    };
    if rows.len() * features.len() < PARALLEL_HIST_WORK {
        features.iter().map(one).collect()
    } else {
        features.par_iter().map(one).collect()
    }
}

/// Turns the parent's histogram into the larger child's by removing the smaller child's.
fn subtract_hist(parent: &mut Hist, child: &Hist) {
    for (p, c) in parent.iter_mut().zip(child) {
        for (p, c) in p.iter_mut().zip(c) {
            p.n -= c.n;
            if p.n == 0 {
                // Exact zero instead of rounding residue, so empty bins carry no phantom hessian.
                *p = BinStat::default();
            } else {
                p.g -= c.g;
                p.h -= c.h;
            }
        }
    }
}

/// The left side of the best split of a leaf.
#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    bin: u8,
    gain: f64,
    g: f64,
    h: f64,
    n: u32,
}

fn score(g: f64, h: f64, lambda: f64) -> f64 {
    let d = h + lambda;
    if d > 0.0 { g * g / d } else { 0.0 }
}

fn find_split(
    p: &GbdtParams,
    features: &[usize],
    hist: &Hist,
    g: f64,
    h: f64,
    n: u32,
) -> Option<Split> {
    let parent = score(g, h, p.lambda_l2);
    let min_leaf = p.min_samples_leaf as u32;
    let mut best: Option<Split> = None;
    for (&feature, fh) in features.iter().zip(hist) {
        let (mut gl, mut hl, mut nl) = (0.0f64, 0.0f64, 0u32);
        // The last bin cannot be a split point: everything would go left.
        for (b, s) in fh.iter().enumerate().take(fh.len().saturating_sub(1)) {
            if s.n == 0 {
                // Same partition as the previous bin; the lower cut was already tried.
                continue;
            }
            gl += s.g;
            hl += s.h;
            nl += s.n;
            if nl < min_leaf {
                continue;
            }
            let nr = n - nl;
            if nr < min_leaf {
                break;
            }
            let hr = h - hl;
            if hl < p.min_child_hessian || hr < p.min_child_hessian {
                continue;
            }
            let gain = 0.5 * (score(gl, hl, p.lambda_l2) + score(g - gl, hr, p.lambda_l2) - parent);
            if gain.is_finite() && gain > p.min_split_gain && best.is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    feature,
                    bin: b as u8,
                    gain,
                    g: gl,
                    h: hl,
                    n: nl,
                });
            }
        }
    }
    best
}

/// A leaf of the tree being grown: its rows are `rows[start..end]`.
struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    g: f64,
    h: f64,
    n: u32,
    hist: Option<Hist>,
    split: Option<Split>,
}

impl Leaf {
    fn can_split(&self, p: &GbdtParams) -> bool {
        self.depth < p.max_depth
            && self.n as usize >= 2 * p.min_samples_leaf
            && self.h >= 2.0 * p.min_child_hessian
    }
}

fn leaf_value(g: f64, h: f64, p: &GbdtParams) -> f32 {
    let d = h.max(0.0) + p.lambda_l2;
    let v = if d > 0.0 {
        -g / d * p.learning_rate
    } else {
        0.0
    };
    if v.is_finite() { v as f32 } else { 0.0 }
}

/// Stable in-place partition of `rows` by `bin(row) <= split_bin`; returns the left count.
fn partition(rows: &mut [u32], scratch: &mut Vec<u32>, col: &[u8], split_bin: u8) -> usize {
    scratch.clear();
    let mut nl = 0;
    for i in 0..rows.len() {
        let r = rows[i];
        if col.get(r as usize).is_some_and(|&b| b <= split_bin) {
            rows[nl] = r;
            nl += 1;
        } else {
            scratch.push(r);
        }
    }
    rows[nl..].copy_from_slice(scratch);
    nl
}

fn grow_tree(
    ts: &TrainSet<'_>,
    p: &GbdtParams,
    features: &[usize],
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
) -> Tree {
    let mut tree = Tree::with_root();
    let (mut g, mut h) = (0.0f64, 0.0f64);
    for &r in rows.iter() {
        if let Some(&[gr, hr]) = ts.gh.get(r as usize) {
            g += f64::from(gr);
            h += f64::from(hr);
        }
    }
    let mut root = Leaf {
        node: 0,
        start: 0,
        end: rows.len(),
        depth: 0,
        g,
        h,
        n: rows.len() as u32,
        hist: None,
        split: None,
    };
    if root.can_split(p) {
        let hist = build_hist(ts, features, rows);
        root.split = find_split(p, features, &hist, g, h, root.n);
        root.hist = root.split.map(|_| hist);
    }
    let mut leaves = vec![root];
    while leaves.len() < p.max_leaves {
        // The first leaf with the largest gain, so ties resolve the same way on every run.
        let mut pick: Option<(usize, f64)> = None;
        for (i, leaf) in leaves.iter().enumerate() {
            if let Some(s) = leaf.split {
                if pick.is_none_or(|(_, gain)| s.gain > gain) {
                    pick = Some((i, s.gain));
                }
            }
        }
        let Some((i, _)) = pick else { break };
        let leaf = leaves.remove(i);
        let Some(split) = leaf.split else { break };
        let Some(range) = rows.get_mut(leaf.start..leaf.end) else {
            break;
        };
        let nl = partition(range, scratch, ts.column(split.feature), split.bin);
        let threshold = ts
            .cuts
            .get(split.feature)
            .and_then(|c| c.get(split.bin as usize))
            .copied()
            .unwrap_or(f32::INFINITY);
        let (left_id, right_id) = tree.split(leaf.node, &split, threshold);
        let mut left = Leaf {
            node: left_id,
            start: leaf.start,
            end: leaf.start + nl,
            depth: leaf.depth + 1,
            g: split.g,
            h: split.h,
            n: split.n,
            hist: None,
            split: None,
        };
        let mut right = Leaf {
            node: right_id,
            start: leaf.start + nl,
            end: leaf.end,
            depth: leaf.depth + 1,
            g: leaf.g - split.g,
            h: leaf.h - split.h,
            n: leaf.n - split.n,
            hist: None,
            split: None,
        };
        let (small, large) = if nl <= leaf.end - leaf.start - nl {
            (&mut left, &mut right)
        } else {
            (&mut right, &mut left)
        };
        let (need_small, need_large) = (small.can_split(p), large.can_split(p));
        if need_small || need_large {
            let small_hist = build_hist(
                ts,
                features,
                rows.get(small.start..small.end).unwrap_or(&[]),
            );
            if need_large {
                if let Some(mut parent_hist) = leaf.hist {
                    subtract_hist(&mut parent_hist, &small_hist);
                    large.hist = Some(parent_hist);
                }
            }
            if need_small {
                small.hist = Some(small_hist);
            }
        }
        for child in [&mut left, &mut right] {
            if let Some(hist) = child.hist.take() {
                child.split = find_split(p, features, &hist, child.g, child.h, child.n);
                if child.split.is_some() {
                    child.hist = Some(hist);
                }
            }
        }
        leaves.push(left);
        leaves.push(right);
    }
    for leaf in &leaves {
        if let Some(v) = tree.value.get_mut(leaf.node) {
            *v = leaf_value(leaf.g, leaf.h, p);
        }
    }
    tree
}

// ---------------------------------------------------------------------------------------------
// The fitted model

/// One tree as serialised: parallel arrays indexed by node, the root at 0. A node whose `left`
/// and `right` are both 0 is a leaf (no node points back to the root); other nodes send a row
/// right when `row[feature] > threshold` (NaN goes left). Children always have larger indices
/// than their parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tree {
    feature: Vec<u32>,
    threshold: Vec<f32>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<f32>,
    /// Split gain, for importance; 0 at leaves.
    gain: Vec<f64>,
    /// The training bin of each split, only needed while training.
    #[serde(skip)]
    bin: Vec<u8>,
}

impl Tree {
    fn with_root() -> Tree {
        Tree {
            feature: vec![0],
            threshold: vec![0.0],
            left: vec![0],
            right: vec![0],
            value: vec![0.0],
            gain: vec![0.0],
            bin: vec![0],
        }
    }

    fn len(&self) -> usize {
        self.feature.len()
    }

    fn is_leaf(&self, i: usize) -> bool {
        self.left.get(i).is_none_or(|&l| l == 0) && self.right.get(i).is_none_or(|&r| r == 0)
    }

    /// Makes leaf `node` a split and appends its two children (leaves for now).
    fn split(&mut self, node: usize, split: &Split, threshold: f32) -> (usize, usize) {
        let left = self.len();
        for _ in 0..2 {
            self.feature.push(0);
            self.threshold.push(0.0);
            self.left.push(0);
            self.right.push(0);
            self.value.push(0.0);
            self.gain.push(0.0);
            self.bin.push(0);
        }
        if node < left {
            self.feature[node] = split.feature as u32;
            self.threshold[node] = threshold;
            self.left[node] = left as u32;
            self.right[node] = left as u32 + 1;
            self.gain[node] = split.gain;
            self.bin[node] = split.bin;
        }
        (left, left + 1)
    }

    /// The leaf value for a raw row (validation scoring during training).
    fn leaf_value(&self, row: &[f32]) -> f32 {
        let mut i = 0usize;
        while !self.is_leaf(i) {
            let v = row
                .get(self.feature[i] as usize)
                .copied()
                .unwrap_or(f32::NAN);
            i = if v > self.threshold[i] {
                self.right[i] as usize
            } else {
                self.left[i] as usize
            };
        }
        self.value.get(i).copied().unwrap_or(0.0)
    }

    /// Checks the invariants prediction relies on; `n_features` bounds the split features.
    fn check(&self, n_features: usize) -> Result<(), String> {
        let n = self.len();
        if n == 0 {
            return Err("a tree has no nodes".into());
        }
        if [
            self.threshold.len(),
            self.left.len(),
            self.right.len(),
            self.value.len(),
            self.gain.len(),
        ]
        .iter()
        .any(|&len| len != n)
        {
            return Err("a tree's node arrays differ in length".into());
        }
        let mut has_parent = vec![false; n];
        for i in 0..n {
            if self.is_leaf(i) {
                if !self.value[i].is_finite() {
                    return Err(format!(
                        "leaf {i} has the non-finite value {}",
                        self.value[i]
                    ));
                }
                continue;
            }
            let (l, r) = (self.left[i] as usize, self.right[i] as usize);
            if l <= i || r <= i || l >= n || r >= n {
                return Err(format!(
                    "node {i} has children {l} and {r} outside ({i}, {n})"
                ));
            }
            for c in [l, r] {
                // A shared child would make the tree a graph whose walk count can explode.
                if std::mem::replace(&mut has_parent[c], true) {
                    return Err(format!("node {c} has two parents"));
                }
            }
            if self.feature[i] as usize >= n_features {
                return Err(format!(
                    "node {i} splits on feature {} of {n_features}",
                    self.feature[i]
                ));
            }
            if self.threshold[i].is_nan() {
                return Err(format!("node {i} has a NaN threshold"));
            }
        }
        Ok(())
    }

    /// Longest root-to-leaf path; children follow parents, so one forward pass suffices.
    fn depth(&self) -> u32 {
        let mut depth = vec![0u32; self.len()];
        for i in 0..self.len() {
            if !self.is_leaf(i) {
                let d = depth[i] + 1;
                for c in [self.left[i] as usize, self.right[i] as usize] {
                    if let Some(slot) = depth.get_mut(c) {
                        *slot = (*slot).max(d);
                    }
                }
            }
        }
        depth.into_iter().max().unwrap_or(0)
    }
}

/// A node of the prediction layout: 12 bytes, the two children adjacent at `left` and
/// `left + 1`, so a step is a load, a compare and an add. A leaf has `left` pointing at itself
/// and an infinite threshold that nothing exceeds, so a walk of `depth` steps always ends on
/// the right leaf with no data-dependent branch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatNode {
    feature: u32,
    threshold: f32,
    left: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatTree {
    root: u32,
    depth: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Forest {
    nodes: Vec<FlatNode>,
    /// Leaf values by node index (0 at splits), read once per tree at the end of a walk.
    values: Vec<f32>,
    trees: Vec<FlatTree>,
}

impl Forest {
    /// Lays checked trees out breadth-first, each split's children side by side.
    fn from_trees(trees: &[Tree]) -> Forest {
        let total = trees.iter().map(Tree::len).sum();
        let mut forest = Forest {
            nodes: Vec::with_capacity(total),
            values: Vec::with_capacity(total),
            trees: Vec::with_capacity(trees.len()),
        };
        for tree in trees {
            let root = forest.nodes.len() as u32;
            forest.trees.push(FlatTree {
                root,
                depth: tree.depth(),
            });
            // (tree node, its flat slot); slots are reserved in pairs as splits are met.
            let mut queue = std::collections::VecDeque::from([(0usize, root)]);
            forest.push_placeholder();
            while let Some((i, slot)) = queue.pop_front() {
                let node = if tree.is_leaf(i) {
                    if let Some(v) = forest.values.get_mut(slot as usize) {
                        *v = tree.value.get(i).copied().unwrap_or(0.0);
                    }
                    FlatNode {
                        feature: 0,
                        threshold: f32::INFINITY,
                        left: slot,
                    }
                } else {
                    let left = forest.nodes.len() as u32;
                    forest.push_placeholder();
                    forest.push_placeholder();
                    queue.push_back((tree.left[i] as usize, left));
                    queue.push_back((tree.right[i] as usize, left + 1));
                    FlatNode {
                        feature: tree.feature[i],
                        threshold: tree.threshold[i],
                        left,
                    }
                };
                if let Some(n) = forest.nodes.get_mut(slot as usize) {
                    *n = node;
                }
            }
        }
        forest
    }

    fn push_placeholder(&mut self) {
        self.nodes.push(FlatNode {
            feature: 0,
            threshold: f32::INFINITY,
            left: 0,
        });
        self.values.push(0.0);
    }

    /// One step of a walk from node `i`; a leaf steps to itself.
    #[inline]
    fn step(&self, i: u32, row: &PaddedRow) -> u32 {
        match self.nodes.get(i as usize) {
            // The mask is a no-op (features are < PADDED_WIDTH) that lets the compiler drop
            // the bounds check.
            Some(n) => {
                n.left + u32::from(row[n.feature as usize & (PADDED_WIDTH - 1)] > n.threshold)
            }
            None => i,
        }
    }

    /// The general step, for models wider than [`PADDED_WIDTH`].
    #[inline]
    fn step_slice(&self, i: u32, row: &[f32]) -> u32 {
        match self.nodes.get(i as usize) {
            Some(n) => {
                let v = row.get(n.feature as usize).copied().unwrap_or(f32::NAN);
                n.left + u32::from(v > n.threshold)
            }
            None => i,
        }
    }

    /// The value of the leaf a walk ended on.
    #[inline]
    fn value(&self, i: u32) -> f32 {
        self.values.get(i as usize).copied().unwrap_or(0.0)
    }
}

/// Trees walked side by side in [`Gbdt::predict_margin`].
const TREE_LANES: usize = 32;
/// Models with at most this many features copy each row into a fixed-size, NaN-padded buffer.
const PADDED_WIDTH: usize = 256;
type PaddedRow = [f32; PADDED_WIDTH];

fn padded(row: &[f32]) -> PaddedRow {
    let mut buf = [f32::NAN; PADDED_WIDTH];
    for (b, &v) in buf.iter_mut().zip(row) {
        *b = v;
    }
    buf
}

/// The serialised fields of a [`Gbdt`], checked before a model is built from them.
#[derive(Deserialize)]
struct GbdtFields {
    n_features: usize,
    base_score: f32,
    trees: Vec<Tree>,
    feature_importance: Vec<f64>,
    params: GbdtParams,
    valid_logloss: Vec<f64>,
    best_iteration: Option<usize>,
}

/// A fitted gradient-boosted tree ensemble for binary classification.
///
/// Serialises (serde) to per-tree node arrays with raw `f32` thresholds; deserialising checks
/// every index, so a corrupt artifact is an error rather than a panic at prediction time.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GbdtFields")]
pub struct Gbdt {
    n_features: usize,
    base_score: f32,
    trees: Vec<Tree>,
    feature_importance: Vec<f64>,
    params: GbdtParams,
    valid_logloss: Vec<f64>,
    best_iteration: Option<usize>,
    #[serde(skip)]
    forest: Forest,
}

impl fmt::Debug for Gbdt {
    // The node arrays would bury everything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gbdt")
            .field("n_features", &self.n_features)
            .field("n_trees", &self.trees.len())
            .field("n_nodes", &self.forest.nodes.len())
            .field("base_score", &self.base_score)
            .field("best_iteration", &self.best_iteration)
            .finish_non_exhaustive()
    }
}

impl TryFrom<GbdtFields> for Gbdt {
    type Error = GbdtError;

    fn try_from(fields: GbdtFields) -> Result<Self, Self::Error> {
        Gbdt::from_fields(fields)
    }
}

impl Gbdt {
    fn from_fields(f: GbdtFields) -> Result<Gbdt, GbdtError> {
        if f.n_features == 0 {
            return Err(GbdtError::InvalidModel("n_features is 0".into()));
        }
        if f.feature_importance.len() != f.n_features {
            return Err(GbdtError::InvalidModel(format!(
                "{} feature importances for {} features",
                f.feature_importance.len(),
                f.n_features
            )));
        }
        if !f.base_score.is_finite() {
            return Err(GbdtError::InvalidModel("base_score is not finite".into()));
        }
        let total: usize = f.trees.iter().map(Tree::len).sum();
        if total >= u32::MAX as usize {
            return Err(GbdtError::InvalidModel(format!(
                "{total} nodes is too many"
            )));
        }
        for (t, tree) in f.trees.iter().enumerate() {
            tree.check(f.n_features)
                .map_err(|e| GbdtError::InvalidModel(format!("tree {t}: {e}")))?;
        }
        let forest = Forest::from_trees(&f.trees);
        Ok(Gbdt {
            n_features: f.n_features,
            base_score: f.base_score,
            trees: f.trees,
            feature_importance: f.feature_importance,
            params: f.params,
            valid_logloss: f.valid_logloss,
            best_iteration: f.best_iteration,
            forest,
        })
    }

    /// Number of feature columns the model was trained on.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees kept.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The starting margin: log-odds of the (weighted) training positive rate.
    pub fn base_score(&self) -> f32 {
        self.base_score
    }

    /// The hyperparameters the model was trained with.
    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// Validation logloss after each round (empty without a validation set), including the
    /// rounds after the best one that early stopping discarded.
    pub fn valid_logloss(&self) -> &[f64] {
        &self.valid_logloss
    }

    /// With early stopping, the number of rounds kept (the best validation round, 1-based).
    pub fn best_iteration(&self) -> Option<usize> {
        self.best_iteration
    }

    /// Total split gain per feature over all kept trees (not normalised); one entry per feature.
    pub fn feature_importance(&self) -> Vec<f64> {
        self.feature_importance.clone()
    }

    /// The raw score (log-odds) of one row of `n_features` values. A row goes right at a
    /// split when its value is greater than the threshold; a NaN or a missing trailing value
    /// (short row) goes left.
    pub fn predict_margin(&self, row: &[f32]) -> f32 {
        if self.n_features <= PADDED_WIDTH {
            let row = padded(row.get(..self.n_features).unwrap_or(row));
            self.walk_trees(|i| self.forest.step(i, &row))
        } else {
            self.walk_trees(|i| self.forest.step_slice(i, row))
        }
    }

    fn walk_trees(&self, step: impl Fn(u32) -> u32) -> f32 {
        let forest = &self.forest;
        let mut margin = self.base_score;
        // A walk is a chain of dependent loads; walking many trees side by side lets the CPU
        // overlap them instead of waiting on each in turn.
        let mut at = [0u32; TREE_LANES];
        for group in forest.trees.chunks(TREE_LANES) {
            let lanes = &mut at[..group.len()];
            for (a, t) in lanes.iter_mut().zip(group) {
                *a = t.root;
            }
            let depth = group.iter().map(|t| t.depth).max().unwrap_or(0);
            for _ in 0..depth {
                for a in lanes.iter_mut() {
                    *a = step(*a);
                }
            }
            // Summed in tree order, as in training, so both give the same bits.
            for &a in lanes.iter() {
                margin += forest.value(a);
            }
        }
        margin
    }

    /// The probability of the positive class for one row, kept strictly inside (0, 1).
    pub fn predict_proba_row(&self, row: &[f32]) -> f32 {
        proba(self.predict_margin(row))
    }

    /// Probabilities for every row of `x` (in parallel over rows for large batches), each
    /// identical to [`Gbdt::predict_proba_row`] on that row.
    pub fn predict_proba(&self, x: ArrayView2<f32>) -> Array1<f32> {
        let x = x.as_standard_layout();
        let mut out = Array1::zeros(x.nrows());
        let zip = Zip::from(&mut out).and(x.rows());
        let one = |o: &mut f32, row: ArrayView1<f32>| {
            *o = match row.as_slice() {
                Some(s) => self.predict_proba_row(s),
                None => self.predict_proba_row(&row.to_vec()),
            };
        };
        // A candidate list of ~10 rows is cheaper to score than to hand to the pool.
        if x.nrows() < 64 {
            zip.for_each(one);
        } else {
            zip.par_for_each(one);
        }
        out
    }
}

/// The logistic of a margin, clamped to the open interval (0, 1): a saturated f32 sigmoid would
/// give exactly 0 or 1, which downstream log-odds and calibration cannot use. Rank order near
/// the extremes is better read from [`Gbdt::predict_margin`].
fn proba(margin: f32) -> f32 {
    const BELOW_ONE: f32 = 1.0 - f32::EPSILON / 2.0;
    (sigmoid64(f64::from(margin)) as f32).clamp(f32::MIN_POSITIVE, BELOW_ONE)
}

// ---------------------------------------------------------------------------------------------
// linfa

/// linfa's `Fit` on a dataset of `f32` records, `bool` targets and optional dataset weights.
/// Call it as `Fit::fit(&params, &dataset)`: the inherent `fit` takes precedence in method syntax.
impl<D, T> Fit<ArrayBase<D, Ix2>, T, GbdtError> for ValidGbdtParams
where
    D: Data<Elem = f32>,
    T: AsSingleTargets<Elem = bool>,
{
    type Object = Gbdt;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<Gbdt, GbdtError> {
        let y: Array1<f32> = dataset
            .as_single_targets()
            .mapv(|b| if b { 1.0 } else { 0.0 });
        let w = dataset.weights().map(ArrayView1::from);
        ValidGbdtParams::fit(self, dataset.records.view(), y.view(), w, None)
    }
}

/// Validates, then fits as [`ValidGbdtParams`] does.
impl<D, T> Fit<ArrayBase<D, Ix2>, T, GbdtError> for GbdtParams
where
    D: Data<Elem = f32>,
    T: AsSingleTargets<Elem = bool>,
{
    type Object = Gbdt;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<Gbdt, GbdtError> {
        Fit::fit(&self.validate()?, dataset)
    }
}

/// linfa's prediction: `true` where the probability is at least 0.5. A target array shorter
/// than `x` is filled as far as it goes.
impl<D> PredictInplace<ArrayBase<D, Ix2>, Array1<bool>> for Gbdt
where
    D: Data<Elem = f32>,
{
    fn predict_inplace<'a>(&'a self, x: &'a ArrayBase<D, Ix2>, y: &mut Array1<bool>) {
        let p = self.predict_proba(x.view());
        for (t, &p) in y.iter_mut().zip(p.iter()) {
            *t = p >= 0.5;
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<bool> {
        Array1::from_elem(x.nrows(), false)
    }
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
