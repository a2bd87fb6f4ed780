//! The domain types every stage shares: the ledger's customers and open items, the canonical
//! payment that every remittance format becomes, and the decision the engine returns.
//!
//! Money is `rust_decimal::Decimal` everywhere; it is serialised as a decimal string so that no
//! consumer ever reads it through a double.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency code, three ASCII upper-case letters, stored inline so that a ledger of
/// a million invoices does not carry a million small heap strings for it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// US dollars, the default where a source format carries no currency.
    pub const USD: Currency = Currency(*b"USD");

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() != 3 || !b.iter().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "currency must be a three-letter ISO 4217 code, got {t:?}"
            ));
        }
        Ok(Currency([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ]))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A customer of the ledger: who owes the invoices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// The AR system's customer id.
    pub id: String,
    /// The legal or trading name as the AR system holds it.
    pub name: String,
    /// The parent company, which may pay for this customer.
    pub parent_id: Option<String>,
    /// Known bank accounts, each `routing:account` or a bare account number.
    pub bank_accounts: Vec<String>,
}

/// Payment terms such as `NET 30` or `2/10 NET 30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Terms {
    /// Early-payment discount as a fraction (`0.02` for 2%); zero when the terms give none.
    pub discount_rate: Decimal,
    /// Days after the invoice date within which the discount may be taken.
    pub discount_days: u32,
    /// Days after the invoice date until the invoice is due.
    pub net_days: u32,
}

impl Terms {
    /// Parses the common spellings: `NET 30`, `N30`, `2/10 NET 30`, `2% 10 NET 30`,
    /// `1.5/15 N45`, `DUE ON RECEIPT`, and an empty field (due on receipt).
    pub fn parse(s: &str) -> Result<Terms, String> {
        let up = s.trim().to_ascii_uppercase();
        if up.is_empty() || up == "DUE ON RECEIPT" || up == "COD" || up == "CIA" {
            return Ok(Terms::default());
        }
        let cleaned: String = up
            .chars()
            .map(|c| if c == '%' || c == ',' { ' ' } else { c })
            .collect();
        let mut discount_rate = Decimal::ZERO;
        let mut discount_days = 0;
        let mut net_days = None;
        let tokens: Vec<&str> = cleaned.split_whitespace().collect();
        let mut i = 0;
        while i < tokens.len() {
            let t = tokens[i];
            if let Some((pct, days)) = t.split_once('/') {
                let pct: Decimal = pct
                    .parse()
                    .map_err(|_| format!("bad discount percent in terms {s:?}"))?;
                discount_rate = pct / Decimal::ONE_HUNDRED;
                discount_days = days
                    .parse()
                    .map_err(|_| format!("bad discount days in terms {s:?}"))?;
            } else if t == "NET" || t == "N" {
                let d = tokens
                    .get(i + 1)
                    .ok_or_else(|| format!("NET without days in {s:?}"))?;
                net_days = Some(
                    d.parse()
                        .map_err(|_| format!("bad net days in terms {s:?}"))?,
                );
                i += 1;
            } else if let Some(d) = t.strip_prefix("NET").or_else(|| t.strip_prefix('N')) {
                net_days = Some(
                    d.parse()
                        .map_err(|_| format!("bad net days in terms {s:?}"))?,
                );
            } else if let (Ok(pct), Some(days)) = (t.parse::<Decimal>(), tokens.get(i + 1)) {
                // `2% 10 NET 30` once the percent sign is gone.
                if let Ok(days) = days.parse::<u32>() {
                    discount_rate = pct / Decimal::ONE_HUNDRED;
                    discount_days = days;
                    i += 1;
                } else {
                    return Err(format!("unrecognised terms {s:?}"));
                }
            } else {
                return Err(format!("unrecognised terms {s:?}"));
            }
            i += 1;
        }
        let net_days = net_days.unwrap_or(discount_days);
        Ok(Terms {
            discount_rate,
            discount_days,
            net_days,
        })
    }
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.discount_rate.is_zero() {
            if self.net_days == 0 {
                f.write_str("DUE ON RECEIPT")
            } else {
                write!(f, "NET {}", self.net_days)
            }
        } else {
            let pct = (self.discount_rate * Decimal::ONE_HUNDRED).normalize();
            write!(f, "{pct}/{} NET {}", self.discount_days, self.net_days)
        }
    }
}

/// An open item of the ledger: an invoice, or a credit memo when `amount` is negative.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The AR system's unique id for the item; allocations name it.
    pub id: String,
    /// The customer that owes it.
    pub customer_id: String,
    /// The document number printed on the invoice, which payers quote.
    pub number: String,
    /// The customer's purchase-order number, which payers quote instead surprisingly often.
    pub po_number: Option<String>,
    pub invoice_date: NaiveDate,
    pub due_date: NaiveDate,
    pub currency: Currency,
    /// The original amount; negative for a credit memo.
    pub amount: Decimal,
    /// What is still open; same sign as `amount`, never beyond it.
    pub open_amount: Decimal,
    pub terms: Terms,
}

impl Invoice {
    /// A credit memo is an open item with a negative amount.
    pub fn is_credit(&self) -> bool {
        self.amount.is_sign_negative()
    }
}

/// Whether money came in or went out. Debits are reported, never matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Credit,
    Debit,
}

/// What a remittance line's reference claims to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    Invoice,
    CreditNote,
    PurchaseOrder,
    /// A reference whose kind the format does not say.
    #[default]
    Unknown,
}

/// A deduction or adjustment the payer took on a line: a short pay, a chargeback, a fee.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Adjustment {
    /// Positive when it reduced what was paid.
    pub amount: Decimal,
    pub reason_code: Option<String>,
    pub text: Option<String>,
}

/// One line of remittance detail: the payer's statement of what one amount pays.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RemittanceLine {
    pub reference: Option<String>,
    pub reference_kind: ReferenceKind,
    /// The cash this line says it pays; negative for a credit memo taken.
    pub amount_paid: Option<Decimal>,
    /// The invoice amount as the payer has it.
    pub invoice_amount: Option<Decimal>,
    /// Early-payment discount taken.
    pub discount: Option<Decimal>,
    pub adjustments: Vec<Adjustment>,
}

/// Who paid, as the bank or the remittance names them.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Payer {
    pub name: Option<String>,
    pub account: Option<String>,
}

/// The canonical payment: every remittance format becomes this, and the engine takes only this.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Unique per payment; the engine is idempotent by it.
    pub payment_id: String,
    /// The format it was read from (`csv`, `x12_820`, `camt054`, ...).
    pub format: String,
    pub direction: Direction,
    pub payment_date: Option<NaiveDate>,
    /// The cash received.
    pub amount: Decimal,
    pub currency: Currency,
    pub payer: Payer,
    pub lines: Vec<RemittanceLine>,
    /// Memo, addenda text, email body: anything that may hold references.
    pub free_text: Vec<String>,
    /// What the parser noticed but accepted, such as control totals that do not reconcile.
    pub warnings: Vec<String>,
    /// Set when this is not cash received but the bank taking back an earlier payment (a NACHA
    /// return entry, a camt reversal, a BAI2 returned item): it is never matched to invoices;
    /// the service reverses the original payment it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<ReturnedItem>,
}

/// What a returned item says about the payment it takes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedItem {
    /// The bank's return reason code: a NACHA R-code (`R01`), an ISO 20022 return reason
    /// (`AC04`), `RVSL` for a camt reversal without a reason, or `BAI2-555` (the BAI2 type code)
    /// when a BAI2 returned item names no R-code in its text.
    pub return_code: String,
    /// What the code means, or what the bank wrote, where known.
    pub reason: Option<String>,
    /// The original payment as the return names it: its trace number (NACHA), its id in the
    /// same format (camt: the `EndToEndId` or `AcctSvcrRef` the booking carried), or a bank
    /// reference. Equal to the original's `payment_id` when both came from the same bank.
    pub original_trace: Option<String>,
}

/// Whether a decision was applied without a person. The engine decides `Auto` or `Review`; a
/// payment the bank returned later is `Returned` (every posting of it reversed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Auto,
    Review,
    Returned,
}

/// Why a payment went to review, so the queue can be filtered by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The payer could not be tied to a customer and the references found nothing.
    NoCustomer,
    /// A customer, but no allocation explains the payment.
    NoCandidate,
    /// Two or more allocations explain the payment about equally well.
    Ambiguous,
    /// The best allocation leaves a difference the engine cannot explain.
    AmountMismatch,
    /// The best allocation takes a deduction or short pay that a person should approve.
    Deduction,
    /// The best allocation is plausible but its confidence is below the threshold.
    LowConfidence,
    /// Debits, currencies the ledger does not hold, payments already decided.
    NotMatchable,
    /// The remittance quotes an item that is already paid: the cash may be a second payment of
    /// it, which the payer may want back rather than applied elsewhere.
    PossibleDuplicate,
    /// Its application was undone (unapplied by an analyst or the AR system): it waits to be
    /// resolved again. The engine never decides this.
    Unapplied,
    /// A returned item (the bank took back an earlier payment) whose original payment could not
    /// be identified, or could not be reversed: a person must find it.
    ReturnedItem,
}

/// Cash applied to one invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub invoice_id: String,
    /// Cash applied; negative when a credit memo is netted.
    pub amount: Decimal,
    /// Early-payment discount granted.
    pub discount: Decimal,
    /// Short pay accepted as a deduction (chargeback, bank fee, dispute).
    pub deduction: Decimal,
    pub reason_code: Option<String>,
}

impl Allocation {
    /// How much of the invoice's open amount this allocation closes.
    pub fn relieved(&self) -> Decimal {
        self.amount + self.discount + self.deduction
    }
}

/// A ranked candidate shown to an analyst.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub confidence: f64,
    pub allocations: Vec<Allocation>,
    /// Cash the suggestion leaves unapplied.
    pub unapplied: Decimal,
    pub explanation: Vec<String>,
}

/// The engine's answer for one payment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub payment_id: String,
    pub status: Status,
    /// Calibrated probability that the best allocation is exactly right.
    pub confidence: f64,
    pub customer_id: Option<String>,
    /// What was applied; empty for review.
    pub allocations: Vec<Allocation>,
    /// Cash not applied to any invoice; for review, the whole payment.
    pub unapplied: Decimal,
    /// For review, the ranked candidates, best first.
    pub suggestions: Vec<Suggestion>,
    pub explanation: Vec<String>,
    pub review_reason: Option<ReviewReason>,
    pub model_version: String,
    pub rules_version: String,
    /// What the rules made of the differences of an auto decision: empty under the default
    /// rules, and for review.
    #[serde(default, skip_serializing_if = "RulesApplied::is_empty")]
    pub by_rules: RulesApplied,
}

/// What the rules (`crate::rules`) made of an auto decision's differences: residuals written off
/// on its invoices, and what becomes of the cash it leaves unapplied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesApplied {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_offs: Vec<WriteOffLine>,
    #[serde(default, skip_serializing_if = "Leftover::is_unapplied")]
    pub leftover: Leftover,
}

impl RulesApplied {
    /// Nothing written off and the unapplied cash left waiting: the decision as without rules.
    pub fn is_empty(&self) -> bool {
        self.write_offs.is_empty() && self.leftover.is_unapplied()
    }
}

/// A residual the rules wrote off on an invoice, relieving it of `amount` beside the cash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOffLine {
    pub invoice_id: String,
    pub amount: Decimal,
    pub reason_code: String,
}

/// What becomes of the cash a decision leaves unapplied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leftover {
    /// It waits, unapplied.
    #[default]
    Unapplied,
    /// It is kept on the payer's account (`Decision::customer_id`).
    OnAccount,
    /// It is written off under the rules' overpayment limits.
    WriteOff { reason_code: String },
}

impl Leftover {
    pub fn is_unapplied(&self) -> bool {
        *self == Leftover::Unapplied
    }
}

/// One row of labelled history: cash of a payment that was applied to an invoice. A payment that
/// appears in the history's remittances with no label rows had no correct match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub payment_id: String,
    pub invoice_id: String,
    pub applied_amount: Decimal,
}

/// Who said a label is true. When sources disagree about a payment, the strongest wins (the
/// order of the variants): an analyst's decision over the imported history, and both over an
/// auto-applied match that nobody reversed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelSource {
    /// Auto-applied by the engine and never reversed.
    Auto,
    /// Imported history (the ERP's own cash application).
    History,
    /// Decided by an analyst in the review queue.
    Analyst,
}

impl LabelSource {
    /// The name written in the `source` column of a labels file.
    pub fn name(self) -> &'static str {
        match self {
            LabelSource::Auto => "auto",
            LabelSource::History => "history",
            LabelSource::Analyst => "analyst",
        }
    }

    /// Reads a `source` field, in any case.
    pub fn parse(s: &str) -> Result<LabelSource, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(LabelSource::Auto),
            "history" => Ok(LabelSource::History),
            "analyst" => Ok(LabelSource::Analyst),
            _ => Err(format!(
                "{s:?} is not a label source (analyst, auto or history)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn terms_parse_common_spellings() {
        let t = Terms::parse("2/10 NET 30").unwrap();
        assert_eq!(
            (t.discount_rate, t.discount_days, t.net_days),
            (dec!(0.02), 10, 30)
        );
        let t = Terms::parse("net30").unwrap();
        assert_eq!((t.discount_rate, t.net_days), (Decimal::ZERO, 30));
        let t = Terms::parse("1.5% 15 N45").unwrap();
        assert_eq!(
            (t.discount_rate, t.discount_days, t.net_days),
            (dec!(0.015), 15, 45)
        );
        assert_eq!(Terms::parse("").unwrap(), Terms::default());
        assert!(Terms::parse("whenever").is_err());
        assert_eq!(
            Terms::parse("2/10 NET 30").unwrap().to_string(),
            "2/10 NET 30"
        );
    }

    #[test]
    fn currency_is_validated() {
        assert_eq!("usd".parse::<Currency>().unwrap(), Currency::USD);
        assert!("US".parse::<Currency>().is_err());
        assert!("U$D".parse::<Currency>().is_err());
    }

    #[test]
    fn decimals_serialise_as_strings() {
        let a = Allocation {
            invoice_id: "I1".into(),
            amount: dec!(10.50),
            discount: Decimal::ZERO,
            deduction: Decimal::ZERO,
            reason_code: None,
        };
        let j = serde_json::to_string(&a).unwrap();
        assert!(j.contains("\"amount\":\"10.50\""), "{j}");
    }
}
