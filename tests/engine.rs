//! End-to-end behaviour of the matching engine that users rely on: each case family of
//! DESIGN.md decided safely with the shipped model, the money invariants on generated batches,
//! and bad input reported with its position while the good payments are still decided.

use cashmatch::domain::{Decision, Status};
use cashmatch::engine::{Engine, EngineConfig};
use cashmatch::eval;
use cashmatch::io;
use cashmatch::ledger::Ledger;
use cashmatch::model::artifact::Model;
use cashmatch::synth::{self, SynthConfig};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cases")
        .join(name)
}

fn case_engine() -> (Engine, Vec<cashmatch::domain::Payment>) {
    let customers = io::read_customers(fixture("customers.csv")).expect("customers");
    let invoices = io::read_invoices(fixture("invoices.csv")).expect("invoices");
    assert!(customers.errors.is_empty() && invoices.errors.is_empty());
    let (ledger, errs) = Ledger::new(customers.rows, invoices.rows);
    assert!(errs.is_empty(), "{errs:?}");
    let payments = io::read_remittances(fixture("remittances.csv")).expect("remittances");
    assert!(payments.errors.is_empty(), "{:?}", payments.errors);
    let model = Arc::new(Model::embedded_default().expect("the shipped model loads"));
    (
        Engine::new(ledger, model, EngineConfig::default()),
        payments.payments,
    )
}

fn key(d: &[cashmatch::domain::Allocation]) -> Vec<(String, Decimal)> {
    let mut k: Vec<_> = d
        .iter()
        .map(|a| (a.invoice_id.clone(), a.amount.normalize()))
        .collect();
    k.sort();
    k
}

/// The invoices an allocation pays, sorted.
fn invoice_ids(d: &[cashmatch::domain::Allocation]) -> Vec<&str> {
    let mut ids: Vec<&str> = d.iter().map(|a| a.invoice_id.as_str()).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn every_case_family_is_decided_safely_with_the_shipped_model() {
    let (mut engine, payments) = case_engine();
    let decisions = engine.run_batch(&payments);
    let labels = io::read_labels(fixture("labels.csv")).expect("labels").rows;
    let mut truth: HashMap<String, Vec<(String, Decimal)>> = HashMap::new();
    for l in &labels {
        truth
            .entry(l.payment_id.clone())
            .or_default()
            .push((l.invoice_id.clone(), l.applied_amount.normalize()));
    }
    for v in truth.values_mut() {
        v.sort();
    }
    let by_id: HashMap<&str, &Decision> = decisions
        .iter()
        .map(|d| (d.payment_id.as_str(), d))
        .collect();
    // What must never be auto-applied.
    for id in ["P-ambiguous", "P-duplicate", "P-no-open-invoice"] {
        assert_eq!(
            by_id[id].status,
            Status::Review,
            "{id} must go to review: {:#?}",
            by_id[id]
        );
    }
    let mut auto_right = Vec::new();
    for d in &decisions {
        let t = truth.get(&d.payment_id);
        match d.status {
            Status::Auto => {
                assert_eq!(
                    Some(&key(&d.allocations)),
                    t,
                    "{} auto-applied wrongly: {d:#?}",
                    d.payment_id
                );
                auto_right.push(d.payment_id.clone());
            }
            Status::Review => {
                assert!(
                    d.allocations.is_empty()
                        && d.unapplied == payments_amount(&payments, &d.payment_id)
                );
            }
            Status::Returned => panic!("{}: the engine never decides a return", d.payment_id),
        }
        assert!(
            !d.explanation.is_empty(),
            "{} has no explanation",
            d.payment_id
        );
    }
    // The plain cases are applied without a person.
    for id in [
        "P-exact",
        "P-lowercase-spacing",
        "P-multi-lines",
        "P-discount",
    ] {
        assert!(
            auto_right.contains(&id.to_string()),
            "{id} was not auto-applied: {:#?}",
            by_id[id]
        );
    }
    // The solvable cases that go to review offer the right answer among their suggestions.
    for d in decisions
        .iter()
        .filter(|d| d.status == Status::Review && d.payment_id != "P-ambiguous")
    {
        if let Some(t) = truth.get(&d.payment_id) {
            assert!(
                d.suggestions.iter().any(|s| key(&s.allocations) == *t),
                "{}: the right answer is not among the suggestions: {d:#?}",
                d.payment_id
            );
        }
    }
    assert!(
        auto_right.len() >= 12,
        "only {} of 21 solvable cases auto-applied: {auto_right:?}",
        auto_right.len()
    );
}

fn payments_amount(payments: &[cashmatch::domain::Payment], id: &str) -> Decimal {
    payments
        .iter()
        .find(|p| p.payment_id == id)
        .map(|p| p.amount)
        .unwrap_or_default()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    /// Whatever the world: no invoice goes past zero, every payment balances, every allocation
    /// names a ledger invoice, the ledger moves exactly by what the decisions say, and a payment
    /// id sent again changes nothing.
    #[test]
    fn no_invoice_is_over_applied_and_every_payment_balances(
        seed in 0u64..1_000_000,
        customers in 40usize..200,
        payments in 300usize..1_500,
    ) {
        let model = Arc::new(Model::embedded_default().expect("model"));
        let world = synth::generate(&SynthConfig { seed, customers, payments, ..Default::default() });
        let (ledger, errs) = Ledger::new(world.customers.clone(), world.test.invoices.clone());
        proptest::prop_assert!(errs.is_empty());
        let before: HashMap<String, Decimal> =
            ledger.invoices().iter().map(|i| (i.id.clone(), i.open_amount)).collect();
        let mut engine = Engine::new(ledger, model, EngineConfig::default());
        let mut batch = world.test.payments.clone();
        batch.extend(world.test.payments.iter().cloned());
        let decisions = engine.run_batch(&batch);
        let n = world.test.payments.len();
        let mut relieved: HashMap<&str, Decimal> = HashMap::new();
        for (p, d) in batch.iter().zip(&decisions).take(n) {
            let applied: Decimal = d.allocations.iter().map(|a| a.amount).sum();
            proptest::prop_assert_eq!(applied + d.unapplied, p.amount, "{} does not balance", &p.payment_id);
            for a in &d.allocations {
                proptest::prop_assert!(before.contains_key(&a.invoice_id), "{} is not a ledger invoice", &a.invoice_id);
                *relieved.entry(a.invoice_id.as_str()).or_default() += a.relieved();
            }
        }
        for inv in engine.ledger().invoices() {
            let open = inv.open_amount;
            let within = if inv.is_credit() { open <= Decimal::ZERO } else { open >= Decimal::ZERO };
            proptest::prop_assert!(within, "{} went past zero", &inv.id);
            let r = relieved.get(inv.id.as_str()).copied().unwrap_or_default();
            proptest::prop_assert_eq!(before[&inv.id] - r, open, "{}: ledger and decisions disagree", &inv.id);
        }
        proptest::prop_assert_eq!(&decisions[..n], &decisions[n..], "a repeated payment id must get its first decision back");
    }
}

#[test]
fn a_model_trained_on_one_world_generalises_to_another_and_beats_the_rules() {
    let train_world = synth::generate(&SynthConfig {
        seed: 101,
        customers: 500,
        payments: 14_000,
        ..Default::default()
    });
    let (mut ledger, _) = Ledger::new(
        train_world.customers.clone(),
        train_world.train.invoices.clone(),
    );
    // 9,800 training payments: at 99.7% a stratum needs 998 labels in the threshold slice, so
    // certify at 98% (149 labels), as a deployment with this little history would.
    let cfg = cashmatch::train::TrainConfig {
        target_precision: 0.98,
        ..Default::default()
    };
    let ex = cashmatch::train::replay(
        &mut ledger,
        &train_world.train.payments,
        &train_world.train.labels,
        &cfg.habits,
        &cfg.limits,
    );
    let (model, _card) = cashmatch::train::fit(&ex, &cfg).expect("training succeeds");
    let test_world = synth::generate(&SynthConfig {
        seed: 202,
        customers: 300,
        payments: 4_000,
        ..Default::default()
    });
    let (ledger, _) = Ledger::new(
        test_world.customers.clone(),
        test_world.test.invoices.clone(),
    );
    let mut engine = Engine::new(ledger, Arc::new(model), EngineConfig::default());
    let decisions = engine.run_batch(&test_world.test.payments);
    let cases: HashMap<String, String> = test_world.test.cases.iter().cloned().collect();
    let report = eval::evaluate(&decisions, &test_world.test.labels, &cases);
    let (mut bl, _) = Ledger::new(
        test_world.customers.clone(),
        test_world.test.invoices.clone(),
    );
    let base = eval::evaluate(
        &eval::rules_baseline(&mut bl, &test_world.test.payments),
        &test_world.test.labels,
        &cases,
    );
    let (m, b) = (&report.overall, &base.overall);
    // The world holds the case families the policy sends to review on purpose (duplicates of
    // paid items, cut lists with several completions, unseen patterns), which the rules also
    // miss; measured 0.661 against 0.517.
    assert!(
        m.touchless() > b.touchless() + 0.12,
        "model {:.3} vs rules {:.3}",
        m.touchless(),
        b.touchless()
    );
    assert!(m.precision() >= 0.98, "precision {:.4}", m.precision());
}

#[test]
fn bad_rows_are_reported_with_file_line_and_column_and_good_payments_still_decided() {
    let dir = std::env::temp_dir().join(format!("cashmatch-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = std::fs::read_to_string(fixture("remittances.csv")).expect("read");
    let mut lines: Vec<&str> = good.lines().collect();
    // Line 3 of the file gets an amount that is not a number.
    let broken = lines[2].replacen("3420.75", "34O0.75", 1);
    lines[2] = &broken;
    let rem = dir.join("remittances.csv");
    std::fs::write(&rem, lines.join("\n")).expect("write");
    let out = dir.join("decisions.jsonl");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
        .args(["match", "--customers"])
        .arg(fixture("customers.csv"))
        .arg("--invoices")
        .arg(fixture("invoices.csv"))
        .arg("--remittances")
        .arg(&rem)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cashmatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("remittances.csv: line 3, column 3"),
        "{stderr}"
    );
    let decided = io::read_decisions(&out).expect("decisions").rows;
    assert_eq!(decided.len(), 23, "every good payment is decided");
    assert!(decided.iter().all(|d| d.payment_id != "P-typo"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Regression: two allocations naming one invoice used to pass the check one by one and then
/// fail half-way through applying, leaving the ledger changed.
#[test]
fn apply_checks_two_allocations_of_one_invoice_as_their_sum_and_changes_nothing_when_refused() {
    let (mut engine, payments) = case_engine();
    let p = payments
        .iter()
        .find(|p| p.payment_id == "P-exact")
        .expect("P-exact")
        .clone();
    let half = |amount: &str| cashmatch::domain::Allocation {
        invoice_id: "I-1001".into(),
        amount: amount.parse().expect("decimal"),
        discount: Decimal::ZERO,
        deduction: Decimal::ZERO,
        reason_code: None,
    };
    let before = engine
        .ledger()
        .invoice(engine.ledger().invoice_idx("I-1001").expect("I-1001"))
        .open_amount;
    let mut d = engine.decide(&p);
    d.status = Status::Auto;
    d.allocations = vec![half("1000.00"), half("1000.00")];
    d.unapplied = p.amount - "2000.00".parse::<Decimal>().expect("decimal");
    let err = engine.apply(&p, &d);
    assert!(
        err.is_err(),
        "2,000.00 against 1,250.00 open must be refused"
    );
    let after = engine
        .ledger()
        .invoice(engine.ledger().invoice_idx("I-1001").expect("I-1001"))
        .open_amount;
    assert_eq!(before, after, "a refused apply changes nothing");
}

/// A customer known to cut references short (a habit a retrained model carries) quotes
/// `INV-0067`: the engine reads it as the start of that customer's own numbers, and when two of
/// its open items start so and carry the payment's amount, nothing tells them apart: review.
#[test]
fn a_short_reference_that_fits_two_open_items_equally_goes_to_review() {
    use cashmatch::domain::{Currency, Customer, Invoice, Payer, Payment, RemittanceLine, Terms};
    use cashmatch::matching::{ReferenceHabits, Truncation};
    let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("date");
    let invoice = |id: &str, number: &str, amount: Decimal| Invoice {
        id: id.into(),
        customer_id: "C1".into(),
        number: number.into(),
        po_number: None,
        invoice_date: d,
        due_date: d + chrono::Days::new(30),
        currency: Currency::USD,
        amount,
        open_amount: amount,
        terms: Terms::default(),
    };
    let two_fit = |second: Decimal| {
        let (ledger, errs) = Ledger::new(
            vec![Customer {
                id: "C1".into(),
                name: "Harbour Freight Lines".into(),
                parent_id: None,
                bank_accounts: vec!["111122223333".into()],
            }],
            vec![
                invoice("I1", "INV-0067505", Decimal::new(25_000, 2)),
                invoice("I2", "INV-0067512", second),
            ],
        );
        assert!(errs.is_empty());
        ledger
    };
    let mut model = Model::embedded_default().expect("the shipped model loads");
    model.habits = ReferenceHabits {
        truncates: [(
            "C1".to_string(),
            Truncation {
                seen: 12,
                shortest: 7,
            },
        )]
        .into(),
    };
    let engine = Engine::new(
        two_fit(Decimal::new(25_000, 2)),
        Arc::new(model),
        EngineConfig::default(),
    );
    let payment = Payment {
        payment_id: "P1".into(),
        format: "csv".into(),
        direction: Default::default(),
        payment_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 20),
        amount: Decimal::new(25_000, 2),
        currency: Currency::USD,
        payer: Payer {
            name: None,
            account: Some("111122223333".into()),
        },
        lines: vec![RemittanceLine {
            reference: Some("INV-0067".into()),
            amount_paid: Some(Decimal::new(25_000, 2)),
            ..Default::default()
        }],
        free_text: vec![],
        warnings: vec![],
        returned: None,
    };
    let d = engine.decide(&payment);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty());
    // Both readings are offered to the analyst.
    let offered: Vec<&str> = d
        .suggestions
        .iter()
        .flat_map(|s| s.allocations.iter().map(|a| a.invoice_id.as_str()))
        .collect();
    assert!(
        offered.contains(&"I1") && offered.contains(&"I2"),
        "{offered:?}"
    );
}

/// A world's test split decided under `model`.
fn world_decided(
    model: &Model,
    seed: u64,
) -> (synth::World, Vec<cashmatch::domain::Payment>, Vec<Decision>) {
    let w = synth::generate(&SynthConfig::new(seed, 200, 3_000));
    let (ledger, _) = Ledger::new(w.customers.clone(), w.test.invoices.clone());
    let engine = Engine::new(ledger, Arc::new(model.clone()), EngineConfig::default());
    let payments = w.test.payments.clone();
    let decisions = engine.decide_all(&payments);
    (w, payments, decisions)
}

fn engine_for(w: &synth::World, model: Model, threshold: Option<f64>) -> Engine {
    let (ledger, _) = Ledger::new(w.customers.clone(), w.test.invoices.clone());
    Engine::new(
        ledger,
        Arc::new(model),
        EngineConfig {
            threshold,
            ..Default::default()
        },
    )
}

/// A small ledger of one customer, `C1` on account `111122223333`, for the safety rules below:
/// `(id, number, amount, open amount, invoice date)` per item.
fn one_customer(items: &[(&str, &str, Decimal, Decimal, u32)]) -> Ledger {
    use cashmatch::domain::{Currency, Customer, Invoice, Terms};
    let invoices = items
        .iter()
        .map(|&(id, number, amount, open, day)| {
            let d = chrono::NaiveDate::from_ymd_opt(2026, 10, day).expect("date");
            Invoice {
                id: id.into(),
                customer_id: "C1".into(),
                number: number.into(),
                po_number: None,
                invoice_date: d,
                due_date: d + chrono::Days::new(30),
                currency: Currency::USD,
                amount,
                open_amount: open,
                terms: Terms::default(),
            }
        })
        .collect();
    let (ledger, errs) = Ledger::new(
        vec![Customer {
            id: "C1".into(),
            name: "Harbour Freight Lines".into(),
            parent_id: None,
            bank_accounts: vec!["111122223333".into()],
        }],
        invoices,
    );
    assert!(errs.is_empty(), "{errs:?}");
    ledger
}

/// A payment from C1's account: one line per `(reference, amount)`, and a memo.
fn paying(
    id: &str,
    amount: Decimal,
    lines: &[(&str, Decimal)],
    memo: Option<&str>,
) -> cashmatch::domain::Payment {
    use cashmatch::domain::{Currency, Payer, Payment, RemittanceLine};
    Payment {
        payment_id: id.into(),
        format: "csv".into(),
        direction: Default::default(),
        payment_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2),
        amount,
        currency: Currency::USD,
        payer: Payer {
            name: Some("HARBOUR FREIGHT LINES".into()),
            account: Some("111122223333".into()),
        },
        lines: lines
            .iter()
            .map(|&(r, a)| RemittanceLine {
                reference: Some(r.into()),
                amount_paid: Some(a),
                ..Default::default()
            })
            .collect(),
        free_text: memo.into_iter().map(str::to_string).collect(),
        warnings: vec![],
        returned: None,
    }
}

/// The safety rules must hold whatever the model says: these tests run with a threshold of
/// zero, under which any candidate the rules let through is applied.
fn rules_only(ledger: Ledger) -> Engine {
    rules_only_tolerating(ledger, EngineConfig::default().unexplained_tolerance)
}

fn rules_only_tolerating(ledger: Ledger, unexplained_tolerance: Decimal) -> Engine {
    // The model's own limits (per-stratum certificates, the out-of-distribution guard) are
    // tested on their own; here only the rules may stop a payment.
    let mut model = Model::embedded_default().expect("the shipped model loads");
    model.strata.clear();
    model.envelope = None;
    let model = Arc::new(model);
    Engine::new(
        ledger,
        model,
        EngineConfig {
            threshold: Some(0.0),
            unexplained_tolerance,
            ..Default::default()
        },
    )
}

/// Forty cents more than the remittance accounts for: within the default tolerance of one
/// currency unit the invoice is applied and the forty cents left unapplied; a team that
/// tolerates nothing gets the payment in review instead.
#[test]
fn unexplained_cash_beyond_the_configured_tolerance_goes_to_review() {
    let items = [("I1", "INV-0010001", usd(50_000), usd(50_000), 1)];
    let p = paying("P-odd", usd(50_040), &[("INV-0010001", usd(50_000))], None);
    let d = rules_only(one_customer(&items)).decide(&p);
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(50_000))]);
    assert_eq!(d.unapplied, usd(40));

    let d = rules_only_tolerating(one_customer(&items), Decimal::ZERO).decide(&p);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("0.40 of 500.40 is accounted for by nothing")),
        "{d:#?}"
    );
}

#[test]
fn a_stratum_the_model_could_not_certify_never_auto_applies() {
    use cashmatch::matching::Stratum;
    use cashmatch::model::artifact::StratumThreshold;
    let shipped = Model::embedded_default().expect("the shipped model loads");
    // Every stratum at the shipped threshold, but amount-only evidence uncertified.
    let mut model = shipped.clone();
    model.envelope = None;
    model.strata = Stratum::ALL
        .iter()
        .map(|&s| StratumThreshold {
            stratum: s,
            threshold: (s != Stratum::AmountOnly).then_some(shipped.threshold),
            labels: 0,
            labels_needed: 998,
            n_auto: 0,
            errors: 0,
            lower_bound: 0.0,
        })
        .collect();
    let mut open = model.clone();
    open.strata[Stratum::AmountOnly.index()].threshold = Some(shipped.threshold);
    let (w, payments, decisions) = world_decided(&open, 41);
    let amount_only: Vec<usize> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.status == Status::Auto && d.explanation.iter().any(|e| e.contains("(amount_only"))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        amount_only.len() >= 5,
        "the world should have amount-only auto-applies to withhold: {}",
        amount_only.len()
    );
    // Not even an operator's --threshold 0 opens a stratum the model could not certify.
    for threshold in [None, Some(0.0)] {
        let engine = engine_for(&w, model.clone(), threshold);
        for &i in &amount_only {
            let d = engine.decide(&payments[i]);
            assert_eq!(d.status, Status::Review, "{d:#?}");
            assert!(
                d.explanation
                    .iter()
                    .any(|e| e.contains("too few labelled amount_only payments")),
                "{:?}",
                d.explanation
            );
            // The analyst still gets the allocation the model liked as the first suggestion.
            assert_eq!(
                key(&d.suggestions[0].allocations),
                key(&decisions[i].allocations)
            );
        }
    }
}

#[test]
fn a_candidate_unlike_the_training_data_is_not_auto_applied_however_high_it_scores() {
    use cashmatch::model::Envelope;
    let mut shipped = Model::embedded_default().expect("the shipped model loads");
    shipped.strata.clear();
    shipped.envelope = None;
    // The envelope of what a model trained on this world's history saw.
    let w = synth::generate(&SynthConfig::new(43, 200, 3_000));
    let (mut ledger, _) = Ledger::new(w.customers.clone(), w.train.invoices.clone());
    let cfg = cashmatch::train::TrainConfig::default();
    let ex = cashmatch::train::replay(
        &mut ledger,
        &w.train.payments,
        &w.train.labels,
        &shipped.habits,
        &cfg.limits,
    );
    let envelope = Envelope::fit(ex.x.view(), ex.y.view(), 7, 20);
    let mut guarded = shipped.clone();
    guarded.envelope = Some(envelope);
    // Exact references of this world, paid twenty years after the invoice: the same evidence
    // in every column but the dates, which no training payment came near.
    let bare = engine_for(&w, shipped, None);
    let safe = engine_for(&w, guarded, None);
    let (mut checked, mut ordinary, mut ordinary_flagged) = (0, 0, 0);
    for p in w.test.payments.iter().take(400) {
        let d = bare.decide(p);
        if d.status != Status::Auto || !d.explanation.iter().any(|e| e.contains("(exact_single")) {
            continue;
        }
        // An ordinary payment of the same world is almost never outside the envelope.
        ordinary += 1;
        if safe.decide(p) != d {
            ordinary_flagged += 1;
        }
        let mut late = p.clone();
        late.payment_date = p
            .payment_date
            .and_then(|d| d.checked_add_days(chrono::Days::new(7_300)));
        let unguarded = bare.decide(&late);
        if unguarded.status != Status::Auto {
            continue;
        }
        assert!(unguarded.confidence >= bare.threshold());
        let d = safe.decide(&late);
        assert_eq!(d.status, Status::Review, "{d:#?}");
        assert!(d.allocations.is_empty());
        assert!(
            d.explanation
                .iter()
                .any(|e| e
                    .starts_with("not applied automatically: unlike the model's training data: ")),
            "{:?}",
            d.explanation
        );
        checked += 1;
    }
    assert!(
        checked >= 20,
        "too few late exact payments the bare model applies: {checked}"
    );
    assert!(
        ordinary_flagged * 50 <= ordinary,
        "{ordinary_flagged} of {ordinary} ordinary payments flagged"
    );
}

fn usd(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// The other source's misapplication: a remittance quoting an invoice already paid, and the
/// payer has another open invoice of the same amount. The cash must not go to the twin: the
/// payment is a possible duplicate, in review, and the explanation names the earlier payment
/// (or, for an item that arrived closed, says so).
#[test]
fn a_second_payment_of_a_paid_invoice_goes_to_review_naming_the_first_not_to_its_twin() {
    use cashmatch::domain::ReviewReason;
    let mut engine = rules_only(one_customer(&[
        ("I1", "INV-0010001", usd(125_000), usd(125_000), 1),
        ("I2", "INV-0010002", usd(125_000), usd(125_000), 3),
        ("I3", "INV-0009001", usd(77_000), Decimal::ZERO, 1),
    ]));
    let first = paying(
        "P-first",
        usd(125_000),
        &[("INV-0010001", usd(125_000))],
        None,
    );
    let again = paying(
        "P-again",
        usd(125_000),
        &[("INV-0010001", usd(125_000))],
        None,
    );
    let d = engine.run_batch(&[first, again]);
    assert_eq!(d[0].status, Status::Auto, "{:#?}", d[0]);
    assert_eq!(key(&d[0].allocations), vec![("I1".into(), usd(125_000))]);
    assert_eq!(d[1].status, Status::Review, "{:#?}", d[1]);
    assert_eq!(d[1].review_reason, Some(ReviewReason::PossibleDuplicate));
    assert!(d[1].allocations.is_empty());
    assert_eq!(d[1].unapplied, usd(125_000));
    let says = d[1].explanation.join("\n");
    assert!(
        says.contains("paid by payment P-first of 2026-11-02"),
        "{says}"
    );
    // The twin is still open: nothing was applied to it.
    let twin = engine.ledger().invoice_idx("I2").expect("I2");
    assert_eq!(engine.ledger().invoice(twin).open_amount, usd(125_000));

    // An item the AR system sent closed: no payment to name, and still a possible duplicate.
    let closed = paying(
        "P-closed",
        usd(77_000),
        &[("INV-0009001", usd(77_000))],
        None,
    );
    let d = engine.decide(&closed);
    assert_eq!(
        d.review_reason,
        Some(ReviewReason::PossibleDuplicate),
        "{d:#?}"
    );
    assert!(
        d.explanation.join("\n").contains("closed in the ledger"),
        "{d:#?}"
    );
}

/// A remittance naming a document that is not open says what it pays; another open invoice
/// that happens to have the amount is not it. A bare number in a bank memo (a check number) is
/// no such reference, and the amount alone may still decide.
#[test]
fn a_reference_that_names_nothing_open_is_not_applied_by_amount_alone() {
    let engine = rules_only(one_customer(&[(
        "I1",
        "INV-0010001",
        usd(50_000),
        usd(50_000),
        1,
    )]));
    for p in [
        paying("P-line", usd(50_000), &[("INV-0099999", usd(50_000))], None),
        paying(
            "P-memo",
            usd(50_000),
            &[],
            Some("PAYMENT FOR INVOICE INV-0099999"),
        ),
    ] {
        let d = engine.decide(&p);
        assert_eq!(d.status, Status::Review, "{d:#?}");
        assert!(
            d.explanation
                .iter()
                .any(|e| e.contains("names nothing open")),
            "{d:#?}"
        );
    }
    let d = engine.decide(&paying("P-check", usd(50_000), &[], Some("CHECK 104233")));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(50_000))]);
}

/// A sister company's invoice quoted to us: its number shares our digits (`CA-2027-0130496`
/// beside `2027-0130496`, another customer's open item), and the payer has an open item of the
/// payment's amount. The reference found something, but not what the cash would pay: review.
#[test]
fn a_reference_that_names_someone_elses_item_is_not_applied_by_amount_alone() {
    use cashmatch::domain::Customer;
    let mut ledger = one_customer(&[("I1", "2026-0123065", usd(519_000), usd(519_000), 1)]);
    ledger.upsert_customer(Customer {
        id: "C2".into(),
        name: "Lakeside Dental Group".into(),
        parent_id: None,
        bank_accounts: vec!["999988887777".into()],
    });
    let mut other = ledger.invoice(0).clone();
    other.id = "I9".into();
    other.customer_id = "C2".into();
    other.number = "2027-0130496".into();
    other.amount = usd(12_300);
    other.open_amount = usd(12_300);
    ledger.upsert_invoice(other).expect("I9");
    let engine = rules_only(ledger);
    let d = engine.decide(&paying(
        "P-sister",
        usd(519_000),
        &[],
        Some("INVOICE NO. CA-2027-0130496 THANK YOU"),
    ));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
}

/// One mistyped digit that lands on another real invoice: the line quotes `INV-0148283`
/// (427.27 open) and pays 578.00, which is exactly what `INV-0148281` has open. The cash is
/// never applied to the first as an overpayment: it goes to the second, whose amount and number
/// both fit, or to review saying why.
#[test]
fn a_reference_mistyped_onto_another_invoice_is_not_taken_for_an_overpayment() {
    let engine = rules_only(one_customer(&[
        ("I1", "INV-0148283", usd(42_727), usd(42_727), 1),
        ("I2", "INV-0148281", usd(57_800), usd(57_800), 1),
    ]));
    let d = engine.decide(&paying(
        "P-typo",
        usd(57_800),
        &[("INV-0148283", usd(57_800))],
        None,
    ));
    if d.status == Status::Auto {
        assert_eq!(
            key(&d.allocations),
            vec![("I2".into(), usd(57_800))],
            "{d:#?}"
        );
    } else {
        assert!(
            d.explanation
                .iter()
                .any(|e| e.contains("INV-0148281 has open") && e.contains("mistyped")),
            "{d:#?}"
        );
    }
}

/// Payers overpay by paying the original amount of an item already part-paid, or by rounding
/// up: the excess stays unapplied on an auto decision. A line paying six times what its item
/// asks is not an overpayment anyone makes, and its excess is cash nothing accounts for.
#[test]
fn only_overpayments_payers_make_leave_their_excess_on_an_auto_decision() {
    let engine = rules_only(one_customer(&[
        ("I1", "INV-0010001", usd(100_000), usd(30_000), 1),
        ("I2", "INV-0010036", usd(6_235), usd(6_235), 1),
    ]));
    let d = engine.decide(&paying(
        "P-original",
        usd(100_000),
        &[("INV-0010001", usd(100_000))],
        None,
    ));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(30_000))]);
    assert_eq!(d.unapplied, usd(70_000));

    let d = engine.decide(&paying(
        "P-six",
        usd(41_228),
        &[("INV-0010036", usd(41_228))],
        None,
    ));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
}

/// Six invoices of one billing run paid together; the bank's memo field kept the first three
/// references. Unique amounts (powers of two) make the rest of the run the only completion.
fn billing_run() -> Vec<(&'static str, &'static str, Decimal, Decimal, u32)> {
    let items = [
        ("I1", "INV-0010001"),
        ("I2", "INV-0010002"),
        ("I3", "INV-0010003"),
        ("I4", "INV-0010004"),
        ("I5", "INV-0010005"),
        ("I6", "INV-0010006"),
    ];
    let mut v: Vec<_> = items
        .iter()
        .enumerate()
        .map(|(k, &(id, n))| (id, n, usd(100_000 << k), usd(100_000 << k), 5))
        .collect();
    // Someone else's run, long ago: not a neighbour, and too large to fit anyway.
    v.push(("I9", "INV-0000107", usd(9_900_000), usd(9_900_000), 1));
    v
}

/// A consolidated payment whose memo lists only the first invoices: the rest of the cash is
/// found among the payer's open items, and the payment is applied only as a whole; when
/// nothing completes it, it goes to review with the listed part first and nothing applied.
#[test]
fn a_list_the_bank_cut_short_is_applied_whole_or_not_at_all() {
    let memo = "INV 0010001, 0010002, 0010003";
    let all: i64 = (0..6).map(|k| 100_000i64 << k).sum();
    let mut engine = rules_only(one_customer(&billing_run()));
    let d = engine.decide(&paying("P-cut", usd(all), &[], Some(memo)));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(d.unapplied, Decimal::ZERO);
    assert_eq!(
        invoice_ids(&d.allocations),
        ["I1", "I2", "I3", "I4", "I5", "I6"]
    );

    // 500.00 more than the run: no set of open items makes it up.
    let d = engine.decide(&paying("P-cut-odd", usd(all + 50_000), &[], Some(memo)));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty());
    let top = &d.suggestions[0];
    assert_eq!(invoice_ids(&top.allocations), ["I1", "I2", "I3"], "{d:#?}");

    // The same cut list when two sets complete it (I7 has the amount of I4 and I5 together, so
    // I6 and I7 complete it too): review, and the first suggestion is a complete set, not the
    // listed part.
    engine
        .ledger_mut()
        .upsert_invoice(cashmatch::domain::Invoice {
            id: "I7".into(),
            customer_id: "C1".into(),
            number: "INV-0010007".into(),
            po_number: None,
            invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 5).expect("date"),
            due_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 4).expect("date"),
            currency: cashmatch::domain::Currency::USD,
            amount: usd(2_400_000),
            open_amount: usd(2_400_000),
            terms: Default::default(),
        })
        .expect("I7");
    let d = engine.decide(&paying("P-cut-two", usd(all), &[], Some(memo)));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert_eq!(d.suggestions[0].unapplied, Decimal::ZERO, "{d:#?}");
    assert!(d.suggestions[0].allocations.len() > 3, "{d:#?}");
}

/// The rest of a cut list is the rest of the payer's payment run: items due one after another,
/// a few held back at most. Two items that happen to add up to the rest while four others due
/// between them stay open are a coincidence of amounts, and a person decides.
#[test]
fn a_cut_list_is_completed_automatically_only_by_a_run_of_what_fell_due() {
    let listed = [
        ("I1", "INV-0010001"),
        ("I2", "INV-0010002"),
        ("I3", "INV-0010003"),
    ];
    let later = [
        ("K1", "INV-0020001"),
        ("K2", "INV-0020002"),
        ("K3", "INV-0020003"),
        ("K4", "INV-0020004"),
        ("K5", "INV-0020005"),
        ("K6", "INV-0020006"),
    ];
    // Powers of two: every set of items has its own total, so each payment has one completion.
    let amount = |k: usize| usd(100_000 << k);
    let mut items: Vec<(&str, &str, Decimal, Decimal, u32)> = listed
        .iter()
        .enumerate()
        .map(|(k, &(id, n))| (id, n, amount(k), amount(k), 5))
        .collect();
    items.extend(
        later
            .iter()
            .enumerate()
            .map(|(k, &(id, n))| (id, n, amount(k + 3), amount(k + 3), 6 + k as u32)),
    );
    let engine = rules_only(one_customer(&items));
    let memo = "INV 0010001, 0010002, 0010003";
    let head: Decimal = (0..3).map(amount).sum();

    let run = head + amount(3) + amount(4) + amount(5);
    let d = engine.decide(&paying("P-run", run, &[], Some(memo)));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(
        invoice_ids(&d.allocations),
        ["I1", "I2", "I3", "K1", "K2", "K3"]
    );

    let apart = head + amount(3) + amount(8);
    let d = engine.decide(&paying("P-apart", apart, &[], Some(memo)));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("leave 4 of those that follow the list open")),
        "{d:#?}"
    );
    assert_eq!(
        invoice_ids(&d.suggestions[0].allocations),
        ["I1", "I2", "I3", "K1", "K6"],
        "{d:#?}"
    );
}

/// A cut list whose rest has the amount of an older open item: two sets complete it, so a person
/// decides, and the first suggestion is the one that goes on where the memo was cut (the items
/// after the last one listed), not the older look-alike. The memo's last number, cut to a
/// fragment by the bank's field, names nothing.
#[test]
fn the_first_suggestion_for_a_cut_list_goes_on_where_the_memo_was_cut() {
    let items = [
        ("E1", "INV-0009990", usd(80_000), usd(80_000), 1),
        ("I1", "INV-0010001", usd(10_000), usd(10_000), 5),
        ("I2", "INV-0010002", usd(20_000), usd(20_000), 5),
        ("I3", "INV-0010003", usd(40_000), usd(40_000), 5),
        ("K1", "INV-0010004", usd(80_000), usd(80_000), 6),
        ("K2", "INV-0010005", usd(160_000), usd(160_000), 7),
    ];
    let engine = rules_only(one_customer(&items));
    let memo = "INV 0010001, 0010002, 0010003, 00100";
    let d = engine.decide(&paying("P-cut-rest", usd(310_000), &[], Some(memo)));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert_eq!(
        invoice_ids(&d.suggestions[0].allocations),
        ["I1", "I2", "I3", "K1", "K2"],
        "{d:#?}"
    );
    assert!(
        d.suggestions
            .iter()
            .any(|s| invoice_ids(&s.allocations) == ["E1", "I1", "I2", "I3", "K2"]),
        "{d:#?}"
    );
}

/// The rest of a cut list follows the list: a set that adds up while leaving two or more of the
/// items after the list open is a coincidence of amounts and goes to a person; one held back is
/// what payers do, and the whole payment is applied.
#[test]
fn a_cut_list_is_completed_automatically_only_by_what_follows_it() {
    let items = [
        ("I1", "INV-0010001", usd(10_000), usd(10_000), 5),
        ("I2", "INV-0010002", usd(20_000), usd(20_000), 5),
        ("I3", "INV-0010003", usd(40_000), usd(40_000), 5),
        ("K1", "INV-0010004", usd(80_000), usd(80_000), 6),
        ("K2", "INV-0010005", usd(160_000), usd(160_000), 6),
        ("K3", "INV-0010006", usd(320_000), usd(320_000), 7),
    ];
    let engine = rules_only(one_customer(&items));
    let memo = "INV 0010001, 0010002, 0010003";
    let d = engine.decide(&paying("P-one-held", usd(550_000), &[], Some(memo)));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(invoice_ids(&d.allocations), ["I1", "I2", "I3", "K2", "K3"]);
    let d = engine.decide(&paying("P-two-held", usd(390_000), &[], Some(memo)));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("leave 2 of those that follow the list open")),
        "{d:#?}"
    );
    assert_eq!(
        invoice_ids(&d.suggestions[0].allocations),
        ["I1", "I2", "I3", "K3"],
        "{d:#?}"
    );
}

/// `cashmatch match --advices`: the bank's credits without detail are linked with the advices
/// that came by email (CSV, XLSX, text and HTML bodies; a scan refused), the links written and
/// counted, and each linked payment decided with the advice's invoices and the bank's money.
#[test]
fn receipts_and_emailed_advices_are_linked_and_matched_in_one_run() {
    let dir = std::env::temp_dir().join(format!("cashmatch-advices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let adv = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/advices");
    let (out, links) = (dir.join("decisions.jsonl"), dir.join("links.jsonl"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
        .arg("match")
        .arg("--customers")
        .arg(adv.join("customers.csv"))
        .arg("--invoices")
        .arg(adv.join("invoices.csv"))
        .arg("--remittances")
        .arg(adv.join("bank.csv"))
        .arg("--advices")
        .arg(adv.join("mail"))
        .arg("--links")
        .arg(&links)
        .args(["--as-of", "2026-12-14", "--out"])
        .arg(&out)
        .output()
        .expect("run cashmatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("scan.png") && stderr.contains("unreadable"),
        "{stderr}"
    );
    assert!(
        stderr.contains("6 receipts, 4 advices: 4 links (0 of several items, 1 less a bank fee)"),
        "{stderr}"
    );
    let links = std::fs::read_to_string(&links).expect("links");
    let rows: Vec<serde_json::Value> = links
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let linked = |bank: &str| {
        rows.iter()
            .find(|r| r["kind"] == "link" && r["receipts"][0] == bank)
            .map(|r| r["advices"][0].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        linked("BNK-001").as_deref(),
        Some("eml:nw-20261207-1@northwind.example:1")
    );
    assert_eq!(
        linked("BNK-002").as_deref(),
        Some("eml:bg-7731@bluegrass.example:body")
    );
    assert_eq!(
        linked("BNK-004").as_deref(),
        Some("eml:px-551@pioneer.example:1")
    );
    // No advice came for these: the hold is over, so they were matched on their own.
    for bank in ["BNK-005", "BNK-006"] {
        assert!(
            rows.iter().any(|r| r["kind"] == "receipt"
                && r["receipts"][0] == bank
                && r["hold"] == "expired"),
            "{links}"
        );
    }
    let decided = io::read_decisions(&out).expect("decisions").rows;
    assert_eq!(decided.len(), 6, "every receipt is decided");
    let invoices = |id: &str| {
        let d = decided.iter().find(|d| d.payment_id == id).expect(id);
        let mut v: Vec<String> = d
            .suggestions
            .first()
            .map(|s| &s.allocations)
            .filter(|_| d.status == Status::Review)
            .unwrap_or(&d.allocations)
            .iter()
            .map(|a| a.invoice_id.clone())
            .collect();
        v.sort();
        v
    };
    // The advice's detail decides which invoices, whether or not the model auto-applies.
    assert_eq!(invoices("BNK-001"), ["I-1", "I-2"]);
    assert_eq!(invoices("BNK-003"), ["I-3"]);
    assert_eq!(invoices("BNK-004"), ["I-6", "I-7"]);
    // The bank's money, not the advice's: BNK-002 arrived $15 short of its advice.
    let d = decided
        .iter()
        .find(|d| d.payment_id == "BNK-002")
        .expect("BNK-002");
    let applied: Decimal = d.allocations.iter().map(|a| a.amount).sum();
    assert_eq!(applied + d.unapplied, Decimal::new(98500, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines that each say they pay their invoice in full while the cash is less than they add up
/// to: something the remittance does not show (a credit memo netted silently) took the
/// difference. Paying the lines in order until the cash runs out would leave a listed invoice
/// half paid on an auto decision; the payment goes to review instead. A line that says it pays
/// part of its invoice, and is paid what it says, is a partial payment and still applied.
#[test]
fn lines_that_state_more_than_the_cash_are_never_half_applied() {
    let engine = rules_only(one_customer(&[
        ("I1", "0090103431", usd(285_000), usd(285_000), 1),
        ("I2", "0090103432", usd(285_000), usd(285_000), 1),
        ("I3", "0090103440", usd(572_800), usd(572_800), 2),
        ("CM", "0070007979", usd(-872_359), usd(-872_359), 3),
    ]));
    for (id, cash) in [("P-short", usd(270_441)), ("P-most", usd(840_000))] {
        let d = engine.decide(&paying(
            id,
            cash,
            &[
                ("0090103431", usd(285_000)),
                ("0090103432", usd(285_000)),
                ("0090103440", usd(572_800)),
            ],
            None,
        ));
        assert_eq!(d.status, Status::Review, "{d:#?}");
        assert!(d.allocations.is_empty(), "{d:#?}");
    }
    let d = engine.decide(&paying(
        "P-part",
        usd(100_000),
        &[("0090103431", usd(100_000))],
        None,
    ));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(100_000))]);
    // 30.00 short of the line on a wire: the banks' fee, not something the payer netted.
    let d = engine.decide(&paying(
        "P-fee",
        usd(282_000),
        &[("0090103431", usd(285_000))],
        None,
    ));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(282_000))]);
}

/// A mistyped digit on a line with a stated deduction: the line quotes `0090085967` (2,905.27
/// open) and pays 1,499.65 less 166.63 freight, which is 1,666.28: exactly what `0090085977`
/// has open. The cash is never applied to the first as a short pay with a deduction.
#[test]
fn a_mistyped_reference_with_a_stated_deduction_is_not_applied_to_the_wrong_invoice() {
    use cashmatch::domain::Adjustment;
    let engine = rules_only(one_customer(&[
        ("I1", "0090085967", usd(290_527), usd(290_527), 1),
        ("I2", "0090085977", usd(166_628), usd(166_628), 1),
    ]));
    let mut p = paying("P-ded", usd(149_965), &[("0090085967", usd(149_965))], None);
    p.lines[0].adjustments.push(Adjustment {
        amount: usd(16_663),
        reason_code: Some("FREIGHT".into()),
        text: None,
    });
    let d = engine.decide(&p);
    assert!(
        !d.allocations.iter().any(|a| a.invoice_id == "I1"),
        "{d:#?}"
    );
    if d.status == Status::Review {
        assert!(
            d.explanation
                .iter()
                .any(|e| e.contains("0090085977 has open") && e.contains("mistyped")),
            "{d:#?}"
        );
    }
}

/// A memo that is one long number alone, or `PMT` and a number, quotes the document paid, as
/// `INVOICE` would: when it finds nothing open (another entity's number), an open item that
/// happens to have the amount is not applied. A check number keeps its word and stays ignored.
#[test]
fn a_memo_of_one_number_that_finds_nothing_is_not_applied_by_amount_alone() {
    let engine = rules_only(one_customer(&[(
        "I1",
        "0090110789",
        usd(524_918),
        usd(524_918),
        1,
    )]));
    for memo in ["0095110793", "PMT 0095110793"] {
        let d = engine.decide(&paying("P-lone", usd(524_918), &[], Some(memo)));
        assert_eq!(d.status, Status::Review, "{memo}: {d:#?}");
        assert!(d.allocations.is_empty(), "{memo}: {d:#?}");
    }
    let d = engine.decide(&paying(
        "P-chk",
        usd(524_918),
        &[],
        Some("CHECK 0095110793"),
    ));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(524_918))]);
}

/// A payer's own run or batch number in the memo is no reference: three items that alone add up
/// to the payment pay it, as they would with no memo; a number the memo calls an invoice, which
/// finds nothing, still keeps the cash from a set found by amount.
#[test]
fn a_run_number_in_the_memo_does_not_stop_a_set_found_by_amount() {
    let engine = rules_only(one_customer(&[
        ("I1", "2026-0081001", usd(10_000), usd(10_000), 1),
        ("I2", "2026-0081002", usd(25_000), usd(25_000), 2),
        ("I3", "2026-0081003", usd(7_525), usd(7_525), 3),
        ("I4", "2026-0081004", usd(33_310), usd(33_310), 4),
    ]));
    for memo in ["AP RUN 0534", "BATCH 88346"] {
        let d = engine.decide(&paying("P-run", usd(42_525), &[], Some(memo)));
        assert_eq!(d.status, Status::Auto, "{memo}: {d:#?}");
        assert_eq!(
            invoice_ids(&d.allocations),
            vec!["I1", "I2", "I3"],
            "{memo}"
        );
    }
    let d = engine.decide(&paying("P-inv", usd(42_525), &[], Some("INV 0534")));
    assert_eq!(d.status, Status::Review, "{d:#?}");
}

/// Overland (C1) with its items, and Lakeside (C2) with `INV-0317677`.
fn overland_and_lakeside(overland: &[(&str, &str, Decimal, Decimal, u32)]) -> Ledger {
    use cashmatch::domain::Customer;
    let mut ledger = one_customer(overland);
    ledger.upsert_customer(Customer {
        id: "C2".into(),
        name: "Lakeside Dental Group".into(),
        parent_id: None,
        bank_accounts: vec!["999988887777".into()],
    });
    let mut other = ledger.invoice(0).clone();
    other.id = "I9".into();
    other.customer_id = "C2".into();
    other.number = "INV-0317677".into();
    other.amount = usd(123_846);
    other.open_amount = usd(123_846);
    ledger.upsert_invoice(other).expect("I9");
    ledger
}

/// A line whose mistyped number lands on another customer's invoice: Overland's remittance
/// quotes `INV-0317677` for its own `INV-0316777` (205.00 open), and `INV-0317677` is a 1,238.46
/// invoice of Lakeside. The payer is known by its account, so the 205.00 is never applied to
/// Lakeside's invoice as a part payment: it goes to Overland's items, or to review with them as
/// the first suggestion.
#[test]
fn a_mistyped_reference_on_another_customers_invoice_is_never_applied_to_it() {
    let lines = [
        ("INV-0316776", usd(55_835)),
        ("INV-0317677", usd(20_500)),
        ("INV-0316779", usd(211_666)),
    ];
    let engine = rules_only(overland_and_lakeside(&[
        ("I1", "INV-0316776", usd(55_835), usd(55_835), 1),
        ("I2", "INV-0316777", usd(20_500), usd(20_500), 1),
        ("I3", "INV-0316779", usd(211_666), usd(211_666), 1),
    ]));
    let d = engine.decide(&paying("P-typo-foreign", usd(288_001), &lines, None));
    assert!(d.allocations.iter().all(|a| a.invoice_id != "I9"), "{d:#?}");
    let truth = vec![
        ("I1".into(), usd(55_835)),
        ("I2".into(), usd(20_500)),
        ("I3".into(), usd(211_666)),
    ];
    if d.status == Status::Auto {
        assert_eq!(key(&d.allocations), truth, "{d:#?}");
    } else {
        // The analyst is shown the payer's own items first.
        let top = d.suggestions.first().expect("a suggestion");
        assert_eq!(key(&top.allocations), truth, "{d:#?}");
    }
    // Overland's item not in the ledger yet: the only allocation that spends all the cash is
    // the one through Lakeside's invoice, and it waits for a person.
    let engine = rules_only(overland_and_lakeside(&[
        ("I1", "INV-0316776", usd(55_835), usd(55_835), 1),
        ("I3", "INV-0316779", usd(211_666), usd(211_666), 1),
    ]));
    let d = engine.decide(&paying("P-typo-foreign-2", usd(288_001), &lines, None));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("INV-0317677") && e.contains("customer that did not pay")),
        "{d:#?}"
    );
}

/// A credit memo netted without a line of its own: the remittance lists 937.63 and 56.48, the
/// cash is 919.08 (75.03 of credit taken). Paying the first line with all the cash, 18.55 short
/// (which reads like a wire fee), and the second line nothing, is not what the payer said: the
/// payment goes to review, the listed lines in the top suggestion.
#[test]
fn a_listed_line_left_unpaid_sends_the_payment_to_review() {
    let engine = rules_only(one_customer(&[
        ("I1", "INV-0307226", usd(93_763), usd(93_763), 1),
        ("I2", "INV-0149226", usd(5_648), usd(5_648), 2),
    ]));
    let d = engine.decide(&paying(
        "P-netted",
        usd(91_908),
        &[("INV-0307226", usd(93_763)), ("INV-0149226", usd(5_648))],
        None,
    ));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("pays nothing on it") || e.contains("does not say what took")),
        "{d:#?}"
    );
}

/// A blanket PO billed twice at the same price: the line quotes `PO-4500327139` for 999.00, and
/// two open invoices carry that PO with 999.00 open. Nothing says which one was paid, so the
/// payment waits for a person whatever the model says.
#[test]
fn a_po_shared_by_two_invoices_of_the_same_amount_is_not_a_guess() {
    let mut ledger = one_customer(&[("I3", "INV-0374666", usd(134_900), usd(134_900), 3)]);
    for (id, number, day) in [("I1", "INV-0373270", 1), ("I2", "INV-0373674", 2)] {
        let mut inv = ledger.invoice(0).clone();
        inv.id = id.into();
        inv.number = number.into();
        inv.po_number = Some("PO-4500327139".into());
        inv.amount = usd(99_900);
        inv.open_amount = usd(99_900);
        inv.invoice_date = chrono::NaiveDate::from_ymd_opt(2026, 10, day).expect("date");
        ledger.upsert_invoice(inv).expect("invoice");
    }
    let engine = rules_only(ledger);
    let d = engine.decide(&paying(
        "P-blanket",
        usd(234_800),
        &[
            ("INV-0374666", usd(134_900)),
            ("PO-4500327139", usd(99_900)),
        ],
        None,
    ));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("\"PO-4500327139\" reads as INV-")),
        "{d:#?}"
    );
    // Both readings are offered, the first with the invoice the number names.
    let top = d.suggestions.first().expect("a suggestion");
    assert!(
        top.allocations.iter().any(|a| a.invoice_id == "I3"),
        "{d:#?}"
    );
}

/// A line without its reference pays 117.00, and the payer has two open items of 117.00: an old
/// one and the neighbour of the listed invoice. Its amount says nothing of which, so the payment
/// waits for a person rather than paying the first item the amount index gives.
#[test]
fn a_line_found_by_an_amount_two_open_items_share_is_not_a_guess() {
    let engine = rules_only(one_customer(&[
        ("I1", "INV-0632001", usd(38_085), usd(38_085), 20),
        ("I2", "INV-0212594", usd(11_700), usd(11_700), 1),
        ("I3", "INV-0632009", usd(11_700), usd(11_700), 20),
    ]));
    let mut p = paying(
        "P-no-ref",
        usd(49_785),
        &[("INV-0632001", usd(38_085)), ("", usd(11_700))],
        None,
    );
    p.lines[1].reference = None;
    let d = engine.decide(&p);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("found by its amount alone")),
        "{d:#?}"
    );
}

/// The safety rules' engine (threshold zero) under a rules file's text.
fn under_rules(ledger: Ledger, rules: &str) -> Engine {
    let mut engine = rules_only(ledger);
    let rules = cashmatch::rules::Rules::parse(rules).expect("rules");
    engine.set_rules(Arc::new(rules));
    engine
}

const WRITE_OFF_RULES: &str = r#"version = "test-2026.1"
[default.write_off]
underpay_abs = "5.00"
underpay_pct = "2"
overpay_abs = "5.00"
reason_code = "SMALL_DIFF"
"#;

fn open_of(engine: &Engine, id: &str) -> Decimal {
    let idx = engine.ledger().invoice_idx(id).expect("invoice");
    engine.ledger().invoice(idx).open_amount
}

/// A payer short by 3.00 of a 500.00 invoice it names exactly: under rules that write off up to
/// 5.00 (and 2 percent) the invoice is closed, the 3.00 written off with the rules' reason code,
/// and the decision carries the rules' version. Without them the 3.00 stays open; 60.00 short
/// is beyond the limits and stays open too.
#[test]
fn a_short_pay_within_the_write_off_limits_closes_the_invoice_with_the_reason_code() {
    use cashmatch::domain::WriteOffLine;
    let items = [("I1", "INV-0010001", usd(50_000), usd(50_000), 1)];
    let p = paying(
        "P-short",
        usd(49_700),
        &[("INV-0010001", usd(49_700))],
        None,
    );

    let mut engine = under_rules(one_customer(&items), WRITE_OFF_RULES);
    let d = engine.decide(&p);
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(d.rules_version, "test-2026.1");
    assert_eq!(key(&d.allocations), vec![("I1".into(), usd(49_700))]);
    assert_eq!(
        d.by_rules.write_offs,
        vec![WriteOffLine {
            invoice_id: "I1".into(),
            amount: usd(300),
            reason_code: "SMALL_DIFF".into(),
        }]
    );
    engine.apply(&p, &d).expect("applies");
    assert_eq!(open_of(&engine, "I1"), Decimal::ZERO);

    let mut engine = rules_only(one_customer(&items));
    let d = engine.decide(&p);
    assert_eq!(d.rules_version, cashmatch::rules::DEFAULT_VERSION);
    assert!(d.by_rules.is_empty(), "{d:#?}");
    if d.status == Status::Auto {
        engine.apply(&p, &d).expect("applies");
        assert_eq!(open_of(&engine, "I1"), usd(300));
    }

    let far = paying("P-far", usd(44_000), &[("INV-0010001", usd(44_000))], None);
    let d = under_rules(one_customer(&items), WRITE_OFF_RULES).decide(&far);
    assert!(d.by_rules.write_offs.is_empty(), "{d:#?}");
}

/// 2.00 more than the invoice and nothing in the remittance says why: beyond the tolerance of
/// 1.00 a payment goes to review, but rules that write off up to 5.00 account for it, and the
/// leftover is written off. 10.00 over is beyond the rules and still goes to review.
#[test]
fn an_overpayment_within_the_limits_is_written_off_and_beyond_them_goes_to_review() {
    use cashmatch::domain::Leftover;
    let items = [("I1", "INV-0010001", usd(50_000), usd(50_000), 1)];
    let p = paying("P-over", usd(50_200), &[("INV-0010001", usd(50_000))], None);
    let d = rules_only(one_customer(&items)).decide(&p);
    assert_eq!(d.status, Status::Review, "{d:#?}");

    let d = under_rules(one_customer(&items), WRITE_OFF_RULES).decide(&p);
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(d.unapplied, usd(200));
    assert_eq!(
        d.by_rules.leftover,
        Leftover::WriteOff {
            reason_code: "SMALL_DIFF".into()
        }
    );

    let far = paying("P-far", usd(51_000), &[("INV-0010001", usd(50_000))], None);
    let d = under_rules(one_customer(&items), WRITE_OFF_RULES).decide(&far);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty() && d.by_rules.is_empty(), "{d:#?}");
}

/// What becomes of cash left over is the rules': kept on the payer's account, or a person asked
/// whether to refund it.
#[test]
fn the_rules_say_whether_cash_left_over_goes_on_account_or_to_refund_review() {
    use cashmatch::domain::Leftover;
    let items = [("I1", "INV-0010001", usd(50_000), usd(50_000), 1)];
    let p = paying("P-odd", usd(50_040), &[("INV-0010001", usd(50_000))], None);
    let on_account = "version = \"v\"\n[customer.\"C1\"]\noverpayment = \"on_account\"\n";
    let d = under_rules(one_customer(&items), on_account).decide(&p);
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(d.by_rules.leftover, Leftover::OnAccount);
    assert_eq!(d.unapplied, usd(40));

    let refund = "version = \"v\"\n[currency.USD]\noverpayment = \"refund_review\"\n";
    let d = under_rules(one_customer(&items), refund).decide(&p);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(
        d.explanation.iter().any(|e| e.contains("refund review")),
        "{d:#?}"
    );
}

/// Rules that would write off any small difference never make an unsure match sure: a second
/// payment of a paid invoice, short by a little, is still a possible duplicate in review, and a
/// reference that names nothing open is not applied by amount to another invoice with the
/// difference written off.
#[test]
fn write_off_rules_never_turn_a_possible_duplicate_or_an_unresolved_reference_into_an_auto_decision()
 {
    use cashmatch::domain::ReviewReason;
    let generous = "version = \"generous\"\n[default.write_off]\nunderpay_abs = \"50\"\noverpay_abs = \"50\"\n";
    let mut engine = under_rules(
        one_customer(&[
            ("I1", "INV-0010001", usd(125_000), usd(125_000), 1),
            ("I2", "INV-0010002", usd(125_000), usd(125_000), 3),
        ]),
        generous,
    );
    let first = paying(
        "P-first",
        usd(125_000),
        &[("INV-0010001", usd(125_000))],
        None,
    );
    let again = paying(
        "P-again",
        usd(124_990),
        &[("INV-0010001", usd(124_990))],
        None,
    );
    let d = engine.run_batch(&[first, again]);
    assert_eq!(d[0].status, Status::Auto, "{:#?}", d[0]);
    assert_eq!(d[1].status, Status::Review, "{:#?}", d[1]);
    assert_eq!(d[1].review_reason, Some(ReviewReason::PossibleDuplicate));
    assert!(d[1].by_rules.is_empty());
    assert_eq!(open_of(&engine, "I2"), usd(125_000));

    let engine = under_rules(
        one_customer(&[("I1", "INV-0010001", usd(50_000), usd(50_000), 1)]),
        generous,
    );
    let d = engine.decide(&paying(
        "P-nothing-open",
        usd(49_990),
        &[("INV-0099999", usd(49_990))],
        None,
    ));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty() && d.by_rules.is_empty(), "{d:#?}");
}

/// A 2/10 discount taken eight days after the window: late under the default five days of
/// grace, within terms under rules that give this customer ten.
#[test]
fn discount_grace_days_of_the_rules_extend_the_terms_window() {
    use cashmatch::domain::Terms;
    let ledger = || {
        let mut ledger = one_customer(&[]);
        let d = chrono::NaiveDate::from_ymd_opt(2026, 10, 15).expect("date");
        ledger
            .upsert_invoice(cashmatch::domain::Invoice {
                id: "I1".into(),
                customer_id: "C1".into(),
                number: "INV-0010001".into(),
                po_number: None,
                invoice_date: d,
                due_date: d + chrono::Days::new(30),
                currency: cashmatch::domain::Currency::USD,
                amount: usd(100_000),
                open_amount: usd(100_000),
                terms: Terms::parse("2/10 NET 30").expect("terms"),
            })
            .expect("I1");
        ledger
    };
    let p = paying("P-late", usd(98_000), &[("INV-0010001", usd(98_000))], None);
    // What the decision says of the allocation, applied or suggested.
    let said = |e: &Engine| {
        let d = e.decide(&p);
        let mut lines = d.explanation.clone();
        lines.extend(d.suggestions.iter().flat_map(|s| s.explanation.clone()));
        lines.join("\n")
    };
    let default = said(&rules_only(ledger()));
    assert!(
        default.contains("discount taken after the terms' window"),
        "{default}"
    );
    let graceful = "version = \"v\"\n[customer.\"C1\"]\ndiscount_grace_days = 10\n";
    let within = said(&under_rules(ledger(), graceful));
    assert!(
        within.contains("early-payment discount within terms"),
        "{within}"
    );
}

/// `cashmatch rules check` says OK with what the rules say, or names the line, column and field
/// of a mistake and exits non-zero; `cashmatch match --rules` records the file's version in
/// every decision.
#[test]
fn rules_check_names_the_mistake_and_match_records_the_rules_version() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules/example.toml");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
            .args(args)
            .output()
            .expect("run cashmatch")
    };
    let ok = run(&["rules".as_ref(), "check".as_ref(), example.as_os_str()]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.starts_with("OK ") && stdout.contains("version acme-2026.12.1"),
        "{stdout}"
    );

    let dir = std::env::temp_dir().join(format!("cashmatch-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "version = \"v2\"\n\n[currency.EUR.write_off]\nunderpay_pct = \"120\"\n",
    )
    .expect("write");
    let refused = run(&["rules".as_ref(), "check".as_ref(), bad.as_os_str()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(
            "line 4, column 16: currency.EUR.write_off.underpay_pct: 120 is more than 100 percent"
        ),
        "{stderr}"
    );

    let out = dir.join("decisions.jsonl");
    let matched = std::process::Command::new(env!("CARGO_BIN_EXE_cashmatch"))
        .arg("match")
        .arg("--customers")
        .arg(fixture("customers.csv"))
        .arg("--invoices")
        .arg(fixture("invoices.csv"))
        .arg("--remittances")
        .arg(fixture("remittances.csv"))
        .arg("--rules")
        .arg(&example)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cashmatch");
    assert!(
        matched.status.success(),
        "{}",
        String::from_utf8_lossy(&matched.stderr)
    );
    let decided = io::read_decisions(&out).expect("decisions").rows;
    assert!(!decided.is_empty());
    assert!(decided.iter().all(|d| d.rules_version == "acme-2026.12.1"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A key account has an open item at nearly any amount: one found by the amount alone among
/// many others close to it may be there by chance (a consolidated payment without detail landing
/// on it), and goes to a person. The same amount alone where nothing else lies near it is
/// evidence, and is applied.
#[test]
fn an_amount_alone_among_many_close_ones_is_not_applied() {
    let numbers: Vec<(String, String)> = (0..20)
        .map(|k| (format!("N{k}"), format!("INV-00500{k:02}")))
        .collect();
    // Twenty items within 2% of 1,000.00, none of it exactly: 12 are enough to make an item of
    // exactly 1,000.00 a 0.3% chance (4,000 cents in the window).
    let mut items: Vec<(&str, &str, Decimal, Decimal, u32)> = numbers
        .iter()
        .enumerate()
        .map(|(k, (id, n))| {
            let a = usd(98_513 + 137 * k as i64);
            (id.as_str(), n.as_str(), a, a, 1 + k as u32)
        })
        .collect();
    assert!(items.iter().all(|i| i.2 != usd(100_000)));
    items.push(("S1", "INV-0040001", usd(100_000), usd(100_000), 22));
    items.push(("S2", "INV-0040002", usd(1_234_567), usd(1_234_567), 23));
    let engine = rules_only(one_customer(&items));

    let d = engine.decide(&paying("P-crowded", usd(100_000), &[], None));
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation
            .iter()
            .any(|e| e.contains("INV-0040001 is found by its amount alone")
                && e.contains("there by chance")),
        "{d:#?}"
    );
    // The suggestion is still the item, for the analyst to confirm.
    assert_eq!(invoice_ids(&d.suggestions[0].allocations), ["S1"]);

    let d = engine.decide(&paying("P-alone", usd(1_234_567), &[], None));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(invoice_ids(&d.allocations), ["S2"]);
}

/// Another entity's document number that reads as ours (`CA-2026-0133557` as `2026-0133557`)
/// is a weak sign, and so is a shortfall a wire fee would explain: together they are not
/// evidence enough to apply cash. The number as written, short by the same fee, is.
#[test]
fn a_reference_not_as_written_and_a_fee_nobody_stated_go_to_a_person() {
    let engine = rules_only(one_customer(&[
        ("I1", "2026-0133557", usd(38_118), usd(38_118), 3),
        ("I2", "2026-0133990", usd(52_000), usd(52_000), 4),
    ]));
    let p = paying("P-other", usd(35_763), &[], Some("CA-2026-0133557"));
    let d = engine.decide(&p);
    assert_eq!(d.status, Status::Review, "{d:#?}");
    assert!(d.allocations.is_empty(), "{d:#?}");
    assert!(
        d.explanation.iter().any(|e| e
            .contains("2026-0133557 is read from a reference that is not its number as written")),
        "{d:#?}"
    );

    let d = engine.decide(&paying("P-ours", usd(49_650), &[], Some("2026-0133990")));
    assert_eq!(d.status, Status::Auto, "{d:#?}");
    assert_eq!(invoice_ids(&d.allocations), ["I2"]);
}
