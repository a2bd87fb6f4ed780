//! The time-ordered holdout, and models measured on it.
//!
//! The history is replayed once in time order with `cashmatch_core::train::replay` (the engine's own
//! candidate generator and feature code). The payments before the holdout are what a model is
//! fitted on; the ledger as it stood when the holdout starts is kept, and every model judged is
//! run through the real [`Engine`] (policy included) on the holdout payments against a fresh
//! copy of that ledger, so a champion and a challenger see exactly the same payments and the
//! same ledger. The holdout's replayed candidate rows give the candidate-level figures (AUC,
//! precision against coverage, calibration) and the matrices for the reference booster.
//!
//! The customers' reference habits (`cashmatch_core::matching::ReferenceHabits`) are learnt from
//! the payments before the holdout only, and the whole history is replayed with them: what a new
//! model will carry. A model with other habits (the champion) has its holdout rows replayed with
//! its own.

use crate::history::History;
use cashmatch_core::domain::{Customer, Decision, Invoice, Label, Status};
use cashmatch_core::engine::{Engine, EngineConfig};
use cashmatch_core::eval::{self, Figures, Report};
use cashmatch_core::ledger::Ledger;
use cashmatch_core::matching::ReferenceHabits;
use cashmatch_core::matching::candidates::CandidateLimits;
use cashmatch_core::matching::features::N_FEATURES;
use cashmatch_core::model::artifact::Model;
use cashmatch_core::model::gbdt::auc;
use cashmatch_core::train::{self, Examples};
use indicatif::ProgressBar;
use ndarray::{Array1, Array2};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Payments replayed per step of the progress bar.
const REPLAY_CHUNK: usize = 2_000;

/// Customer size segments by open items at the start of the holdout: (upper bound, name).
pub const SEGMENTS: [(usize, &str); 3] = [
    (9, "small (<10 open items)"),
    (39, "medium (10-39 open items)"),
    (usize::MAX, "large (40+ open items)"),
];
/// The segment of a payment with no correct match.
pub const NO_MATCH_SEGMENT: &str = "no correct match";

/// Faults preparing a holdout.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("the history has {0} payments; at least 100 are needed to hold some out")]
    TooFew(usize),
    #[error("holdout fraction {0} must be in (0, 1]")]
    Fraction(f64),
    #[error("the ledger at the start of the holdout was refused: {0}")]
    Ledger(String),
}

/// A history replayed and cut at the holdout.
pub struct Prepared {
    /// Candidate rows of the payments before the holdout, in time order.
    pub fit: Examples,
    /// Candidate rows of the holdout payments.
    pub hold: Examples,
    /// Index of the first holdout payment in `History::payments`.
    pub holdout_start: usize,
    /// The reference habits learnt from the payments before the holdout, which the history was
    /// replayed with.
    pub habits: ReferenceHabits,
    /// The ledger as it stood at the start of the holdout.
    pub at_holdout: (Vec<Customer>, Vec<Invoice>),
    /// Segment of each holdout payment (see [`SEGMENTS`]).
    pub segments: HashMap<String, String>,
    /// Wall-clock seconds of the replay (candidates and features).
    pub replay_seconds: f64,
    /// Ledger records refused when the history's ledger was built.
    pub ledger_errors: Vec<String>,
}

/// Replays `h` and cuts off its latest `holdout_fraction` of payments (1.0: all of them, to
/// judge an existing model on a whole history).
pub fn prepare(
    h: &History,
    holdout_fraction: f64,
    limits: &CandidateLimits,
    bar: &ProgressBar,
) -> Result<Prepared, EvalError> {
    if !(holdout_fraction > 0.0 && holdout_fraction <= 1.0) {
        return Err(EvalError::Fraction(holdout_fraction));
    }
    let n = h.payments.len();
    if n < 100 {
        return Err(EvalError::TooFew(n));
    }
    let holdout_start = n - ((n as f64 * holdout_fraction).round() as usize).clamp(1, n);
    let (mut ledger, errs) = Ledger::new(h.customers.clone(), h.invoices.clone());
    let ledger_errors: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let by_payment = labels_by_payment(&h.labels);
    let habits = ReferenceHabits::learn(&h.invoices, &h.payments[..holdout_start], &h.labels);
    bar.set_length(n as u64);
    bar.set_message("replaying history (candidates and features)");
    let t = Instant::now();
    let fit = replay_chunked(
        &mut ledger,
        &h.payments[..holdout_start],
        &by_payment,
        &habits,
        limits,
        bar,
    );
    let at_holdout = (ledger.customers().to_vec(), ledger.invoices().to_vec());
    let hold = replay_chunked(
        &mut ledger,
        &h.payments[holdout_start..],
        &by_payment,
        &habits,
        limits,
        bar,
    );
    let replay_seconds = t.elapsed().as_secs_f64();
    let segments = segments_of(h, holdout_start, &at_holdout.1);
    Ok(Prepared {
        fit,
        hold,
        holdout_start,
        habits,
        at_holdout,
        segments,
        replay_seconds,
        ledger_errors,
    })
}

fn labels_by_payment(labels: &[Label]) -> HashMap<&str, Vec<&Label>> {
    let mut m: HashMap<&str, Vec<&Label>> = HashMap::new();
    for l in labels {
        m.entry(l.payment_id.as_str()).or_default().push(l);
    }
    m
}

/// `train::replay` in chunks (so progress can be shown), joined into one set of examples.
fn replay_chunked(
    ledger: &mut Ledger,
    payments: &[cashmatch_core::domain::Payment],
    by_payment: &HashMap<&str, Vec<&Label>>,
    habits: &ReferenceHabits,
    limits: &CandidateLimits,
    bar: &ProgressBar,
) -> Examples {
    let mut parts = Vec::new();
    for chunk in payments.chunks(REPLAY_CHUNK) {
        let labels: Vec<Label> = chunk
            .iter()
            .flat_map(|p| by_payment.get(p.payment_id.as_str()).into_iter().flatten())
            .map(|l| (*l).clone())
            .collect();
        parts.push(train::replay(ledger, chunk, &labels, habits, limits));
        bar.inc(chunk.len() as u64);
    }
    concat(parts)
}

/// Joins examples of consecutive payment ranges.
pub fn concat(parts: Vec<Examples>) -> Examples {
    let total: usize = parts.iter().map(|p| p.y.len()).sum();
    let mut data: Vec<f32> = Vec::with_capacity(total * N_FEATURES);
    let mut y: Vec<f32> = Vec::with_capacity(total);
    let mut strata = Vec::with_capacity(total);
    let (mut rows, mut has_truth, mut payment_ids) = (Vec::new(), Vec::new(), Vec::new());
    for p in parts {
        let offset = y.len();
        data.extend(p.x.iter());
        y.extend(p.y.iter());
        strata.extend(p.strata);
        rows.extend(p.rows.iter().map(|(a, b)| (a + offset, b + offset)));
        has_truth.extend(p.has_truth);
        payment_ids.extend(p.payment_ids);
    }
    let x = Array2::from_shape_vec((y.len(), N_FEATURES), data)
        .unwrap_or_else(|_| Array2::zeros((0, N_FEATURES)));
    Examples {
        x,
        y: Array1::from(y),
        strata,
        rows,
        has_truth,
        payment_ids,
    }
}

/// The segment of each holdout payment: the size of the customer whose invoices it pays,
/// counted in open items when the holdout starts.
fn segments_of(h: &History, start: usize, at_holdout: &[Invoice]) -> HashMap<String, String> {
    let mut open: HashMap<&str, usize> = HashMap::new();
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for inv in at_holdout {
        owner.insert(inv.id.as_str(), inv.customer_id.as_str());
        if !inv.open_amount.is_zero() {
            *open.entry(inv.customer_id.as_str()).or_default() += 1;
        }
    }
    let mut first_label: HashMap<&str, &str> = HashMap::new();
    for l in &h.labels {
        first_label
            .entry(l.payment_id.as_str())
            .or_insert(l.invoice_id.as_str());
    }
    h.payments[start..]
        .iter()
        .map(|p| {
            let seg = first_label
                .get(p.payment_id.as_str())
                .and_then(|inv| owner.get(inv))
                .map_or(NO_MATCH_SEGMENT, |c| {
                    segment_name(open.get(c).copied().unwrap_or(0))
                });
            (p.payment_id.clone(), seg.to_string())
        })
        .collect()
}

/// The segment of a customer with `open_items` open items.
pub fn segment_name(open_items: usize) -> &'static str {
    SEGMENTS
        .iter()
        .find(|(max, _)| open_items <= *max)
        .map_or("large", |s| s.1)
}

/// The top candidate of one holdout payment under a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Top {
    /// Calibrated confidence of the best candidate.
    pub confidence: f64,
    /// Whether it is exactly the true allocation.
    pub correct: bool,
}

/// A model measured on the holdout.
pub struct ModelEval {
    /// `active`, `new`, or the model's directory.
    pub name: String,
    pub version: String,
    pub threshold: f64,
    /// Engine figures overall and by case family.
    pub by_case: Report,
    /// Engine figures by customer segment.
    pub by_segment: Report,
    pub decisions: Vec<Decision>,
    /// Cash of every auto-applied decision, right or wrong.
    pub auto_cash_all: Decimal,
    /// Wall-clock seconds the engine took on the holdout.
    pub seconds: f64,
    /// Candidate-level AUC on the holdout rows.
    pub auc: f64,
    /// Top candidates of the holdout payments that have candidates.
    pub tops: Vec<Top>,
    /// Holdout payments.
    pub payments: usize,
    /// Holdout payments that have a correct answer.
    pub with_truth: usize,
}

impl ModelEval {
    /// The overall engine figures.
    pub fn overall(&self) -> &Figures {
        &self.by_case.overall
    }

    /// Wrong auto-applies on the holdout.
    pub fn wrong(&self) -> usize {
        self.overall().auto - self.overall().auto_correct
    }
}

/// Runs `model` through the engine on the holdout and scores its candidates.
pub fn evaluate(
    model: Arc<Model>,
    name: &str,
    prepared: &Prepared,
    h: &History,
    bar: &ProgressBar,
) -> Result<ModelEval, EvalError> {
    bar.set_message(format!("matching the holdout with the {name} model"));
    let (customers, invoices) = &prepared.at_holdout;
    let (ledger, errs) = Ledger::new(customers.clone(), invoices.clone());
    if let Some(e) = errs.first() {
        return Err(EvalError::Ledger(e.to_string()));
    }
    let payments = &h.payments[prepared.holdout_start..];
    let mut engine = Engine::new(ledger, model.clone(), EngineConfig::default());
    let t = Instant::now();
    let decisions = engine.run_batch(payments);
    let seconds = t.elapsed().as_secs_f64();
    let by_case = eval::evaluate(&decisions, &h.labels, &h.cases);
    let by_segment = eval::evaluate(&decisions, &h.labels, &prepared.segments);
    let auto_cash_all = decisions
        .iter()
        .filter(|d| d.status == Status::Auto)
        .flat_map(|d| d.allocations.iter().map(|a| a.amount))
        .sum();

    // The model's candidates are those its own habits give.
    let own;
    let ex = if model.habits == prepared.habits {
        &prepared.hold
    } else {
        let (mut ledger, _) = Ledger::new(customers.clone(), invoices.clone());
        let hidden = ProgressBar::hidden();
        own = replay_chunked(
            &mut ledger,
            payments,
            &labels_by_payment(&h.labels),
            &model.habits,
            &CandidateLimits::default(),
            &hidden,
        );
        &own
    };
    let probs = model.candidate_probabilities(ex.x.view());
    let labels: Vec<bool> = ex.y.iter().map(|&v| v > 0.5).collect();
    let scores32: Vec<f32> = probs.iter().map(|&p| p as f32).collect();
    let auc = if labels.iter().any(|&l| l) && labels.iter().any(|&l| !l) {
        auc(&scores32, &labels)
    } else {
        f64::NAN
    };
    let tops = train::top_decisions(ex, 0..ex.rows.len(), &probs)
        .into_iter()
        .map(|(score, correct)| Top {
            confidence: model.calibrator.apply(score as f32),
            correct,
        })
        .collect();
    bar.inc(1);
    Ok(ModelEval {
        name: name.to_string(),
        version: model.version.clone(),
        threshold: model.threshold,
        by_case,
        by_segment,
        decisions,
        auto_cash_all,
        seconds,
        auc,
        tops,
        payments: payments.len(),
        with_truth: ex.has_truth.iter().filter(|&&t| t).count(),
    })
}
