//! Reading the rows into payments: footers (totals, counts) told from transactions, repeated
//! transaction ids dropped, and each row's faults reported with its line and column.

use super::RECENT_IDS;
use super::conventions::Conventions;
use super::header::{AmountKind, Layout, fold};
use super::values::{DateCell, read_amount, read_currency, read_date, read_indicator};
use crate::domain::{Currency, Direction, Payer, Payment, RemittanceLine};
use crate::formats::{Format, FormatError, Position};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

/// Words a balance, total or footer label starts with.
const FOOTER_WORDS: [&str; 20] = [
    "solde",
    "balance",
    "total",
    "totals",
    "totaal",
    "saldo",
    "endsaldo",
    "anfangssaldo",
    "kontostand",
    "summe",
    "subtotal",
    "sous",
    "beginsaldo",
    "eindsaldo",
    "opening",
    "closing",
    "ending",
    "beginning",
    "nouveau",
    "ancien",
];

/// Words that may follow a footer word in a label (`Balance at start of period`,
/// `Solde au 31/03`, `Saldo per 31-12`, `Kontostand am`), or make it one (`Opening balance`).
const FOOTER_FOLLOWERS: [&str; 16] = [
    "at", "as", "on", "of", "au", "du", "le", "de", "per", "am", "vom", "zum", "balance", "solde",
    "saldo", "total",
];

/// Whether a cell is a footer label: a footer word alone or followed by a date word
/// (`Solde au …`, `Balance at …`), `Opening balance`, `Nouveau solde`, `Sous-total`, `Total
/// débit`. Kept narrow because a row with a valid date is a transaction unless it says it is a
/// balance: `TOTAL ENERGIES` in a description must not drop a payment.
fn is_footer_label(cell: &str) -> bool {
    if !starts_with_footer_word(cell) {
        return false;
    }
    let folded = fold(cell);
    let mut words = folded.split(' ');
    let Some(first) = words.next() else {
        return false;
    };
    if !FOOTER_WORDS.contains(&first) {
        return false;
    }
    match words.next() {
        None => !matches!(
            first,
            "opening" | "closing" | "ending" | "beginning" | "nouveau" | "ancien" | "sous"
        ),
        Some(w) => {
            FOOTER_FOLLOWERS.contains(&w)
                || matches!(
                    (first, w),
                    (
                        "sous" | "total" | "totaal",
                        "total" | "debit" | "credit" | "debet" | "des"
                    )
                )
        }
    }
}

/// Whether a row whose date cell is not a date is a footer: any cell starts with a footer word.
fn is_loose_footer(cells: &[Cow<str>]) -> bool {
    cells.iter().any(|c| starts_with_footer_word(c))
}

/// Whether the first word of a cell is a footer word, without allocating: every row's every
/// cell is asked.
fn starts_with_footer_word(cell: &str) -> bool {
    let end = cell
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(cell.len());
    let word = cell.get(..end).unwrap_or("");
    FOOTER_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// The transaction ids of the last [`RECENT_IDS`] rows.
#[derive(Default)]
pub(super) struct RecentIds {
    pub(super) order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentIds {
    /// Remembers `id`; `false` when it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= RECENT_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

/// The second pass: one payment per transaction row.
pub(super) struct Rows<'a> {
    pub(super) layout: &'a Layout,
    pub(super) conventions: &'a Conventions,
    pub(super) file: &'a str,
    pub(super) stem: &'a str,
    pub(super) recent: RecentIds,
}

/// A row's money: direction, positive amount, and a currency written with it.
pub(super) struct Money {
    pub(super) direction: Direction,
    pub(super) amount: Decimal,
    pub(super) currency: Option<Currency>,
    pub(super) warning: Option<String>,
}

impl Rows<'_> {
    /// `None` for a row that is skipped (blank, no date, a balance or total).
    pub(super) fn read(
        &mut self,
        cells: &[Cow<str>],
        line: usize,
    ) -> Option<Result<Payment, FormatError>> {
        if cells.iter().all(|c| c.is_empty()) {
            return None;
        }
        let l = self.layout;
        let cell = |i: usize| cells.get(i).map(|c| c.as_ref()).unwrap_or("");
        let date_text = cell(l.date);
        if date_text.is_empty() {
            return None;
        }
        let mut warnings = Vec::new();
        let date = match read_date(date_text) {
            DateCell::Exact(d) => d,
            DateCell::Pair {
                first,
                second,
                year,
                ..
            } => match self.conventions.order.date(first, second, year) {
                Some(d) => {
                    warnings.extend(self.conventions.order_warning.clone());
                    d
                }
                None => {
                    return Some(Err(self.error(
                        line,
                        l.date,
                        format!(
                            "not a date {date_text:?} read {} as the rest of the column",
                            self.conventions.order.describe()
                        ),
                    )));
                }
            },
            DateCell::Bad if is_loose_footer(cells) => return None,
            DateCell::Bad => {
                return Some(Err(self.error(
                    line,
                    l.date,
                    format!(
                        "not a date {date_text:?} (expected YYYY-MM-DD, DD/MM/YYYY or MM/DD/YYYY)"
                    ),
                )));
            }
        };
        if cells.iter().any(|c| is_footer_label(c)) {
            return None;
        }
        let money = match self.money(cells, line) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        warnings.extend(money.warning);
        let currency = match l.currency.map(cell).filter(|c| !c.is_empty()) {
            Some(text) => match read_currency(text) {
                Some(c) => c,
                None => {
                    let col = l.currency.unwrap_or(0);
                    return Some(Err(self.error(
                        line,
                        col,
                        format!("not a currency code {text:?}"),
                    )));
                }
            },
            None => match money.currency.or(l.header_currency).or(l.preamble_currency) {
                Some(c) => c,
                None => {
                    warnings.push("no currency in the file: USD assumed".to_string());
                    Currency::USD
                }
            },
        };
        let id_text = l.id.map(cell).unwrap_or("");
        let payment_id = if id_text.is_empty() {
            warnings.push(format!(
                "no transaction id: payment id made from the file name and line ({}:{line})",
                self.stem
            ));
            format!("{}:{line}", self.stem)
        } else if self.recent.insert(id_text) {
            id_text.to_string()
        } else {
            warnings.push(format!(
                "transaction id {id_text:?} repeats an earlier row: the line is added to it"
            ));
            format!("{id_text}#{line}")
        };
        if let Some(fee) = l.fee.map(cell).filter(|f| !f.is_empty())
            && let Ok((value, _)) = read_amount(fee, self.conventions.decimal)
            && !value.is_zero()
        {
            warnings.push(match l.amount {
                Some((_, AmountKind::Net)) => format!("amount is the net, after a fee of {fee}"),
                _ => {
                    let net = l
                        .net
                        .map(cell)
                        .filter(|n| !n.is_empty())
                        .map(|n| format!("; net {n}"))
                        .unwrap_or_default();
                    format!("amount is the gross; the processor's fee was {fee}{net}")
                }
            });
        }
        if let Some(status) = l.status.map(cell).filter(|s| !s.is_empty())
            && !matches!(
                fold(status).as_str(),
                "completed"
                    | "complete"
                    | "termine"
                    | "booked"
                    | "gebucht"
                    | "executed"
                    | "settled"
                    | "cleared"
                    | "posted"
                    | "paid"
                    | "success"
                    | "succeeded"
            )
        {
            warnings.push(format!("status {status:?}"));
        }
        let mut lines: Vec<RemittanceLine> = Vec::new();
        for &(i, kind) in &l.references {
            let r = cell(i);
            // SEPA's placeholders for "no reference" are not references.
            let placeholder = ["NOTPROVIDED", "NOT PROVIDED", "NONREF"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(r));
            if !r.is_empty()
                && !placeholder
                && !lines.iter().any(|x| x.reference.as_deref() == Some(r))
            {
                lines.push(RemittanceLine {
                    reference: Some(r.to_string()),
                    reference_kind: kind,
                    ..Default::default()
                });
            }
        }
        let free_text = l
            .descriptions
            .iter()
            .map(|&i| cell(i))
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        let text = |i: Option<usize>| i.map(cell).filter(|s| !s.is_empty()).map(str::to_string);
        Some(Ok(Payment {
            payment_id,
            format: Format::BankCsv.name().to_string(),
            direction: money.direction,
            payment_date: Some(date),
            amount: money.amount,
            currency,
            payer: Payer {
                name: text(l.name),
                account: text(l.account),
            },
            lines,
            free_text,
            warnings,
            returned: None,
        }))
    }

    /// The row's amount and direction: the amount column when it is filled (its sign, or the
    /// indicator column, gives the direction), else the debit or credit column. `Ok(None)` for
    /// a row with no amount that is a footer.
    fn money(&self, cells: &[Cow<str>], line: usize) -> Result<Option<Money>, FormatError> {
        let l = self.layout;
        let mark = self.conventions.decimal;
        let cell = |i: usize| cells.get(i).map(|c| c.as_ref()).unwrap_or("");
        let parse = |i: usize| -> Result<Option<(Decimal, Option<Currency>)>, FormatError> {
            let text = cell(i);
            if text.is_empty() {
                return Ok(None);
            }
            read_amount(text, mark)
                .map(Some)
                .map_err(|m| self.error(line, i, m))
        };
        if let Some((i, _)) = l.amount
            && let Some((value, currency)) = parse(i)?
        {
            let by_sign = if value.is_sign_negative() && !value.is_zero() {
                Direction::Debit
            } else {
                Direction::Credit
            };
            let said = l.indicator.and_then(|k| read_indicator(cell(k)));
            let warning = match said {
                Some(d) if d != by_sign && by_sign == Direction::Debit => Some(format!(
                    "{} says credit but the amount is negative: read as a credit",
                    l.indicator.map_or("?", |k| l.column_name(k))
                )),
                _ => None,
            };
            return Ok(Some(Money {
                direction: said.unwrap_or(by_sign),
                amount: value.abs(),
                currency,
                warning,
            }));
        }
        let debit = l.debit.map(parse).transpose()?.flatten();
        let credit = l.credit.map(parse).transpose()?.flatten();
        // A sign inside a debit or credit column is only how the bank writes it: the column
        // says the direction.
        let (direction, (value, currency)) = match (debit, credit) {
            (Some(d), Some(c)) if d.0.is_zero() => (Direction::Credit, c),
            (Some(d), Some(c)) if c.0.is_zero() => (Direction::Debit, d),
            (Some(_), Some(_)) => {
                let col = l.debit.unwrap_or(0);
                return Err(self.error(
                    line,
                    col,
                    "both the debit and the credit column hold an amount".to_string(),
                ));
            }
            (Some(d), None) => (Direction::Debit, d),
            (None, Some(c)) => (Direction::Credit, c),
            (None, None) => {
                if cells.iter().any(|c| is_footer_label(c)) || is_loose_footer(cells) {
                    return Ok(None);
                }
                let col = l
                    .amount
                    .map(|(i, _)| i)
                    .or(l.debit)
                    .or(l.credit)
                    .unwrap_or(0);
                let names: Vec<&str> = [l.amount.map(|(i, _)| i), l.debit, l.credit]
                    .into_iter()
                    .flatten()
                    .map(|i| l.column_name(i))
                    .collect();
                return Err(self.error(line, col, format!("no amount (in {})", names.join(", "))));
            }
        };
        Ok(Some(Money {
            direction,
            amount: value.abs(),
            currency,
            warning: None,
        }))
    }

    /// An error at a row's cell, naming its column by header.
    fn error(&self, line: usize, column: usize, message: String) -> FormatError {
        FormatError::new(
            self.file,
            Position::Line {
                line,
                column: Some(column + 1),
            },
            format!("{}: {message}", self.layout.column_name(column)),
        )
    }
}
