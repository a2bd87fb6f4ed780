//! The 820 writer: payments as one 005010 interchange, with delimiters chosen per file among
//! characters no value uses.

use super::elements::{negate, qualifier_for};
use crate::domain::{Direction, Payment};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::io::{self, Write};

/// Writes payments as one X12 005010 820 interchange, one ST/SE transaction set per payment.
///
/// What 820 carries comes back unchanged through [`parse`]: payment id (TRN02), direction,
/// date, amount, currency, payer name (N1*PR) and account (BPR07/BPR09 from `routing:account`),
/// the lines (RMR with their ADX and NTE) and free text (NTE). X12 forbids a delimiter inside a
/// value, so the delimiters are chosen per file among characters no value uses (`*` `:` `~`
/// `^` when the text allows, else `|` `>` `'` `{` and so on, then control characters); only a
/// value that uses every candidate has the offending characters replaced by spaces, as line
/// breaks always are.
pub fn write_820(payments: &[Payment], mut w: impl Write) -> io::Result<()> {
    let d = WriteDelimiters::for_payments(payments);
    let date = payments
        .iter()
        .find_map(|p| p.payment_date)
        .or_else(|| NaiveDate::from_ymd_opt(2000, 1, 1))
        .unwrap_or_default();
    let e = d.element;
    writeln!(
        w,
        "ISA{e}00{e}{:10}{e}00{e}{:10}{e}ZZ{e}{:<15}{e}ZZ{e}{:<15}{e}{}{e}0000{e}{}{e}00501{e}\
         000000001{e}0{e}P{e}{}{}",
        "",
        "",
        "CASHMATCH",
        "CASHMATCH",
        date.format("%y%m%d"),
        d.repetition,
        d.component,
        d.segment
    )?;
    let mut envelope = SegmentWriter {
        w: &mut w,
        count: 0,
        d,
    };
    let gs_date = date.format("%Y%m%d").to_string();
    envelope.seg(&[
        "GS",
        "RA",
        "CASHMATCH",
        "CASHMATCH",
        &gs_date,
        "0000",
        "1",
        "X",
        "005010",
    ])?;
    for (i, p) in payments.iter().enumerate() {
        let control = format!("{:04}", i + 1);
        let mut s = SegmentWriter {
            w: &mut w,
            count: 0,
            d,
        };
        s.seg(&["ST", "820", &control])?;
        let (dfi_q, dfi, acct_q, acct) = match p.payer.account.as_deref() {
            Some(a) => match a.split_once(':') {
                Some((dfi, acct)) => ("01", dfi, "DA", acct),
                None => ("", "", "DA", a),
            },
            None => ("", "", "", ""),
        };
        let flag = match p.direction {
            Direction::Credit => "C",
            Direction::Debit => "D",
        };
        let date = p
            .payment_date
            .map(|d| d.format("%Y%m%d").to_string())
            .unwrap_or_default();
        let amount = p.amount.to_string();
        s.seg(&[
            "BPR", "C", &amount, flag, "ACH", "CTX", dfi_q, dfi, acct_q, acct, "", "", "", "", "",
            "", &date,
        ])?;
        for note in &p.free_text {
            s.seg(&["NTE", "ZZZ", note])?;
        }
        s.seg(&["TRN", "1", &p.payment_id])?;
        s.seg(&["CUR", "PR", p.currency.as_str()])?;
        if let Some(name) = &p.payer.name {
            s.seg(&["N1", "PR", name])?;
        }
        if !p.lines.is_empty() {
            s.seg(&["ENT", "1"])?;
        }
        let money = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        for line in &p.lines {
            let reference = line.reference.as_deref().unwrap_or("");
            let qualifier = if reference.is_empty() {
                ""
            } else {
                qualifier_for(line.reference_kind)
            };
            s.seg(&[
                "RMR",
                qualifier,
                reference,
                "",
                &money(line.amount_paid),
                &money(line.invoice_amount),
                &money(line.discount),
            ])?;
            for adj in &line.adjustments {
                let value = negate(adj.amount).to_string();
                s.seg(&["ADX", &value, adj.reason_code.as_deref().unwrap_or("")])?;
                if let Some(t) = &adj.text {
                    s.seg(&["NTE", "ZZZ", t])?;
                }
            }
        }
        let count = (s.count + 1).to_string();
        s.seg(&["SE", &count, &control])?;
    }
    let mut envelope = SegmentWriter {
        w: &mut w,
        count: 0,
        d,
    };
    envelope.seg(&["GE", &payments.len().to_string(), "1"])?;
    envelope.seg(&["IEA", "1", "000000001"])?;
    Ok(())
}

/// The delimiters `write_820` uses for one file.
#[derive(Clone, Copy, Debug, PartialEq)]
struct WriteDelimiters {
    pub(super) element: char,
    pub(super) component: char,
    pub(super) segment: char,
    pub(super) repetition: char,
}

impl WriteDelimiters {
    /// The first candidate of each kind that no value of the payments uses. The candidates end
    /// in control characters (information separators), which text practically never holds.
    fn for_payments(payments: &[Payment]) -> Self {
        let mut used: HashSet<char> = HashSet::new();
        let mut note = |s: &str| used.extend(s.chars().filter(|c| !c.is_alphanumeric()));
        for p in payments {
            let lines = p.lines.iter();
            let line_texts = lines.flat_map(|l| {
                let adjustments = l.adjustments.iter();
                let adjustment_texts = adjustments.flat_map(|a| [&a.reason_code, &a.text]);
                std::iter::once(&l.reference).chain(adjustment_texts)
            });
            let texts = [&p.payer.name, &p.payer.account]
                .into_iter()
                .chain(line_texts);
            note(&p.payment_id);
            p.free_text.iter().for_each(|t| note(t));
            texts.flatten().for_each(|t| note(t));
        }
        let mut taken: Vec<char> = Vec::new();
        let mut pick = |candidates: &[char]| {
            let c = candidates
                .iter()
                .copied()
                .find(|c| !used.contains(c) && !taken.contains(c))
                .or_else(|| candidates.iter().copied().find(|c| !taken.contains(c)))
                .unwrap_or('\u{1D}');
            taken.push(c);
            c
        };
        WriteDelimiters {
            element: pick(&['*', '|', '!', '\u{1D}']),
            component: pick(&[':', '>', '\\', '\u{1F}']),
            segment: pick(&['~', '\'', '\u{1C}']),
            repetition: pick(&['^', '{', '}', '\u{1E}']),
        }
    }

    fn is_delimiter(&self, c: char) -> bool {
        c == self.element || c == self.component || c == self.segment || c == self.repetition
    }
}

struct SegmentWriter<'w, W: Write> {
    w: &'w mut W,
    pub(super) count: usize,
    pub(super) d: WriteDelimiters,
}

impl<W: Write> SegmentWriter<'_, W> {
    pub(super) fn seg(&mut self, elements: &[&str]) -> io::Result<()> {
        let clean = |e: &str| -> String {
            e.chars()
                .map(|c| {
                    if self.d.is_delimiter(c) || matches!(c, '\r' | '\n') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect::<String>()
                .trim()
                .to_string()
        };
        let mut parts: Vec<String> = elements.iter().map(|e| clean(e)).collect();
        // X12 drops trailing empty elements rather than writing their separators.
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        self.count += 1;
        let mut sep = [0u8; 4];
        let sep: &str = self.d.element.encode_utf8(&mut sep);
        writeln!(self.w, "{}{}", parts.join(sep), self.d.segment)
    }
}
