//! The text of `16` and `88` records: the payer and remittance items a transaction carries, and
//! the percent-escaping the writer uses for them.

use crate::domain::{Adjustment, Direction, Payer, ReferenceKind, RemittanceLine};
use rust_decimal::Decimal;
use std::str::FromStr;

/// What the text of a transaction tells about payer and remittance.
#[derive(Default)]
pub(super) struct Remit {
    pub(super) name: Option<String>,
    pub(super) account: Option<String>,
    pub(super) routing: Option<String>,
    pub(super) lines: Vec<RemittanceLine>,
    pub(super) free_text: Vec<String>,
}

impl Remit {
    pub(super) fn payer(&self) -> Payer {
        let account = match (&self.routing, &self.account) {
            (Some(r), Some(a)) => Some(format!("{r}:{a}")),
            (None, Some(a)) => Some(a.clone()),
            _ => None,
        };
        Payer {
            name: self.name.clone(),
            account,
        }
    }

    /// Reads one `88` line. Keyed lines (`DBNM: `, `OBI:=`, `EREF/`, `BO:`) that name the
    /// counterparty or carry a reference become fields; X12 `RMR`/`ADX` fragments become lines;
    /// everything else is kept as free text.
    pub(super) fn continuation(&mut self, text: &str, direction: Direction) {
        if text.is_empty() {
            return;
        }
        let Some((key, value)) = split_key(text) else {
            if !self.x12(text) {
                self.free_text.push(text.to_string());
            }
            return;
        };
        let credit = direction == Direction::Credit;
        let value = value.trim();
        if value.is_empty() && key != "TEXT" {
            return;
        }
        match key.as_str() {
            "DBNM" | "ORG" | "BO1" if credit => set_once(&mut self.name, percent_decode(value)),
            "CRNM" | "BNF NAME" | "BNF" if !credit => {
                set_once(&mut self.name, percent_decode(value))
            }
            "DACT" if credit => set_once(&mut self.account, percent_decode(value)),
            "CACT" if !credit => set_once(&mut self.account, percent_decode(value)),
            "DABA" if credit => set_once(&mut self.routing, value.to_string()),
            "CABA" if !credit => set_once(&mut self.routing, value.to_string()),
            // Citi: `BO:<account> BO1:<name>`, "by order of".
            "BO" if credit => {
                let (acct, name) = match value.split_once("BO1:") {
                    Some((a, n)) => (a.trim(), Some(n.trim())),
                    None => (value, None),
                };
                if let Some(a) = acct.split_whitespace().next() {
                    set_once(&mut self.account, a.to_string());
                }
                if let Some(n) = name.filter(|n| !n.is_empty()) {
                    set_once(&mut self.name, n.to_string());
                }
            }
            "EREF" => {
                if !value.is_empty() && !value.eq_ignore_ascii_case("NOTPROVIDED") {
                    let r = percent_decode(value);
                    if !self
                        .lines
                        .iter()
                        .any(|l| l.reference.as_deref() == Some(r.as_str()))
                    {
                        self.lines.push(RemittanceLine {
                            reference: Some(r),
                            ..RemittanceLine::default()
                        });
                    }
                }
            }
            "TEXT" => self.free_text.push(percent_decode(value)),
            "REMI" | "OBI" | "RMT" | "URI" => {
                if !self.x12(value) && !value.is_empty() {
                    self.free_text.push(value.to_string());
                }
            }
            _ => {
                if !self.x12(text) {
                    self.free_text.push(text.to_string());
                }
            }
        }
    }

    /// Reads X12 remittance segments (`RMR*IV*INV-1*PI*90.00*100.00*10.00`, `ADX*-5.00*CS`)
    /// from text, separated by `\` or `~`. Returns whether the text held any.
    pub(super) fn x12(&mut self, text: &str) -> bool {
        let Some(start) = text.find("RMR*").or_else(|| text.find("ADX*")) else {
            return false;
        };
        let mut found = false;
        for segment in text[start..].split(['\\', '~']) {
            let e: Vec<&str> = segment.trim().split('*').collect();
            let el = |i: usize| e.get(i).map(|s| s.trim()).filter(|s| !s.is_empty());
            let num = |i: usize| el(i).and_then(|s| Decimal::from_str(&percent_decode(s)).ok());
            match e.first().map(|s| s.trim()) {
                Some("RMR") => {
                    found = true;
                    let kind = match el(1) {
                        Some("IV" | "OI") => ReferenceKind::Invoice,
                        Some("CM" | "CR") => ReferenceKind::CreditNote,
                        Some("PO") => ReferenceKind::PurchaseOrder,
                        _ => ReferenceKind::Unknown,
                    };
                    self.lines.push(RemittanceLine {
                        reference: el(2).map(percent_decode),
                        reference_kind: kind,
                        amount_paid: num(4),
                        invoice_amount: num(5),
                        discount: num(6),
                        adjustments: vec![],
                    });
                }
                Some("ADX") => {
                    found = true;
                    // X12 gives the adjustment as it changes the payment (negative reduces it);
                    // the domain counts a reduction as positive.
                    let adjustment = Adjustment {
                        amount: num(1).map(|a| -a).unwrap_or_default(),
                        reason_code: el(2).map(percent_decode),
                        text: el(4).map(percent_decode),
                    };
                    match self.lines.last_mut() {
                        Some(l) => l.adjustments.push(adjustment),
                        None => self.lines.push(RemittanceLine {
                            adjustments: vec![adjustment],
                            ..RemittanceLine::default()
                        }),
                    }
                }
                _ => {}
            }
        }
        found
    }
}

pub(super) fn set_once(slot: &mut Option<String>, value: String) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value);
    }
}

/// Splits `KEY: value`, `KEY:=value`, `KEY/value` or `KEY=value`, where the key is an
/// upper-case word of up to 16 characters (spaces allowed, as in `BNF NAME:=`).
pub(super) fn split_key(text: &str) -> Option<(String, &str)> {
    let end = text.find([':', '/', '='])?;
    let key = text[..end].trim();
    let ok = (1..=16).contains(&key.len())
        && key.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ');
    if !ok {
        return None;
    }
    let rest = &text[end..];
    let value = rest
        .strip_prefix(":=")
        .or_else(|| rest.strip_prefix(':'))
        .or_else(|| rest.strip_prefix('/'))
        .or_else(|| rest.strip_prefix('='))
        .unwrap_or(rest);
    Some((key.to_string(), value))
}

/// The characters the writer escapes, because they would end a record (`/`, line ends), split
/// a field (`,`), an X12 element or segment (`*`, `\`, `~`), or vanish when the reader trims
/// (blanks at either end); and `%` itself.
pub(super) const ESCAPED: &[(char, &str)] = &[
    ('%', "%25"),
    ('/', "%2F"),
    (',', "%2C"),
    ('*', "%2A"),
    ('\\', "%5C"),
    ('~', "%7E"),
    ('\r', "%0D"),
    ('\n', "%0A"),
];

pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        if let Some((_, e)) = ESCAPED.iter().find(|(x, _)| *x == c) {
            out.push_str(e);
        } else if (i == 0 || i == last) && c == ' ' {
            out.push_str("%20");
        } else if (i == 0 || i == last) && c == '\t' {
            out.push_str("%09");
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`percent_encode`]; only the escapes it writes are decoded, so a bank's literal `%`
/// survives.
pub(super) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let decoded = tail.get(..3).and_then(|code| match code {
            "%20" => Some(' '),
            "%09" => Some('\t'),
            _ => ESCAPED.iter().find(|(_, e)| *e == code).map(|(c, _)| *c),
        });
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[3..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
