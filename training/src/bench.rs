//! `cashmatch-train bench`: the time and peak memory of a training run on about a million
//! candidate rows. Figures go into docs/benchmarks.md; speed is proved here, never by tests.

use crate::evaluate;
use crate::history::History;
use crate::jobs::{JobError, Ui};
use crate::retrain::{self, RunConfig};
use cashmatch_core::eval::peak_rss_mib;
use cashmatch_core::matching::candidates::CandidateLimits;
use cashmatch_core::synth;
use std::path::Path;
use std::time::Instant;

/// Measured figures of one bench run.
#[derive(Clone, Debug, Default)]
pub struct BenchFigures {
    pub payments: usize,
    pub rows_replayed: usize,
    pub rows_fitted: usize,
    pub read_seconds: f64,
    pub replay_seconds: f64,
    pub fit_seconds: f64,
    pub rounds: usize,
    pub peak_rss_mib: f64,
    pub threads: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> JobError + '_ {
    move |source| JobError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Generates a world whose replay gives about `rows` candidate rows, writes it as CSV (not
/// timed), then times reading it back with polars, the replay, and `train::fit`.
pub fn run(rows: usize, seed: u64, ui: Ui) -> Result<BenchFigures, JobError> {
    // A pilot world tells how many candidate rows a payment gives.
    let pilot = synth::generate(&synth::SynthConfig {
        seed,
        customers: 300,
        payments: 3_000,
        train_fraction: 0.0,
        ..Default::default()
    });
    let (mut ledger, _) =
        cashmatch_core::ledger::Ledger::new(pilot.customers.clone(), pilot.test.invoices.clone());
    let ex = cashmatch_core::train::replay(
        &mut ledger,
        &pilot.test.payments,
        &pilot.test.labels,
        &Default::default(),
        &CandidateLimits::default(),
    );
    let per_payment = ex.y.len() as f64 / pilot.test.payments.len().max(1) as f64;
    let payments = ((rows as f64 / per_payment.max(0.1)).ceil() as usize).max(1_000);
    let world = synth::generate(&synth::SynthConfig {
        seed,
        customers: (payments / 25).max(100),
        payments,
        train_fraction: 0.0,
        ..Default::default()
    });
    let dir = std::env::temp_dir().join(format!("cashmatch-train-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let create = |name: &str| {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .map(std::io::BufWriter::new)
            .map_err(io(&dir))
    };
    let e = io(&dir);
    cashmatch_core::io::write_customers(create("customers.csv")?, &world.customers).map_err(&e)?;
    cashmatch_core::io::write_invoices(create("invoices.csv")?, &world.test.invoices)
        .map_err(&e)?;
    cashmatch_core::io::write_remittances(create("remittances.csv")?, &world.test.payments)
        .map_err(&e)?;
    cashmatch_core::io::write_labels(create("labels.csv")?, &world.test.labels).map_err(&e)?;
    drop(world);

    let t = Instant::now();
    let bar = ui.bar(5);
    let history = History::load(&dir, &bar)?;
    bar.finish_and_clear();
    let read_seconds = t.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    let rc = RunConfig {
        seed,
        // Nearly everything is fitted on: the bench is about training.
        holdout_fraction: 0.02,
        ..Default::default()
    };
    let bar = ui.bar(history.payments.len() as u64);
    let prepared = evaluate::prepare(
        &history,
        rc.holdout_fraction,
        &CandidateLimits::default(),
        &bar,
    )?;
    bar.finish_and_clear();
    let bar = ui.bar(1);
    let trained = retrain::fit(&history, &prepared, &rc, "bench", &bar)?;
    bar.finish_and_clear();
    Ok(BenchFigures {
        payments: history.payments.len(),
        rows_replayed: prepared.fit.y.len() + prepared.hold.y.len(),
        rows_fitted: prepared.fit.y.len(),
        read_seconds,
        replay_seconds: prepared.replay_seconds,
        fit_seconds: trained.fit_seconds,
        rounds: trained.model.gbdt.n_trees(),
        peak_rss_mib: peak_rss_mib(),
        threads: rayon::current_num_threads(),
    })
}
