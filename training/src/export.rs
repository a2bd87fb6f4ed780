//! The feature matrices as Parquet, for a reference booster trained on exactly the rows ours
//! was, and the comparison with LightGBM (`training/lightgbm_compare.py`).
//!
//! `DIR/features_train.parquet` holds the rows our trees grew on (`split` 0) and the rows that
//! were scored for early stopping (`split` 1); `DIR/features_threshold.parquet` the rows of the
//! slice our thresholds were certified on (`train::SplitPoints`), on which each booster chooses
//! its own threshold; `DIR/features_holdout.parquet` the holdout's rows, on which both are
//! judged at the threshold chosen before. The last two carry our model's candidate probability
//! in `ours`. All have `payment` (the payment's index in its file, to group candidates),
//! `label` and the feature columns by name.
//! `DIR/compare_params.json` carries our hyperparameters and targets so the script mirrors them.

use crate::evaluate::Prepared;
use crate::retrain::Trained;
use cashmatch_core::matching::features::FEATURE_NAMES;
use cashmatch_core::train::{Examples, SplitPoints};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Faults exporting or comparing.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("the LightGBM comparison failed: {0}")]
    Compare(String),
}

fn io_err(path: &Path) -> impl Fn(String) -> ExportError + '_ {
    move |message| ExportError::Io {
        path: path.display().to_string(),
        message,
    }
}

/// What the comparison script is told.
#[derive(Serialize)]
struct CompareParams<'a> {
    params: &'a cashmatch_core::model::gbdt::GbdtParams,
    target_precision: f64,
    confidence: f64,
    /// Holdout payments that have a correct answer (the touchless denominator; some have no
    /// candidate rows at all).
    holdout_with_truth: usize,
    ours_fit_seconds: f64,
    ours_rounds: usize,
}

/// One booster's figures on the holdout, as the script reports them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BoosterFigures {
    pub auc: f64,
    /// Holdout payments auto-applied correctly at the certified threshold / with truth.
    pub touchless: f64,
    pub precision: f64,
    pub n_auto: usize,
    pub train_seconds: f64,
    pub rounds: usize,
}

/// Ours beside LightGBM on the same matrices.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub ours: BoosterFigures,
    pub lightgbm: BoosterFigures,
    pub lightgbm_version: String,
    pub train_rows: usize,
    pub holdout_rows: usize,
}

fn frame(
    ex: &Examples,
    rows: std::ops::Range<usize>,
    extra: Vec<Column>,
) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let mut payment = vec![0u32; n];
    for (pi, &(a, b)) in ex.rows.iter().enumerate() {
        for r in a.max(rows.start)..b.min(rows.end) {
            payment[r - rows.start] = pi as u32;
        }
    }
    let mut cols = vec![
        Column::new("payment".into(), payment),
        Column::new(
            "label".into(),
            ex.y.slice(ndarray::s![rows.clone()]).to_vec(),
        ),
    ];
    cols.extend(extra);
    for (j, name) in FEATURE_NAMES.iter().enumerate() {
        let v: Vec<f32> = ex.x.slice(ndarray::s![rows.clone(), j]).to_vec();
        cols.push(Column::new((*name).into(), v));
    }
    DataFrame::new(n, cols)
}

fn write(path: &Path, df: &mut DataFrame) -> Result<(), ExportError> {
    let e = io_err(path);
    let f = std::fs::File::create(path).map_err(|x| e(x.to_string()))?;
    ParquetWriter::new(f)
        .finish(df)
        .map(|_| ())
        .map_err(|x| e(x.to_string()))
}

/// Writes the two matrices and the parameters into `dir`.
pub fn export_features(
    dir: &Path,
    p: &Prepared,
    trained: &Trained,
    ours_holdout_probs: &[f64],
) -> Result<(), ExportError> {
    std::fs::create_dir_all(dir).map_err(|x| io_err(dir)(x.to_string()))?;
    let fit = &p.fit;
    let cut = SplitPoints::of(fit.rows.len(), &trained.config);
    let row_at = |pi: usize| fit.rows.get(pi).map_or(fit.y.len(), |r| r.0);
    let (r_train, r_valid) = (row_at(cut.train_end), row_at(cut.calibration_start));
    let split: Vec<u32> = (0..r_valid).map(|r| u32::from(r >= r_train)).collect();
    let path = dir.join("features_train.parquet");
    let mut df = frame(fit, 0..r_valid, vec![Column::new("split".into(), split)])
        .map_err(|x| io_err(&path)(x.to_string()))?;
    write(&path, &mut df)?;
    drop(df);
    let thr = row_at(cut.threshold_start)..row_at(cut.test_start);
    let ours_thr = trained
        .model
        .candidate_probabilities(fit.x.slice(ndarray::s![thr.clone(), ..]));
    let path = dir.join("features_threshold.parquet");
    let mut df = frame(fit, thr, vec![Column::new("ours".into(), ours_thr)])
        .map_err(|x| io_err(&path)(x.to_string()))?;
    write(&path, &mut df)?;
    drop(df);
    let hold = &p.hold;
    let path = dir.join("features_holdout.parquet");
    let mut df = frame(
        hold,
        0..hold.y.len(),
        vec![Column::new("ours".into(), ours_holdout_probs.to_vec())],
    )
    .map_err(|x| io_err(&path)(x.to_string()))?;
    write(&path, &mut df)?;
    let params = CompareParams {
        params: &trained.config.params,
        target_precision: trained.config.target_precision,
        confidence: trained.config.confidence,
        holdout_with_truth: hold.has_truth.iter().filter(|&&t| t).count(),
        ours_fit_seconds: trained.fit_seconds,
        ours_rounds: trained.model.gbdt.n_trees(),
    };
    let path = dir.join("compare_params.json");
    let text = serde_json::to_string_pretty(&params).map_err(|x| io_err(&path)(x.to_string()))?;
    std::fs::write(&path, text).map_err(|x| io_err(&path)(x.to_string()))
}

/// The comparison script shipped beside this crate.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lightgbm_compare.py")
}

/// Runs the comparison script on an exported `dir` (it installs its own Python dependencies)
/// and reads `dir/lightgbm_compare.json`.
pub fn run_lightgbm(dir: &Path) -> Result<Comparison, ExportError> {
    let status = std::process::Command::new("python3")
        .arg(script_path())
        .arg(dir)
        .status()
        .map_err(|e| ExportError::Compare(format!("cannot run python3: {e}")))?;
    if !status.success() {
        return Err(ExportError::Compare(format!(
            "the script exited with {status}"
        )));
    }
    read_comparison(dir)
}

/// Reads the figures a run of the script left in `dir`.
pub fn read_comparison(dir: &Path) -> Result<Comparison, ExportError> {
    let path = dir.join("lightgbm_compare.json");
    let text = std::fs::read_to_string(&path).map_err(|x| io_err(&path)(x.to_string()))?;
    serde_json::from_str(&text).map_err(|x| io_err(&path)(x.to_string()))
}
