//! End-to-end tests of the retraining job on generated histories.

use cashmatch_core::domain::{Invoice, Label, Payment};
use cashmatch_core::engine::EngineConfig;
use cashmatch_core::synth::{self, SynthConfig, World};
use cashmatch_training::history::History;
use cashmatch_training::jobs::{self, Extras, Ui};
use cashmatch_training::retrain::{self, RunConfig};
use indicatif::ProgressBar;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

const QUIET: Ui = Ui { progress: false };

/// A continuous history from a world's two periods: the ledger as it stood when the first
/// period started (its items plus those billed in the second), all payments, all labels.
struct Flat {
    customers: Vec<cashmatch_core::domain::Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    labels: Vec<Label>,
    cases: Vec<(String, String)>,
}

fn cat<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
    [a, b].concat()
}

fn flatten(w: &World) -> Flat {
    let known: HashSet<&str> = w.train.invoices.iter().map(|i| i.id.as_str()).collect();
    let mut invoices = w.train.invoices.clone();
    invoices.extend(
        w.test
            .invoices
            .iter()
            .filter(|i| !known.contains(i.id.as_str()))
            .cloned(),
    );
    Flat {
        customers: w.customers.clone(),
        invoices,
        payments: cat(&w.train.payments, &w.test.payments),
        labels: cat(&w.train.labels, &w.test.labels),
        cases: cat(&w.train.cases, &w.test.cases),
    }
}

fn write_history(dir: &Path, h: &Flat) {
    std::fs::create_dir_all(dir).unwrap();
    let f = |n: &str| BufWriter::new(File::create(dir.join(n)).unwrap());
    cashmatch_core::io::write_customers(f("customers.csv"), &h.customers).unwrap();
    cashmatch_core::io::write_invoices(f("invoices.csv"), &h.invoices).unwrap();
    cashmatch_core::io::write_remittances(f("remittances.csv"), &h.payments).unwrap();
    cashmatch_core::io::write_labels(f("labels.csv"), &h.labels).unwrap();
    cashmatch_core::io::write_cases(f("cases.csv"), &h.cases).unwrap();
}

fn config() -> RunConfig {
    RunConfig {
        seed: 11,
        // A target a few thousand payments can certify in each evidence stratum (99 labels).
        target_precision: 0.97,
        holdout_fraction: 0.25,
        version: Some("test".into()),
        ..Default::default()
    }
}

#[test]
fn polars_reader_reads_what_the_csv_reader_reads_from_csv_and_parquet() {
    let w = synth::generate(&SynthConfig::new(3, 120, 1_500));
    let flat = flatten(&w);
    let tmp = tempfile::tempdir().unwrap();
    let csv_dir = tmp.path().join("csv");
    write_history(&csv_dir, &flat);
    let want_payments =
        cashmatch_core::io::read_remittances(csv_dir.join("remittances.csv")).unwrap();
    let want_invoices = cashmatch_core::io::read_invoices(csv_dir.join("invoices.csv")).unwrap();
    let want_customers = cashmatch_core::io::read_customers(csv_dir.join("customers.csv")).unwrap();
    let want_labels = cashmatch_core::io::read_labels(csv_dir.join("labels.csv")).unwrap();
    let pq_dir = tmp.path().join("parquet");
    cashmatch_training::history::convert_to_parquet(&csv_dir, &pq_dir).unwrap();
    for dir in [&csv_dir, &pq_dir] {
        let h = History::load(dir, &ProgressBar::hidden()).unwrap();
        assert!(h.errors.is_empty(), "{:?}", h.errors.first());
        assert_eq!(h.payments, want_payments.payments, "{}", dir.display());
        assert_eq!(h.invoices, want_invoices.rows);
        assert_eq!(h.customers, want_customers.rows);
        assert_eq!(h.labels, want_labels.rows);
        assert_eq!(h.cases.len(), flat.cases.len());
    }
}

#[test]
fn bad_rows_are_reported_with_file_line_and_column_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("customers.csv"),
        "customer_id,name\nC1,Acme\nC1,Acme again\n",
    )
    .unwrap();
    std::fs::write(
        d.join("invoices.csv"),
        "invoice_id,customer_id,invoice_number,invoice_date,due_date,amount,open_amount\n\
         I1,C1,INV-1,2024-01-01,2024-01-31,\"1,000.00\",1000.00\n\
         I2,C1,INV-2,2024-01-02,2024-02-01,1e3,100\n",
    )
    .unwrap();
    std::fs::write(
        d.join("remittances.csv"),
        "payment_id,payment_date,payment_amount,reference,line_amount\n\
         P1,2024-02-01,1000.00,INV-1,1000.00\n\
         P2,2024-13-01,5.00,INV-2,5.00\n",
    )
    .unwrap();
    std::fs::write(
        d.join("service_labels.csv"),
        "payment_id,invoice_id,applied_amount,source\nP1,I1,1000.00,analyst\nP2,I2,5.00,robot\n",
    )
    .unwrap();
    let h = History::load(d, &ProgressBar::hidden()).unwrap();
    let shown: Vec<String> = h.errors.iter().map(ToString::to_string).collect();
    let has = |s: &str| shown.iter().any(|e| e.contains(s));
    assert!(
        has("customers.csv: line 3, column 1: customer_id"),
        "{shown:#?}"
    );
    assert!(
        has("invoices.csv: line 3, column 6: amount: \"1e3\""),
        "{shown:#?}"
    );
    assert!(
        has("remittances.csv: line 3, column 2: payment P2: payment_date"),
        "{shown:#?}"
    );
    assert!(
        has("service_labels.csv: line 3, column 4: source"),
        "{shown:#?}"
    );
    assert_eq!(h.customers.len(), 1);
    assert_eq!(h.invoices.len(), 1);
    assert_eq!(h.invoices[0].amount.to_string(), "1000.00");
    assert_eq!(h.payments.len(), 1);
    assert_eq!(h.labels.len(), 1);
    assert_eq!(h.label_counts.payments.get("analyst"), Some(&1));
}

#[test]
fn same_history_and_seed_give_a_byte_identical_model() {
    let w = synth::generate(&SynthConfig::new(5, 300, 4_000));
    let tmp = tempfile::tempdir().unwrap();
    let hist = tmp.path().join("history");
    write_history(&hist, &flatten(&w));
    let run = |out: &str| {
        let out = tmp.path().join(out);
        jobs::train(&hist, &out, &config(), &Extras::default(), QUIET).unwrap();
        std::fs::read(out.join("model.json")).unwrap()
    };
    let (a, b) = (run("a"), run("b"));
    assert!(a.len() > 1_000);
    assert!(
        a == b,
        "two runs with the same seed wrote different model.json"
    );
}

/// The customers whose invoices take the largest share of payments, until about `share` of
/// the payments are theirs.
fn biggest_customers(flat: &Flat, share: f64) -> HashSet<String> {
    let owner: HashMap<&str, &str> = flat
        .invoices
        .iter()
        .map(|i| (i.id.as_str(), i.customer_id.as_str()))
        .collect();
    let mut per: HashMap<&str, usize> = HashMap::new();
    for l in &flat.labels {
        if let Some(c) = owner.get(l.invoice_id.as_str()) {
            *per.entry(c).or_default() += 1;
        }
    }
    let mut v: Vec<(&str, usize)> = per.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let total: usize = v.iter().map(|x| x.1).sum();
    let mut out = HashSet::new();
    let mut acc = 0;
    for (c, n) in v {
        if acc as f64 >= share * total as f64 {
            break;
        }
        acc += n;
        out.insert(c.to_string());
    }
    out
}

/// Characters of a reference the shifted customers' new AP system keeps.
const KEEP: usize = 8;

/// From payment `from` on, the segment's remittance lines quote a truncated reference: the AP
/// system of those customers cuts references to their first [`KEEP`] characters
/// (`0090045589` becomes `00900455` in this world's numbering).
fn shift(flat: &mut Flat, from: usize, segment: &HashSet<String>) -> usize {
    let by_number: HashMap<String, &Invoice> = flat
        .invoices
        .iter()
        .map(|i| (cashmatch_core::text::normalize(&i.number), i))
        .collect();
    let mut changed = 0;
    for p in flat.payments.iter_mut().skip(from) {
        for line in &mut p.lines {
            let Some(r) = line.reference.clone() else {
                continue;
            };
            let Some(inv) = by_number.get(&cashmatch_core::text::normalize(&r)) else {
                continue;
            };
            if !segment.contains(&inv.customer_id) {
                continue;
            }
            line.reference = Some(r.chars().take(KEEP).collect());
            changed += 1;
        }
    }
    changed
}

#[test]
fn retraining_recovers_the_touchless_rate_a_behaviour_shift_took() {
    let w = synth::generate(&SynthConfig {
        seed: 21,
        customers: 500,
        payments: 12_000,
        train_fraction: 0.5,
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let plain = flatten(&w);
    let segment = biggest_customers(&plain, 0.4);
    let mut shifted = flatten(&w);
    let n = shifted.payments.len();
    // The shift starts in the first period's last quarter, so the retrained model has seen it.
    let changed = shift(&mut shifted, n * 3 / 10, &segment);
    assert!(changed > 500, "only {changed} references changed");

    // The old model learnt only the first period, before the shift.
    let old_hist = tmp.path().join("old");
    let first = Flat {
        customers: w.customers.clone(),
        invoices: w.train.invoices.clone(),
        payments: w.train.payments.clone(),
        labels: w.train.labels.clone(),
        cases: w.train.cases.clone(),
    };
    write_history(&old_hist, &first);
    let models = tmp.path().join("models");
    let old_dir = tmp.path().join("old-model");
    let rc = RunConfig {
        version: Some("old".into()),
        ..config()
    };
    jobs::train(&old_hist, &old_dir, &rc, &Extras::default(), QUIET).unwrap();

    // The old model on the unshifted and on the shifted history's holdout.
    let plain_hist = tmp.path().join("plain");
    write_history(&plain_hist, &plain);
    let shifted_hist = tmp.path().join("shifted");
    write_history(&shifted_hist, &shifted);
    let before =
        jobs::report_model(&old_dir, &plain_hist, &tmp.path().join("r1"), 0.25, QUIET).unwrap();
    let rc = RunConfig {
        version: None,
        ..config()
    };
    let out = tmp.path().join("challenger");
    let o = jobs::retrain(
        &shifted_hist,
        Some(&old_dir),
        &models,
        &out,
        false,
        &rc,
        &Extras::default(),
        QUIET,
    )
    .unwrap();
    let active = o.active.as_ref().expect("the old model loads");
    let (t_before, t_shifted, t_new) = (
        before.overall().touchless(),
        active.overall().touchless(),
        o.train.new.overall().touchless(),
    );
    let seg_touchless = |e: &cashmatch_training::evaluate::ModelEval| {
        cashmatch_training::report::touchless_by(&e.by_segment)
    };
    println!(
        "behaviour shift: {changed} references truncated for {} customers from payment {}",
        segment.len(),
        n * 3 / 10
    );
    println!(
        "old model, unshifted holdout: touchless {:.2}%",
        100.0 * t_before
    );
    println!(
        "old model, shifted holdout:   touchless {:.2}%, precision {:.3}%, wrong {}",
        100.0 * t_shifted,
        100.0 * active.overall().precision(),
        active.wrong()
    );
    println!(
        "retrained, shifted holdout:   touchless {:.2}%, precision {:.3}%, wrong {}",
        100.0 * t_new,
        100.0 * o.train.new.overall().precision(),
        o.train.new.wrong()
    );
    println!("by segment, old: {:?}", seg_touchless(active));
    println!("by segment, new: {:?}", seg_touchless(&o.train.new));
    println!("verdict: {}", o.verdict.reason);
    println!(
        "holdout recall at candidates: {:.3}",
        o.train.prepared.hold.recall()
    );
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for d in &o.train.new.decisions {
        if o.train
            .prepared
            .segments
            .get(&d.payment_id)
            .is_some_and(|s| s.starts_with("large"))
        {
            *reasons
                .entry(format!("{:?} {:?}", d.status, d.review_reason))
                .or_default() += 1;
        }
    }
    println!("large segment decisions of the retrained model: {reasons:?}");
    assert!(
        t_shifted < t_before - 0.05,
        "the shift should cost the old model touchless: {t_before} -> {t_shifted}"
    );
    // The retrained model learnt the habit of the customers who changed, and of no one else:
    // the old one, trained before the change, has none, so its candidate generator cannot read
    // `00900455` as the start of a number at all.
    let old_model = cashmatch_core::model::artifact::Model::load(&old_dir).unwrap();
    assert!(old_model.habits.is_empty());
    let learnt = &o.train.trained.model.habits.truncates;
    println!(
        "habits learnt: {} customers cut references short",
        learnt.len()
    );
    assert!(learnt.keys().all(|c| segment.contains(c)), "{learnt:?}");
    assert!(learnt.len() * 10 >= segment.len() * 9, "{}", learnt.len());
    // A truncated reference that two open items fit as well (same start, same amount) stays
    // with an analyst, so not all is won back. Since the generator's issue-11 families (recurring
    // amounts, duplicates with a same-amount twin) put more open items of one amount beside each
    // other, more of them do: measured 91.2% -> 79.0% -> 83.6%, about 37% won back (half before
    // those families). At least a third, with fewer wrong auto-applies than the old model and
    // the precision target kept.
    assert!(
        t_new - t_shifted >= (t_before - t_shifted) / 3.0,
        "retraining should win back at least a third: {t_before} -> {t_shifted} -> {t_new}"
    );
    assert!(o.train.new.wrong() <= active.wrong());
    assert!(o.train.new.overall().precision() >= 0.99);

    // Better, so published, and ACTIVE names it.
    assert!(
        o.verdict.publish && o.verdict.better,
        "{}",
        o.verdict.reason
    );
    let published = o.published.expect("published");
    assert!(published.join("model.json").is_file());
    assert!(published.join("REPORT.md").is_file());
    assert_eq!(
        retrain::active_dir(&models).as_deref(),
        Some(published.as_path())
    );
    let report = std::fs::read_to_string(published.join("REPORT.md")).unwrap();
    for svg in [
        "precision_coverage.svg",
        "reliability.svg",
        "importance.svg",
        "errors.svg",
    ] {
        assert!(report.contains(svg), "report lacks {svg}");
        assert!(published.join(svg).is_file());
    }

    // The same challenger against itself is not better: nothing is published.
    let again = jobs::retrain(
        &shifted_hist,
        None,
        &models,
        &tmp.path().join("again"),
        false,
        &rc,
        &Extras::default(),
        QUIET,
    )
    .unwrap();
    assert!(!again.verdict.publish, "{}", again.verdict.reason);
    assert_eq!(
        retrain::active_dir(&models).as_deref(),
        Some(published.as_path())
    );
}

/// The service's labels, exported from its store by the code behind `cashmatch export-labels`,
/// are what the history reader reads: every analyst resolution (with what the analyst applied,
/// or nothing) and every auto-applied match, each with its source.
#[test]
fn labels_exported_from_the_service_store_are_the_history_labels() {
    use cashmatch::service::{
        ApprovalDecision, Limits, ResolveAction, ResolveOutcome, ResolveRequest, Service,
    };
    use cashmatch::store::SqliteStore;
    use cashmatch::store::export::{ExportOptions, export_labels};
    use cashmatch_core::domain::{LabelSource, Status};
    use std::collections::BTreeSet;
    use std::sync::Arc;

    let w = synth::generate(&SynthConfig::new(17, 40, 400));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let truth: HashMap<&str, Vec<&Label>> =
        w.train
            .labels
            .iter()
            .fold(HashMap::new(), |mut m: HashMap<&str, Vec<&Label>>, l| {
                m.entry(l.payment_id.as_str()).or_default().push(l);
                m
            });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // (payment, invoice, cash) the service recorded, by source; and payments resolved as
    // paying nothing.
    let mut want: BTreeSet<(String, String, String, LabelSource)> = BTreeSet::new();
    let mut nothing: Vec<String> = Vec::new();
    let payments: Vec<Payment> = w.train.payments.iter().take(150).cloned().collect();
    rt.block_on(async {
        let store = SqliteStore::open(&data).unwrap();
        let service = Arc::new(
            Service::open(store, None, EngineConfig::default(), Limits::default())
                .await
                .unwrap(),
        );
        let customers = w.customers.iter().cloned().enumerate();
        let invoices = w.train.invoices.iter().cloned().enumerate();
        service
            .upsert(
                customers.map(|(i, c)| (i as u64, c)).collect(),
                invoices.map(|(i, c)| (i as u64, c)).collect(),
            )
            .await
            .unwrap();
        let mut reviews = 0;
        for p in &payments {
            let d = service.match_payment(p.clone()).await.unwrap().decision;
            if d.status == Status::Auto {
                for a in &d.allocations {
                    want.insert((
                        p.payment_id.clone(),
                        a.invoice_id.clone(),
                        a.amount.to_string(),
                        LabelSource::Auto,
                    ));
                }
                continue;
            }
            // Every other review item is resolved: alternately with the true allocation and as
            // paying nothing; the rest stay open and are not exported.
            reviews += 1;
            if reviews % 3 == 0 {
                continue;
            }
            let with_truth = reviews % 3 == 1;
            let action = match truth.get(p.payment_id.as_str()) {
                Some(rows) if with_truth => ResolveAction::ApplyAllocation {
                    allocations: rows
                        .iter()
                        .map(|l| cashmatch_core::domain::Allocation {
                            invoice_id: l.invoice_id.clone(),
                            amount: l.applied_amount,
                            discount: rust_decimal::Decimal::ZERO,
                            deduction: rust_decimal::Decimal::ZERO,
                            reason_code: None,
                        })
                        .collect(),
                    unapplied: None,
                },
                _ => ResolveAction::LeaveUnapplied,
            };
            let applied = match &action {
                ResolveAction::ApplyAllocation { allocations, .. } => allocations.clone(),
                _ => Vec::new(),
            };
            let req = ResolveRequest {
                payment_id: p.payment_id.clone(),
                analyst: "ana".into(),
                action,
                // Overriding the engine needs a note.
                note: "resolved from the known truth".into(),
            };
            // An allocation the ledger no longer allows (an earlier auto-apply took the
            // invoice) is refused and the item stays open, as it would for an analyst.
            match service.resolve(req).await {
                Err(_) => continue,
                // Above the four-eyes limit a second analyst posts it.
                Ok(ResolveOutcome::AwaitingApproval(_)) => {
                    let second = ApprovalDecision {
                        payment_id: p.payment_id.clone(),
                        analyst: "bo".into(),
                        note: "checked".into(),
                    };
                    if service.approve(second).await.is_err() {
                        continue;
                    }
                }
                Ok(ResolveOutcome::Resolved(_)) => {}
            }
            if applied.is_empty() {
                nothing.push(p.payment_id.clone());
            }
            for a in applied {
                want.insert((
                    p.payment_id.clone(),
                    a.invoice_id,
                    a.amount.to_string(),
                    LabelSource::Analyst,
                ));
            }
        }
    });
    drop(rt);
    assert!(
        want.iter().any(|w| w.3 == LabelSource::Analyst),
        "no resolutions"
    );
    assert!(
        want.iter().any(|w| w.3 == LabelSource::Auto),
        "no auto-applies"
    );
    assert!(!nothing.is_empty(), "no resolution that paid nothing");

    // The service is stopped; the export reads the store directly.
    let hist = tmp.path().join("history");
    std::fs::create_dir_all(&hist).unwrap();
    let f = |n: &str| BufWriter::new(File::create(hist.join(n)).unwrap());
    cashmatch_core::io::write_customers(f("customers.csv"), &w.customers).unwrap();
    cashmatch_core::io::write_invoices(f("invoices.csv"), &w.train.invoices).unwrap();
    let store = SqliteStore::open(&data).unwrap();
    let counts = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(export_labels(
            &store,
            &ExportOptions {
                include_auto: true,
                auto_decided_before: None,
            },
            f("service_labels.csv"),
            Some(f("remittances.csv")),
        ))
        .unwrap();
    store.close();
    assert_eq!(counts.rows, want.len());

    let h = History::load(&hist, &ProgressBar::hidden()).unwrap();
    assert!(h.errors.is_empty(), "{:?}", h.errors.first());
    let analyst_payments: HashSet<&str> = want
        .iter()
        .filter(|w| w.3 == LabelSource::Analyst)
        .map(|w| w.0.as_str())
        .chain(nothing.iter().map(String::as_str))
        .collect();
    let source_of = |p: &str| {
        if analyst_payments.contains(p) {
            LabelSource::Analyst
        } else {
            LabelSource::Auto
        }
    };
    let got: BTreeSet<(String, String, String, LabelSource)> = h
        .labels
        .iter()
        .map(|l| {
            (
                l.payment_id.clone(),
                l.invoice_id.clone(),
                l.applied_amount.to_string(),
                source_of(&l.payment_id),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        h.label_counts.rows.get("analyst").copied().unwrap_or(0)
            + h.label_counts.rows.get("auto").copied().unwrap_or(0),
        want.len()
    );
    // A payment the analyst found no match for is in the history with no label rows: the
    // reader's "paid no open invoice".
    for id in &nothing {
        assert!(h.payments.iter().any(|p| &p.payment_id == id), "{id}");
        assert!(!h.labels.iter().any(|l| &l.payment_id == id), "{id}");
    }
    // Only decided payments are exported, with what the service was sent.
    let exported: HashSet<&str> = h.payments.iter().map(|p| p.payment_id.as_str()).collect();
    let sent: HashMap<&str, &Payment> = payments
        .iter()
        .map(|p| (p.payment_id.as_str(), p))
        .collect();
    for p in &h.payments {
        let s = sent[p.payment_id.as_str()];
        assert_eq!((p.amount, &p.lines), (s.amount, &s.lines));
    }
    assert!(
        exported.len() < payments.len(),
        "open review items were exported"
    );
}
