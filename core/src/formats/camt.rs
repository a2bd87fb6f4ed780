//! ISO 20022 camt.053 (bank-to-customer statement) and camt.054 (debit/credit notification):
//! each transaction of an entry becomes a [`Payment`]; and a camt.054.001.08 writer, so that
//! the same payments can be fed to the engine through this format too.
//!
//! The file is read as a stream: the statement (`Stmt`) or notification (`Ntfctn`) is walked
//! element by element and each entry (`Ntry`) is read whole, mapped and dropped, so memory holds
//! one entry at a time. Every version is read the same way, by local element names. The mapping
//! is documented in `docs/formats/camt.md`.

use crate::domain::{Currency, Direction, Payment, ReferenceKind, RemittanceLine, ReturnedItem};
use crate::formats::iso20022::{
    self, NOT_PROVIDED, Node, PaymentIds, XmlStream, check_lines_total, money, payer,
};
use crate::formats::{Format, FormatError, Parsed, Position};
use rust_decimal::Decimal;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Whether the head of a file (its first 4 KiB are read) is a camt.053 or camt.054 message.
pub fn looks_like(head: &[u8]) -> bool {
    looks_like_053(head) || looks_like_054(head)
}

/// Whether the head is a camt.053 statement (`BkToCstmrStmt`).
pub fn looks_like_053(head: &[u8]) -> bool {
    iso20022::names_message(iso20022::head(head), "camt.053", "BkToCstmrStmt")
}

/// Whether the head is a camt.054 notification (`BkToCstmrDbtCdtNtfctn`).
pub fn looks_like_054(head: &[u8]) -> bool {
    iso20022::names_message(iso20022::head(head), "camt.054", "BkToCstmrDbtCdtNtfctn")
}

/// Which of the two the head is, if either.
pub fn variant(head: &[u8]) -> Option<Format> {
    if looks_like_054(head) {
        Some(Format::Camt054)
    } else if looks_like_053(head) {
        Some(Format::Camt053)
    } else {
        None
    }
}

/// Reads a camt.053 or camt.054 file (any version), telling the two apart by the message
/// element. A file that is not XML, not one of these messages, or malformed XML is an `Err`; an
/// entry or transaction that cannot be read is kept in [`Parsed::errors`] with its XML path.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = iso20022::decode_input(bytes, file)?;
    let mut xs = XmlStream::new(&text, file);
    let msg = xs.message_element()?;
    let format = match msg.name.as_str() {
        "BkToCstmrStmt" => Format::Camt053,
        "BkToCstmrDbtCdtNtfctn" => Format::Camt054,
        "BkToCstmrAcctRpt" => {
            return Err(FormatError::new(
                file,
                Position::XmlPath(msg.path),
                "a camt.052 account report is not supported; use the camt.053 statement or \
                 camt.054 notification of the same account",
            ));
        }
        other => {
            return Err(FormatError::new(
                file,
                Position::XmlPath(msg.path.clone()),
                format!(
                    "not a camt.053 or camt.054 message: the message element is {other}, \
                     expected BkToCstmrStmt or BkToCstmrDbtCdtNtfctn"
                ),
            ));
        }
    };
    let mut out = Parsed::default();
    let mut ids = PaymentIds::default();
    let mut msg_id: Option<String> = None;
    let mut statements = 0usize;
    while let Some(child) = xs.next_child()? {
        match child.name.as_str() {
            "GrpHdr" => msg_id = xs.subtree(&child)?.text_at(&["MsgId"]),
            "Stmt" | "Ntfctn" => {
                statements += 1;
                let fallback = msg_id.clone().unwrap_or_else(|| format.name().to_string());
                statement(
                    &mut xs, file, format, fallback, statements, &mut ids, &mut out,
                )?;
            }
            _ => xs.skip(&child)?,
        }
    }
    xs.finish()?;
    Ok(out)
}

/// Walks one `Stmt`/`Ntfctn`, mapping its entries as they come.
fn statement(
    xs: &mut XmlStream<'_>,
    file: &str,
    format: Format,
    msg_fallback: String,
    number: usize,
    ids: &mut PaymentIds,
    out: &mut Parsed,
) -> Result<(), FormatError> {
    let mut cx = Context {
        file,
        format,
        fallback: format!("{msg_fallback}/{number}"),
    };
    let mut entries = 0usize;
    while let Some(child) = xs.next_child()? {
        match child.name.as_str() {
            "Id" => {
                if let Some(id) = xs.subtree(&child)?.text() {
                    cx.fallback = id.to_string();
                }
            }
            "Ntry" => {
                entries += 1;
                let node = xs.subtree(&child)?;
                match entry_payments(&node, &cx, entries, &mut out.errors) {
                    Ok(payments) => {
                        for mut p in payments {
                            p.payment_id = ids.unique(p.payment_id, &mut p.warnings);
                            out.payments.push(p);
                        }
                    }
                    Err(e) => out.errors.push(e),
                }
            }
            _ => xs.skip(&child)?,
        }
    }
    Ok(())
}

/// What every entry of a statement shares.
struct Context<'a> {
    file: &'a str,
    format: Format,
    /// The statement's `Id` (else the message id and the statement's ordinal), for the
    /// positional payment id of a transaction that carries no reference at all.
    fallback: String,
}

/// The entry-level facts each of its transactions inherits.
struct Entry {
    number: usize,
    amount: Decimal,
    currency: Currency,
    direction: Direction,
    acct_svcr_ref: Option<String>,
    ntry_ref: Option<String>,
    date: Option<chrono::NaiveDate>,
    warnings: Vec<String>,
    batch: bool,
    /// `RvslInd` is true: the entry takes back an earlier booking.
    reversal: bool,
}

fn credit_debit(node: &Node, file: &str) -> Result<Option<Direction>, FormatError> {
    match node.child("CdtDbtInd") {
        None => Ok(None),
        Some(n) => match n.text() {
            Some("CRDT") => Ok(Some(Direction::Credit)),
            Some("DBIT") => Ok(Some(Direction::Debit)),
            other => Err(n.error(
                file,
                format!("CdtDbtInd {other:?} is neither CRDT nor DBIT"),
            )),
        },
    }
}

fn indicator(d: Direction) -> &'static str {
    match d {
        Direction::Credit => "CRDT",
        Direction::Debit => "DBIT",
    }
}

/// Maps one `Ntry`: one payment per `TxDtls`, or one for the entry when it has none. A fault in
/// the entry's own amount or direction loses the entry; a fault in one transaction loses only
/// that transaction (kept in `errors`).
fn entry_payments(
    node: &Node,
    cx: &Context<'_>,
    number: usize,
    errors: &mut Vec<FormatError>,
) -> Result<Vec<Payment>, FormatError> {
    let file = cx.file;
    let amt = node
        .child("Amt")
        .ok_or_else(|| node.error(file, "entry without Amt"))?;
    let money = money(amt, file)?;
    let currency = money
        .ccy
        .ok_or_else(|| amt.error(file, "amount without a Ccy attribute"))?;
    let direction =
        credit_debit(node, file)?.ok_or_else(|| node.error(file, "entry without CdtDbtInd"))?;
    let mut warnings = Vec::new();
    let reversal = node
        .text_at(&["RvslInd"])
        .is_some_and(|v| v == "true" || v == "1");
    if reversal {
        warnings.push(format!(
            "reversal (RvslInd): this {} entry reverses an earlier booking",
            indicator(direction)
        ));
    }
    let status = node.child("Sts").and_then(|s| {
        s.text()
            .map(str::to_string)
            .or_else(|| s.text_at(&["Cd"]))
            .or_else(|| s.text_at(&["Prtry"]))
    });
    if let Some(s) = status.filter(|s| s != "BOOK") {
        warnings.push(format!("entry status {s}: not booked"));
    }
    let mut date = None;
    for name in ["BookgDt", "ValDt"] {
        if let (None, Some(n)) = (date, node.child(name)) {
            match iso20022::date(n) {
                Ok(d) => date = d,
                Err(w) => warnings.push(w),
            }
        }
    }
    let txs: Vec<&Node> = node.all("NtryDtls").flat_map(|d| d.all("TxDtls")).collect();
    let entry = Entry {
        number,
        amount: money.value,
        currency,
        direction,
        acct_svcr_ref: node.text_at(&["AcctSvcrRef"]),
        ntry_ref: node.text_at(&["NtryRef"]),
        date,
        warnings,
        batch: txs.len() > 1,
        reversal,
    };
    let entry_info = node.text_at(&["AddtlNtryInf"]);

    if txs.is_empty() {
        let payment_id = entry
            .acct_svcr_ref
            .clone()
            .or_else(|| entry.ntry_ref.clone())
            .unwrap_or_else(|| format!("{}/{number}", cx.fallback));
        return Ok(vec![Payment {
            payment_id,
            format: cx.format.name().to_string(),
            direction,
            payment_date: date,
            amount: entry.amount,
            currency,
            payer: Default::default(),
            lines: Vec::new(),
            free_text: entry_info.into_iter().collect(),
            warnings: entry.warnings,
            // The entry's own references are the reversal's, not the original's: the original
            // is found by amount, date and payer.
            returned: reversal.then(|| ReturnedItem {
                return_code: REVERSAL_CODE.to_string(),
                reason: None,
                original_trace: None,
            }),
        }]);
    }

    let mut payments = Vec::with_capacity(txs.len());
    let mut complete = true;
    for (k, tx) in txs.iter().enumerate() {
        match transaction(tx, k + 1, &entry, cx) {
            Ok(mut p) => {
                p.free_text.extend(entry_info.clone());
                payments.push(p);
            }
            Err(e) => {
                complete = false;
                errors.push(e);
            }
        }
    }
    // Does the entry add up? Transactions in another currency cannot be compared.
    if complete && payments.iter().all(|p| p.currency == currency) {
        let total = payments
            .iter()
            .try_fold(Decimal::ZERO, |s, p| s.checked_add(p.amount));
        if total != Some(entry.amount) {
            let total = total
                .map(|t| t.to_string())
                .unwrap_or_else(|| "an overflow".into());
            let w = if entry.batch {
                format!(
                    "entry amount {} {currency} but its {} transactions add up to {total}",
                    entry.amount,
                    payments.len()
                )
            } else {
                format!(
                    "entry amount {} {currency} but the transaction amount is {total}",
                    entry.amount
                )
            };
            for p in &mut payments {
                p.warnings.push(w.clone());
            }
        }
    }
    Ok(payments)
}

/// Maps one `TxDtls` (the `k`-th of its entry).
fn transaction(
    tx: &Node,
    k: usize,
    entry: &Entry,
    cx: &Context<'_>,
) -> Result<Payment, FormatError> {
    let file = cx.file;
    let mut warnings = entry.warnings.clone();

    // The amount in the entry's currency: TxDtls/Amt, else the transaction, counter-value or
    // instructed amount of AmtDtls.
    let candidates = [
        tx.child("Amt"),
        tx.at(&["AmtDtls", "TxAmt", "Amt"]),
        tx.at(&["AmtDtls", "CntrValAmt", "Amt"]),
        tx.at(&["AmtDtls", "InstdAmt", "Amt"]),
    ];
    let mut amounts = Vec::new();
    for n in candidates.into_iter().flatten() {
        amounts.push(money(n, file)?);
    }
    let same = amounts
        .iter()
        .find(|m| m.ccy.is_none_or(|c| c == entry.currency));
    let (amount, currency) = match (same, amounts.first()) {
        (Some(m), _) => (m.value, entry.currency),
        (None, Some(other)) if entry.batch => {
            let c = other.ccy.unwrap_or(entry.currency);
            warnings.push(format!(
                "the transaction amount is in {c}, not in the entry currency {}",
                entry.currency
            ));
            (other.value, c)
        }
        (None, Some(other)) => {
            let c = other.ccy.map(|c| c.to_string()).unwrap_or_default();
            warnings.push(format!(
                "the transaction amount {} {c} is not in the entry currency {}; the entry amount \
                 is used",
                other.value, entry.currency
            ));
            (entry.amount, entry.currency)
        }
        (None, None) if entry.batch => {
            return Err(tx.error(file, "a transaction of a batch entry has no amount"));
        }
        (None, None) => (entry.amount, entry.currency),
    };

    if let Some(d) = credit_debit(tx, file)?.filter(|d| *d != entry.direction) {
        warnings.push(format!(
            "the transaction says {} but the entry is booked {}; the entry's direction is used",
            indicator(d),
            indicator(entry.direction)
        ));
    }

    let batch_ref = |r: &String| {
        if entry.batch {
            format!("{r}/{k}")
        } else {
            r.clone()
        }
    };
    let end_to_end = tx
        .text_at(&["Refs", "EndToEndId"])
        .filter(|id| !id.eq_ignore_ascii_case(NOT_PROVIDED));
    let payment_id = end_to_end
        .clone()
        .or_else(|| tx.text_at(&["Refs", "AcctSvcrRef"]))
        .or_else(|| entry.acct_svcr_ref.as_ref().map(batch_ref))
        .or_else(|| entry.ntry_ref.as_ref().map(batch_ref))
        .or_else(|| tx.text_at(&["Refs", "TxId"]))
        .or_else(|| tx.text_at(&["Refs", "InstrId"]))
        .unwrap_or_else(|| {
            if entry.batch {
                format!("{}/{}/{k}", cx.fallback, entry.number)
            } else {
                format!("{}/{}", cx.fallback, entry.number)
            }
        });

    let (payer, ultimate) = tx.child("RltdPties").map(payer).unwrap_or_default();
    let remit = match tx.child("RmtInf") {
        Some(r) => iso20022::remittance(r, file)?,
        None => iso20022::Remittance::default(),
    };
    warnings.extend(remit.warnings);
    let mut free_text = remit.free_text;
    free_text.extend(ultimate);
    free_text.extend(tx.text_at(&["AddtlTxInf"]));

    let mut return_info = None;
    if let Some(rtr) = tx.child("RtrInf") {
        let code = rtr
            .text_at(&["Rsn", "Cd"])
            .or_else(|| rtr.text_at(&["Rsn", "Prtry"]));
        let info: Vec<&str> = rtr.all("AddtlInf").filter_map(Node::text).collect();
        let mut w = format!("return: reason {}", code.as_deref().unwrap_or("not given"));
        if !info.is_empty() {
            let _ = write!(w, " ({})", info.join(" "));
        }
        warnings.push(w);
        return_info = Some((code, (!info.is_empty()).then(|| info.join(" "))));
    }
    // A reversal, or a transaction with return information (a returned direct debit, a
    // returned transfer), takes back an earlier booking. The end-to-end id travels unchanged
    // from the original to its return, so it names the original; the return gets an id of its
    // own, so that it is not taken for a second sending of the original.
    let returned = (entry.reversal || return_info.is_some()).then(|| {
        let (code, reason) = return_info.unwrap_or((None, None));
        ReturnedItem {
            return_code: code.unwrap_or_else(|| REVERSAL_CODE.to_string()),
            reason,
            original_trace: end_to_end.clone(),
        }
    });
    let payment_id = match (&returned, &end_to_end) {
        (Some(_), Some(id)) if *id == payment_id => format!("{id}{RETURN_SUFFIX}"),
        _ => payment_id,
    };

    check_lines_total(
        &remit.lines,
        &remit.paid_currencies,
        amount,
        currency,
        &mut warnings,
    );
    Ok(Payment {
        payment_id,
        format: cx.format.name().to_string(),
        direction: entry.direction,
        payment_date: entry.date,
        amount,
        currency,
        payer,
        lines: remit.lines,
        free_text,
        warnings,
        returned,
    })
}

/// The return code of a reversal that gives no reason (`RvslInd` without `RtrInf`).
const REVERSAL_CODE: &str = "RVSL";

/// Appended to the end-to-end id of a returned transaction to make its payment id.
pub const RETURN_SUFFIX: &str = "/return";

// ---------------------------------------------------------------------------------------------
// The camt.054.001.08 writer.

const NAMESPACE_054_08: &str = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";

/// Writes the payments as one camt.054.001.08 notification: one `Ntry` per payment with one
/// `TxDtls` carrying `EndToEndId` = `payment_id`, the amount, direction, booking and value date,
/// the payer (`RltdPties/Dbtr/Pty/Nm`, `DbtrAcct` as IBAN when it looks like one, else `Othr`),
/// free text as `Ustrd`, and one `Strd` per remittance line (`RfrdDocInf` with `CINV`/`CREN`/
/// `PUOR` and `Nb`; `RfrdDocAmt` with `DuePyblAmt`, `DscntApldAmt`, `CdtNoteAmt` for credit
/// notes, `AdjstmntAmtAndRsn`, `RmtdAmt`).
///
/// [`parse`] reads back the same payment ids, directions, dates, amounts, currencies, payers,
/// lines and free text (text trimmed; empty text and lines that carry nothing are not written;
/// a line of unknown kind paying a negative amount is written, and read back, as a credit note).
/// Values the schema cannot hold are refused with `InvalidInput` before anything is written: a
/// negative payment amount, an invoice or purchase-order line paying a negative amount or a
/// credit note line a positive one, a negative discount, more than 5 decimals, an id, reference or
/// text over its length limit (35 for ids and references, 140 for names and text), a reason
/// code over 4 characters holding `/`, or characters XML 1.0 cannot carry. A reason code over
/// 4 characters, which `Rsn` cannot hold, goes in `AddtlInf` as `/RSN/code/text`.
pub fn write_camt054(payments: &[Payment], w: impl Write) -> io::Result<()> {
    let mut scratch = String::new();
    for p in payments {
        scratch.clear();
        render_entry(p, &mut scratch)?;
    }
    let mut w = io::BufWriter::new(w);
    let created = payments
        .iter()
        .filter_map(|p| p.payment_date)
        .max()
        .map(|d| d.format("%Y-%m-%dT00:00:00").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00".into());
    write!(
        w,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"{NAMESPACE_054_08}\">\n\
         <BkToCstmrDbtCdtNtfctn>\n\
         <GrpHdr><MsgId>CASHMATCH-CAMT054</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\n\
         <Ntfctn>\n\
         <Id>CASHMATCH-1</Id>\n\
         <Acct><Id><Othr><Id>NOTPROVIDED</Id></Othr></Id></Acct>\n"
    )?;
    for p in payments {
        scratch.clear();
        render_entry(p, &mut scratch)?;
        w.write_all(scratch.as_bytes())?;
    }
    w.write_all(b"</Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n")?;
    w.flush()
}

fn invalid(p: &Payment, what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("payment {}: {what}", p.payment_id),
    )
}

/// Trimmed, length-checked, escaped text; `None` when empty.
fn xml_text(p: &Payment, s: &str, max: usize, what: &str) -> io::Result<Option<String>> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > max {
        return Err(invalid(
            p,
            format!("{what} {t:?} is longer than {max} characters"),
        ));
    }
    if t.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        return Err(invalid(
            p,
            format!("{what} {t:?} holds characters XML cannot carry"),
        ));
    }
    Ok(Some(quick_xml::escape::escape(t).into_owned()))
}

/// An ISO 20022 amount: not negative, at most 5 decimals and 18 digits.
fn xml_amount(p: &Payment, d: Decimal, what: &str) -> io::Result<String> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(invalid(p, format!("{what} {d} is negative")));
    }
    let d = if d.scale() > 5 { d.normalize() } else { d };
    if d.scale() > 5 {
        return Err(invalid(p, format!("{what} {d} has more than 5 decimals")));
    }
    let d = d.abs();
    if d.mantissa().unsigned_abs().to_string().len() > 18 {
        return Err(invalid(p, format!("{what} {d} has more than 18 digits")));
    }
    Ok(d.to_string())
}

fn looks_like_iban(s: &str) -> bool {
    let b = s.as_bytes();
    (5..=34).contains(&b.len())
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && b.iter().skip(4).all(u8::is_ascii_alphanumeric)
}

fn render_entry(p: &Payment, out: &mut String) -> io::Result<()> {
    let ccy = p.currency.as_str();
    let amount = xml_amount(p, p.amount, "payment amount")?;
    let cd = indicator(p.direction);
    let id = xml_text(p, &p.payment_id, 35, "payment id (EndToEndId)")?
        .ok_or_else(|| invalid(p, "empty payment id".into()))?;
    if id.eq_ignore_ascii_case(NOT_PROVIDED) {
        return Err(invalid(
            p,
            "payment id NOTPROVIDED would read back as no id".into(),
        ));
    }
    let _ = write!(
        out,
        "<Ntry>\n<Amt Ccy=\"{ccy}\">{amount}</Amt>\n<CdtDbtInd>{cd}</CdtDbtInd>\n\
         <Sts><Cd>BOOK</Cd></Sts>\n"
    );
    if let Some(d) = p.payment_date {
        use chrono::Datelike;
        if !(1..=9999).contains(&d.year()) {
            return Err(invalid(
                p,
                format!("payment date {d} is outside years 1 to 9999"),
            ));
        }
        let d = d.format("%Y-%m-%d");
        let _ = write!(
            out,
            "<BookgDt><Dt>{d}</Dt></BookgDt>\n<ValDt><Dt>{d}</Dt></ValDt>\n"
        );
    }
    let family = match p.direction {
        Direction::Credit => "RCDT",
        Direction::Debit => "ICDT",
    };
    let _ = write!(
        out,
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>OTHR</SubFmlyCd></Fmly>\
         </Domn></BkTxCd>\n<NtryDtls>\n<TxDtls>\n<Refs><EndToEndId>{id}</EndToEndId></Refs>\n\
         <Amt Ccy=\"{ccy}\">{amount}</Amt>\n<CdtDbtInd>{cd}</CdtDbtInd>\n"
    );

    let name = p
        .payer
        .name
        .as_deref()
        .map(|n| xml_text(p, n, 140, "payer name"))
        .transpose()?
        .flatten();
    let account = p
        .payer
        .account
        .as_deref()
        .map(|a| xml_text(p, a, 34, "payer account"))
        .transpose()?
        .flatten();
    if name.is_some() || account.is_some() {
        out.push_str("<RltdPties>");
        if let Some(n) = &name {
            let _ = write!(out, "<Dbtr><Pty><Nm>{n}</Nm></Pty></Dbtr>");
        }
        if let Some(a) = &account {
            if looks_like_iban(a) {
                let _ = write!(out, "<DbtrAcct><Id><IBAN>{a}</IBAN></Id></DbtrAcct>");
            } else {
                let _ = write!(
                    out,
                    "<DbtrAcct><Id><Othr><Id>{a}</Id></Othr></Id></DbtrAcct>"
                );
            }
        }
        out.push_str("</RltdPties>\n");
    }

    let mut rmt = String::new();
    for t in &p.free_text {
        if let Some(t) = xml_text(p, t, 140, "free text")? {
            let _ = writeln!(rmt, "<Ustrd>{t}</Ustrd>");
        }
    }
    for line in &p.lines {
        render_line(p, line, ccy, &mut rmt)?;
    }
    if !rmt.is_empty() {
        let _ = write!(out, "<RmtInf>\n{rmt}</RmtInf>\n");
    }
    out.push_str("</TxDtls>\n</NtryDtls>\n</Ntry>\n");
    Ok(())
}

fn render_line(p: &Payment, l: &RemittanceLine, ccy: &str, out: &mut String) -> io::Result<()> {
    // ISO 20022 amounts are never negative and only a credit note gives cash back, so a line
    // of unknown kind that pays a negative amount is written as the credit note it must be.
    let kind = match (l.reference_kind, l.amount_paid) {
        (ReferenceKind::Unknown, Some(v)) if v.is_sign_negative() && !v.is_zero() => {
            ReferenceKind::CreditNote
        }
        (k, _) => k,
    };
    let credit = kind == ReferenceKind::CreditNote;
    let code = match kind {
        ReferenceKind::Invoice => Some("CINV"),
        ReferenceKind::CreditNote => Some("CREN"),
        ReferenceKind::PurchaseOrder => Some("PUOR"),
        ReferenceKind::Unknown => None,
    };
    let reference = l
        .reference
        .as_deref()
        .map(|r| xml_text(p, r, 35, "line reference"))
        .transpose()?
        .flatten();
    let what = reference.clone().unwrap_or_else(|| "(no reference)".into());
    // Credit notes are stated as positive amounts; the kind gives the sign back.
    let signed = |v: Decimal, field: &str| -> io::Result<String> {
        let v = if credit { -v } else { v };
        xml_amount(p, v, &format!("{field} of line {what}"))
    };

    let mut amounts = String::new();
    if let Some(v) = l.invoice_amount {
        let _ = write!(
            amounts,
            "<DuePyblAmt Ccy=\"{ccy}\">{}</DuePyblAmt>",
            signed(v, "invoice amount")?
        );
    }
    if let Some(v) = l.discount {
        let v = xml_amount(p, v, &format!("discount of line {what}"))?;
        let _ = write!(
            amounts,
            "<DscntApldAmt><Amt Ccy=\"{ccy}\">{v}</Amt></DscntApldAmt>"
        );
    }
    if let (true, Some(v)) = (credit, l.amount_paid) {
        let _ = write!(
            amounts,
            "<CdtNoteAmt Ccy=\"{ccy}\">{}</CdtNoteAmt>",
            signed(v, "amount paid")?
        );
    }
    for a in &l.adjustments {
        let (v, cd) = if a.amount.is_sign_negative() {
            (-a.amount, "CRDT")
        } else {
            (a.amount, "DBIT")
        };
        let v = xml_amount(p, v, &format!("adjustment of line {what}"))?;
        let _ = write!(
            amounts,
            "<AdjstmntAmtAndRsn><Amt Ccy=\"{ccy}\">{v}</Amt><CdtDbtInd>{cd}</CdtDbtInd>"
        );
        let (rsn, info) = adjustment_reason(p, a, &what)?;
        if let Some(r) = rsn
            .as_deref()
            .map(|r| xml_text(p, r, 4, "adjustment reason code"))
            .transpose()?
            .flatten()
        {
            let _ = write!(amounts, "<Rsn>{r}</Rsn>");
        }
        if let Some(t) = info
            .as_deref()
            .map(|t| xml_text(p, t, 140, "adjustment text"))
            .transpose()?
            .flatten()
        {
            let _ = write!(amounts, "<AddtlInf>{t}</AddtlInf>");
        }
        amounts.push_str("</AdjstmntAmtAndRsn>");
    }
    if let (false, Some(v)) = (credit, l.amount_paid) {
        let _ = write!(
            amounts,
            "<RmtdAmt Ccy=\"{ccy}\">{}</RmtdAmt>",
            signed(v, "amount paid")?
        );
    }

    if reference.is_none() && code.is_none() && amounts.is_empty() {
        return Ok(());
    }
    out.push_str("<Strd>");
    if reference.is_some() || code.is_some() {
        out.push_str("<RfrdDocInf>");
        if let Some(c) = code {
            let _ = write!(out, "<Tp><CdOrPrtry><Cd>{c}</Cd></CdOrPrtry></Tp>");
        }
        if let Some(r) = &reference {
            let _ = write!(out, "<Nb>{r}</Nb>");
        }
        out.push_str("</RfrdDocInf>");
    }
    if !amounts.is_empty() {
        let _ = write!(out, "<RfrdDocAmt>{amounts}</RfrdDocAmt>");
    }
    out.push_str("</Strd>\n");
    Ok(())
}

/// Where an adjustment's reason code and text go. `Rsn` holds at most 4 characters, and the
/// codes payers use are often longer (`DAMAGE`, `PROMO`); such a code travels at the head of
/// `AddtlInf` as `/RSN/code/` followed by the text, which the reader takes apart again
/// ([`iso20022::long_reason`]). A text that itself opens with `/RSN/` would be read back as a
/// code, so it is refused, as is a long code holding `/`.
fn adjustment_reason(
    p: &Payment,
    a: &crate::domain::Adjustment,
    what: &str,
) -> io::Result<(Option<String>, Option<String>)> {
    let code = a
        .reason_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let text = a.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.starts_with(iso20022::LONG_REASON)) {
        return Err(invalid(
            p,
            format!(
                "adjustment text of line {what} opens with {}",
                iso20022::LONG_REASON
            ),
        ));
    }
    match code {
        Some(c) if c.chars().count() > 4 => {
            if c.contains('/') {
                return Err(invalid(
                    p,
                    format!(
                        "adjustment reason code {c:?} of line {what} is over 4 characters and holds '/'"
                    ),
                ));
            }
            let info = format!("{}{c}/{}", iso20022::LONG_REASON, text.unwrap_or(""));
            Ok((None, Some(info)))
        }
        _ => Ok((code.map(str::to_string), text.map(str::to_string))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Adjustment, Payer};
    use rust_decimal_macros::dec;

    fn fixture(name: &str) -> Parsed {
        let path = format!("{}/../fixtures/camt/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        parse(&bytes, name).unwrap()
    }

    /// A copyleft sample ([`crate::formats::samples`]): skipped without it, a failure under CI.
    fn shared_sample(rel: &str) -> Option<(Vec<u8>, String)> {
        crate::formats::samples::read(rel).map(|(b, p)| (b, p.display().to_string()))
    }

    fn by_id<'a>(p: &'a Parsed, id: &str) -> &'a Payment {
        p.payments
            .iter()
            .find(|x| x.payment_id == id)
            .unwrap_or_else(|| panic!("no payment {id}"))
    }

    fn line(reference: &str, kind: ReferenceKind, paid: Option<Decimal>) -> RemittanceLine {
        RemittanceLine {
            reference: Some(reference.into()),
            reference_kind: kind,
            amount_paid: paid,
            ..RemittanceLine::default()
        }
    }

    fn total(p: &Parsed) -> Decimal {
        p.payments.iter().map(|x| x.amount).sum()
    }

    #[test]
    fn handelsbanken_credit_notification() {
        let p = fixture("camt054_fi_handelsbanken_credit.xml");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.payments.len(), 4);
        assert_eq!(total(&p), dec!(7048)); // TxsSummry/TtlNtries/Sum
        assert!(
            p.payments
                .iter()
                .all(|x| x.format == "camt054" && x.warnings.is_empty())
        );

        let first = by_id(&p, "End To End ID 11");
        assert_eq!(
            (first.amount, first.currency.as_str()),
            (dec!(88.16), "EUR")
        );
        assert_eq!(
            first.payment_date,
            chrono::NaiveDate::from_ymd_opt(2017, 1, 22)
        );
        assert_eq!(first.payer.name.as_deref(), Some("SUOMI OY"));
        assert_eq!(first.free_text, ["9597349"]);

        // 1371.13 remitted against a SCOR reference less a 628.68 credit note = 742.45.
        let second = by_id(&p, "End to End ID 12");
        assert_eq!(second.amount, dec!(742.45));
        assert_eq!(
            second.lines,
            [
                line("9544208", ReferenceKind::Unknown, Some(dec!(1371.13))),
                line("9582095", ReferenceKind::CreditNote, Some(dec!(-628.68))),
            ]
        );

        // 6256.70 - 166.46 - 89.70 = 6000.54; the invoice number's leading space is dropped.
        let third = by_id(&p, "EndToEndId 13");
        assert_eq!(
            third.lines,
            [
                line("9580572", ReferenceKind::Invoice, Some(dec!(6256.7))),
                line(
                    "00000000000009580521",
                    ReferenceKind::CreditNote,
                    Some(dec!(-166.46))
                ),
                line(
                    "00000000000009579095",
                    ReferenceKind::CreditNote,
                    Some(dec!(-89.7))
                ),
            ]
        );

        // No EndToEndId: the entry's AcctSvcrRef. The SEK instructed amount is not the payment;
        // the EUR transaction amount is.
        let fx = by_id(&p, "170130313190U60111");
        assert_eq!((fx.amount, fx.currency.as_str()), (dec!(216.85), "EUR"));
        assert_eq!(fx.free_text.len(), 5);
        assert_eq!(fx.free_text[3], "PARTIAL PYMT 170124         INV 43459");
    }

    #[test]
    fn finnish_reference_notification() {
        let p = fixture("camt054_fi_ffi_sample.xml");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        // 6 entries: batches of 2, 2, 2, 3 and 2 transactions, and 1 of 2 reversed.
        assert_eq!(p.payments.len(), 13);
        assert_eq!(total(&p), dec!(10830.05)); // TxsSummry/TtlNtries/Sum

        let a = by_id(&p, "D091029N987654321S001");
        assert_eq!(a.amount, dec!(1900.00));
        assert_eq!(
            a.lines,
            [
                line("3900", ReferenceKind::Unknown, Some(dec!(2500.00))),
                line("12344", ReferenceKind::CreditNote, Some(dec!(-600.00))),
            ]
        );
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);

        let rf = by_id(&p, "EndToEndIdAT-41-001");
        assert_eq!(
            rf.lines[0],
            line("RF7812345", ReferenceKind::Unknown, Some(dec!(3500.00)))
        );
        assert_eq!(
            rf.lines[1],
            line("RF0812344", ReferenceKind::CreditNote, Some(dec!(-1000.00)))
        );

        let ult = by_id(&p, "EndToEndIdAT-41-002");
        assert_eq!(ult.payer.name.as_deref(), Some("AT-02 DEBTOR NAME 02"));
        assert_eq!(
            ult.free_text,
            [
                "RFB/557742358",
                "ultimate debtor: AT-08 ULTIMATE DEBTOR NAME"
            ]
        );

        let debit = by_id(&p, "091029ARCH03003");
        assert_eq!(
            (debit.direction, debit.amount),
            (Direction::Debit, dec!(1230.02))
        );
        assert_eq!(
            debit.lines,
            [line("217827182718", ReferenceKind::Invoice, None)]
        );

        // The instructed USD amount is not the payment; the EUR transaction amount is.
        let fx = by_id(&p, "ISSRBKREF12345678");
        assert_eq!((fx.amount, fx.currency.as_str()), (dec!(500.00), "EUR"));
        assert!(
            fx.free_text
                .iter()
                .any(|t| t.starts_with("THIS AREA IS FOR BANK MESSAGE"))
        );

        // The reversed INFO entry: direction as given, with the reversal and return reason.
        let rev = by_id(&p, "D091029N987654321S288");
        assert_eq!(
            (rev.direction, rev.amount),
            (Direction::Credit, dec!(40.00))
        );
        assert!(
            rev.warnings.iter().any(|w| w.starts_with("reversal")),
            "{:?}",
            rev.warnings
        );
        assert!(rev.warnings.iter().any(|w| w.contains("INFO")));
        assert!(rev.warnings.iter().any(|w| w.contains("reason AC01")));
        assert!(
            by_id(&p, "D091029N987654321S289")
                .warnings
                .iter()
                .any(|w| w.contains("reason CUST"))
        );
    }

    #[test]
    fn finnish_statement() {
        let p = fixture("camt053_fi_ffi_sample.xml");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.payments.len(), 13);
        assert!(p.payments.iter().all(|x| x.format == "camt053"));
        let credits: Decimal = p
            .payments
            .iter()
            .filter(|x| x.direction == Direction::Credit)
            .map(|x| x.amount)
            .sum();
        let debits: Decimal = p
            .payments
            .iter()
            .filter(|x| x.direction == Direction::Debit)
            .map(|x| x.amount)
            .sum();
        assert_eq!((credits, debits), (dec!(23075.00), dec!(9430.17))); // TtlCdtNtries, TtlDbtNtries

        // An entry without TxDtls is one payment named by its AcctSvcrRef.
        assert_eq!(by_id(&p, "091029ACCTSTMTARCH02").amount, dec!(4000.00));
        // A TxDtls without an amount takes the entry's.
        assert_eq!(by_id(&p, "091029ACCTSTMTARCH01").amount, dec!(1000.12));
        assert_eq!(
            by_id(&p, "091029ARCH03002").free_text,
            ["Invoices 123 and 321"]
        );

        // Charges of 45.00 were taken from 5500.00: the remitted amount does not add up.
        let charged = by_id(&p, "091029ACCTSTMTARCH07");
        assert_eq!(charged.amount, dec!(5455.00));
        assert_eq!(
            charged.lines,
            [line(
                "RF98123456789012",
                ReferenceKind::Unknown,
                Some(dec!(5500.00))
            )]
        );
        assert!(
            charged
                .warnings
                .iter()
                .any(|w| w.contains("add up to 5500.00")),
            "{:?}",
            charged.warnings
        );

        let sct = by_id(&p, "EndToEndIdSCT01");
        assert_eq!(sct.payer.name.as_deref(), Some("DEBTOR"));
        assert!(
            sct.free_text
                .contains(&"ultimate debtor: ULTIMATE DEBTOR".to_string())
        );

        // Both charge transactions carry the same AcctSvcrRef: the second is made unique.
        let dup = by_id(&p, "091029ARCH09001#2");
        assert_eq!(dup.amount, dec!(100.00));
        assert!(
            dup.warnings
                .iter()
                .any(|w| w.contains("earlier transaction"))
        );
    }

    #[test]
    fn genkgo_v4_structured_reference() {
        let p = fixture("camt053_genkgo_v4_strd.xml");
        assert_eq!(p.payments.len(), 1);
        let x = &p.payments[0];
        assert_eq!(x.payment_id, "AAAASESS-FP-CN_98765/01");
        // The transaction states 0 SEK on a EUR entry of 8.85: the booked amount is kept.
        assert_eq!((x.amount, x.currency.as_str()), (dec!(8.85), "EUR"));
        assert!(
            x.warnings.iter().any(|w| w.contains("0 SEK")),
            "{:?}",
            x.warnings
        );
        assert_eq!(
            x.payer,
            Payer {
                name: Some("NAME NAME".into()),
                account: Some("NL56AGDH9619008421".into())
            }
        );
        assert_eq!(
            x.lines,
            [line("4654654654654654", ReferenceKind::Unknown, None)]
        );
    }

    #[test]
    fn postfinance_statement() {
        let p = fixture("camt053_postfinance_ch.xml");
        assert_eq!(p.payments.len(), 5);
        assert_eq!(total(&p), dec!(4811.42));
        let debit = by_id(&p, "0758103031480977");
        assert_eq!(
            (debit.direction, debit.amount),
            (Direction::Debit, dec!(77.70))
        );
        assert!(
            debit.warnings.iter().any(|w| w.contains("says CRDT")),
            "{:?}",
            debit.warnings
        );
        // Two entries share one AcctSvcrRef.
        assert_eq!(by_id(&p, "07582000303KBMSU").amount, dec!(1537.00));
        assert_eq!(by_id(&p, "07582000303KBMSU#2").amount, dec!(1692.22));
        assert!(
            by_id(&p, "07582000303F0C7U").free_text[0].starts_with("SAMMELGUTSCHRIFT FÜR KONTO")
        );
    }

    #[test]
    fn postfinance_esr_batch() {
        let p = fixture("camt054_postfinance_esr.xml");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.payments.len(), 6);
        let amounts: Vec<Decimal> = p.payments.iter().map(|x| x.amount).collect();
        assert_eq!(
            amounts,
            [
                dec!(250),
                dec!(200),
                dec!(300),
                dec!(324),
                dec!(463),
                dec!(147)
            ]
        );
        assert!(
            p.payments
                .iter()
                .all(|x| !x.warnings.iter().any(|w| w.contains("add up")))
        );
        let ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "EndToEndId-001-02-02",
                "EndToEndId-001-02-01",
                "EndToEndId-001-02-03",
                "180315CH02ZZ4OOX",
                "180315CH02ZZ4OOY",
                "180410CH02UZ2PC1"
            ]
        );
        let x = by_id(&p, "180315CH02ZZ4OOY");
        assert_eq!(
            x.lines,
            [line(
                "684388397169969395754931859",
                ReferenceKind::Unknown,
                None
            )]
        );
        assert_eq!(x.payer.account.as_deref(), Some("CH5109000000250092291"));
        assert_eq!(by_id(&p, "180410CH02UZ2PC1").direction, Direction::Debit);
    }

    #[test]
    fn postfinance_ustrd_batch() {
        let p = fixture("camt054_postfinance_ustrd_strd.xml");
        assert_eq!(p.payments.len(), 6);
        assert_eq!(total(&p), dec!(1500.00));
        // A Strd holding only AddtlRmtInf is free text, not a line.
        assert!(
            p.payments
                .iter()
                .all(|x| x.lines.is_empty() && x.warnings.is_empty())
        );
        let x = by_id(&p, "EndToEndId-001-03-05");
        assert_eq!(x.amount, dec!(50.00));
        assert_eq!(x.free_text[0], "Rg.-Nr. 1234567890");
    }

    #[test]
    fn a_reversal_is_a_returned_item_naming_its_original_by_end_to_end_id() {
        let p = fixture("camt054_reversal_rvslind_original.xml");
        let [rev, bare] = p.payments.as_slice() else {
            panic!("{:?}", p.payments)
        };
        // Its own id, so that it is never taken for a second sending of the original.
        assert_eq!(rev.payment_id, format!("E2E-NW-20261130-7{RETURN_SUFFIX}"));
        assert_eq!(
            (rev.direction, rev.amount, rev.currency.as_str()),
            (Direction::Debit, dec!(3420.75), "USD")
        );
        assert_eq!(
            rev.returned,
            Some(ReturnedItem {
                return_code: "AC04".into(),
                reason: Some("Closed account number".into()),
                original_trace: Some("E2E-NW-20261130-7".into()),
            })
        );
        assert_eq!(rev.payer.account.as_deref(), Some("021000021:4000123456"));
        // No transaction details: no original id and no reason, only the flag.
        assert_eq!(bare.payment_id, "BNK-RV-77002");
        assert_eq!(
            bare.returned,
            Some(ReturnedItem {
                return_code: "RVSL".into(),
                reason: None,
                original_trace: None,
            })
        );
    }

    #[test]
    fn oca_reversal_read_in_place() {
        let Some((bytes, path)) = shared_sample("camt/camt053_oca_nl_ustrd_reversal.xml") else {
            return;
        };
        let p = parse(&bytes, &path).unwrap();
        assert_eq!(p.payments.len(), 4);
        // A reversal gets an id of its own; its end-to-end id names the original.
        let rev = by_id(&p, "TESTBANK/NL/20141229/01206408/return");
        assert_eq!(
            (rev.direction, rev.amount),
            (Direction::Debit, dec!(564.05))
        );
        assert!(rev.warnings.iter().any(|w| w.starts_with("reversal")));
        assert!(rev.warnings.iter().any(|w| w.contains("reason AC06")));
        let r = rev
            .returned
            .as_ref()
            .expect("a reversal is a returned item");
        assert_eq!(r.return_code, "AC06");
        assert_eq!(
            r.original_trace.as_deref(),
            Some("TESTBANK/NL/20141229/01206408")
        );
        let credit = by_id(&p, "115");
        assert_eq!(
            (credit.direction, credit.amount),
            (Direction::Credit, dec!(1405.31))
        );
        assert_eq!(credit.payer.account.as_deref(), Some("NL69ABNA0522123643"));
        assert_eq!(credit.free_text, ["#RD PARTY MEDIA CUSNO 90782 4210773"]);
    }

    #[test]
    fn every_sample_detects_as_its_variant() {
        let dir = format!("{}/../fixtures/camt", env!("CARGO_MANIFEST_DIR"));
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let want = if name.starts_with("camt054") {
                Format::Camt054
            } else {
                Format::Camt053
            };
            assert_eq!(variant(&bytes), Some(want), "{name}");
        }
        let remt = format!(
            "{}/../fixtures/remt/remt001_bpc_tc1_two_invoices.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        assert!(!looks_like(&std::fs::read(remt).unwrap()));
        assert!(!looks_like(b"ISA*00*          *00*"));
    }

    const HEAD: &str = "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.02\">\
        <BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>M1</MsgId></GrpHdr><Ntfctn><Id>N1</Id>";
    const TAIL: &str = "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>";

    fn doc(entries: &str) -> String {
        format!("{HEAD}{entries}{TAIL}")
    }

    const GOOD: &str = "<Ntry><Amt Ccy=\"EUR\">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>";

    #[test]
    fn a_bad_entry_is_reported_with_its_path_and_the_rest_go_on() {
        let xml = doc(&format!(
            "{GOOD}{GOOD}<Ntry><Amt Ccy=\"EUR\">1O.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>{GOOD}"
        ));
        let p = parse(xml.as_bytes(), "bad.xml").unwrap();
        assert_eq!(p.payments.len(), 3);
        assert_eq!(p.errors.len(), 1);
        let e = &p.errors[0];
        assert_eq!(
            e.position,
            Position::XmlPath("/Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[3]/Amt".into())
        );
        assert!(
            e.to_string().starts_with(
                "bad.xml: /Document/BkToCstmrDbtCdtNtfctn/Ntfctn[1]/Ntry[3]/Amt: amount \"1O.00\""
            ),
            "{e}"
        );
        // Entries without any reference get positional ids from the notification's Id.
        assert_eq!(p.payments[0].payment_id, "N1/1");
        assert_eq!(p.payments[2].payment_id, "N1/4");
    }

    #[test]
    fn entry_faults_name_what_is_missing() {
        for (entry, needle) in [
            (
                "<Ntry><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
                "entry without Amt",
            ),
            (
                "<Ntry><Amt>1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
                "without a Ccy",
            ),
            (
                "<Ntry><Amt Ccy=\"EURO\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>",
                "bad Ccy",
            ),
            ("<Ntry><Amt Ccy=\"EUR\">1</Amt></Ntry>", "without CdtDbtInd"),
            (
                "<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CR</CdtDbtInd></Ntry>",
                "neither CRDT nor DBIT",
            ),
            (
                "<Ntry><Amt Ccy=\"EUR\">3</Amt><CdtDbtInd>CRDT</CdtDbtInd><NtryDtls><TxDtls/><TxDtls/></NtryDtls></Ntry>",
                "batch entry has no amount",
            ),
        ] {
            let p = parse(doc(entry).as_bytes(), "f.xml").unwrap();
            let msgs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
            assert!(
                msgs.iter()
                    .any(|m| m.contains(needle) && m.contains("Ntry[1]")),
                "{entry}: {msgs:?}"
            );
        }
    }

    #[test]
    fn batch_totals_that_do_not_add_up_are_warned() {
        let xml = doc(
            "<Ntry><Amt Ccy=\"EUR\">30</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>B</AcctSvcrRef>\
             <NtryDtls><TxDtls><Amt Ccy=\"EUR\">10</Amt></TxDtls><TxDtls><Amt Ccy=\"EUR\">15</Amt></TxDtls></NtryDtls></Ntry>",
        );
        let p = parse(xml.as_bytes(), "f.xml").unwrap();
        let ids: Vec<&str> = p.payments.iter().map(|x| x.payment_id.as_str()).collect();
        assert_eq!(ids, ["B/1", "B/2"]);
        assert!(
            p.payments
                .iter()
                .all(|x| x.warnings.iter().any(|w| w.contains("add up to 25")))
        );
    }

    #[test]
    fn not_provided_end_to_end_id_counts_as_absent() {
        let xml = doc(
            "<Ntry><Amt Ccy=\"EUR\">1</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>BANKREF</AcctSvcrRef>\
             <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>",
        );
        assert_eq!(
            parse(xml.as_bytes(), "f").unwrap().payments[0].payment_id,
            "BANKREF"
        );
    }

    #[test]
    fn files_that_are_not_camt_are_rejected() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "no XML element"),
            (b"ISA*00*", "no XML element"),
            (
                b"<Document><RmtAdvc/></Document>",
                "not a camt.053 or camt.054",
            ),
            (b"<Document><BkToCstmrAcctRpt/></Document>", "camt.052"),
            (
                b"<Document><BkToCstmrStmt><Stmt><Ntry></Stmt>",
                "malformed XML",
            ),
            (b"<Document><BkToCstmrStmt>", "ends inside"),
        ];
        for (bytes, needle) in cases {
            let e = parse(bytes, "x.xml").unwrap_err();
            assert!(
                e.to_string().contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(bytes)
            );
        }
        let e = parse(format!("{}<Ntry>", &HEAD).as_bytes(), "t.xml").unwrap_err();
        assert!(e.to_string().contains("/Ntfctn[1]/Ntry[1]"), "{e}");
    }

    #[test]
    fn version_08_shapes_are_read() {
        let xml = "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt><Stmt>\
            <Ntry><Amt Ccy=\"USD\">98.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>\
            <BookgDt><DtTm>2024-03-01T10:00:00</DtTm></BookgDt><NtryDtls><TxDtls>\
            <Refs><EndToEndId>E1</EndToEndId></Refs>\
            <RltdPties><Dbtr><Pty><Nm>ACME</Nm></Pty></Dbtr><DbtrAcct><Id><Othr><Id>123</Id></Othr></Id></DbtrAcct></RltdPties>\
            <RmtInf><Strd><RfrdDocInf><Tp><CdOrPrtry><Cd>CINV</Cd></CdOrPrtry></Tp><Nb>INV-1</Nb></RfrdDocInf>\
            <RfrdDocAmt><DuePyblAmt Ccy=\"USD\">100</DuePyblAmt><DscntApldAmt><Tp><Cd>TMDS</Cd></Tp><Amt Ccy=\"USD\">2</Amt></DscntApldAmt>\
            <RmtdAmt Ccy=\"USD\">98.00</RmtdAmt></RfrdDocAmt></Strd></RmtInf></TxDtls></NtryDtls></Ntry></Stmt></BkToCstmrStmt></Document>";
        let p = parse(xml.as_bytes(), "v8.xml").unwrap();
        let x = &p.payments[0];
        assert_eq!(
            x.payer,
            Payer {
                name: Some("ACME".into()),
                account: Some("123".into())
            }
        );
        assert_eq!(x.payment_date, chrono::NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(x.warnings, ["entry status PDNG: not booked"]);
        assert_eq!(
            x.lines,
            [RemittanceLine {
                reference: Some("INV-1".into()),
                reference_kind: ReferenceKind::Invoice,
                amount_paid: Some(dec!(98.00)),
                invoice_amount: Some(dec!(100)),
                discount: Some(dec!(2)),
                adjustments: vec![],
            }]
        );
    }

    fn sample_payments() -> Vec<Payment> {
        let base = Payment {
            payment_id: "P-1".into(),
            format: "synth".into(),
            direction: Direction::Credit,
            payment_date: chrono::NaiveDate::from_ymd_opt(2024, 5, 2),
            amount: dec!(1234.50),
            currency: Currency::USD,
            payer: Payer {
                name: Some("Acme & Sons <AP>".into()),
                account: Some("DE89370400440532013000".into()),
            },
            lines: vec![
                RemittanceLine {
                    reference: Some("INV-1001".into()),
                    reference_kind: ReferenceKind::Invoice,
                    amount_paid: Some(dec!(980.00)),
                    invoice_amount: Some(dec!(1000.00)),
                    discount: Some(dec!(20.00)),
                    adjustments: vec![],
                },
                RemittanceLine {
                    reference: Some("CM-7".into()),
                    reference_kind: ReferenceKind::CreditNote,
                    amount_paid: Some(dec!(-45.50)),
                    invoice_amount: Some(dec!(-45.50)),
                    ..RemittanceLine::default()
                },
                RemittanceLine {
                    reference: Some("PO 88".into()),
                    reference_kind: ReferenceKind::PurchaseOrder,
                    amount_paid: Some(dec!(300.00)),
                    invoice_amount: Some(dec!(310.00)),
                    adjustments: vec![
                        Adjustment {
                            amount: dec!(12.00),
                            reason_code: Some("CS".into()),
                            text: Some("short shipped".into()),
                        },
                        Adjustment {
                            amount: dec!(-2.00),
                            reason_code: None,
                            text: None,
                        },
                    ],
                    ..RemittanceLine::default()
                },
                RemittanceLine {
                    amount_paid: Some(dec!(0)),
                    ..RemittanceLine::default()
                },
            ],
            free_text: vec!["paying INV 1001 less credit".into()],
            warnings: vec![],
            returned: None,
        };
        let debit = Payment {
            payment_id: "P-2".into(),
            direction: Direction::Debit,
            payment_date: None,
            amount: dec!(7),
            currency: "EUR".parse().unwrap(),
            payer: Payer {
                name: None,
                account: Some("12-345".into()),
            },
            lines: vec![],
            free_text: vec![],
            ..base.clone()
        };
        vec![base, debit]
    }

    fn comparable(mut p: Payment, format: &str) -> Payment {
        p.warnings.clear();
        p.format = format.to_string();
        p
    }

    #[test]
    fn written_camt054_reads_back_the_same_payments() {
        let payments = sample_payments();
        let mut out = Vec::new();
        write_camt054(&payments, &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("camt.054.001.08")
                && text.contains("<Nm>Acme &amp; Sons &lt;AP&gt;</Nm>")
        );
        assert_eq!(variant(&out), Some(Format::Camt054));
        let parsed = parse(&out, "written.xml").unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let back: Vec<Payment> = parsed
            .payments
            .into_iter()
            .map(|p| comparable(p, "synth"))
            .collect();
        assert_eq!(back, payments);
    }

    #[test]
    fn the_writer_refuses_what_the_schema_cannot_hold() {
        let mut p = sample_payments().remove(0);
        p.lines[0].amount_paid = Some(dec!(-1));
        let e = write_camt054(&[p], Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("INV-1001"), "{e}");

        let mut p = sample_payments().remove(0);
        p.payment_id = "X".repeat(36);
        assert!(write_camt054(&[p], Vec::new()).is_err());
        let mut p = sample_payments().remove(0);
        p.lines[2].adjustments[0].reason_code = Some("TOO/LONG".into());
        assert!(write_camt054(&[p], Vec::new()).is_err());
        let mut p = sample_payments().remove(0);
        p.lines[2].adjustments[0].text = Some("/RSN/X/".into());
        assert!(write_camt054(&[p], Vec::new()).is_err());
        let mut p = sample_payments().remove(0);
        p.amount = dec!(1.000001);
        assert!(write_camt054(&[p], Vec::new()).is_err());
    }

    #[test]
    fn reason_codes_over_four_characters_travel_in_addtlinf() {
        let mut payments = sample_payments();
        payments[0].lines[2].adjustments[0].reason_code = Some("DAMAGE".into());
        payments[0].lines[2].adjustments[0].text = Some("CARTON / CRUSHED".into());
        payments[0].lines[2].adjustments[1].reason_code = Some("PROMO".into());
        let mut xml = Vec::new();
        write_camt054(&payments, &mut xml).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        assert!(
            xml.contains("<AddtlInf>/RSN/DAMAGE/CARTON / CRUSHED</AddtlInf>"),
            "{xml}"
        );
        let back = parse(xml.as_bytes(), "w.xml").unwrap();
        let a = &back.payments[0].lines[2].adjustments;
        assert_eq!(a[0].reason_code.as_deref(), Some("DAMAGE"));
        assert_eq!(a[0].text.as_deref(), Some("CARTON / CRUSHED"));
        assert_eq!(
            (a[1].reason_code.as_deref(), a[1].text.as_deref()),
            (Some("PROMO"), None)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text(max: usize) -> impl Strategy<Value = Option<String>> {
            proptest::option::of(
                proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap(),
            )
            .prop_map(|s| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        }

        fn money(max: i64) -> impl Strategy<Value = Decimal> {
            (0..max, 0u32..=2).prop_map(|(m, s)| Decimal::new(m, s))
        }

        fn line() -> impl Strategy<Value = RemittanceLine> {
            let kind = prop_oneof![
                Just(ReferenceKind::Invoice),
                Just(ReferenceKind::CreditNote),
                Just(ReferenceKind::PurchaseOrder),
                Just(ReferenceKind::Unknown)
            ];
            let adjustment =
                (-50_000i64..50_000, text(4), text(60)).prop_map(|(a, r, t)| Adjustment {
                    amount: Decimal::new(a, 2),
                    reason_code: r,
                    text: t,
                });
            (
                kind,
                text(35),
                proptest::option::of(money(10_000_000)),
                proptest::option::of(money(10_000_000)),
                proptest::option::of(money(100_000)),
                proptest::collection::vec(adjustment, 0..3),
            )
                .prop_map(|(kind, reference, paid, invoice, discount, adjustments)| {
                    let sign = |v: Decimal| {
                        if kind == ReferenceKind::CreditNote {
                            -v
                        } else {
                            v
                        }
                    };
                    RemittanceLine {
                        reference,
                        reference_kind: kind,
                        amount_paid: paid.map(sign),
                        invoice_amount: invoice.map(sign),
                        discount,
                        adjustments,
                    }
                })
        }

        fn payment() -> impl Strategy<Value = Payment> {
            let currency = prop_oneof![Just("USD"), Just("EUR"), Just("CHF"), Just("JPY")];
            (
                any::<bool>(),
                proptest::option::of(0i64..20_000),
                money(100_000_000_000),
                currency,
                text(140),
                prop_oneof![
                    Just(None),
                    Just(Some("CH5109000000250092291".to_string())),
                    "[0-9]{4,17}".prop_map(Some)
                ],
                proptest::collection::vec(line(), 0..5),
                proptest::collection::vec(text(140), 0..3),
            )
                .prop_map(|(credit, day, amount, ccy, name, account, lines, free)| {
                    Payment {
                        payment_id: String::new(),
                        format: "synth".into(),
                        direction: if credit {
                            Direction::Credit
                        } else {
                            Direction::Debit
                        },
                        payment_date: day.and_then(|d| {
                            chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                                .and_then(|s| s.checked_add_days(chrono::Days::new(d as u64)))
                        }),
                        amount,
                        currency: ccy.parse().unwrap(),
                        payer: Payer { name, account },
                        lines: lines
                            .into_iter()
                            .filter(|l| *l != RemittanceLine::default())
                            .collect(),
                        free_text: free.into_iter().flatten().collect(),
                        warnings: vec![],
                        returned: None,
                    }
                })
        }

        proptest! {
            #[test]
            fn write_then_parse_is_identity(mut payments in proptest::collection::vec(payment(), 0..6)) {
                for (i, p) in payments.iter_mut().enumerate() {
                    p.payment_id = format!("PAY-{i}");
                }
                let mut out = Vec::new();
                write_camt054(&payments, &mut out).unwrap();
                let parsed = parse(&out, "w.xml").unwrap();
                prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
                let back: Vec<Payment> = parsed.payments.into_iter().map(|p| comparable(p, "synth")).collect();
                prop_assert_eq!(back, payments);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = parse(&bytes, "fuzz.xml");
                let _ = variant(&bytes);
            }

            #[test]
            fn xml_ish_input_never_panics(tokens in proptest::collection::vec(prop_oneof![
                Just("<Document>"), Just("</Document>"), Just("<BkToCstmrStmt>"), Just("<BkToCstmrDbtCdtNtfctn>"),
                Just("<Stmt>"), Just("</Stmt>"), Just("<Ntfctn>"), Just("<Ntry>"), Just("</Ntry>"),
                Just("<Amt Ccy=\"EUR\">"), Just("<Amt>"), Just("</Amt>"), Just("12.50"), Just("99999999999999999999999999999"),
                Just("<CdtDbtInd>CRDT</CdtDbtInd>"), Just("<CdtDbtInd>DBIT</CdtDbtInd>"), Just("<NtryDtls>"), Just("</NtryDtls>"),
                Just("<TxDtls>"), Just("</TxDtls>"), Just("<TxDtls/>"), Just("<RmtInf>"), Just("</RmtInf>"), Just("<Strd>"), Just("</Strd>"),
                Just("<RfrdDocInf><Tp><CdOrPrtry><Cd>CREN</Cd></CdOrPrtry></Tp><Nb>1</Nb></RfrdDocInf>"),
                Just("<RfrdDocAmt>"), Just("</RfrdDocAmt>"), Just("<CdtNoteAmt Ccy=\"EUR\">79228162514264337593543950335</CdtNoteAmt>"),
                Just("<RmtdAmt Ccy=\"EUR\">79228162514264337593543950335</RmtdAmt>"), Just("<DuePyblAmt Ccy=\"USD\">1</DuePyblAmt>"),
                Just("<TaxAmt><Amt Ccy=\"EUR\">5</Amt></TaxAmt>"), Just("<AdjstmntAmtAndRsn><Amt Ccy=\"EUR\">79228162514264337593543950335</Amt><CdtDbtInd>CRDT</CdtDbtInd></AdjstmntAmtAndRsn>"),
                Just("<LineDtls><Amt><AdjstmntAmtAndRsn><Amt>1</Amt></AdjstmntAmtAndRsn></Amt></LineDtls>"),
                Just("&amp;"), Just("&#0;"), Just("&#x110000;"), Just("&nope;"), Just("<![CDATA[x]]>"), Just("<!-- c -->"),
                Just("<?xml version=\"1.0\" encoding=\"windows-1252\"?>"), Just("\u{FEFF}"), Just("<a:Ntry xmlns:a=\"x\">"),
                Just("<BookgDt><Dt>2024-02-30</Dt></BookgDt>"), Just("<Refs><EndToEndId>E</EndToEndId></Refs>"), Just("<RvslInd>true</RvslInd>"),
            ], 0..60)) {
                let s: String = tokens.concat();
                let _ = parse(s.as_bytes(), "fuzz.xml");
                let _ = crate::formats::remt::parse(s.as_bytes(), "fuzz.xml");
            }
        }
    }
}
