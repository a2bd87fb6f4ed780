//! Training: checking the data, binning every feature into quantile bins, the boosting rounds
//! (gradients, row and column sampling, early stopping) and growing each tree best-first from
//! gradient histograms; linfa's `Fit` on both parameter types.

use super::model::{Gbdt, GbdtFields, Tree};
use super::params::{GbdtParams, ValidGbdtParams};
use super::{DataSet, GbdtError};
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::Fit;
use ndarray::{Array1, ArrayBase, ArrayView1, ArrayView2, Data, Ix2};
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

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
    pub(super) fn train(
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
pub(super) fn feature_cuts(values: &mut [f32], max_bins: usize) -> Vec<f32> {
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

pub(super) fn sigmoid64(m: f64) -> f64 {
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

pub(super) fn logloss(margins: &[f32], y: &[f32]) -> f64 {
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
    pub(super) bins: &'a [u8],
    n_rows: usize,
    nbins: &'a [usize],
    pub(super) cuts: &'a [Vec<f32>],
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
    pub(super) n: u32,
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
pub(super) struct Split {
    pub(super) feature: usize,
    pub(super) bin: u8,
    pub(super) gain: f64,
    g: f64,
    h: f64,
    pub(super) n: u32,
}

pub(super) fn score(g: f64, h: f64, lambda: f64) -> f64 {
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
pub(super) struct Leaf {
    pub(super) node: usize,
    start: usize,
    end: usize,
    pub(super) depth: usize,
    g: f64,
    h: f64,
    pub(super) n: u32,
    hist: Option<Hist>,
    pub(super) split: Option<Split>,
}

impl Leaf {
    fn can_split(&self, p: &GbdtParams) -> bool {
        self.depth < p.max_depth
            && self.n as usize >= 2 * p.min_samples_leaf
            && self.h >= 2.0 * p.min_child_hessian
    }
}

pub(super) fn leaf_value(g: f64, h: f64, p: &GbdtParams) -> f32 {
    let d = h.max(0.0) + p.lambda_l2;
    let v = if d > 0.0 {
        -g / d * p.learning_rate
    } else {
        0.0
    };
    if v.is_finite() { v as f32 } else { 0.0 }
}

/// Stable in-place partition of `rows` by `bin(row) <= split_bin`; returns the left count.
pub(super) fn partition(
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
    col: &[u8],
    split_bin: u8,
) -> usize {
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
