//! The postings journal: every movement of cash as one immutable, sequenced record, written in
//! the same transaction as the change it records. Nothing is edited or deleted; an application
//! is undone by a reversing posting. Replaying the journal from sequence 1 gives every invoice's
//! open amount ([`replay_open_amounts`]).

use crate::domain::{Allocation, Currency, Decision, Leftover, Payment};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a posting records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    /// Cash applied to an invoice (negative when a credit memo is netted).
    Applied,
    /// An early-payment discount granted on an invoice.
    Discount,
    /// A short pay accepted as a deduction, with its reason code.
    Deduction,
    /// A difference written off on an invoice.
    WriteOff,
    /// Cash of a payment on no invoice, waiting.
    Unapplied,
    /// Cash kept on a customer's account.
    OnAccount,
    /// The AR system changed an invoice's open amount outside any payment (an opening balance,
    /// a credit note booked in the ERP, a closure): the difference, so that the journal still
    /// explains every open amount.
    ArAdjustment,
    /// Undoes the posting named by `reverses`: same invoice or customer, the amount negated.
    Reversal,
}

impl PostingKind {
    /// The name stored and sent.
    pub fn name(self) -> &'static str {
        match self {
            PostingKind::Applied => "applied",
            PostingKind::Discount => "discount",
            PostingKind::Deduction => "deduction",
            PostingKind::WriteOff => "write_off",
            PostingKind::Unapplied => "unapplied",
            PostingKind::OnAccount => "on_account",
            PostingKind::ArAdjustment => "ar_adjustment",
            PostingKind::Reversal => "reversal",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<PostingKind> {
        [
            PostingKind::Applied,
            PostingKind::Discount,
            PostingKind::Deduction,
            PostingKind::WriteOff,
            PostingKind::Unapplied,
            PostingKind::OnAccount,
            PostingKind::ArAdjustment,
            PostingKind::Reversal,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// Who or what made a posting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The engine, applying without a person (model and rules versions recorded).
    Engine,
    /// An analyst resolving a review item.
    Analyst,
    /// The AR system through the ledger calls.
    ArSystem,
}

impl ActorKind {
    /// The name stored and sent.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Engine => "engine",
            ActorKind::Analyst => "analyst",
            ActorKind::ArSystem => "ar_system",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<ActorKind> {
        [ActorKind::Engine, ActorKind::Analyst, ActorKind::ArSystem]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

/// One movement of cash, before the store gives it its sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostingRecord {
    pub kind: PostingKind,
    /// The payment whose cash moved; empty for an [`PostingKind::ArAdjustment`].
    pub payment_id: String,
    /// The invoice, for postings on an invoice.
    pub invoice_id: Option<String>,
    /// The customer, when known (always for cash on account).
    pub customer_id: Option<String>,
    pub currency: Currency,
    /// Signed: what the posting relieves of the invoice, or adds to the waiting cash.
    pub amount: Decimal,
    /// For a deduction or a write-off.
    pub reason_code: Option<String>,
    pub actor_kind: ActorKind,
    /// The analyst's or the AR system's principal; the engine's is `engine`.
    pub actor: String,
    pub model_version: Option<String>,
    pub rules_version: Option<String>,
    /// For a reversal: the sequence of the posting it undoes.
    pub reverses: Option<u64>,
    pub at: DateTime<Utc>,
}

impl PostingRecord {
    /// Whether the posting moves an invoice's open amount (by `-amount`).
    pub fn on_invoice(&self) -> bool {
        self.invoice_id.is_some()
    }
}

/// A posting as stored: its gap-free sequence number (from 1) and the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Posting {
    pub sequence: u64,
    #[serde(flatten)]
    pub record: PostingRecord,
}

/// Who is posting cash, and under which versions.
#[derive(Clone, Debug)]
pub struct PostedBy {
    pub kind: ActorKind,
    pub name: String,
    pub model_version: Option<String>,
    pub rules_version: Option<String>,
}

impl PostedBy {
    /// The engine, with the versions of the decision it made.
    pub fn engine(d: &Decision) -> PostedBy {
        PostedBy {
            kind: ActorKind::Engine,
            name: "engine".into(),
            model_version: Some(d.model_version.clone()),
            rules_version: Some(d.rules_version.clone()),
        }
    }
}

/// The postings of cash applied to invoices, then of what was left: one posting per non-zero
/// cash, discount and deduction of each allocation, then the remainder as unapplied (or on the
/// account of `on_account`).
pub fn payment_postings(
    payment: &Payment,
    customer_id: Option<&str>,
    allocations: &[Allocation],
    unapplied: Decimal,
    on_account: Option<&str>,
    by: &PostedBy,
    at: DateTime<Utc>,
) -> Vec<PostingRecord> {
    let base = |kind, invoice_id: Option<&str>, customer: Option<&str>, amount| PostingRecord {
        kind,
        invoice_id: invoice_id.map(str::to_string),
        customer_id: customer.map(str::to_string),
        amount,
        ..posting(payment, by, at)
    };
    let mut out = Vec::new();
    for a in allocations {
        let parts = [
            (PostingKind::Applied, a.amount),
            (PostingKind::Discount, a.discount),
            (PostingKind::Deduction, a.deduction),
        ];
        for (kind, amount) in parts {
            if amount.is_zero() {
                continue;
            }
            let mut p = base(kind, Some(&a.invoice_id), customer_id, amount);
            if kind == PostingKind::Deduction {
                p.reason_code = a.reason_code.clone();
            }
            out.push(p);
        }
    }
    if !unapplied.is_zero() {
        out.push(match on_account {
            Some(c) => base(PostingKind::OnAccount, None, Some(c), unapplied),
            None => base(PostingKind::Unapplied, None, customer_id, unapplied),
        });
    }
    out
}

/// The postings of an auto decision: its cash as [`payment_postings`] gives them, a
/// [`PostingKind::WriteOff`] for each residual the rules wrote off on an invoice, and the cash
/// left over as the rules say (unapplied, on the customer's account, or written off).
pub fn decision_postings(
    payment: &Payment,
    d: &Decision,
    by: &PostedBy,
    at: DateTime<Utc>,
) -> Vec<PostingRecord> {
    let customer = d.customer_id.as_deref();
    let on_account = match d.by_rules.leftover {
        Leftover::OnAccount => customer,
        Leftover::Unapplied | Leftover::WriteOff { .. } => None,
    };
    let mut out = payment_postings(
        payment,
        customer,
        &d.allocations,
        d.unapplied,
        on_account,
        by,
        at,
    );
    // The leftover, if any, is the last posting: the write-offs go before it.
    let leftover = if out.last().is_some_and(|p| !p.on_invoice()) {
        out.pop()
    } else {
        None
    };
    for w in &d.by_rules.write_offs {
        out.push(PostingRecord {
            kind: PostingKind::WriteOff,
            invoice_id: Some(w.invoice_id.clone()),
            amount: w.amount,
            reason_code: Some(w.reason_code.clone()),
            ..posting(payment, by, at)
        });
    }
    if let Some(mut p) = leftover {
        if let Leftover::WriteOff { reason_code } = &d.by_rules.leftover {
            p.kind = PostingKind::WriteOff;
            p.reason_code = Some(reason_code.clone());
        }
        out.push(p);
    }
    out
}

/// A posting of `payment`'s cash by `by`, to be given its kind, place and amount.
fn posting(payment: &Payment, by: &PostedBy, at: DateTime<Utc>) -> PostingRecord {
    PostingRecord {
        kind: PostingKind::Applied,
        payment_id: payment.payment_id.clone(),
        invoice_id: None,
        customer_id: None,
        currency: payment.currency,
        amount: Decimal::ZERO,
        reason_code: None,
        actor_kind: by.kind,
        actor: by.name.clone(),
        model_version: by.model_version.clone(),
        rules_version: by.rules_version.clone(),
        reverses: None,
        at,
    }
}

/// The postings of a journal (or of one payment's part of it) still in force: neither a
/// reversal nor reversed by one. In sequence order.
pub fn live_postings(postings: &[Posting]) -> Vec<&Posting> {
    let reversed: std::collections::HashSet<u64> =
        postings.iter().filter_map(|p| p.record.reverses).collect();
    postings
        .iter()
        .filter(|p| p.record.kind != PostingKind::Reversal && !reversed.contains(&p.sequence))
        .collect()
}

/// One reversal of each posting: the same payment, invoice, customer and currency, the amount
/// negated, naming the posting it undoes; `reason_code` is the bank's return code of a return.
pub fn reversal_postings(
    live: &[&Posting],
    by: &PostedBy,
    reason_code: Option<&str>,
    at: DateTime<Utc>,
) -> Vec<PostingRecord> {
    live.iter()
        .map(|p| PostingRecord {
            kind: PostingKind::Reversal,
            amount: -p.record.amount,
            reason_code: reason_code.map(str::to_string),
            actor_kind: by.kind,
            actor: by.name.clone(),
            model_version: by.model_version.clone(),
            rules_version: by.rules_version.clone(),
            reverses: Some(p.sequence),
            at,
            ..p.record.clone()
        })
        .collect()
}

/// Open amounts from the journal: each invoice's amount (given) less every posting on it.
/// Postings on invoices not in `amounts` are ignored.
pub fn replay_open_amounts<'a>(
    amounts: impl IntoIterator<Item = (&'a str, Decimal)>,
    postings: &[Posting],
) -> HashMap<String, Decimal> {
    let mut open: HashMap<String, Decimal> = amounts
        .into_iter()
        .map(|(id, a)| (id.to_string(), a))
        .collect();
    for p in postings {
        if let Some(id) = &p.record.invoice_id {
            if let Some(o) = open.get_mut(id) {
                *o -= p.record.amount;
            }
        }
    }
    open
}

/// Which postings to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostingFilter {
    /// Every posting.
    All,
    /// The postings of one payment.
    Payment(String),
    /// The postings on one invoice.
    Invoice(String),
    /// The postings of one customer's cash: applied, unapplied and on account.
    Customer(String),
}
