//! Reading one element's value: text (UTF-8 or Latin-1), amounts, dates, reference qualifiers,
//! and an RMR segment into a remittance line; NACHA's and EDIFACT's readers share them.

use super::tokenizer::Elements;
use crate::domain::{Adjustment, ReferenceKind, RemittanceLine};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

pub(super) fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        // Senders outside UTF-8 are nearly always Latin-1, whose bytes are the first 256 chars.
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

pub(super) fn opt_text(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| text(b))
}

pub(super) fn shown(b: &[u8]) -> String {
    let t = text(b);
    if t.chars().count() > 40 {
        format!("{}...", t.chars().take(40).collect::<String>())
    } else {
        t
    }
}

/// Parses an X12 decimal (type R): optional sign, digits, at most one decimal point.
pub(crate) fn parse_amount(b: &[u8]) -> Result<Decimal, String> {
    let digits = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let points = digits.iter().filter(|&&c| c == b'.').count();
    let ok = !digits.is_empty()
        && points <= 1
        && digits.iter().any(u8::is_ascii_digit)
        && digits.iter().all(|&c| c.is_ascii_digit() || c == b'.');
    if !ok {
        return Err(format!("is not an amount: {:?}", shown(b)));
    }
    let s = std::str::from_utf8(b).map_err(|_| format!("is not an amount: {:?}", shown(b)))?;
    Decimal::from_str(s.strip_prefix('+').unwrap_or(s))
        .map_err(|e| format!("is not a usable amount: {s:?} ({e})"))
}

/// Parses CCYYMMDD, or YYMMDD as versions before 004010 wrote it (and some 004010 files still
/// do); two-digit years below 50 are taken as 20xx.
pub(crate) fn parse_date(b: &[u8]) -> Option<NaiveDate> {
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?
            .iter()
            .try_fold(0u32, |n, &d| Some(n * 10 + u32::from(d - b'0')))
    };
    let (year, rest) = match b.len() {
        8 => (i32::try_from(num(0..4)?).ok()?, 4),
        6 => {
            let yy = i32::try_from(num(0..2)?).ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, num(rest..rest + 2)?, num(rest + 2..rest + 4)?)
}

/// What an X12 reference qualifier (RMR01, ADX03) says the reference is.
pub(crate) fn reference_kind(qualifier: &[u8]) -> ReferenceKind {
    match qualifier {
        // IV seller's invoice, IK invoice number, OI original invoice, AP accounts-receivable
        // open item (an invoice in practice).
        b"IV" | b"IK" | b"OI" | b"AP" => ReferenceKind::Invoice,
        b"CM" | b"CR" => ReferenceKind::CreditNote,
        b"PO" => ReferenceKind::PurchaseOrder,
        _ => ReferenceKind::Unknown,
    }
}

pub(super) fn qualifier_for(kind: ReferenceKind) -> &'static str {
    match kind {
        ReferenceKind::Invoice => "IV",
        ReferenceKind::CreditNote => "CM",
        ReferenceKind::PurchaseOrder => "PO",
        ReferenceKind::Unknown => "ZZ",
    }
}

/// Maps an RMR segment to a remittance line; the error names the element.
pub(crate) fn rmr_line<E: Elements + ?Sized>(seg: &E) -> Result<RemittanceLine, (usize, String)> {
    let amount = |i: usize| -> Result<Option<Decimal>, (usize, String)> {
        let b = seg.el(i);
        if b.is_empty() {
            return Ok(None);
        }
        parse_amount(b)
            .map(Some)
            .map_err(|m| (i, format!("RMR{i:02} {m}")))
    };
    let mut adjustments = Vec::new();
    // RMR07/RMR08 (version 004020 on): an adjustment reason and amount on the line itself.
    if let Some(a) = amount(8)? {
        if !a.is_zero() {
            adjustments.push(Adjustment {
                amount: a,
                reason_code: opt_text(seg.el(7)),
                text: None,
            });
        }
    }
    Ok(RemittanceLine {
        reference: opt_text(seg.el(2)),
        reference_kind: reference_kind(seg.el(1)),
        amount_paid: amount(4)?,
        invoice_amount: amount(5)?,
        discount: amount(6)?,
        adjustments,
    })
}

/// Whether a count element (SE01, GE01, IEA01) states `actual`; leading zeros are allowed.
pub(super) fn counts(declared: &[u8], actual: usize) -> bool {
    std::str::from_utf8(declared)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        == Some(actual)
}

pub(crate) fn negate(d: Decimal) -> Decimal {
    if d.is_zero() { Decimal::ZERO } else { -d }
}
