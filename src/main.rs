//! The `cashmatch` command line: a thin shell over the library.

use anyhow::{Context, Result, bail};
use cashmatch::domain::{Customer, Decision, Invoice, Payment, Status};
use cashmatch::engine::{Engine, EngineConfig};
use cashmatch::eval::{self, Report};
use cashmatch::formats::{self, Format};
use cashmatch::ledger::Ledger;
use cashmatch::model::artifact::Model;
use cashmatch::{io, synth, train};
use clap::{Parser, Subcommand};
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
        /// The format, when detection from the content should not decide (csv, x12_820, bai2,
        /// lockbox, camt053, camt054, remt001, nacha, mt940, bank_csv, text).
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
        } => {
            let ledger = load_ledger(customers.as_deref(), &invoices)?;
            let model = load_model(model.as_deref())?;
            let payments = load_payments(&remittances, format)?;
            let mut engine = Engine::new(
                ledger,
                model,
                EngineConfig {
                    threshold,
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
        } => {
            let world = synth::generate(&synth::SynthConfig {
                seed,
                customers,
                payments,
                ..Default::default()
            });
            synth::write_world(&world, &out)?;
            eprintln!(
                "world {seed}: {} customers; train {} payments, {} invoices; test {} payments, {} invoices; written to {}",
                world.customers.len(),
                world.train.payments.len(),
                world.train.invoices.len(),
                world.test.payments.len(),
                world.test.invoices.len(),
                out.display()
            );
        }
        Command::Serve {
            addr,
            data_dir,
            model,
            models_dir,
            config,
            metrics_addr,
            ui_addr,
            no_ui,
            demo,
        } => {
            use cashmatch::service::config::{Overrides, Settings};
            let flags = Overrides {
                addr,
                data_dir,
                model,
                models_dir,
                metrics_addr,
                ui_addr,
                no_ui,
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
            rt.block_on(cashmatch::grpc::serve(settings, demo))?;
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
        Command::Bench { what } => match what {
            BenchWhat::Match {
                invoices,
                payments,
                seed,
            } => {
                cashmatch::bench::matching::run(invoices, payments, seed)?;
            }
            BenchWhat::Serve {
                invoices,
                rate,
                seconds,
                streamed,
                seed,
                durability,
            } => {
                use cashmatch::grpc::bench::{BenchConfig, run};
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
            BenchWhat::Strings { pairs } => cashmatch::bench::strings::run(pairs)?,
            BenchWhat::Parse { mb } => cashmatch::bench::parse::run(mb)?,
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
        "test split {}: touchless {:.2}%, precision {:.3}%, wrong {:.2} per 1,000 (rules touchless {:.2}%)",
        dir.display(),
        100.0 * o.touchless(),
        100.0 * o.precision(),
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
        "\nmodel: touchless {:.2}%, auto-apply precision {:.3}%, wrong auto-applies {:.2} per 1,000 payments, review top-1 {:.1}%",
        100.0 * o.touchless(),
        100.0 * o.precision(),
        o.wrong_per_1000(),
        100.0 * o.review_top1()
    );
    if let Some(b) = baseline {
        let b = &b.overall;
        println!(
            "rules baseline: touchless {:.2}%, auto-apply precision {:.3}%, wrong auto-applies {:.2} per 1,000 payments",
            100.0 * b.touchless(),
            100.0 * b.precision(),
            b.wrong_per_1000()
        );
    }
}

/// Prints the rows a reader rejected, with their positions, and keeps the good ones.
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

fn write_decisions(path: &Path, decisions: &[Decision]) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    io::write_decisions(&mut w, decisions)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
