//! A seeded generator of realistic cash-application worlds: customers, an open-items ledger,
//! a stream of payments with their remittances, and the truth (labels) for each payment.
//!
//! The model is trained and judged on these worlds, so the generator aims to be honest rather
//! than convenient: a plain rules baseline (exact normalised reference, amount equal to the
//! open amount) settles only about half the payments, the rest need fuzzy references, amount
//! reasoning, payer identification or subset sums, and about 5% must not be auto-applied at
//! all. docs/synth.md gives every proportion and the reasoning behind it.
//!
//! A world is a simulation over about six months. The ledger starts with each customer's open
//! items (a heavy-tailed count) and recently closed ones; each payment settles some of its
//! customer's open items, and new invoices are billed as old ones are paid. Payments are in
//! time order; the earlier `train_fraction` of them form the train split and the rest the test
//! split. Each split carries the ledger as the engine would see it for that period: every item
//! open at the split's start (so the test ledger shows what train payments closed) plus the
//! items billed during the split, and the items closed in the six months before its start (so a
//! duplicate payment of a paid invoice can be recognised). Within a split no invoice is paid by
//! two payments, so each split's labels are consistent with its ledger whatever order an engine
//! processes the payments in.
//!
//! Same seed, same world: all randomness comes from one `ChaCha8Rng`, and no hash map is ever
//! iterated while generating.

mod advice_files;
mod decoupled;
mod names;
mod numbers;
mod payments;
mod world;
mod xlsx;

pub use decoupled::{Decoupled, decouple, write_decoupled};

#[cfg(test)]
mod tests;

use crate::domain::{Customer, Invoice, Label, Payment};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// What world to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub seed: u64,
    pub customers: usize,
    pub payments: usize,
    /// The share of payments, earliest first, that form the train split (0.7 by default).
    pub train_fraction: f64,
    /// What kind of business the world is: numbering, memo conventions, reference habits.
    pub profile: WorldProfile,
    /// How customers' usual open-item counts are spread ([`CustomerSizes::Typical`] by default).
    pub sizes: CustomerSizes,
}

/// How many open items customers usually hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerSizes {
    /// Lognormal, median 8, sigma 1.0, capped at 3,000: the largest of 2,000 customers holds
    /// some hundreds.
    #[default]
    Typical,
    /// The typical spread plus key accounts: one customer in 4,000 (at least one) usually holds
    /// 10,000 to 30,000 open items (log-uniform), as the largest customers of a ledger of a
    /// million items do. The default worlds are unchanged: only this choice draws the extra
    /// numbers.
    HeavyTailed,
}

impl CustomerSizes {
    /// Every choice, with the name `cashmatch synth --sizes` takes.
    pub const ALL: [CustomerSizes; 2] = [CustomerSizes::Typical, CustomerSizes::HeavyTailed];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            CustomerSizes::Typical => "typical",
            CustomerSizes::HeavyTailed => "heavy-tailed",
        }
    }
}

impl std::str::FromStr for CustomerSizes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CustomerSizes::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown customer sizes {s:?} (typical or heavy-tailed)"))
    }
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 7,
            customers: 2_000,
            payments: 20_000,
            train_fraction: 0.7,
            profile: WorldProfile::Standard,
            sizes: CustomerSizes::Typical,
        }
    }
}

impl SynthConfig {
    /// A config with the default train fraction and profile.
    pub fn new(seed: u64, customers: usize, payments: usize) -> Self {
        SynthConfig {
            seed,
            customers,
            payments,
            ..Default::default()
        }
    }
}

/// A world profile: the habits of a whole population of customers and of the business that
/// bills them, which a model trained on one profile has never seen in another. The case mix is
/// the same in every profile; what changes is how the same cases look (docs/synth.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WorldProfile {
    /// Today's worlds: `INV-0012345`, `0090012345`, `2026-004512` or `SO0123456` numbering,
    /// memos as typed, references quoted as printed.
    #[default]
    Standard,
    /// Branch-coded, plain, check-digit or suffixed numbers (`NE1-104233`, `104233`,
    /// `1104233-6`, `0104233-01`); every memo cut at the ACH addenda's 80 characters and some in
    /// X12 `RMR` form; a third of the customers quote numbers by their digits only.
    Enterprise,
}

impl WorldProfile {
    /// Every profile.
    pub const ALL: [WorldProfile; 2] = [WorldProfile::Standard, WorldProfile::Enterprise];

    /// The name `cashmatch synth --profile` takes.
    pub fn name(self) -> &'static str {
        match self {
            WorldProfile::Standard => "standard",
            WorldProfile::Enterprise => "enterprise",
        }
    }

    pub(crate) fn schemes(self) -> &'static [numbers::Scheme] {
        match self {
            WorldProfile::Standard => &numbers::Scheme::STANDARD,
            WorldProfile::Enterprise => &numbers::Scheme::OTHER,
        }
    }

    /// Share of customers who quote invoice numbers by their digits only.
    pub(crate) fn quotes_core_share(self) -> f64 {
        match self {
            WorldProfile::Standard => 0.0,
            WorldProfile::Enterprise => 0.35,
        }
    }

    /// The field length every memo is cut at, when the profile's payments all arrive through
    /// one channel that cuts them (ACH CCD+ addenda: 80 characters).
    pub(crate) fn memo_field(self) -> Option<usize> {
        match self {
            WorldProfile::Standard => None,
            WorldProfile::Enterprise => Some(80),
        }
    }

    /// Share of memos quoting one invoice written as an X12 `RMR` segment (CCD+ addenda).
    pub(crate) fn rmr_share(self) -> f64 {
        match self {
            WorldProfile::Standard => 0.0,
            WorldProfile::Enterprise => 0.5,
        }
    }
}

impl std::str::FromStr for WorldProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorldProfile::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = WorldProfile::ALL.iter().map(|p| p.name()).collect();
                format!("unknown world profile {s:?}; one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for WorldProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A generated world: its customers and two consecutive periods of payments.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    pub customers: Vec<Customer>,
    /// The earlier period.
    pub train: Split,
    /// The later period; its ledger reflects what the train payments closed.
    pub test: Split,
}

/// One period of a world: the ledger the engine sees, the payments in time order, the truth.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Split {
    /// The ledger for this period: items open at its start (with their open amounts then),
    /// items billed during it, and items closed in the six months before it.
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    /// Cash applied per payment and invoice; a payment with no label rows has no correct match.
    pub labels: Vec<Label>,
    /// `(payment_id, case family)` for every payment; see [`Case`].
    pub cases: Vec<(String, String)>,
}

/// The case family of a synthetic payment: the one thing that makes it what it is. Every
/// payment has exactly one; docs/synth.md describes each and its share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Case {
    ExactSingle,
    ExactMulti,
    RefCaseSpacing,
    PayerNameVariant,
    PayerParent,
    PayerService,
    PayerSister,
    PayerUnknown,
    CreditMemoLine,
    RefTypo,
    RefOcr,
    RefPrefix,
    RefLeadingZeros,
    RefPoNumber,
    RefMissing,
    MemoSingle,
    MemoList,
    MemoRange,
    NoDetailSingle,
    NoDetailConsolidated,
    DiscountStated,
    DiscountUnstated,
    ShortPayCoded,
    ShortPayUncoded,
    PartialPayment,
    BankFee,
    Overpayment,
    CreditMemoNetted,
    Compound,
    NoOpenInvoice,
    DuplicatePayment,
    AmbiguousSameAmount,
    DuplicateWithTwin,
    RecurringAmount,
    MemoTruncated,
    OtherEntity,
    CreditExceedsInvoice,
}

impl Case {
    /// Every family with its share of payments. The shares sum to one.
    pub const MIX: [(Case, f64); 37] = [
        (Case::ExactSingle, 0.175),
        (Case::ExactMulti, 0.13),
        (Case::RefCaseSpacing, 0.04),
        (Case::PayerNameVariant, 0.03),
        (Case::PayerParent, 0.03),
        (Case::PayerService, 0.025),
        (Case::PayerSister, 0.01),
        (Case::PayerUnknown, 0.015),
        (Case::CreditMemoLine, 0.02),
        (Case::RefTypo, 0.03),
        (Case::RefOcr, 0.015),
        (Case::RefPrefix, 0.025),
        (Case::RefLeadingZeros, 0.015),
        (Case::RefPoNumber, 0.03),
        (Case::RefMissing, 0.02),
        (Case::RecurringAmount, 0.015),
        (Case::MemoSingle, 0.02),
        (Case::MemoList, 0.025),
        (Case::MemoRange, 0.015),
        (Case::MemoTruncated, 0.015),
        (Case::NoDetailSingle, 0.03),
        (Case::NoDetailConsolidated, 0.03),
        (Case::DiscountStated, 0.025),
        (Case::DiscountUnstated, 0.02),
        (Case::ShortPayCoded, 0.025),
        (Case::ShortPayUncoded, 0.015),
        (Case::PartialPayment, 0.015),
        (Case::BankFee, 0.015),
        (Case::Overpayment, 0.01),
        (Case::CreditMemoNetted, 0.015),
        (Case::CreditExceedsInvoice, 0.01),
        (Case::Compound, 0.035),
        (Case::NoOpenInvoice, 0.01),
        (Case::DuplicatePayment, 0.01),
        (Case::DuplicateWithTwin, 0.01),
        (Case::OtherEntity, 0.01),
        (Case::AmbiguousSameAmount, 0.015),
    ];

    /// The name written to `cases.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Case::ExactSingle => "exact_single",
            Case::ExactMulti => "exact_multi",
            Case::RefCaseSpacing => "ref_case_spacing",
            Case::PayerNameVariant => "payer_name_variant",
            Case::PayerParent => "payer_parent",
            Case::PayerService => "payer_service",
            Case::PayerSister => "payer_sister",
            Case::PayerUnknown => "payer_unknown",
            Case::CreditMemoLine => "credit_memo_line",
            Case::RefTypo => "ref_typo",
            Case::RefOcr => "ref_ocr",
            Case::RefPrefix => "ref_prefix",
            Case::RefLeadingZeros => "ref_leading_zeros",
            Case::RefPoNumber => "ref_po_number",
            Case::RefMissing => "ref_missing",
            Case::MemoSingle => "memo_single",
            Case::MemoList => "memo_list",
            Case::MemoRange => "memo_range",
            Case::NoDetailSingle => "no_detail_single",
            Case::NoDetailConsolidated => "no_detail_consolidated",
            Case::DiscountStated => "discount_stated",
            Case::DiscountUnstated => "discount_unstated",
            Case::ShortPayCoded => "short_pay_coded",
            Case::ShortPayUncoded => "short_pay_uncoded",
            Case::PartialPayment => "partial_payment",
            Case::BankFee => "bank_fee",
            Case::Overpayment => "overpayment",
            Case::CreditMemoNetted => "credit_memo_netted",
            Case::Compound => "compound",
            Case::NoOpenInvoice => "no_open_invoice",
            Case::DuplicatePayment => "duplicate_payment",
            Case::AmbiguousSameAmount => "ambiguous_same_amount",
            Case::DuplicateWithTwin => "duplicate_with_twin",
            Case::RecurringAmount => "recurring_amount",
            Case::MemoTruncated => "memo_truncated",
            Case::OtherEntity => "other_entity",
            Case::CreditExceedsInvoice => "credit_exceeds_invoice",
        }
    }

    /// The family named `name` in `cases.csv`.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::MIX.iter().map(|(c, _)| *c).find(|c| c.name() == name)
    }

    /// The broad group of the family, for a short breakdown: `clean`, `payer`, `reference`,
    /// `structure`, `amount`, `compound` or `must_not_auto_apply`.
    pub fn group(self) -> &'static str {
        use Case::*;
        match self {
            ExactSingle | ExactMulti | RefCaseSpacing | CreditMemoLine => "clean",
            PayerNameVariant | PayerParent | PayerService | PayerSister | PayerUnknown => "payer",
            RefTypo | RefOcr | RefPrefix | RefLeadingZeros | RefPoNumber | RefMissing
            | RecurringAmount => "reference",
            MemoSingle | MemoList | MemoRange | MemoTruncated | NoDetailSingle
            | NoDetailConsolidated => "structure",
            DiscountStated | DiscountUnstated | ShortPayCoded | ShortPayUncoded
            | PartialPayment | BankFee | Overpayment | CreditMemoNetted | CreditExceedsInvoice => {
                "amount"
            }
            Compound => "compound",
            NoOpenInvoice | DuplicatePayment | AmbiguousSameAmount | DuplicateWithTwin
            | OtherEntity => "must_not_auto_apply",
        }
    }

    /// Whether a person must decide it: the right answer is "no match", or it cannot be told.
    #[cfg(test)]
    pub(crate) fn must_not_auto_apply(self) -> bool {
        self.group() == "must_not_auto_apply"
    }

    /// Whether the payment has no correct match at all: its cash belongs to no open invoice
    /// the engine holds.
    #[cfg(test)]
    pub(crate) fn has_no_match(self) -> bool {
        matches!(
            self,
            Case::NoOpenInvoice
                | Case::DuplicatePayment
                | Case::DuplicateWithTwin
                | Case::OtherEntity
        )
    }
}

/// Generates a world. Deterministic for a seed.
pub fn generate(config: &SynthConfig) -> World {
    world::Sim::run(config)
}

/// Ledger items per customer a first guess at the world's size starts from.
const ITEMS_PER_CUSTOMER: usize = 25;

/// A seeded world, all in one period (so the ledger the engine sees is the one its payments
/// pay), whose ledger holds at least `invoices` items: a world's items per customer depend on
/// how many payments it has, so when the first guess falls short the customers are scaled up
/// once. Deterministic for the same arguments. The world of the benchmarks (`cashmatch bench
/// match|serve`, benches/).
pub fn world_with_ledger(
    invoices: usize,
    payments: usize,
    seed: u64,
    sizes: CustomerSizes,
) -> World {
    let generate = |customers: usize| {
        generate(&SynthConfig {
            seed,
            customers,
            payments,
            train_fraction: 0.0,
            sizes,
            ..Default::default()
        })
    };
    let guess = (invoices / ITEMS_PER_CUSTOMER).max(10);
    let world = generate(guess);
    let got = world.test.invoices.len().max(1);
    if got >= invoices {
        return world;
    }
    // 2% over, so that the second draw's own spread does not fall short again.
    let scaled = (guess as f64 * invoices as f64 / got as f64 * 1.02).ceil() as usize;
    drop(world);
    generate(scaled)
}

/// Writes `dir/train/` and `dir/test/`, each with `customers.csv`, `invoices.csv`,
/// `remittances.csv`, `labels.csv` and `cases.csv`.
pub fn write_world(world: &World, dir: impl AsRef<Path>) -> std::io::Result<()> {
    for (name, split) in [("train", &world.train), ("test", &world.test)] {
        let d = dir.as_ref().join(name);
        std::fs::create_dir_all(&d)?;
        let create =
            |f: &str| File::create(d.join(f)).map(|f| BufWriter::with_capacity(1 << 16, f));
        crate::io::write_customers(create("customers.csv")?, &world.customers)?;
        crate::io::write_invoices(create("invoices.csv")?, &split.invoices)?;
        crate::io::write_remittances(create("remittances.csv")?, &split.payments)?;
        crate::io::write_labels(create("labels.csv")?, &split.labels)?;
        crate::io::write_cases(create("cases.csv")?, &split.cases)?;
    }
    Ok(())
}

/// A uniform index below `n` (0 when `n` is 0). Drawn as u64 so that a world does not depend
/// on the platform's pointer width.
pub(crate) fn pick(rng: &mut ChaCha8Rng, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        rng.random_range(0..n as u64) as usize
    }
}
