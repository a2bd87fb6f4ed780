//! Conventions settled for the whole file before any row is read: the decimal mark from its
//! amount cells and the date order from its date column.

use super::header::{Layout, cell_text};
use super::records::{Record, Records};
use super::values::{DateCell, decimal_evidence, read_date};
use crate::formats::{FormatError, Position};
use chrono::NaiveDate;
use std::io::BufRead;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DecimalMark {
    Dot,
    Comma,
}

impl DecimalMark {
    pub(super) fn char(self) -> char {
        match self {
            DecimalMark::Dot => '.',
            DecimalMark::Comma => ',',
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DateOrder {
    DayFirst,
    MonthFirst,
}

impl DateOrder {
    pub(super) fn date(self, first: u32, second: u32, year: i32) -> Option<NaiveDate> {
        match self {
            DateOrder::DayFirst => NaiveDate::from_ymd_opt(year, second, first),
            DateOrder::MonthFirst => NaiveDate::from_ymd_opt(year, first, second),
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            DateOrder::DayFirst => "day-first (DD/MM/YYYY)",
            DateOrder::MonthFirst => "month-first (MM/DD/YYYY)",
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Conventions {
    pub(super) decimal: DecimalMark,
    pub(super) order: DateOrder,
    /// Set when the date column fits both orders, so that each payment read that way says so.
    pub(super) order_warning: Option<String>,
}

#[derive(Default)]
struct Span {
    min: Option<NaiveDate>,
    max: Option<NaiveDate>,
}

impl Span {
    fn add(&mut self, d: NaiveDate) {
        self.min = Some(self.min.map_or(d, |m| m.min(d)));
        self.max = Some(self.max.map_or(d, |m| m.max(d)));
    }

    fn days(&self) -> i64 {
        match (self.min, self.max) {
            (Some(a), Some(b)) => (b - a).num_days(),
            _ => 0,
        }
    }
}

/// Evidence gathered over the whole file.
#[derive(Default)]
pub(super) struct Evidence {
    pub(super) comma_decimal: usize,
    pub(super) dot_decimal: usize,
    /// Date cells of the `NN/NN/YY(YY)` shape, and how many of them each order reads.
    pairs: usize,
    day_first_ok: usize,
    month_first_ok: usize,
    day_first_span: Span,
    month_first_span: Span,
    pub(super) dotted: usize,
}

/// The first pass: reads every row after the header for the decimal mark and the date order.
pub(super) fn survey<R: BufRead>(
    input: R,
    layout: &Layout,
    file: &str,
) -> Result<Conventions, FormatError> {
    let mut ev = Evidence::default();
    let mut records = Records::new(layout.delimiter, input);
    let mut record = Record::default();
    let mut index = 0usize;
    let money_columns: Vec<usize> = [
        layout.amount.map(|(i, _)| i),
        layout.net,
        layout.debit,
        layout.credit,
        layout.fee,
    ]
    .into_iter()
    .flatten()
    .collect();
    while records
        .next(&mut record)
        .map_err(|e| FormatError::new(file, Position::File, format!("cannot read: {e}")))?
    {
        let this = index;
        index += 1;
        if this <= layout.header_record {
            continue;
        }
        for &i in &money_columns {
            if let Some(cell) = record.get(i) {
                match decimal_evidence(&cell_text(cell)) {
                    Some(DecimalMark::Comma) => ev.comma_decimal += 1,
                    Some(DecimalMark::Dot) => ev.dot_decimal += 1,
                    None => {}
                }
            }
        }
        if let Some(cell) = record.get(layout.date)
            && let DateCell::Pair {
                first,
                second,
                year,
                dotted,
            } = read_date(&cell_text(cell))
        {
            ev.pairs += 1;
            ev.dotted += usize::from(dotted);
            if let Some(d) = DateOrder::DayFirst.date(first, second, year) {
                ev.day_first_ok += 1;
                ev.day_first_span.add(d);
            }
            if let Some(d) = DateOrder::MonthFirst.date(first, second, year) {
                ev.month_first_ok += 1;
                ev.month_first_span.add(d);
            }
        }
    }
    Ok(decide(&ev, layout.delimiter))
}

/// The rules of docs/formats/bank_csv.md, in order.
pub(super) fn decide(ev: &Evidence, delimiter: u8) -> Conventions {
    let decimal = if ev.comma_decimal != ev.dot_decimal {
        if ev.comma_decimal > ev.dot_decimal {
            DecimalMark::Comma
        } else {
            DecimalMark::Dot
        }
    } else if delimiter == b';' {
        // Semicolons are what spreadsheets write where the comma is the decimal mark.
        DecimalMark::Comma
    } else {
        DecimalMark::Dot
    };
    let mut order_warning = None;
    let order = if ev.day_first_ok != ev.month_first_ok {
        // Some date reads only one way (a first field above 12 means day-first, a second field
        // above 12 month-first): the order that reads more of the column wins, and the rows it
        // cannot read are errors.
        if ev.day_first_ok > ev.month_first_ok {
            DateOrder::DayFirst
        } else {
            DateOrder::MonthFirst
        }
    } else if ev.pairs == 0 {
        DateOrder::DayFirst
    } else {
        let (d, m) = (ev.day_first_span.days(), ev.month_first_span.days());
        let (order, why) = if d != m {
            // An export covers a statement period: the reading that gives the shorter period
            // is the likely one (01/04 and 02/04 are one day apart, not a month).
            let order = if d < m {
                DateOrder::DayFirst
            } else {
                DateOrder::MonthFirst
            };
            (
                order,
                format!(
                    "it spans {} where the other order spans {}",
                    days(d.min(m)),
                    days(d.max(m))
                ),
            )
        } else if ev.dotted > 0 {
            (
                DateOrder::DayFirst,
                "dates written with dots are day-first".to_string(),
            )
        } else if decimal == DecimalMark::Comma {
            (
                DateOrder::DayFirst,
                "the file writes decimal commas".to_string(),
            )
        } else {
            (
                DateOrder::MonthFirst,
                "the file writes decimal points".to_string(),
            )
        };
        order_warning = Some(format!(
            "date read {}: no date in the column shows the order (no field above 12), and {why}",
            order.describe()
        ));
        order
    };
    Conventions {
        decimal,
        order,
        order_warning,
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}
