//! The model artifact: what a trained model is on disk and in memory.
//!
//! A directory holding `model.json` (the boosted trees, the calibration of the decision score,
//! the auto-apply threshold, the feature schema and the training metrics) and `MODEL_CARD.md`.
//! The threshold and calibration travel with the trees, so a model is never run with another
//! model's threshold. The default model is compiled into the binary, so `cashmatch match` works
//! from any directory.

use crate::matching::features::FEATURE_NAMES;
use crate::matching::habits::ReferenceHabits;
use crate::matching::strata::Stratum;
use crate::model::calibration::Calibrator;
use crate::model::envelope::Envelope;
use crate::model::gbdt::Gbdt;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The model shipped in `models/default`, embedded at build time.
const DEFAULT_MODEL_JSON: &str = include_str!("../../../models/default/model.json");

/// File name of the artifact inside a model directory.
pub const MODEL_FILE: &str = "model.json";
/// File name of the model card inside a model directory.
pub const CARD_FILE: &str = "MODEL_CARD.md";

/// The pointer file of a models directory (`MODELS/<version>/` beside it): one line naming the
/// active version's directory. The retraining job replaces it atomically when it publishes; a
/// service started with `--models-dir MODELS` follows it (docs/training.md).
pub const ACTIVE_FILE: &str = "ACTIVE";

/// The model directory `models/ACTIVE` names, if the file exists and names one.
pub fn active_dir(models: &Path) -> Option<std::path::PathBuf> {
    let name = std::fs::read_to_string(models.join(ACTIVE_FILE)).ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| models.join(name))
}

/// Faults loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a cashmatch model: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path}: the model was trained on {found} features ({first_diff}) but this build computes {expected}; retrain it"
    )]
    Schema {
        path: String,
        expected: usize,
        found: usize,
        first_diff: String,
    },
}

/// Figures measured when the model was trained, reported by `cashmatch` and the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingMetrics {
    pub train_payments: usize,
    pub train_candidates: usize,
    pub holdout_payments: usize,
    /// Candidate-level AUC on the holdout.
    pub holdout_auc: f64,
    /// Share of holdout payments with a correct answer auto-applied correctly at the threshold.
    pub holdout_touchless: f64,
    /// Precision of auto-applied holdout payments at the threshold.
    pub holdout_precision: f64,
    /// The one-sided 95% lower confidence bound of that precision (Clopper-Pearson).
    pub holdout_precision_lower_bound: f64,
    /// Share of holdout payments whose correct answer was among the candidates.
    pub holdout_recall_at_candidates: f64,
    pub target_precision: f64,
    pub rounds: usize,
    pub seed: u64,
}

/// The auto-apply threshold of one evidence stratum, certified on the threshold slice
/// (`train::certify_strata`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StratumThreshold {
    pub stratum: Stratum,
    /// Auto-apply at or above this calibrated confidence; `None`: never (too few labels, or
    /// nothing certified).
    pub threshold: Option<f64>,
    /// Labelled payments of the stratum in the threshold slice.
    pub labels: usize,
    /// Labels that zero errors would need to certify the target.
    pub labels_needed: usize,
    /// Threshold-slice payments at or above the threshold, and the wrong ones among them.
    pub n_auto: usize,
    pub errors: usize,
    /// The one-sided Clopper-Pearson lower bound of their precision.
    pub lower_bound: f64,
}

/// A trained model with everything needed to use it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    /// Identifies the model in every decision it makes.
    pub version: String,
    /// The columns the trees were trained on, in order.
    pub feature_names: Vec<String>,
    pub gbdt: Gbdt,
    /// Maps the decision score to a calibrated probability of being exactly right.
    pub calibrator: Calibrator,
    /// Auto-apply at or above this calibrated confidence. With per-stratum thresholds
    /// (`strata`), the loosest of them, shown where one number is asked for; the engine uses
    /// [`Model::threshold_for`].
    pub threshold: f64,
    pub metrics: TrainingMetrics,
    /// Where the training data came from, for the model card.
    pub training_data: String,
    /// How the customers of the training history quote references; the candidate generator
    /// reads them this way (absent from models that learnt none, such as the shipped one).
    #[serde(default, skip_serializing_if = "ReferenceHabits::is_empty")]
    pub habits: ReferenceHabits,
    /// One threshold per evidence stratum. Absent from models trained before strata: they
    /// apply `threshold` to every stratum, as they were certified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strata: Vec<StratumThreshold>,
    /// Where the training rows lie: the engine does not auto-apply a candidate outside it.
    /// Absent from models trained before the guard, which have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

impl Model {
    /// The model compiled into the binary.
    pub fn embedded_default() -> Result<Model, ModelError> {
        Model::from_json(DEFAULT_MODEL_JSON, "<embedded models/default>")
    }

    /// The auto-apply threshold of a stratum: its own when the model certified per stratum
    /// (`None` for a stratum it could not certify, which must never auto-apply), else the one
    /// threshold of an older model.
    pub(crate) fn threshold_for(&self, stratum: Stratum) -> Option<f64> {
        if self.strata.is_empty() {
            return Some(self.threshold);
        }
        self.strata
            .iter()
            .find(|s| s.stratum == stratum)
            .and_then(|s| s.threshold)
    }

    /// Loads `dir/model.json`.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let path = dir.join(MODEL_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: shown.clone(),
            source,
        })?;
        Model::from_json(&text, &shown)
    }

    fn from_json(text: &str, path: &str) -> Result<Model, ModelError> {
        let m: Model = serde_json::from_str(text).map_err(|source| ModelError::Parse {
            path: path.to_string(),
            source,
        })?;
        m.check_schema(path)?;
        Ok(m)
    }

    /// Refuses a model trained on another feature schema: scoring it would be silent nonsense.
    fn check_schema(&self, path: &str) -> Result<(), ModelError> {
        let same = self.feature_names.len() == FEATURE_NAMES.len()
            && self
                .feature_names
                .iter()
                .zip(FEATURE_NAMES)
                .all(|(a, b)| a == b);
        if same {
            return Ok(());
        }
        let first_diff = self
            .feature_names
            .iter()
            .zip(FEATURE_NAMES)
            .position(|(a, b)| a != b)
            .map(|i| {
                format!(
                    "column {i}: {:?} vs {:?}",
                    self.feature_names[i], FEATURE_NAMES[i]
                )
            })
            .unwrap_or_else(|| "a different number of columns".to_string());
        Err(ModelError::Schema {
            path: path.to_string(),
            expected: FEATURE_NAMES.len(),
            found: self.feature_names.len(),
            first_diff,
        })
    }

    /// Writes `dir/model.json` and `dir/MODEL_CARD.md`.
    pub fn save(&self, dir: &Path, card: &str) -> Result<(), ModelError> {
        let io = |path: &Path| {
            let shown = path.display().to_string();
            move |source| ModelError::Io {
                path: shown,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(MODEL_FILE);
        let text = serde_json::to_string(self).map_err(|source| ModelError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        std::fs::write(&path, text).map_err(io(&path))?;
        let card_path = dir.join(CARD_FILE);
        std::fs::write(&card_path, card).map_err(io(&card_path))?;
        Ok(())
    }

    /// Raw probability that each candidate row is exactly right, scored in parallel.
    pub fn candidate_probabilities(&self, x: ArrayView2<f32>) -> Vec<f64> {
        if x.nrows() < 64 {
            return x
                .rows()
                .into_iter()
                .map(|r| self.row_probability(r.as_slice()))
                .collect();
        }
        x.axis_chunks_iter(ndarray::Axis(0), 32)
            .into_par_iter()
            .flat_map_iter(|chunk| {
                chunk
                    .rows()
                    .into_iter()
                    .map(|r| self.row_probability(r.as_slice()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn row_probability(&self, row: Option<&[f32]>) -> f64 {
        match row {
            Some(r) => self.gbdt.predict_proba_row(r) as f64,
            None => 0.0,
        }
    }
}

/// The decision score of the best candidate: its probability, discounted by its strongest
/// rival's, since at most one of them can be right.
pub(crate) fn decision_score(best: f64, rival: f64) -> f64 {
    best * (1.0 - rival)
}
