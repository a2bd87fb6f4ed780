//! The subcommands of the `cashmatch` command line, each a thin shell over the library: `args`
//! declares them (clap), [`run`] carries each out, `files` reads and writes the files they take
//! and give, `report` prints and writes the figures, and `store` holds the subcommands that
//! work on a service's data directory (export, postings, audit) and its tokens.

use anyhow::{Context, Result, bail};
use cashmatch::domain::Status;
use cashmatch::engine::{Engine, EngineConfig};
use cashmatch::eval;
use cashmatch::model::artifact::Model;
use cashmatch::{crossval, io, synth, train};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

mod args;
mod files;
mod report;
mod store;

use crate::bench;
pub(crate) use args::Cli;
use args::{AuditWhat, BenchWhat, Command, RulesWhat, TokenWhat};
use files::{
    load_advices, load_cases, load_ledger, load_model, load_payments, parse_to_json_lines,
    report_bad, write_decisions, write_json_lines, write_table,
};
use report::{print_reports, test_section};
use store::{audit_outcome, export_audit, export_journal, export_labels, new_token, verify_audit};

/// Carries out one subcommand.
pub(crate) fn run(cli: Cli) -> Result<()> {
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
            rules,
            advices,
            links,
            fee_limit,
            link_window_days,
            hold_days,
            date_margin_days,
            review_receipts_alone,
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
            let rules = match &rules {
                Some(path) => cashmatch::rules::Rules::load(path)?,
                None => cashmatch::rules::Rules::default(),
            };
            if let Some(advices) = advices? {
                let config = cashmatch::advice::LinkConfig {
                    fee_limit,
                    window_days: i64::from(link_window_days),
                    hold_business_days: hold_days,
                    date_margin_days: i64::from(date_margin_days),
                    review_receipts_alone,
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
                    rules: Arc::new(rules),
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
                habits: cashmatch::matching::ReferenceHabits::learn(
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
        Command::Rules {
            what: RulesWhat::Check { file },
        } => {
            // The error, with its file, line, column and field, is printed by main, which exits
            // non-zero.
            let rules = cashmatch::rules::Rules::load(&file)?;
            println!("OK {}\n{}", file.display(), rules.summary());
        }
        Command::Serve {
            addr,
            data_dir,
            store,
            model,
            models_dir,
            config,
            rules,
            metrics_addr,
            ui_addr,
            no_ui,
            demo,
            demo_feed,
            nats,
            nats_prefix,
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
                nats,
                nats_prefix,
                rules,
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
            let demo = demo.then(|| std::time::Duration::from_secs(demo_feed));
            rt.block_on(cashmatch::app::serve(settings, demo))?;
        }
        Command::ExportLabels {
            at,
            out,
            remittances,
            settle_days,
            no_auto,
        } => export_labels(&at, &out, remittances.as_deref(), settle_days, no_auto)?,
        Command::Postings {
            at,
            after,
            out,
            format,
        } => export_journal(&at, after, &out, format.as_deref())?,
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
            AuditWhat::Verify { at, expect } => {
                let r = verify_audit(&at, expect.as_ref())?;
                audit_outcome(&r)?;
                println!(
                    "Keep the head outside the store; `cashmatch audit verify --expect ID:HASH` \
                     later proves that no event up to it has changed."
                );
            }
            AuditWhat::Export { at, out } => {
                let r = export_audit(&at, &out)?;
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
                store,
                replicas,
            } => {
                use cashmatch::app::bench::{BenchConfig, run};
                let durability = durability_flag(&durability)?;
                run(BenchConfig {
                    invoices,
                    rate,
                    seconds,
                    streamed,
                    seed,
                    durability,
                    store,
                    replicas,
                })?;
            }
            BenchWhat::Bus {
                nats,
                invoices,
                payments,
                seed,
                durability,
            } => {
                use cashmatch::app::bench_bus::{BusBenchConfig, run};
                run(BusBenchConfig {
                    url: nats,
                    invoices,
                    payments,
                    seed,
                    durability: durability_flag(&durability)?,
                })?;
            }
            BenchWhat::Advices {
                seed,
                customers,
                payments,
                out,
                date_margin_days,
            } => bench::advices::run(seed, customers, payments, &out, date_margin_days)?,
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

/// `bench serve|bus --durability`.
fn durability_flag(s: &str) -> anyhow::Result<cashmatch::store::Durability> {
    use cashmatch::store::Durability;
    match s {
        "full" => Ok(Durability::Full),
        "normal" => Ok(Durability::Normal),
        other => bail!("--durability must be full or normal, not {other:?}"),
    }
}
