//! The fitted model: the serialised trees, the flat node array prediction walks, checking a
//! deserialised artifact, and prediction (margins, probabilities, linfa's `PredictInplace`).

use super::GbdtError;
use super::params::GbdtParams;
use super::train::{Split, sigmoid64};
use linfa::traits::PredictInplace;
use ndarray::{Array1, ArrayBase, ArrayView1, ArrayView2, Data, Ix2, Zip};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One tree as serialised: parallel arrays indexed by node, the root at 0. A node whose `left`
/// and `right` are both 0 is a leaf (no node points back to the root); other nodes send a row
/// right when `row[feature] > threshold` (NaN goes left). Children always have larger indices
/// than their parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Tree {
    pub(super) feature: Vec<u32>,
    threshold: Vec<f32>,
    pub(super) left: Vec<u32>,
    pub(super) right: Vec<u32>,
    pub(super) value: Vec<f32>,
    /// Split gain, for importance; 0 at leaves.
    pub(super) gain: Vec<f64>,
    /// The training bin of each split, only needed while training.
    #[serde(skip)]
    pub(super) bin: Vec<u8>,
}

impl Tree {
    pub(super) fn with_root() -> Tree {
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

    pub(super) fn len(&self) -> usize {
        self.feature.len()
    }

    pub(super) fn is_leaf(&self, i: usize) -> bool {
        self.left.get(i).is_none_or(|&l| l == 0) && self.right.get(i).is_none_or(|&r| r == 0)
    }

    /// Makes leaf `node` a split and appends its two children (leaves for now).
    pub(super) fn split(&mut self, node: usize, split: &Split, threshold: f32) -> (usize, usize) {
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
    pub(super) fn leaf_value(&self, row: &[f32]) -> f32 {
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
    pub(super) fn depth(&self) -> u32 {
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
    pub(super) feature: u32,
    threshold: f32,
    pub(super) left: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FlatTree {
    root: u32,
    pub(super) depth: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Forest {
    nodes: Vec<FlatNode>,
    /// Leaf values by node index (0 at splits), read once per tree at the end of a walk.
    pub(super) values: Vec<f32>,
    pub(super) trees: Vec<FlatTree>,
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
    pub(super) fn value(&self, i: u32) -> f32 {
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
pub(super) struct GbdtFields {
    pub(super) n_features: usize,
    pub(super) base_score: f32,
    pub(super) trees: Vec<Tree>,
    pub(super) feature_importance: Vec<f64>,
    pub(super) params: GbdtParams,
    pub(super) valid_logloss: Vec<f64>,
    pub(super) best_iteration: Option<usize>,
}

/// A fitted gradient-boosted tree ensemble for binary classification.
///
/// Serialises (serde) to per-tree node arrays with raw `f32` thresholds; deserialising checks
/// every index, so a corrupt artifact is an error rather than a panic at prediction time.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GbdtFields")]
pub struct Gbdt {
    pub(super) n_features: usize,
    pub(super) base_score: f32,
    pub(super) trees: Vec<Tree>,
    pub(super) feature_importance: Vec<f64>,
    pub(super) params: GbdtParams,
    pub(super) valid_logloss: Vec<f64>,
    pub(super) best_iteration: Option<usize>,
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
    pub(super) fn from_fields(f: GbdtFields) -> Result<Gbdt, GbdtError> {
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
    pub(crate) fn predict_margin(&self, row: &[f32]) -> f32 {
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
    pub(crate) fn predict_proba(&self, x: ArrayView2<f32>) -> Array1<f32> {
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
