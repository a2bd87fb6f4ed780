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
pub(crate) fn looks_like_053(head: &[u8]) -> bool {
    iso20022::names_message(iso20022::head(head), "camt.053", "BkToCstmrStmt")
}

/// Whether the head is a camt.054 notification (`BkToCstmrDbtCdtNtfctn`).
pub(crate) fn looks_like_054(head: &[u8]) -> bool {
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
pub(crate) const RETURN_SUFFIX: &str = "/return";

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
    let created = created_at(payments);
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

/// Writes advices as one remt.001.001.05 remittance advice: one `RmtInf` per payment, its
/// `OrgnlPmtInf` carrying `EndToEndId` = `payment_id`, the amount (`InstdAmt`), the date
/// (`ReqdExctnDt`) and the payer (`Dbtr/Nm`), and one `Strd` per remittance line written as
/// [`write_camt054`] writes them, so that [`super::remt::parse`] reads back the same ids, dates,
/// amounts, payers and lines. Values the schema cannot hold are refused as there.
pub fn write_remt001(payments: &[Payment], w: impl Write) -> io::Result<()> {
    let mut body = String::new();
    for p in payments {
        let ccy = p.currency.as_str();
        let amount = xml_amount(p, p.amount, "payment amount")?;
        let id = end_to_end_id(p)?;
        let _ = writeln!(body, "<RmtInf>\n<RmtId>{id}</RmtId>");
        for line in &p.lines {
            render_line(p, line, ccy, &mut body)?;
        }
        let _ = write!(
            body,
            "<OrgnlPmtInf>\n<Refs><EndToEndId>{id}</EndToEndId></Refs>\n\
             <Amt><InstdAmt Ccy=\"{ccy}\">{amount}</InstdAmt></Amt>\n"
        );
        if let Some(d) = xml_date(p)? {
            let _ = writeln!(body, "<ReqdExctnDt><Dt>{d}</Dt></ReqdExctnDt>");
        }
        if let Some(n) = p
            .payer
            .name
            .as_deref()
            .map(|n| xml_text(p, n, 140, "payer name"))
            .transpose()?
            .flatten()
        {
            let _ = writeln!(body, "<Dbtr><Nm>{n}</Nm></Dbtr>");
        }
        body.push_str("</OrgnlPmtInf>\n</RmtInf>\n");
    }
    let created = created_at(payments);
    let mut w = io::BufWriter::new(w);
    write!(
        w,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:remt.001.001.05\">\n<RmtAdvc>\n\
         <GrpHdr><MsgId>CASHMATCH-REMT001</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\n\
         {body}</RmtAdvc>\n</Document>\n"
    )?;
    w.flush()
}

/// The payment id as an `EndToEndId`: present, within 35 characters, and not the placeholder
/// the parser reads as no id.
fn end_to_end_id(p: &Payment) -> io::Result<String> {
    let id = xml_text(p, &p.payment_id, 35, "payment id (EndToEndId)")?
        .ok_or_else(|| invalid(p, "empty payment id".into()))?;
    if id.eq_ignore_ascii_case(NOT_PROVIDED) {
        return Err(invalid(
            p,
            "payment id NOTPROVIDED would read back as no id".into(),
        ));
    }
    Ok(id)
}

/// The payment date as an ISO date (`xs:date` holds years 1 to 9999 only).
fn xml_date(p: &Payment) -> io::Result<Option<String>> {
    use chrono::Datelike;
    let Some(d) = p.payment_date else {
        return Ok(None);
    };
    if !(1..=9999).contains(&d.year()) {
        return Err(invalid(
            p,
            format!("payment date {d} is outside years 1 to 9999"),
        ));
    }
    Ok(Some(d.format("%Y-%m-%d").to_string()))
}

/// A message's creation time: midnight of its latest payment date, so that a file written twice
/// from the same payments is the same file.
fn created_at(payments: &[Payment]) -> String {
    payments
        .iter()
        .filter_map(|p| p.payment_date)
        .max()
        .map(|d| d.format("%Y-%m-%dT00:00:00").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00".into())
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
    let id = end_to_end_id(p)?;
    let _ = write!(
        out,
        "<Ntry>\n<Amt Ccy=\"{ccy}\">{amount}</Amt>\n<CdtDbtInd>{cd}</CdtDbtInd>\n\
         <Sts><Cd>BOOK</Cd></Sts>\n"
    );
    if let Some(d) = xml_date(p)? {
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
mod tests;
