//! Batch matching throughput against a large ledger: `cashmatch bench match`.

use super::peak_rss_mib;
use crate::domain::Status;
use crate::engine::{Engine, EngineConfig};
use crate::io;
use crate::ledger::Ledger;
use crate::model::artifact::Model;
use anyhow::Context;
use std::sync::Arc;
use std::time::Instant;

/// Generates a world with at least `invoices` ledger items and `payments` payments, writes its
/// ledger as CSV and times loading it back (parse and index), then matches every payment with
/// the shipped model and prints the figures.
pub fn run(invoices: usize, payments: usize, seed: u64) -> anyhow::Result<()> {
    let t = Instant::now();
    let world = super::world_with_ledger(invoices, payments, seed);
    let split = world.test;
    eprintln!(
        "generated {} customers, {} ledger items, {} payments in {:.1}s (not measured below)",
        world.customers.len(),
        split.invoices.len(),
        split.payments.len(),
        t.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("cashmatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (cpath, ipath) = (dir.join("customers.csv"), dir.join("invoices.csv"));
    io::write_customers(
        std::io::BufWriter::new(std::fs::File::create(&cpath)?),
        &world.customers,
    )?;
    io::write_invoices(
        std::io::BufWriter::new(std::fs::File::create(&ipath)?),
        &split.invoices,
    )?;
    let payments = split.payments;
    drop(world.customers);
    drop(split.invoices);

    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let customers = io::read_customers(&cpath)?.rows;
    let invoices = io::read_invoices(&ipath)?.rows;
    let read_secs = t.elapsed().as_secs_f64();
    let n_invoices = invoices.len();
    let (ledger, errors) = Ledger::new(customers, invoices);
    let load_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        errors.is_empty(),
        "generated ledger rejected: {}",
        errors[0]
    );
    let index_mib = ledger.index_bytes() as f64 / (1024.0 * 1024.0);
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;

    let model = Arc::new(Model::embedded_default()?);
    let mut engine = Engine::new(ledger, model, EngineConfig::default());
    let t = Instant::now();
    let decisions = engine.run_batch(&payments);
    let match_secs = t.elapsed().as_secs_f64();
    let auto = decisions
        .iter()
        .filter(|d| d.status == Status::Auto)
        .count();
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| ledger items | {n_invoices} |");
    println!("| payments | {} |", payments.len());
    println!("| threads (rayon) | {} |", rayon::current_num_threads());
    println!("| ledger load: read CSV | {read_secs:.2} s |");
    println!("| ledger load: read CSV + build indexes | {load_secs:.2} s |");
    println!("| index memory (approx.) | {index_mib:.0} MiB |");
    println!("| batch match, end to end | {match_secs:.2} s |");
    println!(
        "| throughput | {:.0} payments/s |",
        payments.len() as f64 / match_secs.max(1e-9)
    );
    println!(
        "| auto-applied | {:.1}% |",
        100.0 * auto as f64 / payments.len().max(1) as f64
    );
    println!("| peak RSS before load (generator and payments) | {rss_before:.0} MiB |");
    println!("| peak RSS | {:.0} MiB |", peak_rss_mib());
    Ok(())
}
