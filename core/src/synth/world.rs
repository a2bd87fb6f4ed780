//! The simulation state: customers and their habits, the ledger as it evolves, the split
//! boundary, and the per-split snapshots.

use super::names::{self, NameMaker};
use super::numbers::{BRANCH_CODES, PoScheme, Scheme};
use super::{Case, CustomerSizes, Split, SynthConfig, World, WorldProfile, pick};
use crate::domain::{Currency, Customer, Invoice, Label, Terms};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use rand::distr::weighted::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_distr::{LogNormal, Normal};
use rust_decimal::Decimal;

/// How long an invoice typically stays open before it is paid (days). B2B days-to-pay on
/// NET 30 terms run around 35-45 days; with it, the customers' usual open-item counts and the
/// number of payments fix how many days the payments must span (Little's law).
const TURNOVER_DAYS: f64 = 40.0;
/// Invoices settled per payment, on average over the mix (measured, about 2.5).
const INVOICES_PER_PAYMENT: f64 = 2.5;
/// How far back a closed item stays in a split's ledger.
const CLOSED_HORIZON_DAYS: u64 = 120;

/// A customer's habits, fixed for the world.
pub(crate) struct Profile {
    /// How many open items the customer usually has.
    pub(crate) k: usize,
    pub(crate) terms: Terms,
    /// Log of the customer's median invoice amount.
    pub(crate) amount_mu: f64,
    /// Subscription amounts billed again and again; empty for most customers.
    pub(crate) plans: Vec<Decimal>,
    pub(crate) po: Option<PoScheme>,
    pub(crate) blanket_po: bool,
    po_seq: u64,
    last_po: Option<String>,
    /// Open invoices that a payment of this split may still settle, oldest first.
    pub(crate) pool: Vec<u32>,
    /// Invoices part-paid in this split; back in the pool at the next split.
    pub(crate) held: Vec<u32>,
    /// Open credit memos.
    pub(crate) credits: Vec<u32>,
    /// Closed invoices, for duplicate payments.
    pub(crate) closed: Vec<u32>,
    pub(crate) parent: Option<u32>,
    pub(crate) children: Vec<u32>,
    /// Quotes invoice numbers as its AP system keeps them: the digits only, without the
    /// scheme's branch code, prefix, check digit or suffix (a reference habit of some profiles).
    pub(crate) quotes_core: bool,
}

/// A ledger item as the simulation tracks it.
pub(crate) struct Inv {
    pub(crate) customer: u32,
    pub(crate) number: String,
    /// The sequence number behind an invoice's number (0 for a credit memo).
    pub(crate) seq: u64,
    pub(crate) po: Option<String>,
    pub(crate) date: NaiveDate,
    pub(crate) terms: Terms,
    pub(crate) amount: Decimal,
    /// Open now.
    pub(crate) open: Decimal,
    /// Open at the start of the train split, for items in the train ledger.
    open_train: Decimal,
    /// Open at the start of the test split.
    open_test: Decimal,
    /// Billed before the split boundary.
    in_train: bool,
    pub(crate) closed_on: Option<NaiveDate>,
    /// 0: closed before the world began; 1: by a train payment; 2: by a test payment.
    pub(crate) closed_in: u8,
    /// Disputed or forgotten: stays open, ordinary payments pass it by.
    pub(crate) stuck: bool,
}

impl Inv {
    pub(crate) fn is_credit(&self) -> bool {
        self.amount.is_sign_negative()
    }
}

/// Which customers a family may draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    /// Single-invoice payments: frequency grows slower than the ledger.
    Single,
    /// Multi-invoice payments: large customers pay in large batches.
    Multi,
    /// Customers whose terms give an early-payment discount.
    Discount,
    /// Customers that quote purchase orders.
    Po,
    /// Subsidiaries (customers with a parent).
    Child,
}

struct Chooser {
    ids: Vec<u32>,
    dist: Option<WeightedIndex<f64>>,
}

impl Chooser {
    fn new(ids: Vec<u32>, weight: impl Fn(u32) -> f64) -> Self {
        let w: Vec<f64> = ids.iter().map(|&i| weight(i)).collect();
        let dist = WeightedIndex::new(&w).ok();
        Chooser { ids, dist }
    }

    fn choose(&self, rng: &mut ChaCha8Rng) -> Option<u32> {
        let d = self.dist.as_ref()?;
        self.ids.get(d.sample(rng)).copied()
    }
}

pub(crate) struct Sim {
    pub(crate) rng: ChaCha8Rng,
    pub(crate) profile: WorldProfile,
    pub(crate) scheme: Scheme,
    width: usize,
    seq: u64,
    cm_seq: u64,
    /// Invoice numbers skipped (voided, another division's): quoted by payments that match
    /// nothing, so "no such invoice" looks like a real number, not an out-of-range one.
    gaps: Vec<u64>,
    /// Off while billing a run that a memo will quote as a range.
    pub(crate) allow_gaps: bool,
    pub(crate) customers: Vec<Customer>,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) services: Vec<(String, Vec<String>)>,
    routings: Vec<String>,
    names: NameMaker,
    pub(crate) inv: Vec<Inv>,
    t0: NaiveDate,
    /// 1 while generating the train split, 2 for the test split.
    pub(crate) split: u8,
    pub(crate) split_start: NaiveDate,
    choosers: Vec<(Table, Chooser)>,
}

/// Money from a float, to the cent.
pub(crate) fn cents(x: f64) -> Decimal {
    let c = (x * 100.0).round();
    Decimal::new(c.clamp(-1e15, 1e15) as i64, 2)
}

/// `f` of an amount, to the cent.
pub(crate) fn frac(amount: Decimal, f: f64) -> Decimal {
    (amount * Decimal::new((f * 10_000.0).round() as i64, 4)).round_dp(2)
}

pub(crate) fn days_before(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).unwrap_or(d)
}

fn days_after(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

fn digits(n: u64) -> usize {
    n.to_string().len()
}

impl Sim {
    fn new(
        seed: u64,
        profile: WorldProfile,
        customers: usize,
        sizes: CustomerSizes,
        scale: f64,
        expected_extra: u64,
    ) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scheme = Scheme::choose(&mut rng, profile.schemes());
        let year = rng.random_range(2023..=2026);
        let month = rng.random_range(1..=12);
        let mut t0 = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
        while t0.weekday() != Weekday::Mon {
            t0 = days_after(t0, 1);
        }
        let seq = rng.random_range(10_000..90_000);
        let cm_seq = rng.random_range(1_000..9_000);
        let routings = names::routing_numbers(&mut rng, 40);
        let mut sim = Sim {
            rng,
            profile,
            scheme,
            width: 7,
            seq,
            cm_seq,
            gaps: Vec::new(),
            allow_gaps: true,
            customers: Vec::new(),
            profiles: Vec::new(),
            services: Vec::new(),
            routings,
            names: NameMaker::new(),
            inv: Vec::new(),
            t0,
            split: 1,
            split_start: t0,
            choosers: Vec::new(),
        };
        sim.make_customers(customers, sizes, scale);
        let expected: u64 =
            sim.profiles.iter().map(|p| p.k as u64 * 2).sum::<u64>() + expected_extra + 1_000;
        sim.width = 7.max(digits(seq + expected) + 1);
        sim.make_services();
        sim.make_choosers();
        sim.initial_ledger();
        sim
    }

    pub(crate) fn run(config: &SynthConfig) -> World {
        let n = config.payments;
        let mut sim = Sim::new(
            config.seed,
            config.profile,
            config.customers,
            config.sizes,
            1.0,
            n as u64 * 4,
        );
        let tf = if config.train_fraction.is_finite() {
            config.train_fraction.clamp(0.0, 1.0)
        } else {
            0.7
        };
        let n_train = ((n as f64) * tf).round() as usize;
        let mut train = Split::default();
        let mut test = Split::default();
        if sim.customers.is_empty() {
            train.invoices = sim.ledger(1);
            test.invoices = sim.ledger(2);
            return World {
                customers: sim.customers,
                train,
                test,
            };
        }
        let open_items: f64 = sim.profiles.iter().map(|p| p.k as f64).sum();
        let period =
            (TURNOVER_DAYS * n as f64 * INVOICES_PER_PAYMENT / open_items.max(1.0)).round();
        let period = (period as u64).clamp(14, 365);
        let dates = sim.payment_dates(n, period);
        let families = sim.families(n);
        for (i, (date, family)) in dates.into_iter().zip(families).enumerate() {
            if i == n_train {
                sim.cross_boundary(date);
            }
            let (payment, labels, case) = sim.payment(i, date, family);
            let split = if i < n_train { &mut train } else { &mut test };
            split
                .cases
                .push((payment.payment_id.clone(), case.name().to_string()));
            split.labels.extend(labels);
            split.payments.push(payment);
        }
        if n_train >= n {
            let end = days_after(sim.t0, period);
            sim.cross_boundary(end);
        }
        train.invoices = sim.ledger(1);
        test.invoices = sim.ledger(2);
        World {
            customers: sim.customers,
            train,
            test,
        }
    }

    // ----- customers -------------------------------------------------------------------------

    fn make_customers(&mut self, n: usize, sizes: CustomerSizes, scale: f64) {
        let rng = &mut self.rng;
        // Families: about 10% of customers are subsidiaries of another customer.
        let mut parent_of: Vec<Option<u32>> = vec![None; n];
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        if n >= 4 {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.shuffle(rng);
            let target_children = (n as f64 * 0.10).round() as usize;
            let mut next = 0;
            let mut placed = 0;
            while placed < target_children && next + 1 < order.len() {
                let parent = order[next];
                next += 1;
                let size = 1 + (rng.random::<f64>().powi(2) * 7.0) as usize;
                for _ in 0..size {
                    if placed >= target_children || next >= order.len() {
                        break;
                    }
                    let child = order[next];
                    next += 1;
                    parent_of[child as usize] = Some(parent);
                    children[parent as usize].push(child);
                    placed += 1;
                }
            }
        }
        let k_dist = LogNormal::new((8.0f64).ln(), 1.0).ok();
        let mu_shift = Normal::new(0.0, 0.8).ok();
        let mut stems: Vec<Option<&'static str>> = vec![None; n];
        for i in 0..n {
            let stem = match parent_of[i] {
                // Most subsidiaries carry the parent's name; acquired ones keep their own.
                Some(p) if rng.random_bool(0.8) => {
                    let p = p as usize;
                    if stems[p].is_none() {
                        stems[p] = Some(self.names.stem(rng));
                    }
                    stems[p]
                }
                _ => None,
            };
            if stems[i].is_none() {
                stems[i] = stem.or_else(|| Some(self.names.stem(rng)));
            }
        }
        for i in 0..n {
            let stem = stems[i].unwrap_or("Acme");
            let name = if !children[i].is_empty() && rng.random_bool(0.5) {
                self.names.holding(rng, stem)
            } else {
                self.names.company(rng, stem)
            };
            let n_accounts = match rng.random_range(0..100) {
                0..70 => 1,
                70..92 => 2,
                _ => 3,
            };
            // A few ledgers hold a bare account number without the routing number.
            let bare = rng.random_bool(0.05);
            let bank_accounts = (0..n_accounts)
                .map(|_| names::account(rng, &self.routings, bare))
                .collect();
            self.customers.push(Customer {
                id: format!("C{:06}", i + 1),
                name,
                parent_id: parent_of[i].map(|p| format!("C{:06}", p + 1)),
                bank_accounts,
            });
            let k0 = k_dist.map_or(8.0, |d| d.sample(rng));
            let k = ((k0 * scale).round() as usize).clamp(1, 3_000);
            let terms = match rng.random_range(0..100) {
                0..60 => "NET 30",
                60..80 => "2/10 NET 30",
                80..88 => "NET 45",
                88..95 => "NET 60",
                95..97 => "1/10 NET 30",
                _ => "DUE ON RECEIPT",
            };
            let amount_mu = (1500.0f64).ln() + mu_shift.map_or(0.0, |d| d.sample(rng));
            let plans = if rng.random_bool(0.12) {
                let count = if rng.random_bool(0.7) { 1 } else { 2 };
                (0..count)
                    .map(|_| {
                        let x = (amount_mu + rng.random_range(-0.7..0.5)).exp();
                        // Plans are priced in round figures.
                        let step = if x > 5_000.0 {
                            100.0
                        } else if x > 500.0 {
                            50.0
                        } else {
                            5.0
                        };
                        cents(
                            ((x / step).round().max(1.0) * step)
                                - if rng.random_bool(0.3) { 1.0 } else { 0.0 },
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let po = rng
                .random_bool(0.6)
                .then(|| PoScheme::choose(rng, &self.customers[i].name));
            let blanket_po = po.is_some() && rng.random_bool(0.2);
            // Drawn only where the profile has the habit, so standard worlds stay as they were.
            let quotes_core = self.profile.quotes_core_share() > 0.0
                && rng.random_bool(self.profile.quotes_core_share());
            self.profiles.push(Profile {
                k,
                terms: Terms::parse(terms).unwrap_or_default(),
                amount_mu,
                plans,
                po,
                blanket_po,
                po_seq: rng.random_range(1_000..900_000),
                last_po: None,
                pool: Vec::new(),
                held: Vec::new(),
                credits: Vec::new(),
                closed: Vec::new(),
                parent: parent_of[i],
                children: std::mem::take(&mut children[i]),
                quotes_core,
            });
        }
        if sizes == CustomerSizes::HeavyTailed && n > 0 {
            // Key accounts: drawn after everyone else so that the rest of the world is drawn
            // as in a typical one of the same seed up to here.
            let key_accounts = (n / 4_000).max(1);
            let (low, high) = (10_000f64, 30_000f64);
            for c in rand::seq::index::sample(rng, n, key_accounts) {
                let k = (low.ln() + rng.random::<f64>() * (high / low).ln()).exp();
                self.profiles[c].k = ((k * scale).round() as usize).max(1);
            }
        }
    }

    fn make_services(&mut self) {
        for name in names::SERVICES {
            let n = 1 + pick(&mut self.rng, 2);
            let accounts = (0..n)
                .map(|_| names::account(&mut self.rng, &self.routings, false))
                .collect();
            self.services.push((name.to_string(), accounts));
        }
    }

    fn make_choosers(&mut self) {
        let p = &self.profiles;
        let all: Vec<u32> = (0..p.len() as u32).collect();
        let k = |i: u32| p[i as usize].k as f64;
        let filter = |f: &dyn Fn(&Profile) -> bool| -> Vec<u32> {
            all.iter().copied().filter(|&i| f(&p[i as usize])).collect()
        };
        self.choosers = vec![
            (Table::Single, Chooser::new(all.clone(), |i| k(i).powf(0.6))),
            (Table::Multi, Chooser::new(all.clone(), k)),
            (
                Table::Discount,
                Chooser::new(filter(&|x| !x.terms.discount_rate.is_zero()), |i| {
                    k(i).powf(0.6)
                }),
            ),
            (
                Table::Po,
                Chooser::new(filter(&|x| x.po.is_some()), |i| k(i).powf(0.6)),
            ),
            (
                Table::Child,
                Chooser::new(filter(&|x| x.parent.is_some()), |i| k(i).powf(0.6)),
            ),
        ];
    }

    pub(crate) fn choose(&mut self, table: Table) -> Option<u32> {
        let chooser = &self.choosers.iter().find(|(t, _)| *t == table)?.1;
        chooser.choose(&mut self.rng)
    }

    // ----- invoices ----------------------------------------------------------------------------

    /// An invoice amount from the customer's habits.
    pub(crate) fn draw_amount(&mut self, c: u32) -> Decimal {
        let p = &self.profiles[c as usize];
        if !p.plans.is_empty() && self.rng.random_bool(0.8) {
            return p.plans[pick(&mut self.rng, p.plans.len())];
        }
        let mu = p.amount_mu;
        let x = LogNormal::new(mu, 1.0).map_or(1500.0, |d| d.sample(&mut self.rng));
        let x = x.clamp(5.0, 500_000.0);
        // A quarter of invoices (services, flat fees) are in whole dollars.
        if self.rng.random_bool(0.25) {
            cents(x.round())
        } else {
            cents(x)
        }
    }

    fn draw_credit(&mut self, c: u32) -> Decimal {
        let mu = self.profiles[c as usize].amount_mu - 1.2;
        let x = LogNormal::new(mu, 0.9).map_or(200.0, |d| d.sample(&mut self.rng));
        -cents(x.clamp(5.0, 50_000.0))
    }

    /// The code of the branch that bills customer `c` (for branch-coded numbering).
    pub(crate) fn branch(c: u32) -> &'static str {
        BRANCH_CODES[(c as usize * 7 + 3) % BRANCH_CODES.len()]
    }

    fn next_number(&mut self, c: u32, date: NaiveDate, credit: bool) -> (String, u64) {
        if credit {
            self.cm_seq += 1;
            let n = self
                .scheme
                .credit_memo(self.cm_seq, date.year(), Sim::branch(c));
            return (n, 0);
        }
        // Voided and other-division numbers leave gaps in the sequence.
        if self.allow_gaps && self.rng.random_bool(0.015) {
            self.seq += 1;
            self.gaps.push(self.seq);
        }
        self.seq += 1;
        let n = self
            .scheme
            .invoice(self.seq, date.year(), self.width, Sim::branch(c));
        (n, self.seq)
    }

    /// A number in the world's scheme that no invoice has or will have, as customer `c`
    /// would see it.
    pub(crate) fn unused_number(&mut self, c: u32, date: NaiveDate) -> String {
        let seq = if !self.gaps.is_empty() && self.rng.random_bool(0.7) {
            let i = pick(&mut self.rng, self.gaps.len());
            self.gaps.swap_remove(i)
        } else {
            self.seq += 1;
            self.seq
        };
        self.scheme
            .invoice(seq, date.year(), self.width, Sim::branch(c))
    }

    /// How many digits the world's invoice numbers have in their main run.
    pub(crate) fn number_digits(&self) -> usize {
        let n = self
            .scheme
            .invoice(self.seq.max(1), 2026, self.width, Sim::branch(0));
        super::numbers::parts(&n).1.len()
    }

    /// A number of a sister company's ledger (another company code), which this ledger does
    /// not hold, whose digits are those of invoice sequence `seq` of ours.
    pub(crate) fn foreign_number(&self, c: u32, seq: u64, date: NaiveDate) -> String {
        self.scheme
            .foreign(seq, date.year(), self.width, Sim::branch(c))
    }

    fn next_po(&mut self, c: u32) -> Option<String> {
        let p = &mut self.profiles[c as usize];
        let scheme = p.po.as_ref()?;
        // Not every order carries a PO even for customers that use them.
        if !self.rng.random_bool(0.85) {
            return None;
        }
        if p.blanket_po && p.last_po.is_some() && self.rng.random_bool(0.75) {
            return p.last_po.clone();
        }
        p.po_seq += 1 + pick(&mut self.rng, 3) as u64;
        let po = scheme.format(p.po_seq);
        p.last_po = Some(po.clone());
        Some(po)
    }

    /// Bills a new item and returns its index. It is not yet in any pool.
    pub(crate) fn issue(&mut self, c: u32, date: NaiveDate, amount: Decimal) -> u32 {
        let credit = amount.is_sign_negative();
        let (number, seq) = self.next_number(c, date, credit);
        let po = if credit { None } else { self.next_po(c) };
        let mut terms = self.profiles[c as usize].terms;
        if !credit && self.rng.random_bool(0.05) {
            // One-off deals carry other terms.
            terms = Terms::parse(["NET 30", "NET 45", "NET 15"][pick(&mut self.rng, 3)])
                .unwrap_or_default();
        }
        let idx = self.inv.len() as u32;
        self.inv.push(Inv {
            customer: c,
            number,
            seq,
            po,
            date,
            terms,
            amount,
            open: amount,
            open_train: amount,
            open_test: amount,
            in_train: self.split == 1,
            closed_on: None,
            closed_in: 0,
            stuck: false,
        });
        idx
    }

    /// Puts an open item where payments can find it: the pool, or the credit memos.
    pub(crate) fn make_available(&mut self, i: u32) {
        let inv = &self.inv[i as usize];
        let c = inv.customer as usize;
        let key = (inv.date, i);
        if inv.is_credit() {
            self.profiles[c].credits.push(i);
            return;
        }
        let pool = &self.profiles[c].pool;
        let at = pool.partition_point(|&j| (self.inv[j as usize].date, j) < key);
        self.profiles[c].pool.insert(at, i);
    }

    /// The ledger as the world starts: each customer's open items and recent history.
    fn initial_ledger(&mut self) {
        struct Spec {
            c: u32,
            date: NaiveDate,
            amount: Decimal,
            open: Decimal,
            closed_on: Option<NaiveDate>,
            stuck: bool,
        }
        let t0 = self.t0;
        let mut specs = Vec::new();
        for c in 0..self.profiles.len() as u32 {
            let k = self.profiles[c as usize].k;
            for _ in 0..k {
                // Mostly current and recently due; a tail of long-overdue items.
                let old = self.rng.random_bool(0.12);
                let age = if old {
                    self.rng.random_range(60..300)
                } else {
                    self.rng.random_range(1..60)
                };
                let amount = self.draw_amount(c);
                let stuck = self.rng.random_bool(if old { 0.35 } else { 0.03 });
                let open = if self.rng.random_bool(0.04) {
                    let f = self.rng.random_range(0.2..0.8);
                    frac(amount, f).max(Decimal::new(1, 2))
                } else {
                    amount
                };
                specs.push(Spec {
                    c,
                    date: days_before(t0, age),
                    amount,
                    open,
                    closed_on: None,
                    stuck,
                });
                if self.rng.random_bool(0.03) {
                    let amount = self.draw_credit(c);
                    let age = self.rng.random_range(1..120);
                    specs.push(Spec {
                        c,
                        date: days_before(t0, age),
                        amount,
                        open: amount,
                        closed_on: None,
                        stuck: false,
                    });
                }
            }
            // Recently closed items, so duplicate payments of paid invoices can be recognised.
            let history = ((k as f64) * 0.8).round().max(1.0) as usize;
            for _ in 0..history {
                let age = self.rng.random_range(30..240);
                let date = days_before(t0, age);
                let paid_after = self.rng.random_range(10..70).min(age - 1);
                let amount = self.draw_amount(c);
                specs.push(Spec {
                    c,
                    date,
                    amount,
                    open: Decimal::new(0, 2),
                    closed_on: Some(days_after(date, paid_after)),
                    stuck: false,
                });
            }
        }
        // Numbers follow billing order, and one customer's same-day invoices run consecutively.
        specs.sort_by_key(|s| (s.date, s.c));
        for s in specs {
            let i = self.issue(s.c, s.date, s.amount);
            let inv = &mut self.inv[i as usize];
            inv.open = s.open;
            inv.open_train = s.open;
            inv.open_test = s.open;
            inv.closed_on = s.closed_on;
            inv.stuck = s.stuck;
            if s.closed_on.is_some() {
                self.profiles[s.c as usize].closed.push(i);
            } else {
                self.make_available(i);
            }
        }
    }

    /// Bills new invoices after a payment so the customer's open items stay near their usual
    /// count; one billing run, so their numbers are consecutive.
    pub(crate) fn replenish(&mut self, c: u32, date: NaiveDate) {
        let p = &self.profiles[c as usize];
        let have = p.pool.len() + p.held.len();
        if have >= p.k {
            return;
        }
        let deficit = p.k - have;
        let billed = days_before(date, self.rng.random_range(0..20));
        for _ in 0..deficit {
            let amount = self.draw_amount(c);
            let i = self.issue(c, billed, amount);
            self.make_available(i);
            if self.rng.random_bool(0.03) {
                let amount = self.draw_credit(c);
                let i = self.issue(c, billed, amount);
                self.make_available(i);
            }
        }
    }

    // ----- time and families -------------------------------------------------------------------

    fn payment_dates(&mut self, n: usize, period: u64) -> Vec<NaiveDate> {
        let business: Vec<NaiveDate> = (0..period)
            .map(|d| days_after(self.t0, d))
            .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
            .collect();
        let mut idx: Vec<usize> = (0..n)
            .map(|_| pick(&mut self.rng, business.len()))
            .collect();
        idx.sort_unstable();
        idx.into_iter()
            .map(|i| business.get(i).copied().unwrap_or(self.t0))
            .collect()
    }

    /// Exactly the mix's share of each family (largest remainders), in random order.
    fn families(&mut self, n: usize) -> Vec<Case> {
        let mut counts: Vec<(Case, usize, f64)> = Case::MIX
            .iter()
            .map(|&(c, share)| {
                let exact = share * n as f64;
                (c, exact.floor() as usize, exact - exact.floor())
            })
            .collect();
        let assigned: usize = counts.iter().map(|c| c.1).sum();
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|&a, &b| counts[b].2.total_cmp(&counts[a].2).then(a.cmp(&b)));
        for &i in order.iter().take(n.saturating_sub(assigned)) {
            counts[i].1 += 1;
        }
        let mut out: Vec<Case> = counts
            .iter()
            .flat_map(|&(c, k, _)| std::iter::repeat_n(c, k))
            .collect();
        out.shuffle(&mut self.rng);
        out
    }

    fn cross_boundary(&mut self, start: NaiveDate) {
        for inv in &mut self.inv {
            if inv.in_train {
                inv.open_test = inv.open;
            }
        }
        for c in 0..self.profiles.len() {
            let held = std::mem::take(&mut self.profiles[c].held);
            for i in held {
                self.make_available(i);
            }
        }
        self.split = 2;
        self.split_start = start;
    }

    /// Whether item `i` is closed in the ledger of the current split, recently enough to be
    /// listed there: what a duplicate payment can quote.
    pub(crate) fn closed_in_ledger(&self, i: u32) -> bool {
        let inv = &self.inv[i as usize];
        let horizon = days_before(self.split_start, CLOSED_HORIZON_DAYS);
        inv.closed_in < self.split && inv.closed_on.is_some_and(|d| d >= horizon)
    }

    /// The ledger of split 1 (train) or 2 (test).
    fn ledger(&self, split: u8) -> Vec<Invoice> {
        let start = if split == 1 {
            self.t0
        } else {
            self.split_start
        };
        let horizon = days_before(start, CLOSED_HORIZON_DAYS);
        let mut idx: Vec<u32> = (0..self.inv.len() as u32)
            .filter(|&i| {
                let inv = &self.inv[i as usize];
                let open = if split == 1 {
                    inv.open_train
                } else {
                    inv.open_test
                };
                if split == 1 && !inv.in_train {
                    return false;
                }
                if !open.is_zero() {
                    return true;
                }
                inv.closed_in < split && inv.closed_on.is_some_and(|d| d >= horizon)
            })
            .collect();
        // AR exports list by customer, then date.
        idx.sort_unstable_by_key(|&i| {
            let inv = &self.inv[i as usize];
            (inv.customer, inv.date, i)
        });
        idx.into_iter()
            .map(|i| {
                let inv = &self.inv[i as usize];
                Invoice {
                    id: invoice_id(i),
                    customer_id: self.customers[inv.customer as usize].id.clone(),
                    number: inv.number.clone(),
                    po_number: inv.po.clone(),
                    invoice_date: inv.date,
                    due_date: days_after(inv.date, inv.terms.net_days as u64),
                    currency: Currency::USD,
                    amount: inv.amount,
                    open_amount: if split == 1 {
                        inv.open_train
                    } else {
                        inv.open_test
                    },
                    terms: inv.terms,
                }
            })
            .collect()
    }

    /// Records a payment's effect on the ledger.
    pub(crate) fn settle(&mut self, i: u32, applied: Decimal, close: bool, date: NaiveDate) {
        let split = self.split;
        let inv = &mut self.inv[i as usize];
        let c = inv.customer as usize;
        if close {
            // Scale 2, so a closed item reads `0.00` in the files like every other amount.
            inv.open = Decimal::new(0, 2);
            inv.closed_on = Some(date);
            inv.closed_in = split;
            self.profiles[c].closed.push(i);
        } else {
            inv.open -= applied;
            if inv.open.is_zero() {
                inv.closed_on = Some(date);
                inv.closed_in = split;
                self.profiles[c].closed.push(i);
            } else {
                self.profiles[c].held.push(i);
            }
        }
    }

    pub(crate) fn label(&self, payment_id: &str, i: u32, applied: Decimal) -> Label {
        Label {
            payment_id: payment_id.to_string(),
            invoice_id: invoice_id(i),
            applied_amount: applied,
        }
    }

    pub(crate) fn account_of(&mut self, c: u32) -> Option<String> {
        let a = &self.customers[c as usize].bank_accounts;
        let i = pick(&mut self.rng, a.len());
        let acct = a.get(i).cloned()?;
        // A bare account on file still arrives with its routing number from the bank.
        if acct.contains(':') {
            Some(acct)
        } else {
            let r = self
                .routings
                .get(pick(&mut self.rng, self.routings.len()))
                .cloned()
                .unwrap_or_default();
            Some(format!("{r}:{acct}"))
        }
    }

    pub(crate) fn new_account(&mut self) -> String {
        names::account(&mut self.rng, &self.routings, false)
    }

    pub(crate) fn stranger_name(&mut self) -> String {
        let stem = self.names.stem(&mut self.rng);
        let name = self.names.company(&mut self.rng, stem);
        names::bank_name(&name)
    }

    pub(crate) fn payment_id(i: usize) -> String {
        format!("P{:08}", i + 1)
    }
}

pub(crate) fn invoice_id(i: u32) -> String {
    format!("I{:08}", i + 1)
}
