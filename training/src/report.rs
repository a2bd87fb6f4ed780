//! The report a person reads: `REPORT.md` with SVG figures beside it, and the model card.

use crate::evaluate::{ModelEval, Prepared};
use crate::export::Comparison;
use crate::history::History;
use crate::plots::{self, PlotError};
use crate::retrain::Verdict;
use cashmatch_core::domain::Status;
use cashmatch_core::eval::{self, Figures};
use cashmatch_core::matching::features::FEATURE_NAMES;
use cashmatch_core::model::artifact::Model;
use cashmatch_core::model::labels_needed;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// The report's file name inside its directory.
pub const REPORT_FILE: &str = "REPORT.md";

/// Faults writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Everything a report shows.
pub struct ReportInput<'a> {
    /// What produced it, e.g. `cashmatch-train retrain --history ...`.
    pub title: String,
    pub history: &'a History,
    pub prepared: &'a Prepared,
    /// The models judged, champion first.
    pub evals: Vec<&'a ModelEval>,
    /// The model the report is about (the challenger, or the model judged), for importance,
    /// threshold and card.
    pub model: &'a Model,
    pub card: &'a str,
    pub verdict: Option<&'a Verdict>,
    pub comparison: Option<&'a Comparison>,
    /// Seconds spent fitting, when the report's model was fitted in this run.
    pub fit_seconds: Option<f64>,
}

fn money(d: rust_decimal::Decimal) -> String {
    let s = d.round_dp(2).to_string();
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |r| ("-", r));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{frac:0<2}")
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// Writes `dir/REPORT.md` and its figures.
pub fn write(dir: &Path, r: &ReportInput<'_>) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let h = r.history;
    let p = r.prepared;
    let target = r.model.metrics.target_precision;
    let mut md = String::new();
    let hold_n = h.payments.len() - p.holdout_start;
    let _ = writeln!(md, "# {}\n", r.title);
    let sources: Vec<String> = h
        .label_counts
        .payments
        .iter()
        .map(|(s, n)| format!("{n} by {s}"))
        .collect();
    let _ = writeln!(
        md,
        "History `{}`: {} customers, {} ledger items, {} payments ({} labelled payments: {}; \
         {} overridden by a stronger source; {} label rows for unknown payments ignored); \
         {} rows refused while reading{}.\n",
        h.dir.display(),
        h.customers.len(),
        h.invoices.len(),
        h.payments.len(),
        h.label_counts.payments.values().sum::<usize>(),
        if sources.is_empty() {
            "none".to_string()
        } else {
            sources.join(", ")
        },
        h.label_counts.overridden,
        h.label_counts.unknown_payment,
        h.errors.len(),
        if h.cases.is_empty() {
            ""
        } else {
            "; case families from the cases file"
        },
    );
    let first_hold_date = h
        .payments
        .get(p.holdout_start)
        .and_then(|x| x.payment_date)
        .map_or_else(|| "?".to_string(), |d| d.to_string());
    let _ = writeln!(
        md,
        "Time-ordered holdout: the last {hold_n} payments (from {first_hold_date}), never seen \
         in fitting; {} payments before it ({} candidate rows) were replayed to fit on. Every \
         model below is run through the engine, policy included, on the same holdout payments \
         against the same ledger (as it stood when the holdout starts). Replay took {:.1} s{}.\n",
        p.holdout_start,
        p.fit.y.len(),
        p.replay_seconds,
        r.fit_seconds
            .map_or_else(String::new, |s| format!("; fitting {s:.1} s")),
    );
    if let Some(v) = r.verdict {
        let _ = writeln!(
            md,
            "## Verdict\n\n**{}** {}\n",
            if v.publish {
                "Published."
            } else {
                "Not published."
            },
            v.reason
        );
    }

    // Headline table.
    let _ = writeln!(md, "## Holdout figures\n");
    let _ = writeln!(
        md,
        "| model | version | touchless | auto-apply precision | wrong auto-applies | wrong / 1,000 | \
         review top-1 | cash auto-applied correctly | cash auto-applied (all) | candidate AUC | threshold |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &r.evals {
        let f = m.overall();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {:.2} | {} | {} | {} | {:.4} | {:.4} |",
            m.name,
            m.version,
            pct(f.touchless()),
            pct(f.precision()),
            m.wrong(),
            f.wrong_per_1000(),
            pct(f.review_top1()),
            money(f.auto_cash),
            money(m.auto_cash_all),
            m.auc,
            m.threshold,
        );
    }
    let _ = writeln!(
        md,
        "\nTouchless: payments auto-applied exactly right / holdout payments with a correct \
         answer. Precision: right / auto-applied. Review top-1: review items whose first \
         suggestion is right. Cash in the ledger's currency.\n"
    );

    threshold_section(&mut md, r, target);

    // Figures.
    let evals: Vec<&ModelEval> = r.evals.clone();
    plots::precision_coverage(&dir.join("precision_coverage.svg"), &evals, target)?;
    plots::reliability(&dir.join("reliability.svg"), &evals)?;
    let _ = writeln!(
        md,
        "## Precision against coverage\n\n![precision against coverage](precision_coverage.svg)\n\n\
         Each curve ranks the holdout payments by the model's calibrated confidence and shows \
         the precision of auto-applying the best-ranked share (candidate level, before the \
         engine's policy guards); the dot is the model's threshold.\n"
    );
    let _ = writeln!(
        md,
        "## Calibration\n\n![reliability diagram](reliability.svg)\n\n{}\n",
        reliability_table(&evals)
    );

    let imp = importance(r.model);
    let rows: Vec<(String, Vec<f64>)> = imp
        .iter()
        .take(15)
        .map(|(n, s)| (n.to_string(), vec![100.0 * s]))
        .collect();
    plots::bars(
        &dir.join("importance.svg"),
        &format!("Feature importance (gain) of {}", r.model.version),
        "share of total gain (%)",
        &rows,
        &["gain"],
    )?;
    let _ = writeln!(
        md,
        "## Feature importance\n\n![feature importance](importance.svg)\n"
    );

    errors_section(&mut md, dir, r)?;

    let named: Vec<(&str, &eval::Report)> = r
        .evals
        .iter()
        .map(|m| (m.name.as_str(), &m.by_case))
        .collect();
    let _ = writeln!(
        md,
        "## By case family\n\n{}\n## By customer segment\n\nCustomer size by open items when \
         the holdout starts.\n\n{}",
        eval::render(&named),
        eval::render(
            &r.evals
                .iter()
                .map(|m| (m.name.as_str(), &m.by_segment))
                .collect::<Vec<_>>()
        )
    );

    if let Some(c) = r.comparison {
        comparison_section(&mut md, c, target);
    }

    let card = r.card.replace("\n## ", "\n### ").replacen("# ", "## ", 1);
    let _ = writeln!(md, "\n{card}");
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, md).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The certificate and how many labels a tighter target needs.
fn threshold_section(md: &mut String, r: &ReportInput<'_>, target: f64) {
    let m = r.model;
    if m.strata.is_empty() {
        let _ = writeln!(
            md,
            "## Threshold\n\n`{}` auto-applies at calibrated confidence {:.4} in every evidence \
             stratum (a model trained before per-stratum thresholds; its card says where the \
             threshold was chosen).\n",
            m.version, m.threshold,
        );
        return;
    }
    let _ = writeln!(
        md,
        "## Threshold\n\n`{}` auto-applies per evidence stratum of the best candidate \
         (docs/engine.md): each threshold is the loosest calibrated confidence whose precision \
         on the stratum's payments in the model's threshold slice (after its calibration slice, \
         before its test slice, all before this report's holdout) has a one-sided 95% \
         Clopper-Pearson lower bound at or above the target {} (fixed-sequence testing from the \
         top, as in Learn-then-Test). A stratum with fewer labels than zero errors would need \
         never auto-applies.\n",
        m.version,
        pct(target),
    );
    let _ = writeln!(
        md,
        "| stratum | labelled payments | needed at {} | threshold | above it | wrong | lower bound | needed at 99.9% |\n|---|---:|---:|---:|---:|---:|---:|---:|",
        pct(target)
    );
    for s in &m.strata {
        let rate = if s.n_auto == 0 {
            0.0
        } else {
            s.errors as f64 / s.n_auto as f64
        };
        let tighter = labels_needed(0.999, 0.95, rate)
            .map_or_else(|| "unreachable".to_string(), |n| n.to_string());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {tighter} |",
            s.stratum,
            s.labels,
            s.labels_needed,
            s.threshold
                .map_or_else(|| "never".to_string(), |t| format!("{t:.4}")),
            s.n_auto,
            s.errors,
            if s.threshold.is_some() {
                pct(s.lower_bound)
            } else {
                "-".to_string()
            },
        );
    }
    let _ = writeln!(
        md,
        "\n\"Needed at 99.9%\": labelled payments of the stratum above its threshold that \
         certifying 99.9% would take at the error rate seen there.\n"
    );
}

fn reliability_table(evals: &[&ModelEval]) -> String {
    let mut s = String::from(
        "| model | confidence bin mean | share right | payments |\n|---|---:|---:|---:|\n",
    );
    for m in evals {
        for (c, rate, n) in plots::reliability_bins(&m.tops) {
            let _ = writeln!(s, "| {} | {:.3} | {:.3} | {n} |", m.name, c, rate);
        }
    }
    s
}

/// Features by share of total gain, largest first.
pub fn importance(m: &Model) -> Vec<(&'static str, f64)> {
    let gains = m.gbdt.feature_importance();
    let total: f64 = gains.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut v: Vec<(&'static str, f64)> = FEATURE_NAMES
        .iter()
        .zip(gains)
        .map(|(n, g)| (*n, g / total))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// Where the report's model misses: by case family (or segment), review items with a right
/// answer and wrong auto-applies, and the wrong auto-applies listed.
fn errors_section(md: &mut String, dir: &Path, r: &ReportInput<'_>) -> Result<(), ReportError> {
    let Some(m) = r.evals.last() else {
        return Ok(());
    };
    let groups = if r.history.cases.is_empty() {
        &m.by_segment.by_case
    } else {
        &m.by_case.by_case
    };
    let mut rows: Vec<(String, Vec<f64>)> = groups
        .iter()
        .map(|(name, f): (&String, &Figures)| {
            let wrong = (f.auto - f.auto_correct) as f64;
            (name.clone(), vec![f.review_with_truth as f64, wrong])
        })
        .filter(|r| r.1.iter().sum::<f64>() > 0.0)
        .collect();
    rows.sort_by(|a, b| {
        b.1.iter()
            .sum::<f64>()
            .total_cmp(&a.1.iter().sum::<f64>())
            .then(a.0.cmp(&b.0))
    });
    rows.truncate(15);
    plots::bars(
        &dir.join("errors.svg"),
        &format!("Where {} is not touchless (holdout payments)", m.name),
        "payments",
        &rows,
        &[
            "sent to review (had a right answer)",
            "auto-applied wrongly",
        ],
    )?;
    let _ = writeln!(
        md,
        "## Where the errors are\n\n![where the errors are](errors.svg)\n\n{}\n",
        if r.history.cases.is_empty() {
            "By customer segment (no case families in this history)."
        } else {
            "By case family."
        }
    );
    let mut truth: HashMap<&str, Vec<(&str, rust_decimal::Decimal)>> = HashMap::new();
    for l in &r.history.labels {
        truth
            .entry(l.payment_id.as_str())
            .or_default()
            .push((l.invoice_id.as_str(), l.applied_amount.normalize()));
    }
    for v in truth.values_mut() {
        v.sort();
    }
    let wrong: Vec<_> = m
        .decisions
        .iter()
        .filter(|d| d.status == Status::Auto)
        .filter(|d| {
            let mut got: Vec<(&str, rust_decimal::Decimal)> = d
                .allocations
                .iter()
                .map(|a| (a.invoice_id.as_str(), a.amount.normalize()))
                .collect();
            got.sort();
            truth.get(d.payment_id.as_str()) != Some(&got)
        })
        .collect();
    if wrong.is_empty() {
        let _ = writeln!(md, "No wrong auto-applies on the holdout.\n");
    } else {
        let _ = writeln!(
            md,
            "Wrong auto-applies of `{}` (first 20):\n\n| payment | case | segment | applied to | had a right answer |\n|---|---|---|---|---|",
            m.version
        );
        for d in wrong.iter().take(20) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                d.payment_id,
                r.history
                    .cases
                    .get(&d.payment_id)
                    .map_or("-", String::as_str),
                r.prepared
                    .segments
                    .get(&d.payment_id)
                    .map_or("-", String::as_str),
                d.allocations
                    .iter()
                    .map(|a| format!("{} {}", a.invoice_id, a.amount))
                    .collect::<Vec<_>>()
                    .join(", "),
                if truth.contains_key(d.payment_id.as_str()) {
                    "yes"
                } else {
                    "no"
                },
            );
        }
        let _ = writeln!(md);
    }
    Ok(())
}

fn comparison_section(md: &mut String, c: &Comparison, target: f64) {
    let _ = writeln!(
        md,
        "## Our booster against LightGBM\n\nThe same matrices ({} training rows, {} holdout rows, \
         exported as Parquet) trained with comparable settings by `training/lightgbm_compare.py` \
         (LightGBM {}). Touchless here is candidate-level: each payment's best candidate by \
         `p_best × (1 − p_rival)`, each booster's own loosest threshold certified at {} with 95% \
         confidence on the fit's threshold slice (never on the rows it is judged on), applied to \
         this holdout; the same procedure for both.\n",
        c.train_rows,
        c.holdout_rows,
        c.lightgbm_version,
        pct(target)
    );
    let _ = writeln!(
        md,
        "| booster | candidate AUC | touchless at target | precision | auto-applied | rounds | training time |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (name, f) in [("cashmatch GBDT", &c.ours), ("LightGBM", &c.lightgbm)] {
        let _ = writeln!(
            md,
            "| {name} | {:.4} | {} | {} | {} | {} | {:.1} s |",
            f.auc,
            pct(f.touchless),
            pct(f.precision),
            f.n_auto,
            f.rounds,
            f.train_seconds
        );
    }
    let gap = 100.0 * (c.ours.touchless - c.lightgbm.touchless);
    let _ = writeln!(
        md,
        "\nTouchless difference (ours − LightGBM): {gap:+.2} points.\n"
    );
}

/// Counts of holdout payments per group, for tests and summaries.
pub fn touchless_by(report: &eval::Report) -> BTreeMap<String, f64> {
    report
        .by_case
        .iter()
        .map(|(k, f)| (k.clone(), f.touchless()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(Decimal::new(123456789, 2)), "1,234,567.89");
        assert_eq!(money(Decimal::new(-5, 0)), "-5.00");
        assert_eq!(money(Decimal::new(1005, 1)), "100.50");
    }
}
