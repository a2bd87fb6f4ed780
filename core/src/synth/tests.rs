//! World-level tests: determinism, the mix, the truth's consistency, and the difficulty.

use super::*;
use crate::domain::Invoice;
use crate::eval::Figures;
use crate::ledger::Ledger;
use crate::text::references::normalize;
use rust_decimal::Decimal;
use std::collections::HashMap;

fn small(seed: u64) -> World {
    generate(&SynthConfig::new(seed, 300, 3_000))
}

/// The plain rules baseline ([`crate::eval::rules_baseline_by`]) on a split, references and
/// invoice numbers compared by `key`, scored against the split's labels.
fn baseline(w: &World, split: &Split, key: impl Fn(&str) -> String) -> Figures {
    let (mut ledger, errors) = Ledger::new(w.customers.clone(), split.invoices.clone());
    assert!(errors.is_empty(), "{errors:?}");
    let decisions = crate::eval::rules_baseline_by(&mut ledger, &split.payments, key);
    crate::eval::evaluate(&decisions, &split.labels, &HashMap::new()).overall
}

/// Every label is consistent with its payment and its split's ledger.
fn check_invariants(w: &World) {
    for (name, split) in [("train", &w.train), ("test", &w.test)] {
        let ledger: HashMap<&str, &Invoice> =
            split.invoices.iter().map(|i| (i.id.as_str(), i)).collect();
        assert_eq!(
            ledger.len(),
            split.invoices.len(),
            "{name}: invoice ids unique"
        );
        let by_number: HashMap<String, &Invoice> = split
            .invoices
            .iter()
            .map(|i| (normalize(&i.number), i))
            .collect();
        let cases: HashMap<&str, Case> = split
            .cases
            .iter()
            .map(|(p, c)| {
                (
                    p.as_str(),
                    Case::from_name(c).unwrap_or_else(|| panic!("unknown case {c}")),
                )
            })
            .collect();
        assert_eq!(
            cases.len(),
            split.payments.len(),
            "{name}: one case per payment"
        );
        let mut applied_per_invoice: HashMap<&str, Decimal> = HashMap::new();
        let mut labels: HashMap<&str, Vec<&Label>> = HashMap::new();
        for l in &split.labels {
            labels.entry(l.payment_id.as_str()).or_default().push(l);
        }
        for w2 in split.payments.windows(2) {
            assert!(
                w2[0].payment_date <= w2[1].payment_date,
                "{name}: payments in time order"
            );
        }
        for p in &split.payments {
            assert!(
                p.amount > Decimal::ZERO,
                "{name} {}: positive amount",
                p.payment_id
            );
            let case = cases[p.payment_id.as_str()];
            let ls = labels
                .get(p.payment_id.as_str())
                .cloned()
                .unwrap_or_default();
            let total: Decimal = ls.iter().map(|l| l.applied_amount).sum();
            assert!(
                total <= p.amount,
                "{name} {}: cash applied {total} > payment {}",
                p.payment_id,
                p.amount
            );
            let unapplied = p.amount - total;
            assert_eq!(total + unapplied, p.amount);
            match case {
                c if c.has_no_match() => {
                    assert!(
                        ls.is_empty(),
                        "{name} {}: {case:?} has no correct match",
                        p.payment_id
                    )
                }
                _ => assert!(
                    !ls.is_empty(),
                    "{name} {}: {case:?} has a truth",
                    p.payment_id
                ),
            }
            if case != Case::Overpayment && !case.has_no_match() {
                assert_eq!(
                    unapplied,
                    Decimal::ZERO,
                    "{name} {} {case:?}: all cash applied",
                    p.payment_id
                );
            }
            for l in &ls {
                let inv = ledger.get(l.invoice_id.as_str()).unwrap_or_else(|| {
                    panic!(
                        "{name} {}: label names {} not in the ledger",
                        p.payment_id, l.invoice_id
                    )
                });
                assert!(!l.applied_amount.is_zero());
                assert_eq!(
                    l.applied_amount.is_sign_negative(),
                    inv.open_amount.is_sign_negative(),
                    "{name} {}: sign of {}",
                    p.payment_id,
                    inv.id
                );
                assert!(
                    Some(inv.invoice_date) <= p.payment_date,
                    "{name} {}: billed after payment",
                    p.payment_id
                );
                *applied_per_invoice.entry(inv.id.as_str()).or_default() += l.applied_amount;
            }
            if case == Case::DuplicatePayment {
                let r = p.lines[0].reference.as_deref().unwrap_or_default();
                let inv = by_number
                    .get(&normalize(r))
                    .expect("duplicate quotes a ledger invoice");
                assert!(
                    inv.open_amount.is_zero(),
                    "{name} {}: duplicate of a closed invoice",
                    p.payment_id
                );
            }
            if case == Case::NoOpenInvoice {
                let r = p.lines[0].reference.as_deref().unwrap_or_default();
                assert!(
                    !by_number.contains_key(&normalize(r)),
                    "{name} {}: {r} exists",
                    p.payment_id
                );
            }
            if case == Case::OtherEntity {
                for l in &p.lines {
                    let r = l.reference.as_deref().unwrap_or_default();
                    assert!(
                        !by_number.contains_key(&normalize(r)),
                        "{name} {}: another entity's {r} is in our ledger",
                        p.payment_id
                    );
                }
            }
        }
        for (id, applied) in applied_per_invoice {
            let open = ledger[id].open_amount;
            assert!(
                applied.abs() <= open.abs(),
                "{name}: {id} applied {applied} over open {open}"
            );
        }
    }
    let last_train = w.train.payments.last().and_then(|p| p.payment_date);
    let first_test = w.test.payments.first().and_then(|p| p.payment_date);
    assert!(
        last_train <= first_test || first_test.is_none(),
        "train is the earlier period"
    );
}

#[test]
fn labels_are_consistent_with_payments_and_ledgers_for_several_seeds() {
    for seed in [1, 2, 3, 42, 1234] {
        check_invariants(&small(seed));
    }
    for seed in [1, 2, 3, 4] {
        check_invariants(&generate(&SynthConfig {
            profile: WorldProfile::Enterprise,
            ..SynthConfig::new(seed, 300, 3_000)
        }));
    }
    check_invariants(&generate(&SynthConfig::new(5, 3, 40)));
    check_invariants(&generate(&SynthConfig::new(6, 1, 10)));
}

#[test]
fn tiny_and_empty_worlds_do_not_panic() {
    let w = generate(&SynthConfig::new(1, 0, 100));
    assert!(w.train.payments.is_empty() && w.test.payments.is_empty());
    let w = generate(&SynthConfig::new(1, 5, 0));
    assert!(!w.train.invoices.is_empty());
    for tf in [0.0, 1.0, f64::NAN] {
        let w = generate(&SynthConfig {
            seed: 2,
            customers: 20,
            payments: 50,
            train_fraction: tf,
            ..Default::default()
        });
        assert_eq!(w.train.payments.len() + w.test.payments.len(), 50);
        check_invariants(&w);
    }
}

#[test]
fn same_seed_same_files_other_seed_other_world() {
    let dir = std::env::temp_dir().join(format!("cashmatch-synth-det-{}", std::process::id()));
    let a = small(9);
    let b = small(9);
    assert_eq!(a, b);
    write_world(&a, dir.join("a")).unwrap();
    write_world(&b, dir.join("b")).unwrap();
    for split in ["train", "test"] {
        for f in [
            "customers.csv",
            "invoices.csv",
            "remittances.csv",
            "labels.csv",
            "cases.csv",
        ] {
            let x = std::fs::read(dir.join("a").join(split).join(f)).unwrap();
            let y = std::fs::read(dir.join("b").join(split).join(f)).unwrap();
            assert!(x == y, "{split}/{f} differs between two runs of one seed");
        }
    }
    let c = small(10);
    assert_ne!(a.customers, c.customers);
    assert_ne!(a.train.payments, c.train.payments);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn written_world_reads_back() {
    let dir = std::env::temp_dir().join(format!("cashmatch-synth-rt-{}", std::process::id()));
    let w = generate(&SynthConfig::new(3, 80, 400));
    write_world(&w, &dir).unwrap();
    let t = dir.join("test");
    let customers = crate::io::read_customers(t.join("customers.csv")).unwrap();
    let invoices = crate::io::read_invoices(t.join("invoices.csv")).unwrap();
    let remits = crate::io::read_remittances(t.join("remittances.csv")).unwrap();
    let labels = crate::io::read_labels(t.join("labels.csv")).unwrap();
    let cases = crate::io::read_cases(t.join("cases.csv")).unwrap();
    assert!(customers.errors.is_empty() && invoices.errors.is_empty() && remits.errors.is_empty());
    assert_eq!(customers.rows, w.customers);
    assert_eq!(invoices.rows, w.test.invoices);
    assert_eq!(remits.payments, w.test.payments);
    assert_eq!(labels.rows, w.test.labels);
    assert_eq!(cases.rows, w.test.cases);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_mix_follows_the_configured_shares_in_every_profile() {
    for profile in WorldProfile::ALL {
        mix_follows_the_shares(profile);
    }
}

fn mix_follows_the_shares(profile: WorldProfile) {
    let total: f64 = Case::MIX.iter().map(|(_, s)| s).sum();
    assert!((total - 1.0).abs() < 1e-9, "shares sum to {total}");
    let w = generate(&SynthConfig {
        profile,
        ..SynthConfig::new(7, 500, 6_000)
    });
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, c) in w.train.cases.iter().chain(&w.test.cases) {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    for (case, share) in Case::MIX {
        let got = counts.get(case.name()).copied().unwrap_or(0) as f64 / 6_000.0;
        // Shares are exact by construction; only families the ledger could not supply fall
        // back to exact_single.
        assert!(
            (got - share).abs() <= 0.004,
            "{profile}: {}: {got:.4} vs {share}",
            case.name()
        );
    }
    let must_not: f64 = Case::MIX
        .iter()
        .filter(|(c, _)| c.must_not_auto_apply())
        .map(|(_, s)| s)
        .sum();
    assert!((0.04..=0.06).contains(&must_not));
}

#[test]
fn a_plain_rules_baseline_settles_about_half() {
    let w = generate(&SynthConfig::new(7, 500, 6_000));
    for split in [&w.train, &w.test] {
        let b = baseline(&w, split, normalize);
        let t = b.touchless();
        assert!(
            (0.45..=0.65).contains(&t),
            "baseline touchless {t:.3}: {b:?}"
        );
        // A typo can land on another customer's invoice of the same amount; rare by nature.
        assert!(
            b.auto - b.auto_correct <= b.payments / 1_000,
            "exact rules almost never wrong: {b:?}"
        );
    }
}

#[test]
fn the_ledger_looks_like_a_ledger() {
    let w = generate(&SynthConfig::new(7, 1_000, 4_000));
    let inv = &w.train.invoices;
    let n = inv.len() as f64;
    let credits = inv.iter().filter(|i| i.is_credit()).count() as f64 / n;
    assert!(
        (0.01..=0.06).contains(&credits),
        "credit memos {credits:.3}"
    );
    let discount = inv
        .iter()
        .filter(|i| !i.terms.discount_rate.is_zero())
        .count() as f64
        / n;
    assert!(
        (0.1..=0.35).contains(&discount),
        "discount terms {discount:.3}"
    );
    let closed = inv.iter().filter(|i| i.open_amount.is_zero()).count();
    let partial = inv
        .iter()
        .filter(|i| !i.open_amount.is_zero() && i.open_amount != i.amount)
        .count();
    assert!(closed > 0 && partial > 0);
    let mut open_per_customer: HashMap<&str, usize> = HashMap::new();
    for i in inv.iter().filter(|i| !i.open_amount.is_zero()) {
        *open_per_customer.entry(i.customer_id.as_str()).or_default() += 1;
    }
    let mut counts: Vec<usize> = open_per_customer.into_values().collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    let in_range =
        counts.iter().filter(|&&c| (2..=20).contains(&c)).count() as f64 / counts.len() as f64;
    assert!((4..=15).contains(&median), "median open items {median}");
    assert!(in_range > 0.6, "share with 2-20 open items {in_range:.2}");
    assert!(
        counts.last().copied().unwrap_or(0) >= 100,
        "someone has hundreds: {:?}",
        counts.last()
    );
    let mut amounts: Vec<Decimal> = inv
        .iter()
        .filter(|i| !i.is_credit())
        .map(|i| i.amount)
        .collect();
    amounts.sort();
    let median = amounts[amounts.len() / 2];
    assert!(
        median > Decimal::from(700) && median < Decimal::from(3_000),
        "median amount {median}"
    );
    // The test ledger shows what train payments closed.
    let test: HashMap<&str, &Invoice> =
        w.test.invoices.iter().map(|i| (i.id.as_str(), i)).collect();
    let exact: Vec<&str> = w
        .train
        .cases
        .iter()
        .filter(|(_, c)| c == "exact_single")
        .map(|(p, _)| p.as_str())
        .collect();
    let mut checked = 0;
    for l in w
        .train
        .labels
        .iter()
        .filter(|l| exact.contains(&l.payment_id.as_str()))
    {
        if let Some(i) = test.get(l.invoice_id.as_str()) {
            assert!(
                i.open_amount.is_zero(),
                "{} paid in train but open in test",
                i.id
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn heavy_tailed_worlds_add_key_accounts_to_the_same_customers() {
    let config = SynthConfig::new(3, 300, 600);
    let typical = generate(&config);
    let heavy = generate(&SynthConfig {
        sizes: CustomerSizes::HeavyTailed,
        ..config
    });
    // The key accounts are drawn after the customers: who they are is unchanged.
    assert_eq!(typical.customers, heavy.customers);
    assert_ne!(typical.train.invoices, heavy.train.invoices);
    let largest = |split: &Split| {
        let mut open: HashMap<&str, usize> = HashMap::new();
        for i in split.invoices.iter().filter(|i| !i.open_amount.is_zero()) {
            *open.entry(i.customer_id.as_str()).or_default() += 1;
        }
        open.into_values().max().unwrap_or(0)
    };
    // One key account in a world under 4,000 customers, with 10,000-30,000 usually open.
    assert!(largest(&typical.train) < 3_000);
    let key = largest(&heavy.train);
    assert!((10_000..40_000).contains(&key), "{key}");
    check_invariants(&heavy);
    assert_eq!("heavy-tailed".parse(), Ok(CustomerSizes::HeavyTailed));
    assert!("huge".parse::<CustomerSizes>().is_err());
}

/// Prints the measured figures for docs/synth.md:
/// `cargo test --lib synth::tests::report -- --ignored --nocapture`.
#[test]
#[ignore]
fn report() {
    let seed = std::env::var("SYNTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let w = generate(&SynthConfig::new(seed, 2_000, 20_000));
    println!("{}", describe(&w));
}

pub(crate) fn describe(w: &World) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let all_cases: Vec<&(String, String)> = w.train.cases.iter().chain(&w.test.cases).collect();
    let n = all_cases.len() as f64;
    let _ = writeln!(s, "customers {}", w.customers.len());
    let with_parent = w.customers.iter().filter(|c| c.parent_id.is_some()).count();
    let _ = writeln!(
        s,
        "customers with a parent {:.1}%",
        100.0 * with_parent as f64 / w.customers.len() as f64
    );
    for (name, split) in [("train", &w.train), ("test", &w.test)] {
        let inv = &split.invoices;
        let open = inv.iter().filter(|i| !i.open_amount.is_zero()).count();
        let credits = inv.iter().filter(|i| i.is_credit()).count();
        let partial = inv
            .iter()
            .filter(|i| !i.open_amount.is_zero() && i.open_amount != i.amount)
            .count();
        let _ = writeln!(
            s,
            "{name}: payments {}, labels {}, ledger {} items ({} open, {} closed, {:.1}% credit memos, {:.1}% part-paid)",
            split.payments.len(),
            split.labels.len(),
            inv.len(),
            open,
            inv.len() - open,
            100.0 * credits as f64 / inv.len() as f64,
            100.0 * partial as f64 / inv.len() as f64,
        );
        let b = baseline(w, split, normalize);
        let digits_only = |r: &str| {
            let n = normalize(r);
            let (_, d) = super::numbers::split(&n);
            d.trim_start_matches('0').to_string()
        };
        let b2 = baseline(w, split, digits_only);
        let _ = writeln!(
            s,
            "{name}: baseline touchless {:.1}% (payments {}, auto {}, correct {}, with answer {}); digits-only variant {:.1}%",
            100.0 * b.touchless(),
            b.payments,
            b.auto,
            b.auto_correct,
            b.with_truth,
            100.0 * b2.touchless()
        );
    }
    let mut by_group: Vec<(&str, usize)> = Vec::new();
    for (case, share) in Case::MIX {
        let k = all_cases.iter().filter(|(_, c)| c == case.name()).count();
        let _ = writeln!(
            s,
            "  {:<24} {:>6} {:>6.2}% (target {:.1}%)",
            case.name(),
            k,
            100.0 * k as f64 / n,
            100.0 * share
        );
        match by_group.iter_mut().find(|(g, _)| *g == case.group()) {
            Some(g) => g.1 += k,
            None => by_group.push((case.group(), k)),
        }
    }
    for (g, k) in by_group {
        let _ = writeln!(s, "group {g:<20} {:.1}%", 100.0 * k as f64 / n);
    }
    let payments: Vec<&Payment> = w.train.payments.iter().chain(&w.test.payments).collect();
    let lines: Vec<usize> = payments.iter().map(|p| p.lines.len()).collect();
    let multi = lines.iter().filter(|&&l| l >= 2).count();
    let none = lines.iter().filter(|&&l| l == 0).count();
    let big = lines.iter().filter(|&&l| l > 15).count();
    let max = lines.iter().max().copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "lines: none {:.1}%, 2+ {:.1}%, >15 {:.2}%, max {max}",
        100.0 * none as f64 / n,
        100.0 * multi as f64 / n,
        100.0 * big as f64 / n
    );
    let known: std::collections::HashSet<&str> = w
        .customers
        .iter()
        .flat_map(|c| c.bank_accounts.iter().map(String::as_str))
        .collect();
    let by_account = payments
        .iter()
        .filter(|p| {
            p.payer.account.as_deref().is_some_and(|a| {
                known.contains(a)
                    || a.split_once(':')
                        .is_some_and(|(_, acct)| known.contains(acct))
            })
        })
        .count();
    let _ = writeln!(
        s,
        "payer account on file {:.1}%",
        100.0 * by_account as f64 / n
    );
    for (name, split) in [("train", &w.train), ("test", &w.test)] {
        let ledger: HashMap<&str, &Invoice> =
            split.invoices.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut open_by_customer: HashMap<&str, Vec<Decimal>> = HashMap::new();
        for i in split.invoices.iter().filter(|i| !i.open_amount.is_zero()) {
            open_by_customer
                .entry(i.customer_id.as_str())
                .or_default()
                .push(i.open_amount);
        }
        let mut ages: Vec<i64> = Vec::new();
        let date: HashMap<&str, chrono::NaiveDate> = split
            .payments
            .iter()
            .filter_map(|p| Some((p.payment_id.as_str(), p.payment_date?)))
            .collect();
        for l in &split.labels {
            if let (Some(inv), Some(d)) = (
                ledger.get(l.invoice_id.as_str()),
                date.get(l.payment_id.as_str()),
            ) {
                ages.push((*d - inv.invoice_date).num_days());
            }
        }
        let mut per_customer: Vec<usize> = open_by_customer.values().map(Vec::len).collect();
        per_customer.sort_unstable();
        let share_2_20 = per_customer
            .iter()
            .filter(|&&k| (2..=20).contains(&k))
            .count() as f64
            / per_customer.len().max(1) as f64;
        let _ = writeln!(
            s,
            "{name}: open items per customer: median {}, 2-20 {:.0}%, over 100 {}, max {}",
            per_customer
                .get(per_customer.len() / 2)
                .copied()
                .unwrap_or(0),
            100.0 * share_2_20,
            per_customer.iter().filter(|&&k| k > 100).count(),
            per_customer.last().copied().unwrap_or(0)
        );
        ages.sort_unstable();
        let q = |f: f64| {
            ages.get(((ages.len() as f64 - 1.0) * f) as usize)
                .copied()
                .unwrap_or(0)
        };
        let _ = writeln!(
            s,
            "{name}: days from invoice to payment p10 {} p50 {} p90 {}",
            q(0.1),
            q(0.5),
            q(0.9)
        );
        // How often a payment without references is ambiguous by amount alone.
        for family in ["no_detail_single", "ambiguous_same_amount"] {
            let ids: Vec<&str> = split
                .cases
                .iter()
                .filter(|(_, c)| c == family)
                .map(|(p, _)| p.as_str())
                .collect();
            let mut ambiguous = 0;
            for l in split
                .labels
                .iter()
                .filter(|l| ids.contains(&l.payment_id.as_str()))
            {
                let inv = ledger[l.invoice_id.as_str()];
                let same = open_by_customer
                    .get(inv.customer_id.as_str())
                    .map_or(0, |v| v.iter().filter(|&&a| a == inv.open_amount).count());
                if same > 1 {
                    ambiguous += 1;
                }
            }
            let _ = writeln!(
                s,
                "{name}: {family}: {ambiguous} of {} have another open item of the same amount",
                ids.len()
            );
        }
    }
    s
}

/// Payment ids of `family` in a split, with the payments.
fn of_family(split: &Split, family: Case) -> Vec<&Payment> {
    let ids: std::collections::HashSet<&str> = split
        .cases
        .iter()
        .filter(|(_, c)| c == family.name())
        .map(|(p, _)| p.as_str())
        .collect();
    split
        .payments
        .iter()
        .filter(|p| ids.contains(p.payment_id.as_str()))
        .collect()
}

fn labels_of<'a>(split: &'a Split, payment: &Payment) -> Vec<&'a Label> {
    split
        .labels
        .iter()
        .filter(|l| l.payment_id == payment.payment_id)
        .collect()
}

/// The references a payment quotes, from its lines or else its memo.
fn quoted(p: &Payment) -> Vec<String> {
    let from_lines: Vec<String> = p.lines.iter().filter_map(|l| l.reference.clone()).collect();
    if from_lines.is_empty() {
        p.free_text.clone()
    } else {
        from_lines
    }
}

fn mid_world() -> World {
    generate(&SynthConfig::new(7, 500, 6_000))
}

#[test]
fn duplicates_with_a_twin_quote_a_paid_invoice_while_one_of_its_amount_is_open() {
    let w = mid_world();
    let mut seen = 0;
    for split in [&w.train, &w.test] {
        for p in of_family(split, Case::DuplicateWithTwin) {
            assert!(
                labels_of(split, p).is_empty(),
                "{}: no correct match",
                p.payment_id
            );
            // A memo may quote the digits without the prefix.
            let text = normalize(&quoted(p).join(" "));
            let paid = split
                .invoices
                .iter()
                .find(|i| {
                    i.open_amount.is_zero()
                        && i.amount == p.amount
                        && text.contains(super::numbers::split(&normalize(&i.number)).1)
                })
                .unwrap_or_else(|| panic!("{}: quotes a paid invoice of its amount", p.payment_id));
            let twin = split.invoices.iter().any(|i| {
                i.customer_id == paid.customer_id
                    && i.id != paid.id
                    && i.open_amount == p.amount
                    && Some(i.invoice_date) <= p.payment_date
            });
            assert!(twin, "{}: an open twin of {}", p.payment_id, paid.number);
            seen += 1;
        }
    }
    assert!(seen >= 50, "{seen}");
}

#[test]
fn recurring_amounts_leave_several_open_items_of_the_amount_and_name_the_right_one() {
    let w = mid_world();
    let mut seen = 0;
    for split in [&w.train, &w.test] {
        for p in of_family(split, Case::RecurringAmount) {
            let ls = labels_of(split, p);
            assert_eq!(ls.len(), 1);
            let truth = split
                .invoices
                .iter()
                .find(|i| i.id == ls[0].invoice_id)
                .expect("truth in the ledger");
            let same = split
                .invoices
                .iter()
                .filter(|i| {
                    i.customer_id == truth.customer_id && i.open_amount == truth.open_amount
                })
                .count();
            assert!(
                same >= 3,
                "{}: {same} open items of the amount",
                p.payment_id
            );
            let text = normalize(&quoted(p).join(" "));
            let (_, digits) = super::numbers::split(&truth.number);
            assert!(
                text.contains(digits),
                "{}: names {}",
                p.payment_id,
                truth.number
            );
            seen += 1;
        }
    }
    assert!(seen >= 50, "{seen}");
}

#[test]
fn truncated_memos_are_cut_at_a_field_length_and_the_truth_is_the_whole_list() {
    let w = mid_world();
    let mut seen = 0;
    for split in [&w.train, &w.test] {
        for p in of_family(split, Case::MemoTruncated) {
            assert!(p.lines.is_empty());
            let memo = p.free_text.join(" ");
            assert!(
                super::numbers::MEMO_FIELDS.iter().any(|&f| memo.len() <= f) && memo.len() <= 140,
                "{memo}"
            );
            let ls = labels_of(split, p);
            let listed = ls
                .iter()
                .filter(|l| {
                    split
                        .invoices
                        .iter()
                        .find(|i| i.id == l.invoice_id)
                        .is_some_and(|i| memo.contains(super::numbers::split(&i.number).1))
                })
                .count();
            assert!(
                listed < ls.len(),
                "{}: the memo names {listed} of {} invoices: {memo}",
                p.payment_id,
                ls.len()
            );
            assert!(
                listed >= 1,
                "{}: names the first ones: {memo}",
                p.payment_id
            );
            let total: Decimal = ls.iter().map(|l| l.applied_amount).sum();
            assert_eq!(
                total, p.amount,
                "{}: the truth is the whole payment",
                p.payment_id
            );
            seen += 1;
        }
    }
    assert!(seen >= 50, "{seen}");
}

#[test]
fn another_entitys_numbers_look_like_ours_but_are_none_of_ours() {
    let w = mid_world();
    let (mut seen, mut lookalike) = (0, 0);
    for split in [&w.train, &w.test] {
        let cores: std::collections::HashSet<String> = split
            .invoices
            .iter()
            .map(|i| {
                super::numbers::split(&normalize(&i.number))
                    .1
                    .trim_start_matches('0')
                    .to_string()
            })
            .collect();
        let numbers: std::collections::HashSet<String> = split
            .invoices
            .iter()
            .map(|i| normalize(&i.number))
            .collect();
        for p in of_family(split, Case::OtherEntity) {
            assert!(labels_of(split, p).is_empty());
            for r in p.lines.iter().filter_map(|l| l.reference.as_deref()) {
                assert!(!numbers.contains(&normalize(r)), "{r}");
                let core = super::numbers::split(&normalize(r))
                    .1
                    .trim_start_matches('0')
                    .to_string();
                lookalike += cores.contains(&core) as usize;
            }
            seen += 1;
        }
    }
    assert!(seen >= 50, "{seen}");
    assert!(
        lookalike > seen / 3,
        "{lookalike} of {seen} read as one of ours by their digits"
    );
}

#[test]
fn credit_memos_larger_than_an_invoice_are_netted_against_the_set() {
    let w = mid_world();
    let mut seen = 0;
    for split in [&w.train, &w.test] {
        for p in of_family(split, Case::CreditExceedsInvoice) {
            let ls = labels_of(split, p);
            let credits: Vec<Decimal> = ls
                .iter()
                .filter(|l| l.applied_amount.is_sign_negative())
                .map(|l| -l.applied_amount)
                .collect();
            let invoices: Vec<Decimal> = ls
                .iter()
                .filter(|l| l.applied_amount.is_sign_positive())
                .map(|l| l.applied_amount)
                .collect();
            assert!(!credits.is_empty() && invoices.len() >= 2);
            let biggest = credits.iter().max().copied().unwrap_or_default();
            let smallest = invoices.iter().min().copied().unwrap_or_default();
            assert!(
                biggest > smallest,
                "{}: {biggest} vs {smallest}",
                p.payment_id
            );
            let total: Decimal = ls.iter().map(|l| l.applied_amount).sum();
            assert_eq!(total, p.amount);
            assert!(p.amount > Decimal::ZERO);
            seen += 1;
        }
    }
    assert!(seen >= 40, "{seen}");
}

#[test]
fn the_enterprise_profile_numbers_quotes_and_cuts_otherwise() {
    let standard = mid_world();
    let w = generate(&SynthConfig {
        profile: WorldProfile::Enterprise,
        ..SynthConfig::new(7, 500, 6_000)
    });
    assert_eq!(
        "enterprise".parse::<WorldProfile>(),
        Ok(WorldProfile::Enterprise)
    );
    assert!("other".parse::<WorldProfile>().is_err());
    let sample = &w
        .train
        .invoices
        .iter()
        .find(|i| !i.is_credit())
        .expect("invoices")
        .number;
    let std_sample = &standard.train.invoices[0].number;
    assert_ne!(
        super::numbers::split(sample).0,
        super::numbers::split(std_sample).0
    );
    for split in [&w.train, &w.test] {
        for p in &split.payments {
            for m in &p.free_text {
                assert!(m.len() <= 80, "{m}");
            }
        }
    }
    // Some customers quote the digits only on otherwise exact lines.
    let by_id: HashMap<&str, &Invoice> =
        w.test.invoices.iter().map(|i| (i.id.as_str(), i)).collect();
    let (mut exact, mut digits_only) = (0, 0);
    for p in of_family(&w.test, Case::ExactSingle) {
        let (Some(l), Some(r)) = (labels_of(&w.test, p).first().copied(), p.lines.first()) else {
            continue;
        };
        let n = &by_id[l.invoice_id.as_str()].number;
        match r.reference.as_deref() {
            Some(r) if r == n => exact += 1,
            Some(r) if r == super::numbers::split(n).1 && r != n => digits_only += 1,
            _ => {}
        }
    }
    assert!(exact > 0, "most quote as printed");
    assert!(
        digits_only > 0 || super::numbers::split(sample).0.is_empty(),
        "{digits_only} quote digits only ({sample})"
    );
}
