//! Fitting a challenger on the history before the holdout, judging it against the champion on
//! the holdout, and publishing it to the model directory.
//!
//! Publishing writes `MODELS/<version>/` (the artifact, its card and its report) and then points
//! `MODELS/ACTIVE` at it: a one-line text file holding the version directory's name, replaced
//! atomically (written beside, then renamed), so a service watching it never reads half a name
//! and never sees a name before its directory is complete. docs/training.md describes the
//! service side.

use crate::evaluate::{ModelEval, Prepared};
use crate::history::History;
use cashmatch::model::artifact::{MODEL_FILE, Model, ModelError};
use cashmatch::model::gbdt::GbdtParams;
use cashmatch::train::{self, TrainConfig, TrainError};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use cashmatch::model::artifact::{ACTIVE_FILE, active_dir};

/// Settings of a training run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    /// Auto-apply precision the threshold must guarantee (95% confidence).
    pub target_precision: f64,
    /// Share of the history's payments (the latest) held out to judge models.
    pub holdout_fraction: f64,
    /// Version of the new model; derived from the history and the seed when absent.
    pub version: Option<String>,
    pub params: GbdtParams,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 7,
            target_precision: 0.997,
            holdout_fraction: 0.2,
            version: None,
            params: GbdtParams::default(),
        }
    }
}

/// A newly fitted model.
pub struct Trained {
    pub model: Model,
    pub card: String,
    /// The configuration `train::fit` ran with (its internal cut points follow from it).
    pub config: TrainConfig,
    pub fit_seconds: f64,
}

/// The default version of a model fitted on `h` before the holdout: the date of the last
/// payment it learnt from and the seed, so the same inputs give the same artifact.
pub fn default_version(h: &History, p: &Prepared, seed: u64) -> String {
    let last = h.payments[..p.holdout_start]
        .iter()
        .rev()
        .find_map(|p| p.payment_date)
        .map_or_else(|| "undated".to_string(), |d| d.format("%Y%m%d").to_string());
    format!("retrain-{last}-s{seed}")
}

/// Fits a model on the payments before the holdout with `cashmatch::train::fit`.
pub fn fit(
    h: &History,
    p: &Prepared,
    rc: &RunConfig,
    version: &str,
    bar: &ProgressBar,
) -> Result<Trained, TrainError> {
    let counts: Vec<String> = h
        .label_counts
        .payments
        .iter()
        .map(|(s, n)| format!("{n} labelled by {s}"))
        .collect();
    let config = TrainConfig {
        params: GbdtParams {
            seed: rc.seed,
            ..rc.params.clone()
        },
        target_precision: rc.target_precision,
        version: version.to_string(),
        training_data: format!(
            "The first {} of {} payments of the history in `{}` ({} candidate rows; payments {}), \
             replayed through the engine's candidate generator and features; the last {} \
             payments were held out to judge it",
            p.holdout_start,
            h.payments.len(),
            h.dir.display(),
            p.fit.y.len(),
            if counts.is_empty() {
                "none labelled".to_string()
            } else {
                counts.join(", ")
            },
            h.payments.len() - p.holdout_start,
        ),
        habits: p.habits.clone(),
        ..Default::default()
    };
    bar.set_message(format!("fitting trees on {} candidate rows", p.fit.y.len()));
    let t = Instant::now();
    let (model, card) = train::fit(&p.fit, &config)?;
    bar.inc(1);
    Ok(Trained {
        model,
        card,
        config,
        fit_seconds: t.elapsed().as_secs_f64(),
    })
}

/// Whether a challenger replaces the champion, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub publish: bool,
    /// The challenger is better on the holdout (whether or not forced).
    pub better: bool,
    pub reason: String,
}

/// The champion/challenger rule: the challenger must be touchless more often at its certified
/// threshold and make no more wrong auto-applies than the champion, on the same holdout.
pub fn judge(active: Option<&ModelEval>, new: &ModelEval, force: bool) -> Verdict {
    let (better, reason) = match active {
        None => (true, "no usable active model to compare with".to_string()),
        Some(a) => {
            let (ta, tn) = (a.overall().touchless(), new.overall().touchless());
            let (wa, wn) = (a.wrong(), new.wrong());
            let more_touchless = tn > ta;
            let no_more_wrong = wn <= wa;
            let why = format!(
                "touchless {:.2}% vs {:.2}% for the active model, wrong auto-applies {wn} vs {wa}",
                100.0 * tn,
                100.0 * ta
            );
            match (more_touchless, no_more_wrong) {
                (true, true) => (true, format!("better: {why}")),
                (false, _) => (false, format!("not more touchless: {why}")),
                (true, false) => (false, format!("more wrong auto-applies: {why}")),
            }
        }
    };
    let publish = better || force;
    let reason = if force && !better {
        format!("published because forced; {reason}")
    } else {
        reason
    };
    Verdict {
        publish,
        better,
        reason,
    }
}

/// A version name not yet used in `models`: `base`, else `base.2`, `base.3`...
pub fn unused_version(models: &Path, base: &str) -> String {
    if !models.join(base).exists() {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}.{i}"))
        .find(|v| !models.join(v).exists())
        .unwrap_or_else(|| base.to_string())
}

/// Loads the champion: `dir`, else what `models/ACTIVE` names, else the model built into
/// cashmatch. A model that cannot be loaded (say, trained on another feature schema) is
/// reported and leaves no champion.
pub fn load_active(dir: Option<&Path>, models: &Path) -> (Option<Model>, String) {
    let chosen = dir.map(Path::to_path_buf).or_else(|| active_dir(models));
    let loaded: Result<Model, ModelError> = match &chosen {
        Some(d) => Model::load(d),
        None => Model::embedded_default(),
    };
    let shown = chosen.map_or_else(
        || "the model built into cashmatch".to_string(),
        |d| d.display().to_string(),
    );
    match loaded {
        Ok(m) => (Some(m), shown),
        Err(e) => (None, format!("{shown} (unusable: {e})")),
    }
}

/// Copies the challenger's directory `from` to `models/<version>/` and points `models/ACTIVE`
/// at it. Returns the new directory.
pub fn publish(from: &Path, models: &Path, version: &str) -> std::io::Result<PathBuf> {
    let to = models.join(version);
    if to.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; versions are never overwritten",
                to.display()
            ),
        ));
    }
    // Built under a temporary name and renamed, so a half-copied directory never has the
    // version's name.
    let staging = models.join(format!(".{version}.partial"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), staging.join(entry.file_name()))?;
        }
    }
    if !staging.join(MODEL_FILE).is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} has no {MODEL_FILE}", from.display()),
        ));
    }
    std::fs::rename(&staging, &to)?;
    let pointer = models.join(ACTIVE_FILE);
    let tmp = models.join(format!(".{ACTIVE_FILE}.tmp"));
    std::fs::write(&tmp, format!("{version}\n"))?;
    std::fs::rename(&tmp, &pointer)?;
    Ok(to)
}
