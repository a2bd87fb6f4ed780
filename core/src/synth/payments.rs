//! The case families: how each kind of payment is built from the ledger, and its truth.

use super::names;
use super::numbers::{self, memo_generic};
use super::world::{Sim, Table, cents, days_before, frac};
use super::{Case, pick};
use crate::domain::{Adjustment, Currency, Direction, Label, Payer, Payment, RemittanceLine};
use crate::text::references::normalize;
use chrono::NaiveDate;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use rust_decimal::Decimal;

/// Who sent the money, relative to the customer whose invoices it pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayerMode {
    /// From one of the customer's known accounts.
    Account,
    /// The name only, spelled some other way; the account is missing or new.
    Name,
    Parent,
    Service,
    Sister,
    Unknown,
}

/// What happens to one invoice number on its way back in a remittance line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Noise {
    Exact,
    CaseSpacing,
    Typo,
    Ocr,
    Prefix,
    Zeros,
    Po,
    Missing,
}

/// A payment under construction.
struct Draft {
    /// The customer whose invoices it pays.
    c: u32,
    payer: PayerMode,
    lines: Vec<RemittanceLine>,
    memo: Option<String>,
    amount: Decimal,
    /// Cash applied per invoice: the truth.
    labels: Vec<(u32, Decimal)>,
    /// Ledger effect per invoice: applied amount and whether the item closes.
    settle: Vec<(u32, Decimal, bool)>,
}

const ADJUSTMENT_CODES: &[&str] = &[
    "SHORT", "DAMAGE", "PRICE", "PROMO", "FREIGHT", "RETURN", "COOP", "LATE", "TAX", "CS",
];
const WIRE_MEMOS: &[&str] = &[
    "FEDWIRE CREDIT",
    "INCOMING WIRE",
    "WIRE TRF",
    "INTL WIRE IN",
];

impl Sim {
    /// Builds payment `i` of the world, of family `family` where the ledger allows it (else a
    /// plain one-invoice payment, and the case says so), and applies it to the ledger.
    pub(crate) fn payment(
        &mut self,
        i: usize,
        date: NaiveDate,
        family: Case,
    ) -> (Payment, Vec<Label>, Case) {
        let (draft, case) = match self.build(family, date) {
            Some(d) => (d, family),
            None => (self.exact(Table::Single, 1, date), Case::ExactSingle),
        };
        let id = Sim::payment_id(i);
        let (payer, payer_memo) = self.render_payer(draft.c, draft.payer);
        let memo = match (draft.memo, payer_memo) {
            (Some(m), _) | (None, Some(m)) => Some(m),
            (None, None) => memo_generic(&mut self.rng),
        };
        // Where every payment comes through one channel with a short memo field, it cuts them all.
        let memo = match self.profile.memo_field() {
            Some(limit) => memo.map(|m| numbers::cut(&m, limit)),
            None => memo,
        };
        let payment = Payment {
            payment_id: id.clone(),
            format: "csv".to_string(),
            direction: Direction::Credit,
            payment_date: Some(date),
            amount: draft.amount,
            currency: Currency::USD,
            payer,
            lines: draft.lines,
            free_text: memo.into_iter().collect(),
            warnings: Vec::new(),
            returned: None,
        };
        let labels = draft
            .labels
            .iter()
            .map(|&(inv, a)| self.label(&id, inv, a))
            .collect();
        for (inv, applied, close) in draft.settle {
            self.settle(inv, applied, close, date);
        }
        self.replenish(draft.c, date);
        (payment, labels, case)
    }

    fn build(&mut self, family: Case, date: NaiveDate) -> Option<Draft> {
        use Case::*;
        let d = match family {
            ExactSingle => self.exact(Table::Single, 1, date),
            ExactMulti => {
                let m = self.m_multi();
                self.exact(Table::Multi, m, date)
            }
            RefCaseSpacing => self.noisy(Table::Single, Noise::CaseSpacing, 0.3, date)?,
            PayerNameVariant => self.paid_by(Table::Single, PayerMode::Name, date)?,
            PayerParent => self.paid_by(Table::Child, PayerMode::Parent, date)?,
            PayerService => self.paid_by(Table::Single, PayerMode::Service, date)?,
            PayerSister => self.paid_by(Table::Child, PayerMode::Sister, date)?,
            PayerUnknown => self.paid_by(Table::Single, PayerMode::Unknown, date)?,
            CreditMemoLine => self.credit_memo(true, date)?,
            CreditMemoNetted => self.credit_memo(false, date)?,
            RefTypo => self.noisy(Table::Single, Noise::Typo, 0.4, date)?,
            RefOcr => self.noisy(Table::Single, Noise::Ocr, 0.4, date)?,
            RefPrefix => self.noisy(Table::Single, Noise::Prefix, 0.4, date)?,
            RefLeadingZeros => self.noisy(Table::Single, Noise::Zeros, 0.4, date)?,
            RefPoNumber => self.noisy(Table::Po, Noise::Po, 0.4, date)?,
            RefMissing => self.noisy(Table::Multi, Noise::Missing, 1.0, date)?,
            MemoSingle => self.memo_refs(1, false, date)?,
            MemoList => {
                let m = self.rng.random_range(2..=6);
                self.memo_refs(m, false, date)?
            }
            MemoRange => {
                let m = self.rng.random_range(2..=6);
                self.memo_refs(m, true, date)?
            }
            NoDetailSingle => self.no_detail(1, date)?,
            NoDetailConsolidated => {
                let m = self.rng.random_range(2..=6);
                self.no_detail(m, date)?
            }
            DiscountStated => self.discount(true, Noise::Exact, date)?,
            DiscountUnstated => self.discount(false, Noise::Exact, date)?,
            ShortPayCoded => self.short_pay(true, Noise::Exact, date)?,
            ShortPayUncoded => self.short_pay(false, Noise::Exact, date)?,
            PartialPayment => self.partial(Noise::Exact, date)?,
            BankFee => self.bank_fee(date)?,
            Overpayment => self.overpayment(date)?,
            Compound => self.compound(date)?,
            NoOpenInvoice => self.no_open_invoice(date)?,
            DuplicatePayment => self.duplicate()?,
            AmbiguousSameAmount => self.ambiguous(date)?,
            DuplicateWithTwin => self.duplicate_with_twin(date)?,
            RecurringAmount => self.recurring_amount(date)?,
            MemoTruncated => self.memo_truncated(date)?,
            OtherEntity => self.other_entity(date)?,
            CreditExceedsInvoice => self.credit_exceeds_invoice(date)?,
        };
        Some(d)
    }

    // ----- building blocks -------------------------------------------------------------------

    /// How many invoices a batch payment settles: usually a handful, sometimes dozens.
    fn m_multi(&mut self) -> usize {
        let x = LogNormal::new(2.5f64.ln(), 1.1).map_or(3.0, |d| d.sample(&mut self.rng));
        (2 + x as usize).min(80)
    }

    fn background_payer(&mut self, weak_references: bool) -> PayerMode {
        // Without references the payer is the only way in; such payments come from known
        // accounts more often in the mix, or nobody could settle them.
        let p = if weak_references { 0.92 } else { 0.85 };
        if self.rng.random_bool(p) {
            PayerMode::Account
        } else {
            PayerMode::Name
        }
    }

    /// Takes `m` of the customer's open invoices, oldest first with some skipped, billing new
    /// ones if the customer has too few.
    fn take(&mut self, c: u32, m: usize, date: NaiveDate) -> Vec<u32> {
        let cu = c as usize;
        let avail = self.profiles[cu]
            .pool
            .iter()
            .filter(|&&i| !self.inv[i as usize].stuck)
            .count();
        if avail < m {
            let billed = days_before(date, self.rng.random_range(5..40));
            for _ in 0..(m - avail) {
                let amount = self.draw_amount(c);
                let i = self.issue(c, billed, amount);
                self.make_available(i);
            }
        }
        let pool = &self.profiles[cu].pool;
        let inv = &self.inv;
        let rng = &mut self.rng;
        let mut taken: Vec<u32> = Vec::with_capacity(m);
        for pass in 0..2 {
            for &i in pool {
                if taken.len() >= m {
                    break;
                }
                if inv[i as usize].stuck || taken.contains(&i) {
                    continue;
                }
                if pass == 1 || rng.random_bool(0.8) {
                    taken.push(i);
                }
            }
        }
        self.profiles[cu].pool.retain(|i| !taken.contains(i));
        taken.sort_by_key(|&i| (self.inv[i as usize].date, i));
        taken
    }

    /// Lines for invoices at their open amounts; the truth is the open amounts.
    fn draft(&mut self, c: u32, invs: &[u32], noises: &[Noise], payer: PayerMode) -> Draft {
        let mut d = Draft {
            c,
            payer,
            lines: Vec::new(),
            memo: None,
            amount: Decimal::ZERO,
            labels: Vec::new(),
            settle: Vec::new(),
        };
        for (k, &i) in invs.iter().enumerate() {
            let open = self.inv[i as usize].open;
            let noise = noises.get(k).copied().unwrap_or(Noise::Exact);
            let reference = self.reference(i, noise);
            d.lines.push(RemittanceLine {
                reference,
                amount_paid: Some(open),
                ..Default::default()
            });
            d.amount += open;
            d.labels.push((i, open));
            d.settle.push((i, open, true));
        }
        d
    }

    fn reference(&mut self, i: u32, noise: Noise) -> Option<String> {
        for _ in 0..5 {
            let r = self.render_reference(i, noise)?;
            if !matches!(
                noise,
                Noise::Typo | Noise::Ocr | Noise::Prefix | Noise::Zeros
            ) || !self.lands_on_twin(i, &r)
            {
                return Some(r);
            }
        }
        self.render_reference(i, noise)
    }

    /// Whether a mangled reference reads as another open invoice of the same customer with
    /// the same amount: then nobody could tell which was meant, and such a payment would be
    /// unresolvable by accident rather than by design.
    fn lands_on_twin(&self, i: u32, reference: &str) -> bool {
        let inv = &self.inv[i as usize];
        let r = normalize(reference);
        self.profiles[inv.customer as usize].pool.iter().any(|&j| {
            let other = &self.inv[j as usize];
            j != i && other.open == inv.open && normalize(&other.number) == r
        })
    }

    fn render_reference(&mut self, i: u32, noise: Noise) -> Option<String> {
        let inv = &self.inv[i as usize];
        let rng = &mut self.rng;
        let n = inv.number.as_str();
        let quotes_core = self.profiles[inv.customer as usize].quotes_core;
        Some(match noise {
            // A customer whose AP system keeps only the digits quotes them so.
            Noise::Exact if quotes_core && !inv.is_credit() => numbers::parts(n).1.to_string(),
            Noise::Exact => n.to_string(),
            // A number with no leading zeros cannot lose them; its prefix goes instead.
            Noise::Zeros if !self.scheme.zero_padded() => numbers::prefix_change(rng, n),
            Noise::CaseSpacing => numbers::case_spacing(rng, n),
            Noise::Typo => numbers::typo(rng, n),
            Noise::Ocr => numbers::ocr(rng, n),
            Noise::Prefix => numbers::prefix_change(rng, n),
            Noise::Zeros => numbers::drop_zeros(n),
            Noise::Po => inv.po.clone().unwrap_or_else(|| n.to_string()),
            Noise::Missing => return None,
        })
    }

    /// `count` distinct line positions out of `m`.
    fn positions(&mut self, m: usize, count: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..m).collect();
        let mut out = Vec::new();
        for _ in 0..count.min(m) {
            let k = pick(&mut self.rng, all.len());
            out.push(all.swap_remove(k));
        }
        out
    }

    fn exact(&mut self, table: Table, m: usize, date: NaiveDate) -> Draft {
        let c = self
            .choose(table)
            .or_else(|| self.choose(Table::Multi))
            .unwrap_or(0);
        let invs = self.take(c, m, date);
        let payer = self.background_payer(false);
        self.draft(c, &invs, &[], payer)
    }

    /// One or more invoices, some of whose references carry `noise`.
    fn noisy(
        &mut self,
        table: Table,
        noise: Noise,
        multi_share: f64,
        date: NaiveDate,
    ) -> Option<Draft> {
        let c = self.choose(table)?;
        let m = if self.rng.random_bool(multi_share) {
            self.m_multi()
        } else {
            1
        };
        let mut invs = self.take(c, m, date);
        let m = invs.len();
        let count = match noise {
            // Spacing habits are the payer's, so they affect most of its lines.
            Noise::CaseSpacing => {
                1 + (m.saturating_sub(1) as f64 * self.rng.random_range(0.3..1.0)) as usize
            }
            _ if m >= 3 && self.rng.random_bool(0.3) => 2.max(m / 4),
            _ => 1,
        };
        let mut noises = vec![Noise::Exact; m];
        if noise == Noise::Po {
            let mut with_po: Vec<usize> = (0..m)
                .filter(|&k| self.inv[invs[k] as usize].po.is_some())
                .collect();
            if with_po.is_empty() {
                // Swap in an open invoice that carries a PO, billing one if need be.
                let Some(i) = self.take_with_po(c, date) else {
                    self.untake(&invs);
                    return None;
                };
                if let Some(first) = invs.first_mut() {
                    let old = std::mem::replace(first, i);
                    self.make_available(old);
                }
                with_po.push(0);
            }
            for _ in 0..count.min(with_po.len()) {
                noises[with_po[pick(&mut self.rng, with_po.len())]] = Noise::Po;
            }
        } else {
            for k in self.positions(m, count) {
                noises[k] = noise;
            }
        }
        let payer = self.background_payer(noise == Noise::Missing);
        Some(self.draft(c, &invs, &noises, payer))
    }

    /// An open invoice of `c` with a PO number, taken from the pool or newly billed.
    fn take_with_po(&mut self, c: u32, date: NaiveDate) -> Option<u32> {
        let pool = &self.profiles[c as usize].pool;
        if let Some(k) = pool.iter().position(|&i| {
            let inv = &self.inv[i as usize];
            inv.po.is_some() && !inv.stuck
        }) {
            return Some(self.profiles[c as usize].pool.remove(k));
        }
        for _ in 0..10 {
            let billed = days_before(date, self.rng.random_range(5..40));
            let amount = self.draw_amount(c);
            let i = self.issue(c, billed, amount);
            if self.inv[i as usize].po.is_some() {
                return Some(i);
            }
            self.make_available(i);
        }
        None
    }

    /// Puts taken invoices back, for a family that cannot use them after all.
    fn untake(&mut self, invs: &[u32]) {
        for &i in invs {
            self.make_available(i);
        }
    }

    fn paid_by(&mut self, table: Table, payer: PayerMode, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(table)?;
        if payer == PayerMode::Sister && self.sister(c).is_none() {
            return None;
        }
        let m = if self.rng.random_bool(0.2) {
            self.m_multi().min(12)
        } else {
            1
        };
        let invs = self.take(c, m, date);
        Some(self.draft(c, &invs, &[], payer))
    }

    /// Another customer that might pay `c`'s invoice: a sister company where the family has
    /// one, else any other customer outside the family.
    fn sister(&mut self, c: u32) -> Option<u32> {
        let parent = self.profiles[c as usize].parent?;
        let sisters: Vec<u32> = self.profiles[parent as usize]
            .children
            .iter()
            .copied()
            .filter(|&s| s != c)
            .collect();
        if !sisters.is_empty() {
            return Some(sisters[pick(&mut self.rng, sisters.len())]);
        }
        let n = self.customers.len();
        (0..8)
            .map(|_| pick(&mut self.rng, n) as u32)
            .find(|&o| o != c && o != parent)
    }

    fn credit_memo(&mut self, with_line: bool, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let m = self.rng.random_range(1..=4);
        let invs = self.take(c, m, date);
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[], payer);
        let cm = self.take_credit(c, date, d.amount);
        let open = self.inv[cm as usize].open;
        if with_line {
            let reference = self.reference(cm, Noise::Exact);
            d.lines.push(RemittanceLine {
                reference,
                amount_paid: Some(open),
                ..Default::default()
            });
        }
        d.amount += open;
        d.labels.push((cm, open));
        d.settle.push((cm, open, true));
        Some(d)
    }

    /// An open credit memo of the customer smaller than `against`, or a new one.
    fn take_credit(&mut self, c: u32, date: NaiveDate, against: Decimal) -> u32 {
        let limit = frac(against, 0.8);
        let credits = &self.profiles[c as usize].credits;
        let found = credits.iter().position(|&i| {
            let inv = &self.inv[i as usize];
            inv.open.abs() < limit && inv.date < date && !inv.open.is_zero()
        });
        if let Some(k) = found {
            return self.profiles[c as usize].credits.remove(k);
        }
        let f = self.rng.random_range(0.03..0.4);
        let amount = -frac(against, f).max(Decimal::ONE);
        let billed = days_before(date, self.rng.random_range(5..60));
        self.issue(c, billed, amount)
    }

    fn memo_refs(&mut self, m: usize, range: bool, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(if m > 1 { Table::Multi } else { Table::Single })?;
        let invs = if range {
            // One billing run, quoted as a range of consecutive numbers.
            let billed = days_before(date, self.rng.random_range(15..45));
            self.allow_gaps = false;
            let invs: Vec<u32> = (0..m)
                .map(|_| {
                    let amount = self.draw_amount(c);
                    self.issue(c, billed, amount)
                })
                .collect();
            self.allow_gaps = true;
            invs
        } else {
            self.take(c, m, date)
        };
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[], payer);
        d.lines.clear();
        let nums: Vec<String> = invs
            .iter()
            .map(|&i| self.inv[i as usize].number.clone())
            .collect();
        d.memo = Some(match (range, nums.as_slice()) {
            (true, [first, .., last]) => numbers::memo_range(&mut self.rng, first, last),
            (_, [one])
                if self.profile.rmr_share() > 0.0
                    && self.rng.random_bool(self.profile.rmr_share()) =>
            {
                // A CCD+ addenda carrying one X12 remittance segment.
                format!("RMR*IV*{one}**{}\\", d.amount)
            }
            (_, [one]) => numbers::memo_single(&mut self.rng, one),
            _ => numbers::memo_list(&mut self.rng, &nums),
        });
        Some(d)
    }

    fn no_detail(&mut self, m: usize, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(if m > 1 { Table::Multi } else { Table::Single })?;
        let invs = self.take(c, m, date);
        let payer = self.background_payer(true);
        let mut d = self.draft(c, &invs, &[], payer);
        d.lines.clear();
        Some(d)
    }

    /// Invoices paid inside their discount window, net of the discount.
    fn discount(&mut self, stated: bool, noise: Noise, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Discount)?;
        let m = if self.rng.random_bool(0.75) {
            1
        } else {
            self.rng.random_range(2..=3)
        };
        let invs = self.take_discountable(c, m, date);
        let payer = self.background_payer(false);
        let noises: Vec<Noise> = (0..invs.len())
            .map(|k| if k == 0 { noise } else { Noise::Exact })
            .collect();
        let mut d = self.draft(c, &invs, &noises, payer);
        d.amount = Decimal::ZERO;
        for (k, &i) in invs.iter().enumerate() {
            let inv = &self.inv[i as usize];
            let disc = (inv.amount * inv.terms.discount_rate).round_dp(2);
            let paid = inv.open - disc;
            if let Some(line) = d.lines.get_mut(k) {
                line.amount_paid = Some(paid);
                if stated {
                    line.discount = Some(disc);
                    line.invoice_amount = Some(inv.amount);
                }
            }
            d.labels[k].1 = paid;
            d.settle[k].1 = paid;
            d.amount += paid;
        }
        Some(d)
    }

    /// Open, unpaid invoices of a discount customer billed within the discount window.
    fn take_discountable(&mut self, c: u32, m: usize, date: NaiveDate) -> Vec<u32> {
        let cu = c as usize;
        let terms = self.profiles[cu].terms;
        let window = terms.discount_days.max(1) as i64;
        let eligible = |inv: &super::world::Inv| {
            let age = (date - inv.date).num_days();
            !inv.stuck
                && inv.open == inv.amount
                && !inv.terms.discount_rate.is_zero()
                && (1..=window).contains(&age)
        };
        let mut taken: Vec<u32> = self.profiles[cu]
            .pool
            .iter()
            .copied()
            .filter(|&i| eligible(&self.inv[i as usize]))
            .take(m)
            .collect();
        self.profiles[cu].pool.retain(|i| !taken.contains(i));
        while taken.len() < m {
            let billed = days_before(date, self.rng.random_range(1..=window as u64));
            let amount = self.draw_amount(c);
            let i = self.issue(c, billed, amount);
            self.inv[i as usize].terms = terms;
            taken.push(i);
        }
        taken
    }

    /// What a customer deducts when it short-pays an invoice.
    fn deduction(&mut self, open: Decimal) -> Decimal {
        let d = if self.rng.random_bool(0.5) {
            let pct = [0.02, 0.03, 0.05, 0.1, 0.15][pick(&mut self.rng, 5)];
            let pct = if self.rng.random_bool(0.3) {
                self.rng.random_range(0.01..0.2)
            } else {
                pct
            };
            frac(open, pct)
        } else if self.rng.random_bool(0.6) {
            Decimal::new(
                [2_500, 5_000, 7_500, 10_000, 15_000, 25_000][pick(&mut self.rng, 6)],
                2,
            )
        } else {
            cents(self.rng.random_range(5.0..300.0))
        };
        d.min(frac(open, 0.5)).max(Decimal::new(1, 2))
    }

    fn short_pay(&mut self, coded: bool, noise: Noise, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let m = if self.rng.random_bool(0.7) {
            1
        } else {
            self.m_multi().min(10)
        };
        let invs = self.take(c, m, date);
        let k = pick(&mut self.rng, invs.len());
        let mut noises = vec![Noise::Exact; invs.len()];
        if let Some(n) = noises.get_mut(k) {
            *n = noise;
        }
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &noises, payer);
        let open = self.inv[invs[k] as usize].open;
        let ded = self.deduction(open);
        let paid = open - ded;
        if let Some(line) = d.lines.get_mut(k) {
            line.amount_paid = Some(paid);
            if coded {
                let code = ADJUSTMENT_CODES[pick(&mut self.rng, ADJUSTMENT_CODES.len())];
                line.adjustments.push(Adjustment {
                    amount: ded,
                    reason_code: Some(code.to_string()),
                    text: None,
                });
                line.invoice_amount = Some(open);
            }
        }
        d.labels[k].1 = paid;
        // A coded deduction is cleared against the deduction; an unexplained one stays open.
        d.settle[k] = (invs[k], paid, coded);
        d.amount -= ded;
        Some(d)
    }

    fn partial_amount(&mut self, open: Decimal) -> Decimal {
        let p = match self.rng.random_range(0..100) {
            0..35 => frac(open, [0.25, 0.5, 0.75][pick(&mut self.rng, 3)]),
            35..70 if open >= Decimal::new(300, 0) => {
                let f = self.rng.random_range(0.2..0.9);
                (frac(open, f) / Decimal::ONE_HUNDRED).floor() * Decimal::ONE_HUNDRED
            }
            _ => frac(open, self.rng.random_range(0.1..0.9)),
        };
        p.max(Decimal::new(1, 2)).min(open - Decimal::new(1, 2))
    }

    fn partial(&mut self, noise: Noise, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let invs = self.take(c, 1, date);
        let i = *invs.first()?;
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[noise], payer);
        let open = self.inv[i as usize].open;
        if open < Decimal::new(2, 2) {
            return Some(d);
        }
        let paid = self.partial_amount(open);
        if let Some(line) = d.lines.first_mut() {
            line.amount_paid = Some(paid);
        }
        d.labels[0].1 = paid;
        d.settle[0] = (i, paid, false);
        d.amount = paid;
        Some(d)
    }

    fn bank_fee(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let mut invs = self.take(c, 1, date);
        let i = *invs.first()?;
        // Wires carry larger sums; a fee on a tiny invoice would not be paid by wire.
        if self.inv[i as usize].open < Decimal::new(250, 0) {
            self.untake(&invs);
            let mut amount = self.draw_amount(c);
            for _ in 0..20 {
                if amount >= Decimal::new(250, 0) {
                    break;
                }
                amount = self.draw_amount(c);
            }
            let amount = amount.max(Decimal::new(250, 0))
                + Decimal::new(pick(&mut self.rng, 5_000) as i64, 2);
            let billed = days_before(date, self.rng.random_range(10..45));
            invs = vec![self.issue(c, billed, amount)];
        }
        let i = invs[0];
        let mut d = self.draft(c, &invs, &[], PayerMode::Account);
        let fee = Decimal::new(
            [10, 12, 15, 18, 20, 25, 30, 35, 40, 45][pick(&mut self.rng, 10)],
            0,
        );
        let open = self.inv[i as usize].open;
        d.amount = open - fee;
        d.labels[0].1 = open - fee;
        d.settle[0] = (i, open - fee, true);
        d.memo = Some(WIRE_MEMOS[pick(&mut self.rng, WIRE_MEMOS.len())].to_string());
        Some(d)
    }

    fn overpayment(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let invs = self.take(c, 1, date);
        let i = *invs.first()?;
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[], payer);
        let (open, amount) = {
            let inv = &self.inv[i as usize];
            (inv.open, inv.amount)
        };
        let hundred = Decimal::ONE_HUNDRED;
        let excess = match self.rng.random_range(0..100) {
            // Rounded up to a round figure.
            0..40 => {
                let up = (open / hundred).ceil() * hundred - open;
                if up.is_zero() { hundred } else { up }
            }
            40..70 => cents(self.rng.random_range(0.01..50.0)),
            // The original amount of an invoice already part-paid.
            _ if open < amount => amount - open,
            _ => frac(open, self.rng.random_range(0.01..0.1)).max(Decimal::new(1, 2)),
        };
        d.amount = open + excess;
        if self.rng.random_bool(0.6) {
            if let Some(line) = d.lines.first_mut() {
                line.amount_paid = Some(open + excess);
            }
        }
        Some(d)
    }

    /// A reference problem and an amount problem on one payment, as real payments often have.
    fn compound(&mut self, date: NaiveDate) -> Option<Draft> {
        let noise = [
            Noise::Typo,
            Noise::Ocr,
            Noise::Prefix,
            Noise::Zeros,
            Noise::CaseSpacing,
        ][pick(&mut self.rng, 5)];
        match self.rng.random_range(0..100) {
            0..30 => {
                let stated = self.rng.random_bool(0.5);
                self.discount(stated, noise, date)
            }
            30..55 => self.short_pay(true, noise, date),
            55..75 => self.short_pay(false, noise, date),
            _ => self.partial(noise, date),
        }
    }

    fn no_open_invoice(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let number = self.unused_number(c, date);
        let mut amount = self.draw_amount(c);
        for _ in 0..10 {
            let clash = self.profiles[c as usize]
                .pool
                .iter()
                .any(|&i| self.inv[i as usize].open == amount);
            if !clash {
                break;
            }
            amount = self.draw_amount(c) + Decimal::new(pick(&mut self.rng, 100) as i64, 2);
        }
        let payer = self.background_payer(false);
        Some(Draft {
            c,
            payer,
            lines: vec![RemittanceLine {
                reference: Some(number),
                amount_paid: Some(amount),
                ..Default::default()
            }],
            memo: None,
            amount,
            labels: Vec::new(),
            settle: Vec::new(),
        })
    }

    fn duplicate(&mut self) -> Option<Draft> {
        for _ in 0..30 {
            let c = self.choose(Table::Single)?;
            let closed: Vec<u32> = self.profiles[c as usize]
                .closed
                .iter()
                .copied()
                .filter(|&i| self.closed_in_ledger(i))
                .collect();
            if closed.is_empty() {
                continue;
            }
            let i = closed[pick(&mut self.rng, closed.len())];
            let (number, amount) = {
                let inv = &self.inv[i as usize];
                (inv.number.clone(), inv.amount)
            };
            if amount <= Decimal::ZERO {
                continue;
            }
            let payer = self.background_payer(false);
            return Some(Draft {
                c,
                payer,
                lines: vec![RemittanceLine {
                    reference: Some(number),
                    amount_paid: Some(amount),
                    ..Default::default()
                }],
                memo: None,
                amount,
                labels: Vec::new(),
                settle: Vec::new(),
            });
        }
        None
    }

    /// Two open invoices of one customer with the same amount, and a payment with no
    /// reference: the truth is one of them, and nothing in the data says which.
    fn ambiguous(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let invs = self.take(c, 1, date);
        let x = *invs.first()?;
        let (x_date, x_open) = {
            let inv = &self.inv[x as usize];
            (inv.date, inv.open)
        };
        let latest = days_before(date, 1);
        let twin_date = x_date
            .checked_add_days(chrono::Days::new(pick(&mut self.rng, 4) as u64))
            .unwrap_or(x_date)
            .min(latest)
            .max(x_date);
        let y = self.issue(c, twin_date, x_open);
        let terms = self.inv[x as usize].terms;
        self.inv[y as usize].terms = terms;
        let truth = if self.rng.random_bool(0.5) {
            self.make_available(y);
            x
        } else {
            self.make_available(x);
            y
        };
        let payer = self.background_payer(true);
        let mut d = self.draft(c, &[truth], &[Noise::Missing], payer);
        if self.rng.random_bool(0.7) {
            d.lines.clear();
        }
        Some(d)
    }

    // ----- the families of issue 11 ------------------------------------------------------------

    /// The exact number and amount of an invoice already paid, while the customer has another
    /// open invoice of that very amount (the next period of a subscription, an instalment): an
    /// engine that reads "no such open invoice, but the amount fits" applies the cash to the
    /// twin. There is no correct match.
    fn duplicate_with_twin(&mut self, date: NaiveDate) -> Option<Draft> {
        for _ in 0..30 {
            let c = self.choose(Table::Single)?;
            let closed: Vec<u32> = self.profiles[c as usize]
                .closed
                .iter()
                .copied()
                .filter(|&i| {
                    self.closed_in_ledger(i) && self.inv[i as usize].amount > Decimal::ZERO
                })
                .collect();
            if closed.is_empty() {
                continue;
            }
            let i = closed[pick(&mut self.rng, closed.len())];
            let (number, amount, terms) = {
                let inv = &self.inv[i as usize];
                (inv.number.clone(), inv.amount, inv.terms)
            };
            let has_twin = self.profiles[c as usize].pool.iter().any(|&j| {
                let o = &self.inv[j as usize];
                o.open == amount && o.amount == amount && !o.stuck && o.date < date
            });
            if !has_twin {
                // The next period billed at the same amount, still open.
                let billed = days_before(date, self.rng.random_range(3..35));
                let y = self.issue(c, billed, amount);
                self.inv[y as usize].terms = terms;
                self.make_available(y);
            }
            let payer = self.background_payer(false);
            let (lines, memo) = if self.rng.random_bool(0.75) {
                let line = RemittanceLine {
                    reference: Some(number),
                    amount_paid: Some(amount),
                    ..Default::default()
                };
                (vec![line], None)
            } else {
                (
                    Vec::new(),
                    Some(numbers::memo_single(&mut self.rng, &number)),
                )
            };
            return Some(Draft {
                c,
                payer,
                lines,
                memo,
                amount,
                labels: Vec::new(),
                settle: Vec::new(),
            });
        }
        None
    }

    /// Several open items of one amount (subscription periods, instalments billed a month
    /// apart), and a payment naming the right one by reference.
    fn recurring_amount(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let invs = self.take(c, 1, date);
        let x = *invs.first()?;
        let (x_date, amount, terms) = {
            let inv = &self.inv[x as usize];
            (inv.date, inv.open, inv.terms)
        };
        let latest = days_before(date, 1);
        let twins = self.rng.random_range(2..=5u64);
        for k in 1..=twins {
            let later = x_date.checked_add_days(chrono::Days::new(30 * k));
            let billed = match later {
                Some(d) if d <= latest => d,
                _ => days_before(x_date, 30 * k),
            };
            let y = self.issue(c, billed, amount);
            self.inv[y as usize].terms = terms;
            self.make_available(y);
        }
        let payer = self.background_payer(false);
        let noise = match self.rng.random_range(0..100) {
            0..70 => Noise::Exact,
            70..85 => Noise::CaseSpacing,
            _ => Noise::Prefix,
        };
        let mut d = self.draft(c, &[x], &[noise], payer);
        if self.rng.random_bool(0.25) {
            // The reference in the memo only.
            let number = self.inv[x as usize].number.clone();
            d.lines.clear();
            d.memo = Some(numbers::memo_single(&mut self.rng, &number));
        }
        Some(d)
    }

    /// A consolidated payment whose memo lists its invoices but is cut at the bank's field
    /// length, so only the first few numbers (and perhaps part of one) arrive; the truth is
    /// every invoice paid.
    fn memo_truncated(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Multi)?;
        let limit = match self.rng.random_range(0..100) {
            0..55 => numbers::MEMO_FIELDS[0],
            55..85 => numbers::MEMO_FIELDS[1],
            _ => numbers::MEMO_FIELDS[2],
        };
        // Enough invoices that even the shortest listing (digits and one separator each) runs
        // past the field.
        let m = limit / (self.number_digits() + 1) + 2 + pick(&mut self.rng, 5);
        let invs = self.take(c, m, date);
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[], payer);
        d.lines.clear();
        let nums: Vec<String> = invs
            .iter()
            .map(|&i| self.inv[i as usize].number.clone())
            .collect();
        let full = numbers::memo_list(&mut self.rng, &nums);
        d.memo = Some(numbers::cut(&full, limit));
        Some(d)
    }

    /// A known customer quotes invoices of a sister company's ledger (another company code),
    /// which this ledger does not hold: their numbers carry the other entity's code but share
    /// digits with invoices of ours, sometimes the customer's own, and now and then the amount
    /// is that of one of the customer's open items. The cash is not ours to apply.
    fn other_entity(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let m = if self.rng.random_bool(0.7) {
            1
        } else {
            self.rng.random_range(2..=4)
        };
        let own: Vec<u32> = self.profiles[c as usize]
            .pool
            .iter()
            .copied()
            .filter(|&i| self.inv[i as usize].seq > 0)
            .collect();
        let mut lines = Vec::new();
        let mut amount = Decimal::ZERO;
        for k in 0..m {
            // The digits of one of the customer's own invoices (the closest lookalike), else
            // of anyone's.
            let (seq, own_open) = if !own.is_empty() && self.rng.random_bool(0.4) {
                let i = own[pick(&mut self.rng, own.len())];
                let inv = &self.inv[i as usize];
                (inv.seq, Some(inv.open))
            } else {
                // Anyone's invoice (credit memos have no invoice sequence number).
                let mut seq = 0;
                for _ in 0..10 {
                    let i = pick(&mut self.rng, self.inv.len());
                    seq = self.inv.get(i).map_or(0, |v| v.seq);
                    if seq > 0 {
                        break;
                    }
                }
                (seq.max(1), None)
            };
            let number = self.foreign_number(c, seq, date);
            let mut paid = self.draw_amount(c);
            if m == 1 && k == 0 && !own.is_empty() && self.rng.random_bool(0.35) {
                // The amount of another open item of the customer: amount alone would apply it.
                let j = own[pick(&mut self.rng, own.len())];
                paid = self.inv[j as usize].open;
            }
            if own_open == Some(paid) {
                // Digits and amount of one invoice of ours would make it a prefix change.
                paid += Decimal::new(1 + pick(&mut self.rng, 999) as i64, 2);
            }
            amount += paid;
            lines.push(RemittanceLine {
                reference: Some(number),
                amount_paid: Some(paid),
                ..Default::default()
            });
        }
        let payer = self.background_payer(false);
        let memo = if self.rng.random_bool(0.3) {
            let nums: Vec<String> = lines.iter().filter_map(|l| l.reference.clone()).collect();
            lines.clear();
            Some(match nums.as_slice() {
                [one] => numbers::memo_single(&mut self.rng, one),
                _ => numbers::memo_list(&mut self.rng, &nums),
            })
        } else {
            None
        };
        Some(Draft {
            c,
            payer,
            lines,
            memo,
            amount,
            labels: Vec::new(),
            settle: Vec::new(),
        })
    }

    /// Invoices paid net of credit memos larger than some of them (a return or rebate bigger
    /// than a small invoice): the credit memo cannot be "applied to" one invoice, only netted
    /// against the set. With a negative line per credit memo, or taken off silently.
    fn credit_exceeds_invoice(&mut self, date: NaiveDate) -> Option<Draft> {
        let c = self.choose(Table::Single)?;
        let m = self.rng.random_range(2..=5);
        let invs = self.take(c, m, date);
        if invs.len() < 2 {
            self.untake(&invs);
            return None;
        }
        let payer = self.background_payer(false);
        let mut d = self.draft(c, &invs, &[], payer);
        let smallest = invs
            .iter()
            .map(|&i| self.inv[i as usize].open)
            .min()
            .unwrap_or(Decimal::ONE);
        let total = d.amount;
        // More than the smallest invoice, well short of the total: the payment stays positive.
        let lo = smallest + frac(smallest, 0.05).max(Decimal::new(1, 2));
        let hi = frac(total, 0.8);
        if lo >= hi {
            self.untake(&invs);
            return None;
        }
        let credits = if self.rng.random_bool(0.3) { 2 } else { 1 };
        let mut left = hi;
        let with_lines = self.rng.random_bool(0.6);
        for k in 0..credits {
            let size = if k == 0 {
                let f = self.rng.random_range(0.0..1.0);
                (lo + (hi - lo) * Decimal::new((f * 10_000.0) as i64, 4)).round_dp(2)
            } else {
                // A second, smaller credit, within what the total still allows.
                frac(left, self.rng.random_range(0.1..0.6)).max(Decimal::new(1, 2))
            };
            if size >= left {
                break;
            }
            left -= size;
            let billed = days_before(date, self.rng.random_range(5..60));
            let cm = self.issue(c, billed, -size);
            if with_lines {
                let reference = self.reference(cm, Noise::Exact);
                d.lines.push(RemittanceLine {
                    reference,
                    amount_paid: Some(-size),
                    ..Default::default()
                });
            }
            d.amount -= size;
            d.labels.push((cm, -size));
            d.settle.push((cm, -size, true));
        }
        Some(d)
    }

    // ----- payers ------------------------------------------------------------------------------

    fn render_payer(&mut self, c: u32, mode: PayerMode) -> (Payer, Option<String>) {
        let name = self.customers[c as usize].name.clone();
        match mode {
            PayerMode::Account => {
                let account = self.account_of(c);
                let shown = match self.rng.random_range(0..100) {
                    0..60 => names::bank_name(&name),
                    60..85 => name,
                    _ => names::variant(&mut self.rng, &name).0,
                };
                (
                    Payer {
                        name: Some(shown),
                        account,
                    },
                    None,
                )
            }
            PayerMode::Name => {
                let shown = names::variant(&mut self.rng, &name).0;
                let account = self.rng.random_bool(0.5).then(|| self.new_account());
                (
                    Payer {
                        name: Some(shown),
                        account,
                    },
                    None,
                )
            }
            PayerMode::Parent => match self.profiles[c as usize].parent {
                Some(p) => self.as_payer(p),
                None => self.render_payer(c, PayerMode::Account),
            },
            PayerMode::Sister => match self.sister(c) {
                Some(s) => self.as_payer(s),
                None => self.render_payer(c, PayerMode::Account),
            },
            PayerMode::Service => {
                let k = pick(&mut self.rng, self.services.len());
                let (service, accounts) = self.services.get(k).cloned().unwrap_or_default();
                let account = accounts.get(pick(&mut self.rng, accounts.len())).cloned();
                // Some services pass the client's name along; others say nothing about it.
                let memo = self
                    .rng
                    .random_bool(0.5)
                    .then(|| format!("ON BEHALF OF {}", names::bank_name(&name)));
                (
                    Payer {
                        name: Some(service),
                        account,
                    },
                    memo,
                )
            }
            PayerMode::Unknown => {
                let shown = self.stranger_name();
                let account = Some(self.new_account());
                (
                    Payer {
                        name: Some(shown),
                        account,
                    },
                    None,
                )
            }
        }
    }

    /// Another customer paying: its own account and its bank's spelling of its name.
    fn as_payer(&mut self, other: u32) -> (Payer, Option<String>) {
        let account = self.account_of(other);
        let name = names::bank_name(&self.customers[other as usize].name);
        (
            Payer {
                name: Some(name),
                account,
            },
            None,
        )
    }
}
