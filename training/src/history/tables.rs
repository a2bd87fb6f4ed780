//! From batches of rows to the domain types, following docs/formats.md column for column: the
//! same required columns, the same money and date rules, the same grouping of remittance rows
//! into payments as `cashmatch::io` (a test reads one world both ways and compares).

use super::frame::{Batch, Kind, Spec, Table, opt, req};
use cashmatch::domain::{
    Adjustment, Currency, Customer, Direction, Invoice, Label, Payer, Payment, ReferenceKind,
    RemittanceLine, Terms,
};
use cashmatch::formats::{FormatError, Position};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Where a label came from. When sources disagree about a payment, an analyst's decision wins
/// over the imported history, and both win over an auto-applied match never reversed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LabelSource {
    /// Auto-applied by the engine and never reversed.
    Auto,
    /// Imported history (the ERP's own cash application).
    History,
    /// Decided by an analyst in the review queue.
    Analyst,
}

impl LabelSource {
    /// The name used in the `source` column and in reports.
    pub fn name(self) -> &'static str {
        match self {
            LabelSource::Auto => "auto",
            LabelSource::History => "history",
            LabelSource::Analyst => "analyst",
        }
    }

    fn parse(s: &str) -> Option<LabelSource> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Some(LabelSource::Auto),
            "history" => Some(LabelSource::History),
            "analyst" => Some(LabelSource::Analyst),
            _ => None,
        }
    }
}

/// Reads `customers`: `customer_id,name[,parent_id,bank_accounts]`. A repeated id is an error
/// at the later row, which is dropped.
pub(crate) fn customers(
    t: &Table,
    out: &mut Vec<Customer>,
    errors: &mut Vec<FormatError>,
) -> Result<(), FormatError> {
    const SPECS: [Spec; 4] = [
        req("customer_id", Kind::Text),
        req("name", Kind::Text),
        opt("parent_id", Kind::Text),
        opt("bank_accounts", Kind::Text),
    ];
    let mut seen: HashMap<String, usize> = HashMap::new();
    t.for_each_batch(&SPECS, |b| {
        for i in 0..b.len() {
            let row = (|| {
                Ok::<_, FormatError>(Customer {
                    id: b.required(i, 0)?.into_owned(),
                    name: b.required(i, 1)?.into_owned(),
                    parent_id: b.text(i, 2).map(|s| s.into_owned()),
                    bank_accounts: b
                        .text(i, 3)
                        .map(|t| {
                            t.split(';')
                                .map(str::trim)
                                .filter(|a| !a.is_empty())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })();
            match row {
                Ok(c) => match seen.entry(c.id.clone()) {
                    Entry::Occupied(e) => errors.push(b.error(
                        i,
                        0,
                        format!("{:?} repeats the customer_id of line {}", c.id, e.get()),
                    )),
                    Entry::Vacant(e) => {
                        e.insert(b.line(i));
                        out.push(c);
                    }
                },
                Err(e) => errors.push(e),
            }
        }
        Ok(())
    })
}

/// Reads `invoices`, the ledger, with the open-amount rules of docs/formats.md.
pub(crate) fn invoices(
    t: &Table,
    out: &mut Vec<Invoice>,
    errors: &mut Vec<FormatError>,
) -> Result<(), FormatError> {
    const SPECS: [Spec; 10] = [
        req("invoice_id", Kind::Text),
        req("customer_id", Kind::Text),
        req("invoice_number", Kind::Text),
        opt("po_number", Kind::Text),
        req("invoice_date", Kind::Date),
        req("due_date", Kind::Date),
        opt("currency", Kind::Text),
        req("amount", Kind::Money),
        req("open_amount", Kind::Money),
        opt("terms", Kind::Text),
    ];
    let mut seen: HashMap<String, usize> = HashMap::new();
    // A ledger repeats a handful of terms spellings a million times; parse each once.
    let mut terms_seen: HashMap<String, Terms> = HashMap::new();
    t.for_each_batch(&SPECS, |b| {
        for i in 0..b.len() {
            let row = (|| {
                let amount = b.money(i, 7)?;
                let open_amount = b.money(i, 8)?;
                if !open_amount.is_zero()
                    && open_amount.is_sign_negative() != amount.is_sign_negative()
                {
                    return Err(b.error(
                        i,
                        8,
                        format!("{open_amount} has the opposite sign to amount {amount}"),
                    ));
                }
                if open_amount.abs() > amount.abs() {
                    return Err(b.error(i, 8, format!("{open_amount} is beyond amount {amount}")));
                }
                let terms = match b.text(i, 9) {
                    None => Terms::default(),
                    Some(s) => match terms_seen.get(&*s) {
                        Some(t) => *t,
                        None => {
                            let parsed = Terms::parse(&s).map_err(|m| b.error(i, 9, m))?;
                            if terms_seen.len() < 64 {
                                terms_seen.insert(s.into_owned(), parsed);
                            }
                            parsed
                        }
                    },
                };
                Ok(Invoice {
                    id: b.required(i, 0)?.into_owned(),
                    customer_id: b.required(i, 1)?.into_owned(),
                    number: b.required(i, 2)?.into_owned(),
                    po_number: b.text(i, 3).map(|s| s.into_owned()),
                    invoice_date: b.date(i, 4)?,
                    due_date: b.date(i, 5)?,
                    currency: currency(b, i, 6)?,
                    amount,
                    open_amount,
                    terms,
                })
            })();
            match row {
                Ok(inv) => match seen.entry(inv.id.clone()) {
                    Entry::Occupied(e) => errors.push(b.error(
                        i,
                        0,
                        format!("{:?} repeats the invoice_id of line {}", inv.id, e.get()),
                    )),
                    Entry::Vacant(e) => {
                        e.insert(b.line(i));
                        out.push(inv);
                    }
                },
                Err(e) => errors.push(e),
            }
        }
        Ok(())
    })
}

fn currency(b: &Batch<'_>, i: usize, c: usize) -> Result<Currency, FormatError> {
    match b.text(i, c) {
        Some(t) => t.parse::<Currency>().map_err(|m| b.error(i, c, m)),
        None => Ok(Currency::USD),
    }
}

/// Reads labels: `payment_id,invoice_id,applied_amount[,source]`; rows without a source get
/// `default_source`.
pub(crate) fn labels(
    t: &Table,
    default_source: LabelSource,
    out: &mut Vec<(Label, LabelSource)>,
    errors: &mut Vec<FormatError>,
) -> Result<(), FormatError> {
    const SPECS: [Spec; 4] = [
        req("payment_id", Kind::Text),
        req("invoice_id", Kind::Text),
        req("applied_amount", Kind::Money),
        opt("source", Kind::Text),
    ];
    t.for_each_batch(&SPECS, |b| {
        for i in 0..b.len() {
            let row = (|| {
                let source = match b.text(i, 3) {
                    None => default_source,
                    Some(s) => LabelSource::parse(&s).ok_or_else(|| {
                        b.error(
                            i,
                            3,
                            format!("{s:?} is not a label source (analyst, auto or history)"),
                        )
                    })?,
                };
                Ok::<_, FormatError>((
                    Label {
                        payment_id: b.required(i, 0)?.into_owned(),
                        invoice_id: b.required(i, 1)?.into_owned(),
                        applied_amount: b.money(i, 2)?,
                    },
                    source,
                ))
            })();
            match row {
                Ok(l) => out.push(l),
                Err(e) => errors.push(e),
            }
        }
        Ok(())
    })
}

/// Reads case families: `payment_id,case`.
pub(crate) fn cases(
    t: &Table,
    out: &mut HashMap<String, String>,
    errors: &mut Vec<FormatError>,
) -> Result<(), FormatError> {
    const SPECS: [Spec; 2] = [req("payment_id", Kind::Text), req("case", Kind::Text)];
    t.for_each_batch(&SPECS, |b| {
        for i in 0..b.len() {
            match (b.required(i, 0), b.required(i, 1)) {
                (Ok(p), Ok(c)) => {
                    out.insert(p.into_owned(), c.into_owned());
                }
                (Err(e), _) | (_, Err(e)) => errors.push(e),
            }
        }
        Ok(())
    })
}

const REMITTANCE_SPECS: [Spec; 14] = [
    req("payment_id", Kind::Text),
    opt("payment_date", Kind::Date),
    req("payment_amount", Kind::Money),
    opt("currency", Kind::Text),
    opt("payer_name", Kind::Text),
    opt("payer_account", Kind::Text),
    req("reference", Kind::Text),
    req("line_amount", Kind::Money),
    opt("adjustment_amount", Kind::Money),
    opt("adjustment_code", Kind::Text),
    opt("memo", Kind::Text),
    opt("reference_kind", Kind::Text),
    opt("invoice_amount", Kind::Money),
    opt("discount_amount", Kind::Money),
];
const R_ID: usize = 0;
const R_DATE: usize = 1;
const R_AMOUNT: usize = 2;
const R_CURRENCY: usize = 3;
const R_PAYER_NAME: usize = 4;
const R_PAYER_ACCOUNT: usize = 5;
const R_REFERENCE: usize = 6;
const R_LINE_AMOUNT: usize = 7;
const R_ADJ_AMOUNT: usize = 8;
const R_ADJ_CODE: usize = 9;
const R_MEMO: usize = 10;
const R_KIND: usize = 11;
const R_INVOICE_AMOUNT: usize = 12;
const R_DISCOUNT: usize = 13;

/// The fields every row of a payment repeats.
#[derive(PartialEq)]
struct Head {
    date: Option<NaiveDate>,
    amount: Decimal,
    currency: Currency,
    payer_name: Option<String>,
    payer_account: Option<String>,
}

/// The payment being assembled from its consecutive rows.
struct Group {
    id: String,
    first_line: usize,
    head: Option<Head>,
    lines: Vec<RemittanceLine>,
    free_text: Vec<String>,
    error: Option<FormatError>,
}

impl Group {
    fn fail(&mut self, mut e: FormatError) {
        if self.error.is_none() {
            e.message = format!("payment {}: {}", self.id, e.message);
            self.error = Some(e);
            self.lines = Vec::new();
            self.free_text = Vec::new();
        }
    }

    fn finish(self, file: &str) -> Result<Payment, FormatError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let head = self.head.ok_or_else(|| {
            FormatError::new(
                file,
                Position::Line {
                    line: self.first_line,
                    column: None,
                },
                "empty payment",
            )
        })?;
        Ok(Payment {
            payment_id: self.id,
            format: "csv".to_string(),
            direction: Direction::Credit,
            payment_date: head.date,
            amount: head.amount,
            currency: head.currency,
            payer: Payer {
                name: head.payer_name,
                account: head.payer_account,
            },
            lines: self.lines,
            free_text: self.free_text,
            warnings: Vec::new(),
        })
    }
}

fn parse_kind(t: &str) -> Result<ReferenceKind, String> {
    match t.to_ascii_lowercase().as_str() {
        "invoice" => Ok(ReferenceKind::Invoice),
        "credit_note" => Ok(ReferenceKind::CreditNote),
        "purchase_order" => Ok(ReferenceKind::PurchaseOrder),
        "unknown" => Ok(ReferenceKind::Unknown),
        _ => Err(format!(
            "{t:?} is not a reference kind (invoice, credit_note, purchase_order or unknown)"
        )),
    }
}

/// What one row adds to its payment: a line, or else an adjustment of the line above, and a
/// memo.
type Detail = (Option<RemittanceLine>, Option<Adjustment>, Option<String>);

/// One row's payment fields and what it adds to its payment.
fn parse_row(b: &Batch<'_>, i: usize) -> Result<(Head, Detail), FormatError> {
    let amount = b.money(i, R_AMOUNT)?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(b.error(
            i,
            R_AMOUNT,
            format!("{amount} is negative; a remittance pays money in"),
        ));
    }
    let head = Head {
        date: b.opt_date(i, R_DATE)?,
        amount,
        currency: currency(b, i, R_CURRENCY)?,
        payer_name: b.text(i, R_PAYER_NAME).map(|s| s.into_owned()),
        payer_account: b.text(i, R_PAYER_ACCOUNT).map(|s| s.into_owned()),
    };
    let kind = match b.text(i, R_KIND) {
        Some(t) => parse_kind(&t).map_err(|m| b.error(i, R_KIND, m))?,
        None => ReferenceKind::Unknown,
    };
    let adjustment = match (b.opt_money(i, R_ADJ_AMOUNT)?, b.text(i, R_ADJ_CODE)) {
        (Some(amount), code) => Some(Adjustment {
            amount,
            reason_code: code.map(|c| c.into_owned()),
            text: None,
        }),
        (None, Some(code)) => {
            return Err(b.error(
                i,
                R_ADJ_CODE,
                format!("{code:?} is given without an adjustment_amount"),
            ));
        }
        (None, None) => None,
    };
    let reference = b.text(i, R_REFERENCE).map(|s| s.into_owned());
    let line_amount = b.opt_money(i, R_LINE_AMOUNT)?;
    let invoice_amount = b.opt_money(i, R_INVOICE_AMOUNT)?;
    let discount = b.opt_money(i, R_DISCOUNT)?;
    let memo = b.text(i, R_MEMO).map(|s| s.into_owned());
    let has_line = reference.is_some()
        || line_amount.is_some()
        || invoice_amount.is_some()
        || discount.is_some()
        || kind != ReferenceKind::Unknown;
    if has_line {
        let line = RemittanceLine {
            reference,
            reference_kind: kind,
            amount_paid: line_amount,
            invoice_amount,
            discount,
            adjustments: adjustment.into_iter().collect(),
        };
        Ok((head, (Some(line), None, memo)))
    } else {
        Ok((head, (None, adjustment, memo)))
    }
}

/// Reads remittances, consecutive rows with one `payment_id` forming one payment. A payment
/// with a bad field, or whose rows disagree on a payment field, becomes one error at its first
/// bad row; a row with an empty `payment_id` is an error of its own.
pub(crate) fn remittances(
    t: &Table,
    out: &mut Vec<Payment>,
    errors: &mut Vec<FormatError>,
) -> Result<(), FormatError> {
    let file = t.file.clone();
    let mut current: Option<Group> = None;
    let emit =
        |g: Group, out: &mut Vec<Payment>, errors: &mut Vec<FormatError>| match g.finish(&file) {
            Ok(p) => out.push(p),
            Err(e) => errors.push(e),
        };
    t.for_each_batch(&REMITTANCE_SPECS, |b| {
        for i in 0..b.len() {
            let id = match b.required(i, R_ID) {
                Ok(id) => id,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if current.as_ref().is_none_or(|g| g.id.as_str() != &*id) {
                if let Some(done) = current.take() {
                    emit(done, out, errors);
                }
                current = Some(Group {
                    id: id.into_owned(),
                    first_line: b.line(i),
                    head: None,
                    lines: Vec::new(),
                    free_text: Vec::new(),
                    error: None,
                });
            }
            let Some(group) = current.as_mut() else {
                continue;
            };
            if group.error.is_some() {
                continue;
            }
            let (head, (line, adjustment, memo)) = match parse_row(b, i) {
                Ok(parts) => parts,
                Err(e) => {
                    group.fail(e);
                    continue;
                }
            };
            match &group.head {
                None => group.head = Some(head),
                Some(first) if *first != head => {
                    let (col, was, now) = first_difference(first, &head);
                    let e = b.error(
                        i,
                        col,
                        format!(
                            "{now} differs from {was} on line {} (each row of a payment repeats \
                             its payment fields)",
                            group.first_line
                        ),
                    );
                    group.fail(e);
                    continue;
                }
                Some(_) => {}
            }
            if let Some(memo) = memo {
                if !group.free_text.contains(&memo) {
                    group.free_text.push(memo);
                }
            }
            match (line, adjustment) {
                (Some(line), _) => group.lines.push(line),
                // A row with only an adjustment carries another adjustment of the line above
                // it; before any line, it is a payment-level deduction on a line of its own.
                (None, Some(adj)) => match group.lines.last_mut() {
                    Some(line) => line.adjustments.push(adj),
                    None => group.lines.push(RemittanceLine {
                        adjustments: vec![adj],
                        ..Default::default()
                    }),
                },
                (None, None) => {}
            }
        }
        Ok(())
    })?;
    if let Some(done) = current {
        emit(done, out, errors);
    }
    Ok(())
}

fn first_difference(a: &Head, b: &Head) -> (usize, String, String) {
    let opt = |v: &Option<String>| {
        v.clone()
            .map_or_else(|| "(empty)".to_string(), |s| format!("{s:?}"))
    };
    if a.amount != b.amount {
        return (R_AMOUNT, a.amount.to_string(), b.amount.to_string());
    }
    if a.date != b.date {
        let d = |v: &Option<NaiveDate>| v.map_or_else(|| "(empty)".to_string(), |d| d.to_string());
        return (R_DATE, d(&a.date), d(&b.date));
    }
    if a.currency != b.currency {
        return (R_CURRENCY, a.currency.to_string(), b.currency.to_string());
    }
    if a.payer_name != b.payer_name {
        return (R_PAYER_NAME, opt(&a.payer_name), opt(&b.payer_name));
    }
    (
        R_PAYER_ACCOUNT,
        opt(&a.payer_account),
        opt(&b.payer_account),
    )
}
