//! What one receipt and one advice say about being the same money.

use super::LinkConfig;
use crate::domain::{Direction, Payment};
use crate::ledger::{CustomerIdx, Ledger};
use crate::matching::amounts::subset_sums;
use crate::matching::payer::{PayerVia, identify};
use crate::text::names::{name_similarity, normalize_name};
use crate::text::references::{RefKey, extract_from_text};
use rust_decimal::Decimal;

/// Two payer names the ledger does not know are taken as one payer from this similarity.
const MIN_UNKNOWN_NAME_SIMILARITY: f64 = 0.92;

/// A reference that resolves to more customers than this says nothing about the payer (a short
/// number every customer's invoices share a core with).
const MAX_REFERENCE_CUSTOMERS: usize = 3;

/// How much more than an invoice's amount a line may say it pays and still name its payer
/// (interest or a rounding the payer added): 1%.
const OVER_INVOICE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// Most open credit memos of one customer looked at to explain a receipt short of its advice;
/// a customer with more is not searched (too many sums to tell a coincidence from a reason).
const MAX_OPEN_CREDITS: usize = 24;

/// Most open credit memos that together explain a shortfall.
const MAX_CREDITS_TAKEN: usize = 2;

/// How strongly the payer is tied: the receipt side decides, since the bank's account is
/// stronger evidence than a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PayerTie {
    /// Nothing ties the payers: one side's payer is not told at all (an unknown remitter, an
    /// advice without a name whose references name no one), and the amounts are equal exactly.
    AmountOnly = 0,
    /// Two customers of one group: the receipt comes from a company of the group the advice's
    /// customer belongs to (a sister company paying from its own account), the amounts equal.
    Group = 1,
    /// Only the two names agree; the ledger knows neither.
    SameName = 2,
    /// A common customer, found for the receipt through a parent company.
    Parent = 3,
    /// A common customer, found for the receipt by name.
    Name = 4,
    /// A common customer, found for the receipt by bank account.
    Account = 5,
}

/// The top of a customer's group: its parent company, or itself.
fn group_of(ledger: &Ledger, c: CustomerIdx) -> CustomerIdx {
    ledger.customer_keys(c).parent.unwrap_or(c)
}

/// The facts of one item that linking compares, computed once.
pub(crate) struct Facts {
    /// Ledger customers it points at, with the strongest way each was found; sorted by customer.
    customers: Vec<(CustomerIdx, PayerVia)>,
    name_norm: String,
    /// Reference cores it carries (remittance lines, and for a receipt its memo).
    refs: Vec<String>,
}

impl Facts {
    pub(crate) fn of(ledger: &Ledger, p: &Payment) -> Facts {
        let mut customers: Vec<(CustomerIdx, PayerVia)> = identify(ledger, p)
            .into_iter()
            .map(|m| (m.customer, m.via))
            .collect();
        let mut refs: Vec<String> = Vec::new();
        // Each reference with what its line says it pays, when it says.
        let mut keys: Vec<(RefKey, Option<Decimal>)> = p
            .lines
            .iter()
            .filter_map(|l| Some((RefKey::new(l.reference.as_deref()?), l.amount_paid)))
            .collect();
        // A bank memo is the only place a receipt carries references.
        if p.lines.is_empty() {
            for t in &p.free_text {
                keys.extend(
                    extract_from_text(t)
                        .iter()
                        .map(|r| (RefKey::new(&r.reference), None)),
                );
            }
        }
        for (k, paid) in keys {
            if k.core.len() < 4 {
                continue;
            }
            // The invoices it names exactly say who the payer is (an advice often carries no
            // account and a name the ledger spells otherwise).
            let mut ids: Vec<_> = ledger.lookup_norm(&k.norm).collect();
            ledger.lookup_core(&k.core, false, &mut ids);
            // A number the AP system mistyped (one character off, as the matcher allows) still
            // says whose invoice it is; a core that near many customers' says nothing (below).
            if ids.is_empty() {
                ledger.lookup_core(&k.core, true, &mut ids);
            }
            // Invoice numbers run in one sequence across customers, so a mistyped number is
            // often another customer's invoice: one already paid, or worth less than the line
            // pays, does not say who the payer is (the payer's name or account may still).
            if let Some(paid) = paid.filter(|x| x.is_sign_positive() && !x.is_zero()) {
                ids.retain(|&i| {
                    let inv = ledger.invoice(i);
                    inv.open_amount.is_sign_positive()
                        && !inv.open_amount.is_zero()
                        && paid <= inv.amount + inv.amount * OVER_INVOICE
                });
            }
            let mut owners: Vec<CustomerIdx> =
                ids.iter().map(|&i| ledger.invoice_customer(i)).collect();
            owners.sort_unstable();
            owners.dedup();
            if owners.len() <= MAX_REFERENCE_CUSTOMERS {
                for c in owners {
                    if !customers.iter().any(|(x, _)| *x == c) {
                        customers.push((c, PayerVia::Reference));
                    }
                }
            }
            refs.push(k.core);
        }
        customers.sort_unstable();
        customers.dedup_by_key(|(c, _)| *c);
        refs.sort_unstable();
        refs.dedup();
        Facts {
            customers,
            name_norm: p
                .payer
                .name
                .as_deref()
                .map(normalize_name)
                .unwrap_or_default(),
            refs,
        }
    }

    /// The ledger customers it points at.
    pub(crate) fn customer_ids(&self) -> impl Iterator<Item = CustomerIdx> + '_ {
        self.customers.iter().map(|(c, _)| *c)
    }

    /// Whether the two point at a common ledger customer.
    pub(crate) fn shares_customer(&self, other: &Facts) -> bool {
        self.customers
            .iter()
            .any(|(c, _)| other.customers.binary_search_by_key(c, |x| x.0).is_ok())
    }

    /// Whether a receipt with these facts could have been sent for the advice with `advice`'s
    /// even when nothing ties the two: its payer is not told (an unknown remitter, a payment
    /// service), or it is a ledger customer of the same group as one the advice points at (the
    /// customer itself, its parent, a subsidiary or a sister company). A receipt from an
    /// unrelated known customer is that customer's money.
    /// `linked_customer` is the customer of the link in question: a receipt pointing at it is
    /// that customer's other payment, which the choice of the single best pair already weighed.
    pub(crate) fn could_be_for(
        &self,
        ledger: &Ledger,
        advice: &Facts,
        linked_customer: Option<CustomerIdx>,
    ) -> bool {
        if self.customers.is_empty() {
            return true;
        }
        if linked_customer.is_some_and(|c| self.customers.iter().any(|(x, _)| *x == c)) {
            return false;
        }
        self.customers.iter().any(|(x, _)| {
            advice
                .customers
                .iter()
                .any(|(y, _)| group_of(ledger, *x) == group_of(ledger, *y))
        })
    }
}

/// Evidence that one receipt and one advice belong together, apart from the amount: same
/// currency, dates in the window, and the payer or a reference in common.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Related {
    pub payer: Option<(PayerTie, Option<CustomerIdx>)>,
    /// A reference core both carry.
    pub reference: Option<String>,
    /// Days between the two dates, when both are known.
    pub days_apart: Option<i64>,
}

impl Related {
    pub(crate) fn of(
        ledger: &Ledger,
        receipt: &Payment,
        rf: &Facts,
        advice: &Payment,
        af: &Facts,
        config: &LinkConfig,
        amount_only: bool,
    ) -> Option<Related> {
        if receipt.currency != advice.currency
            || receipt.direction != Direction::Credit
            || advice.direction != Direction::Credit
        {
            return None;
        }
        let days_apart = super::days_apart(receipt, advice);
        if days_apart.is_some_and(|d| d > config.window_days) {
            return None;
        }
        let mut payer: Option<(PayerTie, Option<CustomerIdx>)> = None;
        for (c, via) in &rf.customers {
            if *via == PayerVia::Reference || af.customers.binary_search_by_key(c, |x| x.0).is_err()
            {
                continue;
            }
            let tie = match via {
                PayerVia::Account => PayerTie::Account,
                PayerVia::Name => PayerTie::Name,
                PayerVia::Parent | PayerVia::Reference => PayerTie::Parent,
            };
            if payer.is_none_or(|(t, _)| tie > t) {
                payer = Some((tie, Some(*c)));
            }
        }
        // A sister company pays from its own account for invoices of the customer the advice
        // names: the ledger knows both as one group. Only for the exact amount, as an untold
        // payer's: the group's companies also pay their own invoices.
        if payer.is_none() && amount_only {
            payer = rf
                .customers
                .iter()
                .filter(|(_, via)| *via != PayerVia::Reference)
                .find_map(|(x, _)| {
                    af.customers
                        .iter()
                        .find(|(y, _)| group_of(ledger, *x) == group_of(ledger, *y))
                        .map(|(y, _)| (PayerTie::Group, Some(*y)))
                });
        }
        if payer.is_none()
            && !rf.name_norm.is_empty()
            && name_similarity(&rf.name_norm, &af.name_norm) >= MIN_UNKNOWN_NAME_SIMILARITY
        {
            payer = Some((PayerTie::SameName, None));
        }
        let reference = rf
            .refs
            .iter()
            .find(|r| af.refs.binary_search(r).is_ok())
            .cloned();
        if payer.is_none() && reference.is_none() {
            // Where one side's payer cannot be told, the amount may still be the only evidence:
            // weakest of all, linked only when nothing else fits either side.
            if !(amount_only && (rf.customers.is_empty() || af.customers.is_empty())) {
                return None;
            }
            payer = Some((PayerTie::AmountOnly, None));
        }
        Some(Related {
            payer,
            reference,
            days_apart,
        })
    }
}

/// How good a 1:1 pair is; pairs are compared by it, and equal keys are a tie. The dates only
/// gate: two advices of one payer and one amount within the window are a tie whatever their
/// days, since a payer's AP run sends the same amount again.
pub(crate) type Key = (bool, bool, Option<PayerTie>);

/// An admissible 1:1 pair: related, and the amounts agree (equal, short by a fee, short by
/// open credit memos of the customer that the advice does not list, or a little over).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PairEvidence {
    pub related: Related,
    /// The advice's amount less the receipt's: zero, a bank fee, the credit memos' total, or
    /// negative for a receipt over its advice.
    pub fee: Decimal,
    /// The numbers of the customer's open credit memos that make up `fee` when it is more than
    /// a bank fee: the payer took them from what it sent without listing them on the advice.
    pub credits: Vec<String>,
    /// The customer's id, for the description.
    pub customer_id: Option<String>,
}

impl PairEvidence {
    pub(crate) fn of(
        ledger: &Ledger,
        receipt: &Payment,
        rf: &Facts,
        advice: &Payment,
        af: &Facts,
        config: &LinkConfig,
    ) -> Option<PairEvidence> {
        if !receipt.amount.is_sign_positive() || receipt.amount.is_zero() {
            return None;
        }
        let fee = advice.amount - receipt.amount;
        if fee.is_sign_negative() {
            return Self::overpaid(ledger, receipt, rf, advice, af, config, -fee);
        }
        // Beyond a fee only a common customer's credit memos explain the difference: without a
        // common customer there is nothing to look at (and most pairs end here, cheaply).
        if fee > config.fee_limit && !rf.shares_customer(af) {
            return None;
        }
        let related = Related::of(ledger, receipt, rf, advice, af, config, fee.is_zero())?;
        let customer = related.payer.and_then(|(_, c)| c);
        let credits = if fee > config.fee_limit {
            // More than a fee is explained only by the common customer's own open credit memos.
            open_credits_making_up(ledger, customer?, fee, &af.refs)?
        } else {
            Vec::new()
        };
        Some(PairEvidence {
            related,
            fee,
            credits,
            customer_id: customer.map(|c| ledger.customer(c).id.clone()),
        })
    }

    /// A receipt `over` more than its advice: the payer sent more than the advice lists (rounded
    /// up, paid an invoice's original amount after a part payment). As weak as a fee, and weaker
    /// in what it admits: a common ledger customer found by account, name or parent, at most
    /// [`super::NEAR_AMOUNT`] of the advice over it, and dates within the usual delay of an
    /// advice ([`LinkConfig::usual_delay_days`]); an exact receipt of the advice's amount from
    /// anyone leaves it in doubt (`link`).
    fn overpaid(
        ledger: &Ledger,
        receipt: &Payment,
        rf: &Facts,
        advice: &Payment,
        af: &Facts,
        config: &LinkConfig,
        over: Decimal,
    ) -> Option<PairEvidence> {
        if over > advice.amount * super::NEAR_AMOUNT || !rf.shares_customer(af) {
            return None;
        }
        let related = Related::of(ledger, receipt, rf, advice, af, config, false)?;
        let customer = match related.payer {
            Some((PayerTie::Account | PayerTie::Name | PayerTie::Parent, Some(c))) => c,
            _ => return None,
        };
        if related
            .days_apart
            .is_none_or(|d| d > config.usual_delay_days)
        {
            return None;
        }
        Some(PairEvidence {
            related,
            fee: -over,
            credits: Vec::new(),
            customer_id: Some(ledger.customer(customer).id.clone()),
        })
    }

    pub(crate) fn key(&self) -> Key {
        (
            self.related.reference.is_some(),
            self.fee.is_zero(),
            self.related.payer.map(|(t, _)| t),
        )
    }

    /// The evidence in words, for the explanation of the decision that follows.
    pub(crate) fn describe(&self) -> Vec<String> {
        let mut out = describe(&self.related, self.customer_id.as_deref(), self.fee);
        if !self.credits.is_empty() {
            if let Some(line) = out.iter_mut().find(|l| l.starts_with("amount:")) {
                *line = format!(
                    "amount: receipt {} short of the advice, the customer's open credit memo{} {} (not listed on the advice)",
                    self.fee,
                    if self.credits.len() > 1 { "s" } else { "" },
                    self.credits.join(" and ")
                );
            }
        }
        out
    }
}

/// The numbers of one to [`MAX_CREDITS_TAKEN`] open credit memos of `customer` whose open
/// amounts make up `short` exactly, none of them quoted on the advice (`quoted`: its reference
/// cores), when exactly one combination does. An AP department often takes its open credits
/// from the payment and lists only the invoices; an analyst explains the difference by them. Two
/// combinations that add up are a coincidence as likely as a reason: nothing is explained.
fn open_credits_making_up(
    ledger: &Ledger,
    customer: CustomerIdx,
    short: Decimal,
    quoted: &[String],
) -> Option<Vec<String>> {
    let credits: Vec<(Decimal, &str)> = ledger
        .customer_open_invoices(customer)
        .iter()
        .map(|&i| ledger.invoice(i))
        .filter(|inv| inv.open_amount.is_sign_negative() && !inv.open_amount.is_zero())
        .filter(|inv| {
            quoted
                .binary_search(&RefKey::new(&inv.number).core)
                .is_err()
        })
        .map(|inv| (-inv.open_amount, inv.number.as_str()))
        .collect();
    if credits.is_empty() || credits.len() > MAX_OPEN_CREDITS {
        return None;
    }
    let amounts: Vec<Decimal> = credits.iter().map(|c| c.0).collect();
    let mut found: Vec<Vec<usize>> = (0..amounts.len())
        .filter(|&k| amounts[k] == short)
        .map(|k| vec![k])
        .collect();
    found.extend(subset_sums(&amounts, short, MAX_CREDITS_TAKEN, 2).0);
    match found.as_slice() {
        [only] => Some(only.iter().map(|&k| credits[k].1.to_string()).collect()),
        _ => None,
    }
}

/// The evidence of a link in words.
pub(crate) fn describe(related: &Related, customer_id: Option<&str>, fee: Decimal) -> Vec<String> {
    let mut out = Vec::new();
    match (related.payer, customer_id) {
        (Some((PayerTie::AmountOnly, _)), _) => out.push(
            "payer: not told on one side; the exact amount is the only evidence, and nothing else fits either"
                .to_string(),
        ),
        (Some((PayerTie::SameName, _)), _) => {
            out.push("payer: the same name on both (not a ledger customer)".to_string())
        }
        (Some((tie, _)), Some(id)) => out.push(format!(
            "payer: customer {id}, by the receipt's {}",
            match tie {
                PayerTie::Account => "bank account",
                PayerTie::Name => "payer name",
                PayerTie::Group => "bank account of another company of the customer's group",
                _ => "payer's subsidiary (parent company pays)",
            }
        )),
        _ => {}
    }
    if let Some(r) = &related.reference {
        out.push(format!("reference {r} on both"));
    }
    if fee.is_zero() {
        out.push("amount: equal".to_string());
    } else if fee.is_sign_negative() {
        out.push(format!(
            "amount: receipt {} over the advice (paid more than it lists)",
            -fee
        ));
    } else {
        out.push(format!(
            "amount: receipt {fee} short of the advice (bank fee)"
        ));
    }
    if let Some(d) = related.days_apart {
        out.push(format!("dates {d} days apart"));
    }
    out
}
