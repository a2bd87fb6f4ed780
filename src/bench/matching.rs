//! Batch matching throughput against a large ledger: `cashmatch bench match`.
//!
//! Two customer-size profiles side by side, each measured in a fresh child process (this same
//! binary, told which profile through [`CHILD_ENV`]) so that one profile's freed heap does not
//! hide the other's memory: `typical` (the generator's default spread of open items per
//! customer) and `heavy-tailed` (key accounts holding 10,000-30,000 open items each, as the
//! largest customers of a million-item ledger do; see `synth::CustomerSizes`). The per-payment
//! cost must not grow with the payer's size, so the two throughputs should be close.

use anyhow::{Context, bail};
use cashmatch::domain::Status;
use cashmatch::engine::{Engine, EngineConfig};
use cashmatch::eval::peak_rss_mib;
use cashmatch::io;
use cashmatch::ledger::Ledger;
use cashmatch::model::artifact::Model;
use cashmatch::synth::CustomerSizes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Set in a child process to the name of the profile it measures.
const CHILD_ENV: &str = "CASHMATCH_BENCH_MATCH_CHILD";

/// A customer this large counts as a key account in the figures.
const KEY_ACCOUNT_ITEMS: usize = 10_000;

/// The figures a child prints, one `name<TAB>value` line each, in table order.
const ROWS: [&str; 15] = [
    "ledger items",
    "customers",
    "open items of the largest customer",
    "customers with 10,000+ open items",
    "open items held by them",
    "payments",
    "payments to them (by the truth)",
    "threads (rayon)",
    "ledger load: read CSV",
    "ledger load: read CSV + build indexes",
    "index memory (approx.)",
    "batch match, end to end",
    "throughput",
    "auto-applied",
    "peak RSS before load (generator and payments) / peak RSS",
];

/// Measures both profiles, each in a child process, and prints one Markdown table with a
/// column per profile. In a child (see [`CHILD_ENV`]), measures its profile and prints it.
pub fn run(invoices: usize, payments: usize, seed: u64) -> anyhow::Result<()> {
    if let Ok(profile) = std::env::var(CHILD_ENV) {
        let sizes: CustomerSizes = profile.parse().map_err(anyhow::Error::msg)?;
        for (name, value) in measure(invoices, payments, seed, sizes)? {
            println!("{name}\t{value}");
        }
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut columns: Vec<(CustomerSizes, HashMap<String, String>)> = Vec::new();
    for sizes in CustomerSizes::ALL {
        eprintln!("profile {}:", sizes.name());
        let out = std::process::Command::new(&exe)
            .args(["bench", "match"])
            .args(["--invoices", &invoices.to_string()])
            .args(["--payments", &payments.to_string()])
            .args(["--seed", &seed.to_string()])
            .env(CHILD_ENV, sizes.name())
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the measuring child")?;
        if !out.status.success() {
            bail!("measuring profile {} failed", sizes.name());
        }
        let figures = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        columns.push((sizes, figures));
    }
    print!("| figure |");
    for (sizes, _) in &columns {
        print!(" {} |", sizes.name());
    }
    print!("\n|---|");
    for _ in &columns {
        print!("---:|");
    }
    println!();
    for row in ROWS {
        print!("| {row} |");
        for (_, figures) in &columns {
            print!(" {} |", figures.get(row).map_or("?", String::as_str));
        }
        println!();
    }
    let secs = |c: &HashMap<String, String>| {
        c.get("batch match, end to end")
            .and_then(|v| v.trim_end_matches(" s").parse::<f64>().ok())
    };
    if let [(_, typical), (_, heavy)] = columns.as_slice() {
        if let (Some(t), Some(h)) = (secs(typical), secs(heavy)) {
            println!(
                "\nheavy-tailed takes {:.2}x the time of typical per payment",
                h / t.max(1e-9)
            );
        }
    }
    Ok(())
}

/// Generates a world of the profile with at least `invoices` ledger items and `payments`
/// payments, writes its ledger as CSV and times loading it back (parse and index), then matches
/// every payment with the shipped model. Returns the figures in [`ROWS`] order.
fn measure(
    invoices: usize,
    payments: usize,
    seed: u64,
    sizes: CustomerSizes,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let t = Instant::now();
    let world = cashmatch::synth::world_with_ledger(invoices, payments, seed, sizes);
    let split = world.test;
    eprintln!(
        "  generated {} customers, {} ledger items, {} payments in {:.1}s (not measured below)",
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
    let n_customers = world.customers.len();
    let payments = split.payments;
    let labels = split.labels;
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

    // Key accounts: customers holding 10,000 or more open items when matching starts.
    let open: Vec<usize> = (0..n_customers as u32)
        .map(|c| ledger.customer_open_invoices(c).len())
        .collect();
    let largest = open.iter().copied().max().unwrap_or(0);
    let key: Vec<bool> = open.iter().map(|&n| n >= KEY_ACCOUNT_ITEMS).collect();
    let key_items: usize = open.iter().filter(|&&n| n >= KEY_ACCOUNT_ITEMS).sum();
    let total_open: usize = open.iter().sum();
    let mut to_key: Vec<&str> = labels
        .iter()
        .filter(|l| {
            ledger
                .invoice_idx(&l.invoice_id)
                .is_some_and(|i| key[ledger.invoice_customer(i) as usize])
        })
        .map(|l| l.payment_id.as_str())
        .collect();
    to_key.sort_unstable();
    to_key.dedup();

    let model = Arc::new(Model::embedded_default()?);
    let mut engine = Engine::new(ledger, model, EngineConfig::default());
    let t = Instant::now();
    let decisions = engine.run_batch(&payments);
    let match_secs = t.elapsed().as_secs_f64();
    let auto = decisions
        .iter()
        .filter(|d| d.status == Status::Auto)
        .count();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    Ok(vec![
        ("ledger items", n_invoices.to_string()),
        ("customers", n_customers.to_string()),
        ("open items of the largest customer", largest.to_string()),
        (
            "customers with 10,000+ open items",
            key.iter().filter(|&&k| k).count().to_string(),
        ),
        (
            "open items held by them",
            format!("{key_items} ({:.1}%)", pct(key_items, total_open)),
        ),
        ("payments", payments.len().to_string()),
        (
            "payments to them (by the truth)",
            format!(
                "{} ({:.1}%)",
                to_key.len(),
                pct(to_key.len(), payments.len())
            ),
        ),
        ("threads (rayon)", rayon::current_num_threads().to_string()),
        ("ledger load: read CSV", format!("{read_secs:.2} s")),
        (
            "ledger load: read CSV + build indexes",
            format!("{load_secs:.2} s"),
        ),
        ("index memory (approx.)", format!("{index_mib:.0} MiB")),
        ("batch match, end to end", format!("{match_secs:.2} s")),
        (
            "throughput",
            format!(
                "{:.0} payments/s",
                payments.len() as f64 / match_secs.max(1e-9)
            ),
        ),
        ("auto-applied", format!("{:.1}%", pct(auto, payments.len()))),
        (
            "peak RSS before load (generator and payments) / peak RSS",
            format!("{rss_before:.0} / {:.0} MiB", peak_rss_mib()),
        ),
    ])
}
