//! The jobs the `cashmatch-train` commands run, as library functions the tests call too.

use crate::evaluate::{self, EvalError, ModelEval, Prepared};
use crate::export::{self, Comparison, ExportError};
use crate::history::{History, HistoryError};
use crate::report::{self, ReportError, ReportInput};
use crate::retrain::{self, RunConfig, Trained, Verdict};
use cashmatch_core::matching::candidates::CandidateLimits;
use cashmatch_core::model::artifact::{CARD_FILE, Model, ModelError};
use cashmatch_core::train::TrainError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Faults of a job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("training: {0}")]
    Train(#[from] TrainError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Whether to draw progress bars (on a terminal) or stay quiet (tests).
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    pub progress: bool,
}

impl Ui {
    /// A bar of `len` steps, hidden when progress is off or stderr is not a terminal.
    pub fn bar(&self, len: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg:50} [{bar:30}] {pos}/{len} ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    }
}

/// Extra outputs of a training run.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// Export the feature matrices to this directory.
    pub export: Option<PathBuf>,
    /// Also run the LightGBM comparison on the export (needs `export`).
    pub lightgbm: bool,
}

/// What a training run produced.
pub struct TrainOutcome {
    pub history: History,
    pub prepared: Prepared,
    pub trained: Trained,
    pub new: ModelEval,
    pub comparison: Option<Comparison>,
}

/// Loads and replays a history, cutting its holdout.
pub fn load_and_prepare(
    dir: &Path,
    holdout_fraction: f64,
    ui: Ui,
) -> Result<(History, Prepared), JobError> {
    let bar = ui.bar(5);
    let history = History::load(dir, &bar)?;
    bar.finish_and_clear();
    for e in history.errors.iter().take(20) {
        eprintln!("warning: {e}");
    }
    if history.errors.len() > 20 {
        eprintln!(
            "warning: ... and {} more bad rows",
            history.errors.len() - 20
        );
    }
    let bar = ui.bar(history.payments.len() as u64);
    let prepared = evaluate::prepare(
        &history,
        holdout_fraction,
        &CandidateLimits::default(),
        &bar,
    )?;
    bar.finish_and_clear();
    for e in prepared.ledger_errors.iter().take(5) {
        eprintln!("warning: ledger: {e}");
    }
    Ok((history, prepared))
}

fn save(dir: &Path, model: &Model, card: &str) -> Result<(), JobError> {
    model.save(dir, card)?;
    Ok(())
}

/// Fits on the history before the holdout, judges the new model on the holdout, and writes the
/// model, its card and the report into `out`. `version` is used when given, else `rc.version`,
/// else [`retrain::default_version`].
fn fit_and_judge(
    history: History,
    prepared: Prepared,
    version: String,
    out: &Path,
    rc: &RunConfig,
    extras: &Extras,
    ui: Ui,
) -> Result<TrainOutcome, JobError> {
    let bar = ui.bar(2);
    let trained = retrain::fit(&history, &prepared, rc, &version, &bar)?;
    let model = Arc::new(trained.model.clone());
    let new = evaluate::evaluate(model.clone(), "new", &prepared, &history, &bar)?;
    bar.finish_and_clear();
    save(out, &trained.model, &trained.card)?;
    let comparison = match &extras.export {
        Some(dir) => {
            let probs = model.candidate_probabilities(prepared.hold.x.view());
            export::export_features(dir, &prepared, &trained, &probs)?;
            if extras.lightgbm {
                Some(export::run_lightgbm(dir)?)
            } else {
                None
            }
        }
        None => None,
    };
    Ok(TrainOutcome {
        history,
        prepared,
        trained,
        new,
        comparison,
    })
}

/// `cashmatch-train train`: fit, judge on the holdout, write `out` (model, card, report).
pub fn train(
    history_dir: &Path,
    out: &Path,
    rc: &RunConfig,
    extras: &Extras,
    ui: Ui,
) -> Result<TrainOutcome, JobError> {
    let (history, prepared) = load_and_prepare(history_dir, rc.holdout_fraction, ui)?;
    let version = rc
        .version
        .clone()
        .unwrap_or_else(|| retrain::default_version(&history, &prepared, rc.seed));
    let o = fit_and_judge(history, prepared, version, out, rc, extras, ui)?;
    report::write(
        out,
        &ReportInput {
            title: format!("Training report: {}", o.trained.model.version),
            history: &o.history,
            prepared: &o.prepared,
            evals: vec![&o.new],
            model: &o.trained.model,
            card: &o.trained.card,
            verdict: None,
            comparison: o.comparison.as_ref(),
            fit_seconds: Some(o.trained.fit_seconds),
        },
    )?;
    Ok(o)
}

/// What a champion/challenger run decided.
pub struct RetrainOutcome {
    pub train: TrainOutcome,
    pub active: Option<ModelEval>,
    pub active_name: String,
    pub verdict: Verdict,
    /// The published directory, when published.
    pub published: Option<PathBuf>,
}

/// `cashmatch-train retrain`: fit a challenger, judge it and the champion on the same holdout,
/// publish it to `models/<version>/` and point `models/ACTIVE` at it when it is better or
/// `force`d. The challenger (model, card, report) is written to `out` either way.
#[allow(clippy::too_many_arguments)]
pub fn retrain(
    history_dir: &Path,
    active_dir: Option<&Path>,
    models: &Path,
    out: &Path,
    force: bool,
    rc: &RunConfig,
    extras: &Extras,
    ui: Ui,
) -> Result<RetrainOutcome, JobError> {
    let (active_model, active_name) = retrain::load_active(active_dir, models);
    let (history, prepared) = load_and_prepare(history_dir, rc.holdout_fraction, ui)?;
    let base = rc
        .version
        .clone()
        .unwrap_or_else(|| retrain::default_version(&history, &prepared, rc.seed));
    let version = retrain::unused_version(models, &base);
    let o = fit_and_judge(history, prepared, version.clone(), out, rc, extras, ui)?;
    let active = match active_model {
        Some(m) => {
            let bar = ui.bar(1);
            let e = evaluate::evaluate(Arc::new(m), "active", &o.prepared, &o.history, &bar)?;
            bar.finish_and_clear();
            Some(e)
        }
        None => None,
    };
    let verdict = retrain::judge(
        active.as_ref().map(retrain::Outcomes::of).as_ref(),
        &retrain::Outcomes::of(&o.new),
        &rc.costs,
        force,
    );
    let mut evals: Vec<&ModelEval> = active.iter().collect();
    evals.push(&o.new);
    report::write(
        out,
        &ReportInput {
            title: format!(
                "Retraining report: {} against {}",
                o.trained.model.version, active_name
            ),
            history: &o.history,
            prepared: &o.prepared,
            evals,
            model: &o.trained.model,
            card: &o.trained.card,
            verdict: Some(&verdict),
            comparison: o.comparison.as_ref(),
            fit_seconds: Some(o.trained.fit_seconds),
        },
    )?;
    let published = if verdict.publish {
        std::fs::create_dir_all(models).map_err(|source| JobError::Io {
            path: models.display().to_string(),
            source,
        })?;
        Some(
            retrain::publish(out, models, &version).map_err(|source| JobError::Io {
                path: models.display().to_string(),
                source,
            })?,
        )
    } else {
        None
    };
    Ok(RetrainOutcome {
        train: o,
        active,
        active_name,
        verdict,
        published,
    })
}

/// `cashmatch-train report`: judges an existing model on a history's holdout and writes the
/// report (with the model's own card) into `out`.
pub fn report_model(
    model_dir: &Path,
    history_dir: &Path,
    out: &Path,
    holdout_fraction: f64,
    ui: Ui,
) -> Result<ModelEval, JobError> {
    let model = Model::load(model_dir)?;
    let card_path = model_dir.join(CARD_FILE);
    let card = std::fs::read_to_string(&card_path).unwrap_or_default();
    let (history, prepared) = load_and_prepare(history_dir, holdout_fraction, ui)?;
    let bar = ui.bar(1);
    let m = evaluate::evaluate(Arc::new(model.clone()), "model", &prepared, &history, &bar)?;
    bar.finish_and_clear();
    report::write(
        out,
        &ReportInput {
            title: format!("Model report: {}", model.version),
            history: &history,
            prepared: &prepared,
            evals: vec![&m],
            model: &model,
            card: &card,
            verdict: None,
            comparison: None,
            fit_seconds: None,
        },
    )?;
    Ok(m)
}
