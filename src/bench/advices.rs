//! `cashmatch bench advices`: the decoupled family measured end to end. A world's test payments
//! are decoupled (receipts in a BAI2 file, advices as emails with CSV or XLSX attachments,
//! `synth::decouple`), written, read back through the parsers, linked and matched with the
//! built-in model; the link precision and recall and the decisions' figures are printed beside
//! the same payments matched with their detail attached.

use anyhow::Context;
use cashmatch::advice::{Batch, LinkConfig};
use cashmatch::eval;
use cashmatch::formats;
use cashmatch::model::artifact::Model;
use cashmatch::synth;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Runs the measurement on world `seed` and writes its files under `out`.
pub fn run(seed: u64, customers: usize, payments: usize, out: &Path) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let world = synth::generate(&synth::SynthConfig::new(seed, customers, payments));
    let split = &world.test;
    let d = synth::decouple(split, seed);
    synth::write_decoupled(&d, out, seed)
        .with_context(|| format!("writing the decoupled files to {}", out.display()))?;
    // Read back as a user's run would: the bank file and every email through the parsers.
    let bank = formats::parse_path(&out.join("bank.bai2"), None)?;
    anyhow::ensure!(
        bank.errors.is_empty(),
        "bank file: {:?}",
        bank.errors.first()
    );
    let mut files: Vec<_> = std::fs::read_dir(out.join("advices"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    let mut advices = Vec::new();
    let mut unreadable = 0;
    for f in &files {
        let parsed = formats::parse_path(f, None)?;
        unreadable += parsed.errors.len();
        advices.extend(parsed.payments);
    }
    let (ledger, errs) =
        cashmatch::ledger::Ledger::new(world.customers.clone(), split.invoices.clone());
    anyhow::ensure!(errs.is_empty(), "ledger: {:?}", errs.first());
    // Every advice that will come has come: the hold is over for all.
    let last = split.payments.iter().filter_map(|p| p.payment_date).max();
    let config = LinkConfig {
        as_of: last.and_then(|d| d.checked_add_days(chrono::Days::new(30))),
        ..Default::default()
    };
    let batch = Batch::run(&ledger, bank.payments, advices, &config);
    // Link precision and recall, per advice.
    let truth: HashMap<&str, (&str, bool)> = d
        .truth
        .iter()
        .map(|(a, r, w)| (a.as_str(), (r.as_str(), *w)))
        .collect();
    let (mut linked, mut correct) = (0usize, 0usize);
    let mut found: HashSet<&str> = HashSet::new();
    for l in &batch.linking.links {
        for &a in &l.advices {
            let aid = batch.advices[a].payment_id.as_str();
            // An email's advice id is `eml:ADVICE-ID@payer.example:1`.
            let key = aid
                .strip_prefix("eml:")
                .and_then(|s| s.split('@').next())
                .unwrap_or(aid);
            linked += 1;
            let right = truth.get(key).is_some_and(|(r, _)| {
                l.receipts
                    .iter()
                    .any(|&i| batch.receipts[i].payment_id == *r)
            });
            if right {
                correct += 1;
                found.insert(key);
            }
        }
    }
    let within = d.truth.iter().filter(|(_, _, w)| *w).count();
    let recalled = d
        .truth
        .iter()
        .filter(|(a, _, w)| *w && found.contains(a.as_str()))
        .count();
    let model = Arc::new(Model::embedded_default()?);
    let cases: HashMap<String, String> = split.cases.iter().cloned().collect();
    let coupled = eval::compare(
        model.clone(),
        &world.customers,
        &split.invoices,
        &split.payments,
        &split.labels,
        &cases,
    )?;
    let decoupled = eval::compare(
        model,
        &world.customers,
        &split.invoices,
        &batch.payments,
        &split.labels,
        &cases,
    )?;
    let c = batch.counts();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "world {seed}: {customers} customers, test split {} payments; {} receipts in bank.bai2, {} advice emails ({} unreadable parts)",
        split.payments.len(),
        d.receipts.len(),
        files.len(),
        unreadable
    );
    println!("linking: {c}");
    println!(
        "link precision {:.2}% ({correct} of {linked} linked advices right); recall {:.2}% ({recalled} of {within} advices that arrived within the window)",
        pct(correct, linked),
        pct(recalled, within)
    );
    let line = |name: &str, r: &eval::Report| {
        let o = &r.overall;
        println!(
            "{name}: touchless {:.2}%, auto-apply precision {}, misapplied {:.2} per 1,000, incomplete {:.2} per 1,000, review top-1 {:.1}%",
            100.0 * o.touchless(),
            o.precision_text(3),
            o.misapplied_per_1000(),
            o.incomplete_per_1000(),
            100.0 * o.review_top1()
        )
    };
    line("detail attached (coupled)", &coupled.model);
    line("decoupled, linked", &decoupled.model);
    // Where the decoupled run's wrong auto-applies are: linked payments, or receipts alone.
    let linked_ids: HashSet<&str> = batch
        .linking
        .links
        .iter()
        .flat_map(|l| {
            l.receipts
                .iter()
                .map(|&r| batch.receipts[r].payment_id.as_str())
        })
        .collect();
    let (with, alone): (Vec<_>, Vec<_>) = decoupled
        .decisions
        .iter()
        .cloned()
        .partition(|d| linked_ids.contains(d.payment_id.as_str()));
    for (name, ds) in [("linked", &with), ("not linked", &alone)] {
        let o = eval::evaluate(ds, &split.labels, &cases).overall;
        println!(
            "  {name}: {} payments, touchless {:.2}%, misapplied {} ({:.2} per 1,000 of them)",
            ds.len(),
            100.0 * o.touchless(),
            o.auto_misapplied,
            o.misapplied_per_1000()
        );
    }
    eprintln!(
        "{:.1}s; files in {}",
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
