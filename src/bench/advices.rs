//! `cashmatch bench advices`: the decoupled family measured end to end. A world's test payments
//! are decoupled (receipts in a BAI2 file; advices as emails with CSV, XLSX or text-PDF
//! attachments, REMADV, remt.001 and 820 files: `synth::decouple`), written, read back through
//! the parsers, linked and matched with the
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
pub fn run(
    seed: u64,
    customers: usize,
    payments: usize,
    out: &Path,
    date_margin_days: u32,
) -> anyhow::Result<()> {
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
    // Files by the format they were read as (an email by its attachment's).
    let mut forms: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &files {
        let parsed = formats::parse_path(f, None)?;
        unreadable += parsed.errors.len();
        if let Some(p) = parsed.payments.first() {
            *forms.entry(p.format.clone()).or_default() += 1;
        }
        advices.extend(parsed.payments);
    }
    let (ledger, errs) =
        cashmatch::ledger::Ledger::new(world.customers.clone(), split.invoices.clone());
    anyhow::ensure!(errs.is_empty(), "ledger: {:?}", errs.first());
    // Every advice that will come has come: the hold is over for all.
    let last = split.payments.iter().filter_map(|p| p.payment_date).max();
    let config = LinkConfig {
        as_of: last.and_then(|d| d.checked_add_days(chrono::Days::new(30))),
        date_margin_days: i64::from(date_margin_days),
        ..Default::default()
    };
    // The same run with receipts alone left to the matcher, for the figure of what holding them
    // for review costs and saves.
    let matched_alone = Batch::run(
        &ledger,
        bank.payments.clone(),
        advices.clone(),
        &LinkConfig {
            review_receipts_alone: false,
            ..config.clone()
        },
    );
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
            let key = advice_key(&batch.advices[a].payment_id);
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
    let cases: HashMap<String, String> = split.cases.iter().cloned().collect();
    write_errors(&out.join("link_errors.csv"), &batch, &truth, &found, &cases)
        .with_context(|| format!("writing {}", out.join("link_errors.csv").display()))?;
    let within = d.truth.iter().filter(|(_, _, w)| *w).count();
    let recalled = d
        .truth
        .iter()
        .filter(|(a, _, w)| *w && found.contains(a.as_str()))
        .count();
    let model = Arc::new(Model::embedded_default()?);
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
    let alone_matched = eval::compare(
        Arc::new(Model::embedded_default()?),
        &world.customers,
        &split.invoices,
        &matched_alone.payments,
        &split.labels,
        &cases,
    )?;
    let c = batch.counts();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "world {seed}: {customers} customers, test split {} payments; {} bank payments in bank.bai2, {} advice files ({} unreadable parts)",
        split.payments.len(),
        d.receipts.len(),
        files.len(),
        unreadable
    );
    println!(
        "advice files by format: {}",
        forms
            .iter()
            .map(|(f, n)| format!("{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
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
    line(
        "decoupled, receipts alone matched on the amount (review_receipts_alone off)",
        &alone_matched.model,
    );
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
    write_auto_errors(
        &out.join("auto_errors.csv"),
        &decoupled.decisions,
        &split.labels,
        &linked_ids,
        &cases,
    )
    .with_context(|| format!("writing {}", out.join("auto_errors.csv").display()))?;
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

/// The generator's advice id in the id a reader gave it: an email's is
/// `eml:ADVICE-ID@payer.example:1`, a REMADV's `remadv:ADVICE-ID`, remt.001's and 820's the id
/// itself.
fn advice_key(id: &str) -> &str {
    if let Some(rest) = id.strip_prefix("eml:") {
        return rest.split('@').next().unwrap_or(rest);
    }
    id.strip_prefix("remadv:").unwrap_or(id)
}

/// Every wrong link and every advice of the truth left unlinked, with what linking saw, for
/// finding out why (`kind,advice,linked_to,truth,within,reason,candidates`, then the true
/// receipt's case family and the facts compared: both amounts, the days apart, both payer names).
fn write_errors(
    path: &Path,
    batch: &Batch,
    truth: &HashMap<&str, (&str, bool)>,
    found: &HashSet<&str>,
    cases: &HashMap<String, String>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        w,
        "kind,advice,linked_to,truth,within,reason,candidates,case,advice_amount,receipt_amount,days_apart,advice_payer,receipt_payer"
    )?;
    let rid = |i: usize| batch.receipts[i].payment_id.as_str();
    let receipt_of: HashMap<&str, &cashmatch::domain::Payment> = batch
        .receipts
        .iter()
        .map(|r| (r.payment_id.as_str(), r))
        .collect();
    // The true receipt's side of the comparison, for the columns after `candidates`.
    let facts = |a: usize, t: &str| -> String {
        let adv = &batch.advices[a];
        let r = receipt_of.get(t);
        let days = match (r.and_then(|r| r.payment_date), adv.payment_date) {
            (Some(x), Some(y)) => (x - y).num_days().to_string(),
            _ => String::new(),
        };
        let name = |p: Option<&cashmatch::domain::Payment>| {
            p.map(|p| {
                format!(
                    "{}|{}",
                    p.payer.name.as_deref().unwrap_or(""),
                    p.payer.account.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default()
            .replace(['"', ','], " ")
        };
        format!(
            "{},{},{},{days},{},{}",
            cases.get(t).map(String::as_str).unwrap_or(""),
            adv.amount,
            r.map(|r| r.amount.to_string()).unwrap_or_default(),
            name(Some(adv)),
            name(r.copied())
        )
    };
    for l in &batch.linking.links {
        for &a in &l.advices {
            let key = advice_key(&batch.advices[a].payment_id);
            if found.contains(key) {
                continue;
            }
            let (t, within) = truth.get(key).copied().unwrap_or(("", false));
            let to: Vec<&str> = l.receipts.iter().map(|&r| rid(r)).collect();
            let to_cases: Vec<&str> = to
                .iter()
                .map(|r| cases.get(*r).map(String::as_str).unwrap_or("?"))
                .collect();
            writeln!(
                w,
                "wrong,{key},{} ({}),{t},{within},\"{}\",,{}",
                to.join(" "),
                to_cases.join(" "),
                l.evidence.join("; ").replace('"', "'"),
                facts(a, t)
            )?;
        }
    }
    for p in &batch.linking.advices {
        let key = advice_key(&batch.advices[p.index].payment_id);
        let (t, within) = truth.get(key).copied().unwrap_or(("", false));
        let c: Vec<&str> = p.candidates.iter().map(|&r| rid(r)).collect();
        writeln!(
            w,
            "unlinked,{key},,{t},{within},{:?},{},{}",
            p.reason,
            c.join(" "),
            facts(p.index, t)
        )?;
    }
    w.flush()?;
    Ok(())
}

/// Every auto decision of the decoupled run that is not the truth (`eval::wrong_autos`), for
/// finding out why: `payment,outcome,linked,case,applied,truth` (invoice:cash pairs).
fn write_auto_errors(
    path: &Path,
    decisions: &[cashmatch::domain::Decision],
    labels: &[cashmatch::domain::Label],
    linked: &HashSet<&str>,
    cases: &HashMap<String, String>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let pairs = |v: &[(String, rust_decimal::Decimal)]| {
        v.iter()
            .map(|(i, c)| format!("{i}:{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "payment,outcome,linked,case,applied,truth")?;
    for e in eval::wrong_autos(decisions, labels) {
        let id = e.decision.payment_id.as_str();
        writeln!(
            w,
            "{id},{:?},{},{},{},{}",
            e.outcome,
            linked.contains(id),
            cases.get(id).map(String::as_str).unwrap_or(""),
            pairs(&e.applied),
            pairs(&e.truth)
        )?;
    }
    w.flush()?;
    Ok(())
}
