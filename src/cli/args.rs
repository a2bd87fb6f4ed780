//! The command line as clap reads it: every subcommand with its flags and their documentation
//! (the `--help` text).

use anyhow::Result;
use cashmatch::engine::DEFAULT_UNEXPLAINED_TOLERANCE;
use cashmatch::formats::Format;
use cashmatch::synth;
use clap::{Parser, Subcommand};
use rust_decimal::Decimal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cashmatch",
    version,
    about = "Cash application: match payments to open invoices"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
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
        /// Rules file: write-off limits, what becomes of overpayments, discount grace days
        /// (docs/rules.md); the built-in rules (nothing written off) when absent.
        #[arg(long)]
        rules: Option<PathBuf>,
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
        /// Days by which one counterpart's dates must be closer than every equally good other's
        /// for the dates to choose between them (docs/advices.md).
        #[arg(long, default_value_t = 7)]
        date_margin_days: u32,
        /// Whether a receipt whose hold is over, with nothing but its amount and payer, goes to a
        /// person rather than being applied on its amount (`--review-receipts-alone false`).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        review_receipts_alone: bool,
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
        /// Rules file (docs/rules.md), re-read when it changes; overrides `rules` in the config.
        #[arg(long)]
        rules: Option<PathBuf>,
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
        /// DATA_DIR/demo/remittances.csv), and feed those payments to the service as a live
        /// stream would.
        #[arg(long)]
        demo: bool,
        /// With --demo: send the demo payments over this many seconds; 0 sends none (the
        /// remittances file is still written, for a client to send).
        #[arg(long, value_name = "SECONDS", default_value_t = 90, requires = "demo")]
        demo_feed: u64,
        /// Also take payments from NATS JetStream (nats://HOST:PORT) and publish decisions and
        /// postings there (docs/api.md, "Event bus").
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// The event bus's subject prefix [default: cashmatch].
        #[arg(long, value_name = "PREFIX", requires = "nats")]
        nats_prefix: Option<String>,
    },
    /// Export the labels the service has learnt (analysts' resolutions, auto-applied matches
    /// never reversed) for the retraining job, reading the store directly (docs/training.md).
    ExportLabels {
        #[command(flatten)]
        at: StoreAt,
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
        #[command(flatten)]
        at: StoreAt,
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
    /// Rules files (docs/rules.md).
    Rules {
        #[command(subcommand)]
        what: RulesWhat,
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
pub(super) enum RulesWhat {
    /// Validate a rules file: prints OK with what the rules say, or the mistake with its line,
    /// column and field and exits non-zero.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
pub(super) enum AuditWhat {
    /// Check the chain of audit events (also while the service runs); names the first event
    /// that does not fit and exits non-zero if one does not.
    Verify {
        #[command(flatten)]
        at: StoreAt,
        /// A head printed by an earlier verify (ID:HASH) and kept outside the store: the event
        /// must still be in the chain with that hash, which a chain rewritten whole fails.
        #[arg(long)]
        expect: Option<cashmatch::store::sqlite::audit::Witness>,
    },
    /// Write the trail with its chain to a JSON Lines file: the anchor, then every event with
    /// the hash of the one before it and its own.
    Export {
        #[command(flatten)]
        at: StoreAt,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// The store a command reads directly: a SQLite data directory or a PostgreSQL database.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub(super) struct StoreAt {
    /// Directory of the store (the service's --data-dir).
    #[arg(long)]
    pub(super) data_dir: Option<PathBuf>,
    /// A PostgreSQL store (the service's --store postgres://USER@HOST:PORT/DB).
    #[arg(long, value_name = "URL")]
    pub(super) store: Option<cashmatch::store::StoreUrl>,
}

/// The store of a [`StoreAt`].
pub(super) enum Which<'a> {
    Dir(&'a std::path::Path),
    Postgres(&'a cashmatch::store::StoreUrl),
}

impl StoreAt {
    /// Which store was given (clap lets through exactly one; this says so if not).
    pub(super) fn which(&self) -> Result<Which<'_>> {
        match (&self.store, &self.data_dir) {
            (Some(url), _) => Ok(Which::Postgres(url)),
            (None, Some(dir)) => Ok(Which::Dir(dir)),
            (None, None) => anyhow::bail!("give the store: --data-dir DIR or --store URL"),
        }
    }
}

#[derive(Subcommand)]
pub(super) enum TokenWhat {
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
pub(super) enum BenchWhat {
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
        /// Measure on PostgreSQL: a server URL (`postgres://USER@HOST:PORT/DB`); the bench
        /// creates a database of its own there and drops it after.
        #[arg(long, value_name = "URL")]
        store: Option<cashmatch::store::StoreUrl>,
        /// Replicas serving the one PostgreSQL database, the client connections spread over
        /// them (needs --store).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
    },
    /// The event bus end to end: payments published to NATS JetStream, decided, and their
    /// decisions received back, in payments per second (streams of its own, deleted after).
    Bus {
        /// The NATS server.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long, default_value_t = 100_000)]
        invoices: usize,
        #[arg(long, default_value_t = 20_000)]
        payments: usize,
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
        /// Linking's date margin, as `match --date-margin-days` (to measure another setting).
        #[arg(long, default_value_t = 7)]
        date_margin_days: u32,
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
