//! The `cashmatch` command line: a thin shell over the library.

mod bench;

use anyhow::{Context, Result, bail};
use cashmatch::domain::{Customer, Decision, Invoice, Payment, Status};
use cashmatch::engine::{DEFAULT_UNEXPLAINED_TOLERANCE, Engine, EngineConfig};
use cashmatch::eval::{self, Report};
use cashmatch::formats::{self, Format};
use cashmatch::ledger::Ledger;
use cashmatch::model::artifact::Model;
use cashmatch::{crossval, io, synth, train};
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "cashmatch",
    version,
    about = "Cash application: match payments to open invoices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a remittance file in any supported format and write its payments as JSON Lines.
    ///
    /// One object per payment on stdout (the canonical payment, amounts as decimal strings; see
    /// docs/formats.md); transactions that could not be read go to stderr with their positions.
    Parse {
        file: PathBuf,
        /// The format, when detection from the content should not decide (csv, x12_820, remadv,
        /// bai2, lockbox, camt053, camt054, remt001, nacha, mt940, bank_csv, eml, xlsx, pdf,
        /// text).
        #[arg(long)]
        format: Option<Format>,
    },
    /// Match remittances against an open-items ledger and write one decision per payment.
    Match {
        #[arg(long)]
        customers: Option<PathBuf>,
        #[arg(long)]
        invoices: PathBuf,
        #[arg(long)]
        remittances: PathBuf,
        /// Format of --remittances; detected from the content when absent.
        #[arg(long)]
        format: Option<Format>,
        #[arg(long)]
        out: PathBuf,
        /// Model directory; the default model built into the binary when absent.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Auto-apply threshold overriding the model's own.
        #[arg(long)]
        threshold: Option<f64>,
        /// Cash an auto decision may leave unapplied that the remittance does not account for
        /// (beyond it the payment goes to review).
        #[arg(long, default_value_t = DEFAULT_UNEXPLAINED_TOLERANCE, value_parser = non_negative_money)]
        unexplained_tolerance: Decimal,
        /// Remittance advices that arrived apart from the money (a file, or a directory of
        /// them; repeatable): linked with the --remittances payments that carry no detail
        /// before matching (docs/advices.md).
        #[arg(long)]
        advices: Vec<PathBuf>,
        /// Write every link, and every receipt and advice left unlinked with what it could be
        /// linked to, to this JSON Lines file.
        #[arg(long, requires = "advices")]
        links: Option<PathBuf>,
        /// Largest bank fee a receipt may be short of its advice and still be linked.
        #[arg(long, default_value_t = cashmatch::advice::DEFAULT_FEE_LIMIT, value_parser = non_negative_money)]
        fee_limit: Decimal,
        /// Days a receipt's and its advice's dates may lie apart.
        #[arg(long, default_value_t = 7)]
        link_window_days: u32,
        /// Business days an unlinked receipt waits for its advice (and an advice for its money).
        #[arg(long, default_value_t = 2)]
        hold_days: u32,
        /// The day the hold is reckoned from (YYYY-MM-DD); the latest date of the inputs when absent.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
    /// Train a model from labelled history and write its artifact directory.
    Train {
        #[arg(long)]
        customers: Option<PathBuf>,
        #[arg(long)]
        invoices: PathBuf,
        #[arg(long)]
        remittances: PathBuf,
        /// Format of --remittances; detected from the content when absent.
        #[arg(long)]
        format: Option<Format>,
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Auto-apply precision the threshold must guarantee (95% confidence) on the holdout.
        #[arg(long, default_value_t = 0.997)]
        target_precision: f64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Version recorded in every decision the model makes.
        #[arg(long)]
        version: Option<String>,
        /// A labelled split directory (customers, invoices, remittances, labels, cases CSVs) to
        /// test the new model on; its figures go into the model card beside the rules baseline.
        #[arg(long)]
        test: Option<PathBuf>,
        /// The command that reproduces this model and its card, written into the card (default:
        /// this command line; give the whole recipe when the history itself was generated).
        #[arg(long)]
        reproduce: Option<String>,
    },
    /// Score decisions against labels, beside the rules baseline when the ledger is given.
    Eval {
        #[arg(long)]
        decisions: PathBuf,
        #[arg(long)]
        labels: PathBuf,
        /// Case family per payment; `cases.csv` beside the labels when present.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// With --invoices and --remittances: also run the rules baseline.
        #[arg(long)]
        customers: Option<PathBuf>,
        #[arg(long)]
        invoices: Option<PathBuf>,
        #[arg(long)]
        remittances: Option<PathBuf>,
        /// Format of --remittances; detected from the content when absent.
        #[arg(long)]
        format: Option<Format>,
    },
    /// Generate a seeded synthetic world with train/ and test/ splits.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        customers: usize,
        #[arg(long, default_value_t = 10_000)]
        payments: usize,
        /// Customers' open-item counts: `typical`, or `heavy-tailed` (key accounts with
        /// 10,000-30,000 open items; docs/synth.md).
        #[arg(long, default_value = "typical")]
        sizes: synth::CustomerSizes,
        /// World profile: standard (today's worlds) or enterprise (other numbering, memos cut
        /// at 80 characters, customers quoting digits only); docs/synth.md.
        #[arg(long, default_value_t = synth::WorldProfile::Standard)]
        profile: synth::WorldProfile,
        /// Also write the test split decoupled into test/decoupled/: the receipts in a BAI2
        /// file, the advices as emails with CSV or XLSX attachments, and the truth of the links
        /// (docs/advices.md).
        #[arg(long)]
        decoupled: bool,
    },
    /// Leave-one-family-out: for each case family, a model trained on a world's train split
    /// without that family's payments decides the test split; its figures on the family beside
    /// the all-families model's (docs/engine.md).
    Lofo {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 2_000)]
        customers: usize,
        #[arg(long, default_value_t = 30_000)]
        payments: usize,
        #[arg(long, default_value_t = synth::WorldProfile::Standard)]
        profile: synth::WorldProfile,
        /// Only these families (comma-separated names from cases.csv); every family when absent.
        #[arg(long, value_delimiter = ',')]
        families: Vec<String>,
        /// Directory for lofo.md.
        #[arg(long)]
        out: PathBuf,
    },
    /// Train on one world profile, test on another: per family, beside the model trained on the
    /// test profile itself (docs/engine.md).
    CrossProfile {
        #[arg(long)]
        train_profile: synth::WorldProfile,
        #[arg(long)]
        test_profile: synth::WorldProfile,
        /// Seed of the train world; the test world's is the next one.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 2_000)]
        customers: usize,
        #[arg(long, default_value_t = 30_000)]
        payments: usize,
        /// Directory for cross-profile.md.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the gRPC service: ledger sync, matching, the review queue and models, on a durable
    /// SQLite store (docs/api.md).
    Serve {
        /// Address to listen on [default: 127.0.0.1:50051].
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Directory of the store [default: ./data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Keep the state in PostgreSQL instead (postgres://USER@HOST:PORT/DB), so that several
        /// replicas can share it (docs/operations.md); SQLite in --data-dir is the default.
        #[arg(long, value_name = "URL")]
        store: Option<cashmatch::store::StoreUrl>,
        /// Model directory; else the last one activated, else the built-in model.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A models directory to follow: when its ACTIVE file names another version (what
        /// `cashmatch-train retrain --publish` writes), that model is activated without a
        /// restart.
        #[arg(long)]
        models_dir: Option<PathBuf>,
        /// TOML config: bearer tokens and their roles, limits, metrics address.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve Prometheus metrics on http://ADDR/metrics.
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Where the analysts' workbench (web pages) listens [default: 127.0.0.1:8080].
        #[arg(long)]
        ui_addr: Option<std::net::SocketAddr>,
        /// Do not serve the analysts' workbench.
        #[arg(long, conflicts_with = "ui_addr")]
        no_ui: bool,
        /// Seed an empty store with a small synthetic ledger (and its remittances in
        /// DATA_DIR/demo/remittances.csv).
        #[arg(long)]
        demo: bool,
    },
    /// Export the labels the service has learnt (analysts' resolutions, auto-applied matches
    /// never reversed) for the retraining job, reading the store directly (docs/training.md).
    ExportLabels {
        /// Directory of the store (the service's --data-dir).
        #[arg(long)]
        data_dir: PathBuf,
        /// The labels file to write (`service_labels.csv` of a history directory).
        #[arg(long)]
        out: PathBuf,
        /// Also write the exported payments, in the remittance format.
        #[arg(long)]
        remittances: Option<PathBuf>,
        /// Leave out auto-applied matches younger than this many days: a reversal may not have
        /// reached the engine yet.
        #[arg(long, default_value_t = 30)]
        settle_days: u32,
        /// Analysts' resolutions only.
        #[arg(long)]
        no_auto: bool,
    },
    /// Write the postings journal (every movement of cash, in sequence order) after a sequence
    /// to a file for an ERP to import, reading the store directly, also while the service runs
    /// (docs/api.md, "The postings journal").
    Postings {
        /// Directory of the store (the service's --data-dir).
        #[arg(long)]
        data_dir: PathBuf,
        /// Postings after this sequence: the last one the ERP imported (0: from the start).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// The file to write: CSV, or JSON Lines (`.jsonl`, `.ndjson`).
        #[arg(long)]
        out: PathBuf,
        /// `csv` or `jsonl`; by default from the extension of --out.
        #[arg(long)]
        format: Option<String>,
    },
    /// Copy the service's store into a new data directory, while the service runs: one
    /// consistent snapshot, checked before it is put in place (docs/operations.md).
    Backup {
        /// Directory of the store (the service's --data-dir).
        #[arg(long)]
        data_dir: PathBuf,
        /// The new data directory (must not exist or be empty); `serve --data-dir` starts from it.
        #[arg(long)]
        out: PathBuf,
    },
    /// The audit trail of a store: check its hash chain, or export it for auditors
    /// (docs/operations.md, "The audit trail").
    Audit {
        #[command(subcommand)]
        what: AuditWhat,
    },
    /// Bearer tokens for the service's config, which holds only their hashes
    /// (docs/operations.md, "Tokens").
    Token {
        #[command(subcommand)]
        what: TokenWhat,
    },
    /// Benchmarks that print their figures (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// The main job on embedded defaults: synthesise a world the model never saw, match its test
    /// split with the built-in model and print the figures beside the rules baseline.
    Demo {
        #[arg(long, default_value_t = 20261127)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        customers: usize,
        #[arg(long, default_value_t = 10_000)]
        payments: usize,
    },
}

#[derive(Subcommand)]
enum AuditWhat {
    /// Check the chain of audit events (also while the service runs); names the first event
    /// that does not fit and exits non-zero if one does not.
    Verify {
        /// Directory of the store (the service's --data-dir).
        #[arg(long)]
        data_dir: PathBuf,
        /// A head printed by an earlier verify (ID:HASH) and kept outside the store: the event
        /// must still be in the chain with that hash, which a chain rewritten whole fails.
        #[arg(long)]
        expect: Option<cashmatch::store::sqlite::audit::Witness>,
    },
    /// Write the trail with its chain to a JSON Lines file: the anchor, then every event with
    /// the hash of the one before it and its own.
    Export {
        /// Directory of the store (the service's --data-dir).
        #[arg(long)]
        data_dir: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenWhat {
    /// Make a new token: prints it once, and the `[[tokens]]` lines (with its SHA-256, not the
    /// token) to put in the config. A running service picks them up within seconds.
    New {
        /// Who holds it: recorded as the actor of what its calls do (an analyst's name, "erp").
        #[arg(long)]
        name: String,
        /// ar_system, analyst or admin; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<cashmatch::service::auth::Role>,
    },
    /// Print the `token_sha256` of a token read from standard input (one line): to move a
    /// clear-text `token = ...` of an older config to its hash without issuing a new one.
    Hash,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Batch matching throughput and peak memory against a large ledger.
    Match {
        #[arg(long, default_value_t = 1_000_000)]
        invoices: usize,
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// The gRPC service over loopback: p50/p99 latency of single payments at a steady rate, then
    /// streamed throughput.
    Serve {
        #[arg(long, default_value_t = 1_000_000)]
        invoices: usize,
        /// Single-payment requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Payments sent on streams after the steady phase.
        #[arg(long, default_value_t = 20_000)]
        streamed: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Sync every commit (`full`) or at checkpoints only (`normal`).
        #[arg(long, default_value = "full")]
        durability: String,
    },
    /// Receipts and advices sent apart (the decoupled family, docs/advices.md): link precision
    /// and recall, and the decisions beside the same payments with their detail attached.
    Advices {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        customers: usize,
        #[arg(long, default_value_t = 10_000)]
        payments: usize,
        /// Where the bank file, the emails and the truth are written.
        #[arg(long)]
        out: PathBuf,
    },
    /// strsim against rapidfuzz on reference similarity.
    Strings {
        #[arg(long, default_value_t = 200_000)]
        pairs: usize,
    },
    /// Parse throughput and memory per format on generated multi-megabyte files.
    Parse {
        /// Approximate size of each generated file, in MB.
        #[arg(long, default_value_t = 20)]
        mb: usize,
    },
}

/// `cashmatch export-labels`: the store's labels (and payments) to files, written under a
/// temporary name and renamed, so a failed export leaves no half file to train on.
fn export_labels(
    data_dir: &Path,
    out: &Path,
    remittances: Option<&Path>,
    settle_days: u32,
    no_auto: bool,
) -> Result<()> {
    use cashmatch::store::export::{ExportOptions, export_labels};
    use cashmatch::store::{SqliteStore, now, sqlite::existing};
    existing(data_dir)?;
    let store = SqliteStore::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let options = ExportOptions {
        include_auto: !no_auto,
        auto_decided_before: Some(now() - chrono::Duration::days(i64::from(settle_days))),
    };
    let tmp = |p: &Path| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        p.with_file_name(name)
    };
    let create = |p: &Path| {
        std::fs::File::create(p)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("creating {}", p.display()))
    };
    let labels_tmp = tmp(out);
    let remittances_tmp = remittances.map(tmp);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counts = rt.block_on(export_labels(
        &store,
        &options,
        create(&labels_tmp)?,
        remittances_tmp.as_deref().map(create).transpose()?,
    ))?;
    store.close();
    std::fs::rename(&labels_tmp, out).with_context(|| format!("writing {}", out.display()))?;
    if let (Some(from), Some(to)) = (remittances_tmp, remittances) {
        std::fs::rename(&from, to).with_context(|| format!("writing {}", to.display()))?;
    }
    eprintln!(
        "{} label rows for {} payments ({} resolved by analysts, {} auto-applied at least {settle_days} days ago) written to {}",
        counts.rows,
        counts.analyst + counts.auto,
        counts.analyst,
        counts.auto,
        out.display()
    );
    Ok(())
}

fn export_journal(data_dir: &Path, after: u64, out: &Path, format: Option<&str>) -> Result<()> {
    use cashmatch::store::journal::{JournalFormat, export_postings};
    use cashmatch::store::{SqliteStore, sqlite::existing};
    let format = match format {
        Some(f) => {
            JournalFormat::parse(f).with_context(|| format!("--format {f}: give csv or jsonl"))?
        }
        None => JournalFormat::from_path(out).with_context(|| {
            format!(
                "--out {}: name it .csv or .jsonl, or give --format",
                out.display()
            )
        })?,
    };
    existing(data_dir)?;
    let store = SqliteStore::open(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    // Written beside the target and renamed: an importer never reads half a file.
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = out.with_file_name(name);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (count, last) = rt.block_on(export_postings(&store, after, format, file))?;
    store.close();
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "{count} postings after sequence {after} written to {} (last sequence {last}; pass --after {last} next time)",
        out.display()
    );
    Ok(())
}

/// Prints what verifying the audit chain found; an error when it is broken.
fn audit_outcome(r: &cashmatch::store::sqlite::audit::ChainReport) -> Result<()> {
    if let Some(b) = &r.broken {
        bail!(
            "audit chain broken at event {}: {} ({} events read)",
            b.id,
            b.reason,
            r.events
        );
    }
    match &r.head {
        Some((id, hash)) => println!("audit chain intact: {} events; head {id}:{hash}", r.events),
        None => println!("audit chain intact: no events yet"),
    }
    Ok(())
}

/// `cashmatch token new`: a new token on standard output once, with the config lines that hold
/// its hash.
fn new_token(name: &str, roles: &[cashmatch::service::auth::Role]) -> Result<()> {
    use cashmatch::service::auth::{TokenHash, new_token};
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        bail!(
            "--name must be 1 to 64 characters without control characters: it is recorded as the actor"
        );
    }
    let mut unique: Vec<String> = Vec::new();
    for r in roles.iter().map(ToString::to_string) {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    let roles = unique;
    let token = new_token().context("reading the operating system's random generator")?;
    // TOML strings, quoted and escaped by the toml crate.
    let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
    println!("# The token of {name}. It is shown this once: cashmatch keeps only its hash.");
    println!("{token}");
    println!();
    println!("# Add to the service's config (a running service applies it within seconds):");
    println!("[[tokens]]");
    println!("name = {}", quote(name));
    println!("token_sha256 = \"{}\"", TokenHash::of(&token).to_hex());
    println!(
        "roles = [{}]",
        roles
            .iter()
            .map(|r| quote(r))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("cashmatch: error: {e:#}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Parse { file, format } => parse_to_json_lines(&file, format)?,
        Command::Match {
            customers,
            invoices,
            remittances,
            format,
            out,
            model,
            threshold,
            unexplained_tolerance,
            advices,
            links,
            fee_limit,
            link_window_days,
            hold_days,
            as_of,
        } => {
            // The ledger is most of the reading; the model and the payments are read beside it.
            let (ledger, (model, (payments, advices))) = rayon::join(
                || load_ledger(customers.as_deref(), &invoices),
                || {
                    (
                        load_model(model.as_deref()),
                        (load_payments(&remittances, format), load_advices(&advices)),
                    )
                },
            );
            let (ledger, model, mut payments) = (ledger?, model?, payments?);
            if let Some(advices) = advices? {
                let config = cashmatch::advice::LinkConfig {
                    fee_limit,
                    window_days: i64::from(link_window_days),
                    hold_business_days: hold_days,
                    as_of,
                    ..Default::default()
                };
                let batch = cashmatch::advice::Batch::run(&ledger, payments, advices, &config);
                eprintln!("linking: {}", batch.counts());
                if let Some(path) = &links {
                    write_json_lines(path, &batch.records())?;
                }
                payments = batch.payments;
            }
            let mut engine = Engine::new(
                ledger,
                model,
                EngineConfig {
                    threshold,
                    unexplained_tolerance,
                    ..Default::default()
                },
            );
            let t = Instant::now();
            let decisions = engine.run_batch(&payments);
            let secs = t.elapsed().as_secs_f64();
            write_decisions(&out, &decisions)?;
            let auto = decisions
                .iter()
                .filter(|d| d.status == Status::Auto)
                .count();
            eprintln!(
                "{} payments: {} auto-applied, {} to review; {:.0} payments/s; decisions in {}",
                decisions.len(),
                auto,
                decisions.len() - auto,
                decisions.len() as f64 / secs.max(1e-9),
                out.display()
            );
            // The process ends here: freeing a million-item ledger piece by piece took a second
            // or more, and the operating system takes the memory back at once.
            std::mem::forget(engine);
            std::mem::forget(payments);
            std::mem::forget(decisions);
        }
        Command::Train {
            customers,
            invoices,
            remittances,
            format,
            labels,
            out,
            target_precision,
            seed,
            version,
            test,
            reproduce,
        } => {
            let mut ledger = load_ledger(customers.as_deref(), &invoices)?;
            let payments = load_payments(&remittances, format)?;
            let labels = report_bad(io::read_labels(&labels)?)?;
            let cfg = train::TrainConfig {
                target_precision,
                params: cashmatch::model::gbdt::GbdtParams {
                    seed,
                    ..Default::default()
                },
                version: version.unwrap_or_else(|| format!("cashmatch-{}", out.display())),
                training_data: format!(
                    "{} payments from {} with labels, ledger {}",
                    payments.len(),
                    remittances.display(),
                    invoices.display()
                ),
                reproduce: reproduce
                    .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
                // How the history's customers quote references, learnt before the replay so
                // that training reads them as the engine will.
                habits: cashmatch::matching::habits::ReferenceHabits::learn(
                    ledger.invoices(),
                    &payments,
                    &labels,
                ),
                ..Default::default()
            };
            let t = Instant::now();
            let ex = train::replay(&mut ledger, &payments, &labels, &cfg.habits, &cfg.limits);
            eprintln!(
                "replayed {} payments into {} candidate rows in {:.1}s; right answer among candidates for {:.2}%",
                payments.len(),
                ex.y.len(),
                t.elapsed().as_secs_f64(),
                100.0 * ex.recall()
            );
            let (model, mut card) = train::fit(&ex, &cfg)?;
            if let Some(dir) = test {
                card.push_str(&test_section(&model, &dir)?);
            }
            model.save(&out, &card)?;
            let m = &model.metrics;
            eprintln!(
                "trained {} rounds in {:.1}s; holdout AUC {:.4}, touchless {:.2}%, precision {:.3}% (lower bound {:.3}%), threshold {:.4}; written to {}",
                m.rounds,
                t.elapsed().as_secs_f64(),
                m.holdout_auc,
                100.0 * m.holdout_touchless,
                100.0 * m.holdout_precision,
                100.0 * m.holdout_precision_lower_bound,
                model.threshold,
                out.display()
            );
        }
        Command::Eval {
            decisions,
            labels,
            cases,
            customers,
            invoices,
            remittances,
            format,
        } => {
            let decisions = report_bad(io::read_decisions(&decisions)?)?;
            let labels_rows = report_bad(io::read_labels(&labels)?)?;
            let cases = load_cases(cases.as_deref(), &labels)?;
            let report = eval::evaluate(&decisions, &labels_rows, &cases);
            let baseline = match (invoices, remittances) {
                (Some(inv), Some(rem)) => {
                    let mut ledger = load_ledger(customers.as_deref(), &inv)?;
                    let payments = load_payments(&rem, format)?;
                    let base = eval::rules_baseline(&mut ledger, &payments);
                    Some(eval::evaluate(&base, &labels_rows, &cases))
                }
                (None, None) => None,
                _ => bail!("the rules baseline needs both --invoices and --remittances"),
            };
            print_reports(&report, baseline.as_ref());
        }
        Command::Synth {
            out,
            seed,
            customers,
            payments,
            profile,
            sizes,
            decoupled,
        } => {
            let world = synth::generate(&synth::SynthConfig {
                seed,
                customers,
                payments,
                profile,
                sizes,
                ..Default::default()
            });
            synth::write_world(&world, &out)?;
            if decoupled {
                let d = synth::decouple(&world.test, seed);
                let dir = out.join("test").join("decoupled");
                synth::write_decoupled(&d, &dir, seed)
                    .with_context(|| format!("writing {}", dir.display()))?;
                eprintln!(
                    "decoupled: {} receipts, {} advice emails in {}",
                    d.receipts.len(),
                    d.advices.len(),
                    dir.display()
                );
            }
            eprintln!(
                "world {seed} ({profile}): {} customers; train {} payments, {} invoices; test {} payments, {} invoices; written to {}",
                world.customers.len(),
                world.train.payments.len(),
                world.train.invoices.len(),
                world.test.payments.len(),
                world.test.invoices.len(),
                out.display()
            );
        }
        Command::Lofo {
            seed,
            customers,
            payments,
            profile,
            families,
            out,
        } => {
            let families = families
                .iter()
                .map(|f| {
                    synth::Case::from_name(f)
                        .with_context(|| format!("--families: no case family named {f:?}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let t = Instant::now();
            let config = synth::SynthConfig {
                seed,
                customers,
                payments,
                profile,
                ..Default::default()
            };
            let world = synth::generate(&config);
            let mut progress = |s: &str| eprintln!("[{:>6.1}s] {s}", t.elapsed().as_secs_f64());
            progress(&format!("world {seed} ({profile}) generated"));
            let l = crossval::lofo(
                &world,
                &train::TrainConfig::default(),
                &families,
                &mut progress,
            )?;
            let command = format!(
                "cashmatch lofo --seed {seed} --customers {customers} --payments {payments} --profile {profile}"
            );
            let table = format!(
                "# Leave one family out\n\n`{command}` ({:.0} s): world {seed}, profile {profile}, {customers} customers, {payments} payments ({} train, {} test). Each family's test payments under the model trained without that family, beside the model trained on every family (threshold {:.4}).\n\n{}",
                t.elapsed().as_secs_f64(),
                world.train.payments.len(),
                world.test.payments.len(),
                l.all_threshold,
                crossval::render_lofo(&l)
            );
            write_table(&out, "lofo.md", &table)?;
            // Each held-out family's decisions, to read what went wrong with `cashmatch eval`.
            for row in &l.rows {
                write_decisions(
                    &out.join(format!("held-out-{}.jsonl", row.family)),
                    &row.decisions,
                )?;
            }
        }
        Command::CrossProfile {
            train_profile,
            test_profile,
            seed,
            customers,
            payments,
            out,
        } => {
            let t = Instant::now();
            let world = |seed: u64, profile| {
                synth::generate(&synth::SynthConfig {
                    seed,
                    customers,
                    payments,
                    profile,
                    ..Default::default()
                })
            };
            let train_world = world(seed, train_profile);
            let test_world = world(seed + 1, test_profile);
            let mut progress = |s: &str| eprintln!("[{:>6.1}s] {s}", t.elapsed().as_secs_f64());
            progress("worlds generated");
            let c = crossval::cross_profile(
                &train_world,
                &test_world,
                &train::TrainConfig::default(),
                &mut progress,
            )?;
            let command = format!(
                "cashmatch cross-profile --train-profile {train_profile} --test-profile {test_profile} --seed {seed} --customers {customers} --payments {payments}"
            );
            let table = format!(
                "# Across world profiles\n\n`{command}` ({:.0} s): trained on world {seed} ({train_profile}, threshold {:.4}) and on world {} ({test_profile}, threshold {:.4}), each on its train split; both judged on world {}'s test split ({} payments).\n\n{}",
                t.elapsed().as_secs_f64(),
                c.foreign_threshold,
                seed + 1,
                c.native_threshold,
                seed + 1,
                test_world.test.payments.len(),
                crossval::render_cross(&c, train_profile.name(), test_profile.name())
            );
            write_table(&out, "cross-profile.md", &table)?;
        }
        Command::Serve {
            addr,
            data_dir,
            store,
            model,
            models_dir,
            config,
            metrics_addr,
            ui_addr,
            no_ui,
            demo,
        } => {
            use cashmatch::app::config::{Overrides, Settings};
            let flags = Overrides {
                addr,
                data_dir,
                model,
                models_dir,
                metrics_addr,
                ui_addr,
                no_ui,
                store,
            };
            let settings = Settings::load(config.as_deref(), flags)?;
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(cashmatch::app::serve(settings, demo))?;
        }
        Command::ExportLabels {
            data_dir,
            out,
            remittances,
            settle_days,
            no_auto,
        } => export_labels(
            &data_dir,
            &out,
            remittances.as_deref(),
            settle_days,
            no_auto,
        )?,
        Command::Postings {
            data_dir,
            after,
            out,
            format,
        } => export_journal(&data_dir, after, &out, format.as_deref())?,
        Command::Backup { data_dir, out } => {
            let t = std::time::Instant::now();
            let b = cashmatch::store::sqlite::backup(&data_dir, &out)?;
            println!(
                "{}: {:.1} MiB, {} invoices, {} decisions, {} open review items, in {:.1}s",
                b.file.display(),
                b.bytes as f64 / (1024.0 * 1024.0),
                b.invoices,
                b.decisions,
                b.open_reviews,
                t.elapsed().as_secs_f64()
            );
        }
        Command::Audit { what } => match what {
            AuditWhat::Verify { data_dir, expect } => {
                let r = cashmatch::store::sqlite::audit::verify(&data_dir, expect.as_ref())?;
                audit_outcome(&r)?;
                println!(
                    "Keep the head outside the store; `cashmatch audit verify --expect ID:HASH` \
                     later proves that no event up to it has changed."
                );
            }
            AuditWhat::Export { data_dir, out } => {
                let r = cashmatch::store::sqlite::audit::export(&data_dir, &out)?;
                println!("{} events written to {}", r.events, out.display());
                audit_outcome(&r)?;
            }
        },
        Command::Token { what } => match what {
            TokenWhat::New { name, roles } => new_token(&name, &roles)?,
            TokenWhat::Hash => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the token from standard input")?;
                if line.trim().is_empty() {
                    bail!("no token on standard input");
                }
                println!(
                    "{}",
                    cashmatch::service::auth::TokenHash::of(&line).to_hex()
                );
            }
        },
        Command::Bench { what } => match what {
            BenchWhat::Match {
                invoices,
                payments,
                seed,
            } => {
                bench::matching::run(invoices, payments, seed)?;
            }
            BenchWhat::Serve {
                invoices,
                rate,
                seconds,
                streamed,
                seed,
                durability,
            } => {
                use cashmatch::app::bench::{BenchConfig, run};
                use cashmatch::store::Durability;
                let durability = match durability.as_str() {
                    "full" => Durability::Full,
                    "normal" => Durability::Normal,
                    other => bail!("--durability must be full or normal, not {other:?}"),
                };
                run(BenchConfig {
                    invoices,
                    rate,
                    seconds,
                    streamed,
                    seed,
                    durability,
                })?;
            }
            BenchWhat::Advices {
                seed,
                customers,
                payments,
                out,
            } => bench::advices::run(seed, customers, payments, &out)?,
            BenchWhat::Strings { pairs } => bench::strings::run(pairs)?,
            BenchWhat::Parse { mb } => bench::parse::run(mb)?,
        },
        Command::Demo {
            seed,
            customers,
            payments,
        } => {
            let t = Instant::now();
            let world = synth::generate(&synth::SynthConfig {
                seed,
                customers,
                payments,
                ..Default::default()
            });
            eprintln!(
                "synthesised world {seed} ({} customers, {} test payments) in {:.1}s",
                world.customers.len(),
                world.test.payments.len(),
                t.elapsed().as_secs_f64()
            );
            let model = Model::embedded_default()?;
            eprintln!("model {} (threshold {:.4})", model.version, model.threshold);
            let cases: HashMap<String, String> = world.test.cases.iter().cloned().collect();
            let c = eval::compare(
                Arc::new(model),
                &world.customers,
                &world.test.invoices,
                &world.test.payments,
                &world.test.labels,
                &cases,
            )?;
            let (report, base_report, decisions) = (c.model, c.rules, c.decisions);
            eprintln!(
                "matched {} payments in {:.2}s ({:.0} payments/s)\n",
                decisions.len(),
                c.seconds,
                decisions.len() as f64 / c.seconds.max(1e-9)
            );
            print_reports(&report, Some(&base_report));
            if let Some(d) = decisions
                .iter()
                .find(|d| d.status == Status::Auto && d.allocations.len() > 1)
            {
                println!(
                    "\nan auto-applied decision:\n{}",
                    serde_json::to_string_pretty(d)?
                );
            }
        }
    }
    Ok(())
}

/// The model card's section on a labelled test split: the model beside the rules baseline.
fn test_section(model: &Model, dir: &Path) -> Result<String> {
    let customers = report_bad(io::read_customers(dir.join("customers.csv"))?)?;
    let invoices = report_bad(io::read_invoices(dir.join("invoices.csv"))?)?;
    let payments = load_payments(&dir.join("remittances.csv"), None)?;
    let labels = report_bad(io::read_labels(dir.join("labels.csv"))?)?;
    let cases = load_cases(None, &dir.join("labels.csv"))?;
    let c = eval::compare(
        Arc::new(model.clone()),
        &customers,
        &invoices,
        &payments,
        &labels,
        &cases,
    )?;
    let o = &c.model.overall;
    eprintln!(
        "test split {}: touchless {:.2}%, precision {}, wrong {:.2} per 1,000 (rules touchless {:.2}%)",
        dir.display(),
        100.0 * o.touchless(),
        o.precision_text(3),
        o.wrong_per_1000(),
        100.0 * c.rules.overall.touchless()
    );
    Ok(format!(
        "\n## Test split\n\n`{}`: {} payments the model never saw, matched in order against their \
         ledger, beside the exact-match rules baseline.\n\n{}",
        dir.display(),
        payments.len(),
        eval::render(&[("model", &c.model), ("rules", &c.rules)])
    ))
}

fn print_reports(model: &Report, baseline: Option<&Report>) {
    let mut cols: Vec<(&str, &Report)> = vec![("model", model)];
    if let Some(b) = baseline {
        cols.push(("rules", b));
    }
    print!("{}", eval::render(&cols));
    let o = &model.overall;
    println!(
        "\nmodel: touchless {:.2}%, auto-apply precision {}, wrong auto-applies {:.2} per 1,000 payments (misapplied {:.2}, incomplete {:.2}), review top-1 {:.1}%",
        100.0 * o.touchless(),
        o.precision_text(3),
        o.wrong_per_1000(),
        o.misapplied_per_1000(),
        o.incomplete_per_1000(),
        100.0 * o.review_top1()
    );
    if let Some(b) = baseline {
        let b = &b.overall;
        println!(
            "rules baseline: touchless {:.2}%, auto-apply precision {}, wrong auto-applies {:.2} per 1,000 payments",
            100.0 * b.touchless(),
            b.precision_text(3),
            b.wrong_per_1000()
        );
    }
}

/// Prints the rows a reader rejected, with their positions, and keeps the good ones.
/// `--unexplained-tolerance`: an amount of money, read exactly, zero or more.
fn non_negative_money(s: &str) -> Result<Decimal, String> {
    let d: Decimal = s
        .parse()
        .map_err(|e| format!("{s:?} is not an amount: {e}"))?;
    if d.is_sign_negative() {
        return Err(format!("{s} is negative"));
    }
    Ok(d)
}

fn report_bad<T>(loaded: io::Loaded<T>) -> Result<Vec<T>> {
    for e in &loaded.errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(loaded.rows)
}

fn load_model(dir: Option<&Path>) -> Result<Arc<Model>> {
    let m = match dir {
        Some(d) => Model::load(d)?,
        None => Model::embedded_default()?,
    };
    Ok(Arc::new(m))
}

fn load_ledger(customers: Option<&Path>, invoices: &Path) -> Result<Ledger> {
    let invoices: Vec<Invoice> = report_bad(io::read_invoices(invoices)?)?;
    let customers: Vec<Customer> = match customers {
        Some(p) => report_bad(io::read_customers(p)?)?,
        // Without a customer file, the invoices' customer ids are the customers, nameless.
        None => {
            let mut ids: Vec<&str> = invoices.iter().map(|i| i.customer_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .map(|id| Customer {
                    id: id.to_string(),
                    name: String::new(),
                    parent_id: None,
                    bank_accounts: vec![],
                })
                .collect()
        }
    };
    let (ledger, errors) = Ledger::new(customers, invoices);
    for e in &errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(ledger)
}

/// Reads remittances in any format (detected unless `format` is given), reporting the
/// transactions that could not be read.
fn load_payments(path: &Path, format: Option<Format>) -> Result<Vec<Payment>> {
    let parsed = formats::parse_path(path, format)?;
    for e in &parsed.errors {
        eprintln!("cashmatch: skipped: {e}");
    }
    Ok(parsed.payments)
}

/// Reads the advices of `--advices` (files, or directories of files, in name order); `None`
/// when none were given. Files that cannot be read at all are errors; transactions that cannot
/// be read are reported and the rest go on.
fn load_advices(paths: &[PathBuf]) -> Result<Option<Vec<Payment>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading the directory {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("reading the directory {}", path.display()))?;
            files.retain(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            });
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for f in files {
            out.extend(load_payments(&f, None)?);
        }
    }
    Ok(Some(out))
}

/// Writes one JSON object per line.
fn write_json_lines<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    use std::io::Write;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for r in rows {
        serde_json::to_writer(&mut w, r).with_context(|| format!("writing {}", path.display()))?;
        w.write_all(b"\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `cashmatch parse`: each payment as one JSON object per line on stdout, as it is read; each
/// transaction that could not be read on stderr. Succeeds when the file itself could be read.
fn parse_to_json_lines(file: &Path, format: Option<Format>) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut payments, mut rejected) = (0usize, 0usize);
    let mut write_error: Option<std::io::Error> = None;
    let format = formats::for_each_payment(file, format, &mut |r| match r {
        Ok(p) if write_error.is_none() => {
            payments += 1;
            let written = serde_json::to_writer(&mut out, &p)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            write_error = written.err();
        }
        Ok(_) => {}
        Err(e) => {
            rejected += 1;
            eprintln!("cashmatch: rejected: {e}");
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).context("writing to stdout");
    }
    out.flush().context("writing to stdout")?;
    eprintln!(
        "{}: {format}: {payments} payments, {rejected} rejected",
        file.display()
    );
    Ok(())
}

fn load_cases(cases: Option<&Path>, labels: &Path) -> Result<HashMap<String, String>> {
    let path = match cases {
        Some(p) => p.to_path_buf(),
        None => {
            let beside = labels.with_file_name("cases.csv");
            if !beside.exists() {
                return Ok(HashMap::new());
            }
            beside
        }
    };
    Ok(report_bad(io::read_cases(&path)?)?.into_iter().collect())
}

/// Writes a Markdown table to `dir/name` and to stdout.
fn write_table(dir: &Path, name: &str, table: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, table).with_context(|| format!("writing {}", path.display()))?;
    print!("{table}");
    eprintln!("written to {}", path.display());
    Ok(())
}

fn write_decisions(path: &Path, decisions: &[Decision]) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    io::write_decisions(&mut w, decisions)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
