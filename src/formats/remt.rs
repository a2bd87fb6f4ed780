//! ISO 20022 remt.001 remittance advice: the remittance that arrives separately from the
//! payment. Each `RmtInf` of the advice becomes a [`Payment`] whose `payment_id` is the original
//! payment's `EndToEndId`, so the engine can join it to the bank's record of the same payment
//! (a camt.054 transaction carries that `EndToEndId` too). The mapping is documented in
//! `docs/formats/remt.md`.

use crate::domain::{Currency, Direction, Payment};
use crate::formats::iso20022::{
    self, NOT_PROVIDED, Node, PaymentIds, XmlStream, check_lines_total, money, party_name, payer,
};
use crate::formats::{Format, FormatError, Parsed, Position};
use rust_decimal::Decimal;

/// Whether the head of a file (its first 4 KiB are read) is a remt.001 remittance advice.
pub fn looks_like(head: &[u8]) -> bool {
    iso20022::names_message(iso20022::head(head), "remt.001", "RmtAdvc")
}

/// Reads a remt.001 file (any version). A file that is not XML, not a remittance advice, or
/// malformed XML is an `Err`; a remittance that cannot be read is kept in [`Parsed::errors`]
/// with its XML path.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = iso20022::decode_input(bytes, file)?;
    let mut xs = XmlStream::new(&text, file);
    let msg = xs.message_element()?;
    if msg.name != "RmtAdvc" {
        return Err(FormatError::new(
            file,
            Position::XmlPath(msg.path.clone()),
            format!(
                "not a remt.001 remittance advice: the message element is {}, expected RmtAdvc",
                msg.name
            ),
        ));
    }
    let mut out = Parsed::default();
    let mut ids = PaymentIds::default();
    let mut msg_id: Option<String> = None;
    let mut count = 0usize;
    while let Some(child) = xs.next_child()? {
        match child.name.as_str() {
            "GrpHdr" => msg_id = xs.subtree(&child)?.text_at(&["MsgId"]),
            "RmtInf" => {
                count += 1;
                let node = xs.subtree(&child)?;
                let fallback = msg_id.as_deref().unwrap_or(Format::Remt001.name());
                match advice(&node, file, &format!("{fallback}/{count}")) {
                    Ok(mut p) => {
                        p.payment_id = ids.unique(p.payment_id, &mut p.warnings);
                        out.payments.push(p);
                    }
                    Err(e) => out.errors.push(e),
                }
            }
            _ => xs.skip(&child)?,
        }
    }
    xs.finish()?;
    Ok(out)
}

/// Maps one `RmtInf` of an advice.
fn advice(rmt: &Node, file: &str, fallback_id: &str) -> Result<Payment, FormatError> {
    let original = rmt.child("OrgnlPmtInf");
    let refs = original.and_then(|o| o.child("Refs"));
    let reference = |name: &str| refs.and_then(|r| r.text_at(&[name]));
    let payment_id = reference("EndToEndId")
        .filter(|id| !id.eq_ignore_ascii_case(NOT_PROVIDED))
        .or_else(|| reference("UETR"))
        .or_else(|| reference("TxId"))
        .or_else(|| reference("InstrId"))
        .or_else(|| rmt.text_at(&["RmtId"]))
        .unwrap_or_else(|| fallback_id.to_string());

    let remit = iso20022::remittance(rmt, file)?;
    let mut warnings = remit.warnings;
    let mut free_text = remit.free_text;

    let stated = original.and_then(|o| {
        [
            &["Amt", "InstdAmt"][..],
            &["Amt", "EqvtAmt", "Amt"],
            &["IntrBkSttlmAmt"],
            &["Amt"],
        ]
        .iter()
        .find_map(|p| o.at(p).filter(|n| n.children.is_empty()))
    });
    let (amount, currency) = match stated {
        Some(node) => {
            let m = money(node, file)?;
            let c = m
                .ccy
                .or(remit.paid_currencies.first().copied())
                .unwrap_or_else(|| {
                    warnings.push("the advice states no currency; USD is assumed".into());
                    Currency::USD
                });
            check_lines_total(
                &remit.lines,
                &remit.paid_currencies,
                m.value,
                c,
                &mut warnings,
            );
            (m.value, c)
        }
        None => {
            let c = remit.paid_currencies.first().copied().unwrap_or_else(|| {
                warnings.push("the advice states no currency; USD is assumed".into());
                Currency::USD
            });
            let total = remit
                .lines
                .iter()
                .filter_map(|l| l.amount_paid)
                .try_fold(Decimal::ZERO, |s, v| s.checked_add(v))
                .ok_or_else(|| rmt.error(file, "line amounts overflow when added"))?;
            warnings.push(format!(
                "the advice states no payment amount; {total} is the sum of its lines"
            ));
            if remit.paid_currencies.len() > 1 {
                warnings.push("the lines' amounts are in several currencies".into());
            }
            (total, c)
        }
    };

    let mut payment_date = None;
    if let Some(o) = original {
        for name in ["ReqdExctnDt", "IntrBkSttlmDt", "ReqdColltnDt"] {
            if let (None, Some(n)) = (payment_date, o.child(name)) {
                match iso20022::date(n) {
                    Ok(d) => payment_date = d,
                    Err(w) => warnings.push(w),
                }
            }
        }
    }

    let (mut payer, ultimate) = original.map(payer).unwrap_or_default();
    free_text.extend(ultimate);
    if payer.name.is_none() {
        payer.name = rmt
            .all("Strd")
            .find_map(|s| s.child("Invcee").and_then(party_name));
    }

    Ok(Payment {
        payment_id,
        format: Format::Remt001.name().to_string(),
        direction: Direction::Credit,
        payment_date,
        amount,
        currency,
        payer,
        lines: remit.lines,
        free_text,
        warnings,
    })
}
