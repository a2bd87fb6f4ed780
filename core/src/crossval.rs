//! Evaluation that cannot flatter: leave-one-family-out and cross-profile figures.
//!
//! A model judged on a split of the very world it was trained on has seen every kind of payment
//! it is judged on. Real deployments meet kinds it has not seen. Two measurements approximate
//! that with the generator's case families and world profiles:
//!
//! - **Leave one family out** ([`lofo`]): for each family F, a model is trained on the world's
//!   train split without F's payments and the real [`Engine`] (policy included) decides the
//!   whole test split with it; F's test payments are scored. Beside it, the same payments under
//!   the model trained on every family. The train split is replayed once
//!   ([`train::replay`]); each family's model is fitted ([`train::fit`]) on the rows of the
//!   other families' payments ([`without_payments`]).
//! - **Across profiles** ([`cross_profile`]): a model trained on one world profile's train split
//!   decides another profile's test split, beside the model trained on that profile's own
//!   train split.
//!
//! Both are reproducible by one command (`cashmatch lofo`, `cashmatch cross-profile`) and
//! write a Markdown table per family: touchless, misapplied and incomplete auto-applies per
//! 1,000 payments, review top-1 (docs/engine.md).

use crate::domain::{Customer, Decision, Invoice};
use crate::engine::{Engine, EngineConfig};
use crate::eval::{self, Figures, Report};
use crate::ledger::{Ledger, LedgerError};
use crate::matching::habits::ReferenceHabits;
use crate::model::artifact::Model;
use crate::synth::{Case, Split, World};
use crate::train::{self, Examples, TrainConfig, TrainError};
use ndarray::{Array1, Array2, Axis};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Faults of an evaluation run.
#[derive(Debug, thiserror::Error)]
pub enum CrossvalError {
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("training without {family}: {source}")]
    Train {
        family: String,
        #[source]
        source: TrainError,
    },
}

/// The examples of the payments `keep` admits, in their order: the rows of every other payment
/// are left out entirely, so nothing of them reaches the trees, the early stopping, the
/// calibration or the threshold.
pub(crate) fn without_payments(ex: &Examples, keep: impl Fn(&str) -> bool) -> Examples {
    let mut rows_kept: Vec<usize> = Vec::new();
    let mut rows = Vec::new();
    let mut has_truth = Vec::new();
    let mut payment_ids = Vec::new();
    for (k, id) in ex.payment_ids.iter().enumerate() {
        if !keep(id) {
            continue;
        }
        let (a, b) = ex.rows[k];
        let start = rows_kept.len();
        rows_kept.extend(a..b);
        rows.push((start, rows_kept.len()));
        has_truth.push(ex.has_truth[k]);
        payment_ids.push(id.clone());
    }
    let x: Array2<f32> = ex.x.select(Axis(0), &rows_kept);
    let y: Array1<f32> = ex.y.select(Axis(0), &rows_kept);
    let strata = rows_kept.iter().map(|&r| ex.strata[r]).collect();
    Examples {
        x,
        y,
        strata,
        rows,
        has_truth,
        payment_ids,
    }
}

/// A fresh ledger of a split, as the engine would load it.
fn ledger_of(customers: &[Customer], invoices: &[Invoice]) -> Result<Ledger, LedgerError> {
    let (l, errs) = Ledger::new(customers.to_vec(), invoices.to_vec());
    match errs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(l),
    }
}

fn cases_of(split: &Split) -> HashMap<String, String> {
    split.cases.iter().cloned().collect()
}

/// A world's train split replayed once: the rows every model of a run is fitted on.
pub struct Replayed {
    pub examples: Examples,
    pub habits: ReferenceHabits,
    /// Case family per train payment.
    pub cases: HashMap<String, String>,
}

/// Replays `world`'s train split against its ledger (see [`train::replay`]), with the reference
/// habits learnt from the whole split.
pub(crate) fn replay_train(world: &World, cfg: &TrainConfig) -> Result<Replayed, CrossvalError> {
    let mut ledger = ledger_of(&world.customers, &world.train.invoices)?;
    let habits = ReferenceHabits::learn(
        ledger.invoices(),
        &world.train.payments,
        &world.train.labels,
    );
    let examples = train::replay(
        &mut ledger,
        &world.train.payments,
        &world.train.labels,
        &habits,
        &cfg.limits,
    );
    Ok(Replayed {
        examples,
        habits,
        cases: cases_of(&world.train),
    })
}

fn fit(
    ex: &Examples,
    cfg: &TrainConfig,
    habits: &ReferenceHabits,
    name: &str,
) -> Result<Model, CrossvalError> {
    let cfg = TrainConfig {
        version: name.to_string(),
        habits: habits.clone(),
        ..cfg.clone()
    };
    train::fit(ex, &cfg)
        .map(|(m, _card)| m)
        .map_err(|source| CrossvalError::Train {
            family: name.to_string(),
            source,
        })
}

/// The real engine, policy included, deciding a whole split with `model`, scored by family.
pub fn judge(model: Model, customers: &[Customer], split: &Split) -> Result<Report, CrossvalError> {
    decide(model, customers, split).map(|(report, _)| report)
}

/// [`judge`], keeping the decisions (for reading why a held-out family went wrong).
fn decide(
    model: Model,
    customers: &[Customer],
    split: &Split,
) -> Result<(Report, Vec<Decision>), CrossvalError> {
    let ledger = ledger_of(customers, &split.invoices)?;
    let mut engine = Engine::new(ledger, Arc::new(model), EngineConfig::default());
    let decisions = engine.run_batch(&split.payments);
    let report = eval::evaluate(&decisions, &split.labels, &cases_of(split));
    Ok((report, decisions))
}

/// One family's row: its test payments under the model that never saw the family, and under the
/// model trained on every family.
#[derive(Clone, Debug)]
pub struct FamilyRow {
    pub family: String,
    pub held_out: Figures,
    pub all: Figures,
    /// The held-out model's certified threshold (above 1: it certified none).
    pub threshold: f64,
    /// The held-out model's decisions of the family's test payments.
    pub decisions: Vec<Decision>,
}

/// Leave-one-family-out figures of a world.
#[derive(Clone, Debug)]
pub struct Lofo {
    pub rows: Vec<FamilyRow>,
    /// The all-families model on the whole test split.
    pub all_overall: Figures,
    /// Every test payment scored under the model that never saw its family.
    pub held_out_overall: Figures,
    pub all_threshold: f64,
}

/// Leave-one-family-out on `world` (see the module doc), for `families` (every family of the
/// mix when empty). `progress` hears of each family as it is done.
pub fn lofo(
    world: &World,
    cfg: &TrainConfig,
    families: &[Case],
    progress: &mut dyn FnMut(&str),
) -> Result<Lofo, CrossvalError> {
    let replayed = replay_train(world, cfg)?;
    progress(&format!(
        "replayed {} train payments into {} candidate rows",
        replayed.examples.rows.len(),
        replayed.examples.y.len()
    ));
    let all_model = fit(&replayed.examples, cfg, &replayed.habits, "all-families")?;
    let all_threshold = all_model.threshold;
    let all = judge(all_model, &world.customers, &world.test)?;
    progress("fitted and judged the all-families model");
    let families: Vec<Case> = if families.is_empty() {
        Case::MIX.iter().map(|(c, _)| *c).collect()
    } else {
        families.to_vec()
    };
    let test_cases = cases_of(&world.test);
    let mut rows = Vec::new();
    let mut held_out_overall = Figures::default();
    for family in families {
        let name = family.name();
        let ex = without_payments(&replayed.examples, |id| {
            replayed.cases.get(id).map(String::as_str) != Some(name)
        });
        let model = fit(&ex, cfg, &replayed.habits, &format!("without-{name}"))?;
        let threshold = model.threshold;
        let (report, decisions) = decide(model, &world.customers, &world.test)?;
        let decisions = decisions
            .into_iter()
            .filter(|d| test_cases.get(&d.payment_id).map(String::as_str) == Some(name))
            .collect();
        let held_out = report.by_case.get(name).cloned().unwrap_or_default();
        held_out_overall.absorb(&held_out);
        rows.push(FamilyRow {
            family: name.to_string(),
            held_out,
            all: all.by_case.get(name).cloned().unwrap_or_default(),
            threshold,
            decisions,
        });
        progress(&format!("without {name}: done"));
    }
    Ok(Lofo {
        rows,
        all_overall: all.overall,
        held_out_overall,
        all_threshold,
    })
}

/// Cross-profile figures: a model of one profile on another profile's test split, beside that
/// profile's own model.
#[derive(Clone, Debug)]
pub struct CrossProfile {
    /// Trained on the train world's train split.
    pub foreign: Report,
    /// Trained on the test world's own train split.
    pub native: Report,
    pub foreign_threshold: f64,
    pub native_threshold: f64,
}

/// Trains on `train_world`'s train split and on `test_world`'s, and judges both on
/// `test_world`'s test split.
pub fn cross_profile(
    train_world: &World,
    test_world: &World,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<CrossProfile, CrossvalError> {
    let fitted = |w: &World, name: &str| -> Result<Model, CrossvalError> {
        let r = replay_train(w, cfg)?;
        fit(&r.examples, cfg, &r.habits, name)
    };
    let foreign = fitted(train_world, "foreign")?;
    progress("fitted the model of the train profile");
    let native = fitted(test_world, "native")?;
    progress("fitted the model of the test profile");
    let (foreign_threshold, native_threshold) = (foreign.threshold, native.threshold);
    Ok(CrossProfile {
        foreign: judge(foreign, &test_world.customers, &test_world.test)?,
        native: judge(native, &test_world.customers, &test_world.test)?,
        foreign_threshold,
        native_threshold,
    })
}

fn figures_cells(f: &Figures) -> String {
    format!(
        "{:.1}% | {:.2} | {:.2} | {}",
        100.0 * f.touchless(),
        f.misapplied_per_1000(),
        f.incomplete_per_1000(),
        eval::review_top1_text(f)
    )
}

/// The leave-one-family-out table in Markdown.
pub fn render_lofo(l: &Lofo) -> String {
    let mut out = String::from(
        "| family | test payments | held out: touchless | misapplied/1k | incomplete/1k | review top-1 | all families: touchless | misapplied/1k | incomplete/1k | review top-1 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut all_of_rows = Figures::default();
    for r in &l.rows {
        all_of_rows.absorb(&r.all);
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.family,
            r.held_out.payments,
            figures_cells(&r.held_out),
            figures_cells(&r.all)
        ));
    }
    out.push_str(&format!(
        "| **every family held out** | {} | {} | {} |\n",
        l.held_out_overall.payments,
        figures_cells(&l.held_out_overall),
        figures_cells(&all_of_rows)
    ));
    out
}

/// The cross-profile table in Markdown: per family, then all payments.
pub fn render_cross(c: &CrossProfile, train_profile: &str, test_profile: &str) -> String {
    let mut out = format!(
        "| family | test payments | trained on {train_profile}: touchless | misapplied/1k | incomplete/1k | review top-1 | trained on {test_profile}: touchless | misapplied/1k | incomplete/1k | review top-1 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let empty = Figures::default();
    let families: BTreeMap<&String, &Figures> = c.native.by_case.iter().collect();
    for (family, native) in families {
        let foreign = c.foreign.by_case.get(family).unwrap_or(&empty);
        out.push_str(&format!(
            "| {family} | {} | {} | {} |\n",
            native.payments,
            figures_cells(foreign),
            figures_cells(native)
        ));
    }
    out.push_str(&format!(
        "| **all** | {} | {} | {} |\n",
        c.native.overall.payments,
        figures_cells(&c.foreign.overall),
        figures_cells(&c.native.overall)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn examples() -> Examples {
        // Three payments with 2, 1 and 3 candidate rows; feature 0 names the payment.
        let x = array![[0.0f32], [0.0], [1.0], [2.0], [2.0], [2.0]];
        Examples {
            x: Array2::from_shape_fn((6, 2), |(r, c)| if c == 0 { x[[r, 0]] } else { r as f32 }),
            y: array![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            strata: vec![crate::matching::strata::Stratum::ExactSingle; 6],
            rows: vec![(0, 2), (2, 3), (3, 6)],
            has_truth: vec![true, false, true],
            payment_ids: vec!["P1".into(), "P2".into(), "P3".into()],
        }
    }

    #[test]
    fn the_held_out_familys_payments_leave_no_row_behind() {
        let ex = examples();
        let cases: HashMap<&str, &str> = [("P1", "a"), ("P2", "held"), ("P3", "a")]
            .into_iter()
            .collect();
        let kept = without_payments(&ex, |id| cases[id] != "held");
        assert_eq!(kept.payment_ids, vec!["P1".to_string(), "P3".to_string()]);
        assert_eq!(kept.rows, vec![(0, 2), (2, 5)]);
        assert_eq!(kept.has_truth, vec![true, true]);
        assert_eq!(kept.x.nrows(), 5);
        assert_eq!(kept.y.to_vec(), vec![1.0, 0.0, 0.0, 1.0, 0.0]);
        // No row of P2 (feature 0 = 1) survives; the others keep their order.
        assert!(kept.x.column(0).iter().all(|&v| v != 1.0));
        assert_eq!(kept.x.column(1).to_vec(), vec![0.0, 1.0, 3.0, 4.0, 5.0]);
        // Keeping everything changes nothing.
        let all = without_payments(&ex, |_| true);
        assert_eq!(
            (all.x, all.y, all.rows),
            (ex.x.clone(), ex.y.clone(), ex.rows.clone())
        );
    }

    #[test]
    fn a_held_out_family_is_unseen_by_its_model_and_judged_by_the_engine() {
        use crate::synth::{SynthConfig, generate};
        let w = generate(&SynthConfig::new(3, 120, 1_500));
        let cfg = TrainConfig::default();
        let mut notes = Vec::new();
        let l = lofo(
            &w,
            &cfg,
            &[Case::ExactSingle, Case::MemoTruncated],
            &mut |s| notes.push(s.to_string()),
        )
        .expect("lofo runs");
        assert_eq!(l.rows.len(), 2);
        for r in &l.rows {
            let n = w.test.cases.iter().filter(|(_, c)| *c == r.family).count();
            assert_eq!(r.held_out.payments, n, "{}", r.family);
            assert_eq!(r.all.payments, n, "{}", r.family);
        }
        assert_eq!(l.all_overall.payments, w.test.payments.len());
        let table = render_lofo(&l);
        assert!(table.contains("| exact_single |") && table.contains("| memo_truncated |"));
        assert!(notes.len() >= 3);
    }
}
