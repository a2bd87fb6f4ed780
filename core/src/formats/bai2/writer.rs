//! Writing payments as a BAI2 file.

use super::remit::*;
use crate::domain::{Direction, Payment, ReferenceKind};
use crate::formats::common::minor_unit_exponent;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::io::{self, Write};

/// The account number the writer reports the payments under.
pub(super) const WRITER_ACCOUNT: &str = "CASHMATCH";

/// Writes payments as a BAI2 file that [`parse`] reads back to the same payments (apart from
/// `format`, which becomes `bai2`, and `warnings`, which are not carried).
///
/// Each payment is a `16` detail (type 195 incoming money transfer for a credit, 495 outgoing
/// for a debit) with the payment id as bank reference, in a group per run of payments with the
/// same date and currency, under one account with `100`/`400` summary totals, and with correct
/// `49`/`98`/`99` control totals and record counts. Payer and remittance travel in `88`
/// continuations, one item a record:
///
/// - `DBNM: name`, `DACT: account` for a credit (`CRNM:`/`CACT:` for a debit);
/// - `RMR*<IV|CM|PO|ZZ>*reference*PI*paid*invoice amount*discount` per remittance line, then
///   `ADX*amount*reason code*ZZ*text` per adjustment with the X12 sign (negative reduces);
/// - `TEXT: free text` per free-text entry.
///
/// Values are percent-escaped where they hold `%`, `/`, `,`, `*`, `\`, `~`, line ends or blanks
/// at either end. A payment id that is empty, an amount that is negative or finer than the
/// currency's minor unit, or one that does not fit in 18 digits, is an `InvalidInput` error.
pub fn write_bai2(payments: &[Payment], mut w: impl Write) -> io::Result<()> {
    let created = payments.iter().find_map(|p| p.payment_date);
    let mut records: u64 = 0;
    let mut file_total: i128 = 0;
    let mut groups: u64 = 0;
    writeln!(
        w,
        "01,CASHMATCH,CASHMATCH,{},0000,1,,,2/",
        fmt_date(created)
    )?;
    records += 1;
    let mut start = 0;
    while start < payments.len() {
        let key = |p: &Payment| (p.payment_date, p.currency);
        let first = &payments[start];
        let end = payments[start..]
            .iter()
            .position(|p| key(p) != key(first))
            .map_or(payments.len(), |n| start + n);
        let group = &payments[start..end];
        let mut details = Vec::with_capacity(group.len());
        for p in group {
            details.push((p, minor_units(p)?));
        }
        let credits: i128 = details
            .iter()
            .filter(|(p, _)| p.direction == Direction::Credit)
            .map(|(_, m)| *m)
            .sum();
        let debits: i128 = details
            .iter()
            .filter(|(p, _)| p.direction == Direction::Debit)
            .map(|(_, m)| *m)
            .sum();
        let n_credits = details
            .iter()
            .filter(|(p, _)| p.direction == Direction::Credit)
            .count();
        let n_debits = details.len() - n_credits;
        writeln!(
            w,
            "02,CASHMATCH,CASHMATCH,1,{},2400,{},2/",
            fmt_date(first.payment_date),
            first.currency
        )?;
        writeln!(
            w,
            "03,{WRITER_ACCOUNT},{},100,{credits},{n_credits},,400,{debits},{n_debits},/",
            first.currency
        )?;
        let mut account_records: u64 = 1;
        for (p, minor) in &details {
            account_records += write_detail(p, *minor, &mut w)?;
        }
        account_records += 1;
        let account_total = 2 * (credits + debits);
        writeln!(w, "49,{account_total},{account_records}/")?;
        let group_records = account_records + 2;
        writeln!(w, "98,{account_total},1,{group_records}/")?;
        records += group_records;
        file_total = file_total.saturating_add(account_total);
        groups += 1;
        start = end;
    }
    records += 1;
    writeln!(w, "99,{file_total},{groups},{records}/")?;
    Ok(())
}

pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

pub(super) fn fmt_date(d: Option<NaiveDate>) -> String {
    d.map(|d| d.format("%y%m%d").to_string())
        .unwrap_or_default()
}

pub(super) fn minor_units(p: &Payment) -> io::Result<i128> {
    let exp = minor_unit_exponent(p.currency);
    let scaled = p
        .amount
        .checked_mul(Decimal::from(10u64.pow(exp)))
        .ok_or_else(|| {
            invalid(format!(
                "payment {}: amount {} is too large",
                p.payment_id, p.amount
            ))
        })?;
    if p.amount.is_sign_negative() && !p.amount.is_zero() {
        return Err(invalid(format!(
            "payment {}: negative amount {}",
            p.payment_id, p.amount
        )));
    }
    if !scaled.fract().is_zero() {
        return Err(invalid(format!(
            "payment {}: amount {} is finer than the {} minor unit",
            p.payment_id, p.amount, p.currency
        )));
    }
    let m = scaled.to_i128().unwrap_or(i128::MAX);
    if m >= 10i128.pow(18) {
        return Err(invalid(format!(
            "payment {}: amount {} is too large",
            p.payment_id, p.amount
        )));
    }
    Ok(m)
}

/// Writes one `16` with its `88`s and returns how many records that was.
pub(super) fn write_detail(p: &Payment, minor: i128, w: &mut impl Write) -> io::Result<u64> {
    if p.payment_id.is_empty() {
        return Err(invalid(
            "a payment with an empty payment_id cannot be written".into(),
        ));
    }
    let (code, name_key, account_key) = match p.direction {
        Direction::Credit => (195, "DBNM", "DACT"),
        Direction::Debit => (495, "CRNM", "CACT"),
    };
    writeln!(w, "16,{code},{minor},,{},,/", percent_encode(&p.payment_id))?;
    let mut n = 1;
    let mut cont = |text: String, w: &mut dyn Write| -> io::Result<()> {
        writeln!(w, "88,{text}")?;
        n += 1;
        Ok(())
    };
    if let Some(name) = p.payer.name.as_deref().filter(|s| !s.is_empty()) {
        cont(format!("{name_key}: {}", percent_encode(name)), w)?;
    }
    if let Some(acct) = p.payer.account.as_deref().filter(|s| !s.is_empty()) {
        cont(format!("{account_key}: {}", percent_encode(acct)), w)?;
    }
    for line in &p.lines {
        let qualifier = match line.reference_kind {
            ReferenceKind::Invoice => "IV",
            ReferenceKind::CreditNote => "CM",
            ReferenceKind::PurchaseOrder => "PO",
            ReferenceKind::Unknown => "ZZ",
        };
        let amount = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        cont(
            format!(
                "RMR*{qualifier}*{}*PI*{}*{}*{}",
                percent_encode(line.reference.as_deref().unwrap_or("")),
                amount(line.amount_paid),
                amount(line.invoice_amount),
                amount(line.discount)
            ),
            w,
        )?;
        for a in &line.adjustments {
            let mut s = format!(
                "ADX*{}*{}",
                -a.amount,
                percent_encode(a.reason_code.as_deref().unwrap_or(""))
            );
            if let Some(t) = &a.text {
                s.push_str(&format!("*ZZ*{}", percent_encode(t)));
            }
            cont(s, w)?;
        }
    }
    for t in &p.free_text {
        cont(format!("TEXT: {}", percent_encode(t)), w)?;
    }
    Ok(n)
}
