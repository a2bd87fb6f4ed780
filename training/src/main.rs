//! `cashmatch-train`: the batch retraining job (docs/training.md). A thin shell over the
//! `cashmatch_training` library.

use anyhow::{Context, Result};
use cashmatch_training::jobs::{self, Extras, Ui};
use cashmatch_training::retrain::{CostModel, RunConfig};
use cashmatch_training::{bench, history};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cashmatch-train",
    version,
    about = "Retrain cashmatch's model from labelled history, judge it, publish it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Args, Clone)]
struct Fit {
    /// The history directory: customers, invoices, remittances, labels (CSV or Parquet),
    /// optionally service_labels and cases.
    #[arg(long)]
    history: PathBuf,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Auto-apply precision the threshold must guarantee (95% confidence).
    #[arg(long, default_value_t = 0.997)]
    target_precision: f64,
    /// Share of the history's payments (the latest) held out to judge models.
    #[arg(long, default_value_t = 0.2)]
    holdout_fraction: f64,
    /// Version of the new model (default: from the last payment's date and the seed).
    #[arg(long)]
    version: Option<String>,
    /// Export the training and holdout feature matrices as Parquet to this directory.
    #[arg(long)]
    export_features: Option<PathBuf>,
    /// With --export-features: train LightGBM on the same matrices and put both in the report.
    #[arg(long, requires = "export_features")]
    lightgbm: bool,
    /// Champion/challenger: what one payment sent to review costs (the unit).
    #[arg(long, default_value_t = 1.0)]
    review_cost: f64,
    /// What one auto-apply costs that puts cash on an invoice the payer did not pay, in reviews.
    #[arg(long, default_value_t = 50.0)]
    misapplied_cost: f64,
    /// What one auto-apply costs that leaves part of the cash unapplied unasked, in reviews.
    #[arg(long, default_value_t = 20.0)]
    incomplete_cost: f64,
}

impl Fit {
    fn config(&self) -> RunConfig {
        RunConfig {
            seed: self.seed,
            target_precision: self.target_precision,
            holdout_fraction: self.holdout_fraction,
            version: self.version.clone(),
            costs: CostModel {
                review: self.review_cost,
                misapplied: self.misapplied_cost,
                incomplete: self.incomplete_cost,
            },
            reproduce: std::env::args().collect::<Vec<_>>().join(" "),
            ..Default::default()
        }
    }

    fn extras(&self) -> Extras {
        Extras {
            export: self.export_features.clone(),
            lightgbm: self.lightgbm,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Fit a model on the history before its holdout, judge it on the holdout, write the model,
    /// its card and a report.
    Train {
        #[command(flatten)]
        fit: Fit,
        #[arg(long)]
        out: PathBuf,
    },
    /// Champion/challenger: fit a new model, judge it and the active one on the same holdout,
    /// publish it as MODELS/<version>/ (and point MODELS/ACTIVE at it) only when its expected
    /// cost (reviews, misapplied and incomplete auto-applies, priced by the --*-cost options) is
    /// lower.
    Retrain {
        #[command(flatten)]
        fit: Fit,
        /// The active model directory (default: what MODELS/ACTIVE names, else the built-in).
        #[arg(long)]
        active: Option<PathBuf>,
        /// The models directory to publish to.
        #[arg(long)]
        publish: PathBuf,
        /// Publish even when the new model is not better.
        #[arg(long)]
        force: bool,
        /// Where the challenger and its report are written (default: MODELS/candidates/<time>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Judge an existing model on a history's holdout and write its report.
    Report {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Share of the history (the latest) to judge on; 1 judges on all of it.
        #[arg(long, default_value_t = 1.0)]
        holdout_fraction: f64,
    },
    /// Copy a history's CSV files to Parquet.
    Convert {
        #[arg(long)]
        history: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Time a training run on about this many candidate rows and report peak memory.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let ui = Ui {
        progress: !cli.quiet,
    };
    match cli.command {
        Command::Train { fit, out } => {
            let o = jobs::train(&fit.history, &out, &fit.config(), &fit.extras(), ui)?;
            let f = o.new.overall();
            eprintln!(
                "{}: holdout touchless {:.2}%, precision {:.3}%, wrong auto-applies {}, threshold {:.4}; fitted in {:.1}s; written to {}",
                o.trained.model.version,
                100.0 * f.touchless(),
                100.0 * f.precision(),
                o.new.wrong(),
                o.trained.model.threshold,
                o.trained.fit_seconds,
                out.display()
            );
        }
        Command::Retrain {
            fit,
            active,
            publish,
            force,
            out,
        } => {
            let out = out.unwrap_or_else(|| {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                publish.join("candidates").join(stamp.to_string())
            });
            let o = jobs::retrain(
                &fit.history,
                active.as_deref(),
                &publish,
                &out,
                force,
                &fit.config(),
                &fit.extras(),
                ui,
            )?;
            eprintln!(
                "challenger {} against {}",
                o.train.trained.model.version, o.active_name
            );
            eprintln!("{}", o.verdict.reason);
            match &o.published {
                Some(dir) => eprintln!(
                    "published to {}; {} now names it",
                    dir.display(),
                    publish.join("ACTIVE").display()
                ),
                None => eprintln!("not published; challenger and report in {}", out.display()),
            }
        }
        Command::Report {
            model,
            history,
            out,
            holdout_fraction,
        } => {
            let m = jobs::report_model(&model, &history, &out, holdout_fraction, ui)?;
            eprintln!(
                "{}: touchless {:.2}%, precision {:.3}% on {} payments; report in {}",
                m.version,
                100.0 * m.overall().touchless(),
                100.0 * m.overall().precision(),
                m.payments,
                out.display()
            );
        }
        Command::Convert { history, out } => {
            let written = history::convert_to_parquet(&history, &out)
                .with_context(|| format!("converting {}", history.display()))?;
            for p in written {
                eprintln!("wrote {}", p.display());
            }
        }
        Command::Bench { rows, seed } => {
            let b = bench::run(rows, seed, ui)?;
            println!("| figure | value |");
            println!("|---|---:|");
            println!("| payments | {} |", b.payments);
            println!("| candidate rows replayed | {} |", b.rows_replayed);
            println!(
                "| candidate rows fitted on (trees, early stop, calibration) | {} |",
                b.rows_fitted
            );
            println!("| threads (rayon) | {} |", b.threads);
            println!("| read history (polars, CSV) | {:.1} s |", b.read_seconds);
            println!(
                "| replay (candidates and features) | {:.1} s |",
                b.replay_seconds
            );
            println!(
                "| fit (trees, calibration, threshold) | {:.1} s ({} rounds) |",
                b.fit_seconds, b.rounds
            );
            println!(
                "| total | {:.1} s |",
                b.read_seconds + b.replay_seconds + b.fit_seconds
            );
            println!("| peak RSS | {:.0} MiB |", b.peak_rss_mib);
        }
    }
    Ok(())
}
