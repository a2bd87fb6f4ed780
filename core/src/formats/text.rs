//! Free text: an email body or a memo that says what a payment pays.
//!
//! "Please apply our payment of $3,300.00 to INV 1001, 1002 & 1005": the references come from
//! [`extract_from_text`] (lists and ranges included), the amount from the money figures. A
//! reference followed by an amount on the same line (`INV-1001  $1,200.00`) becomes a line with
//! that amount. The whole text is kept as free text, so the engine sees what a person would.

use super::{FormatError, Parsed, Position};
use crate::domain::{Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine};
use crate::text::references::extract_from_text;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Free text is the format of last resort: anything that is UTF-8 text.
pub fn looks_like(head: &[u8]) -> bool {
    std::str::from_utf8(head).is_ok() || head.len() >= 4096
}

/// Money figures in a piece of text: `$1,234.50`, `1234.50`, `USD 99.00`.
fn amounts(text: &str) -> Vec<Decimal> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';')
        .filter_map(|t| {
            let t = t.trim_end_matches(['.', ',', ':']);
            let t = t.trim_start_matches(['$', '€', '£']);
            let (int, frac) = t.rsplit_once('.')?;
            if frac.len() != 2
                || int.is_empty()
                || !int.bytes().all(|c| c.is_ascii_digit() || c == b',')
            {
                return None;
            }
            Decimal::from_str(&format!("{}.{frac}", int.replace(',', ""))).ok()
        })
        .collect()
}

/// The currency a remittance's text names (`EUR`, `GBP`, `CAD`, `CHF`), US dollars otherwise.
pub(crate) fn currency_in(text: &str) -> Currency {
    ["EUR", "GBP", "CAD", "CHF"]
        .iter()
        .find(|c| text.contains(*c))
        .and_then(|c| Currency::from_str(c).ok())
        .unwrap_or(Currency::USD)
}

/// Reads a free-text remittance as one payment. The amount is the figure called a total or a
/// payment, else the largest figure; text with no amount at all is an error.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let text = String::from_utf8_lossy(bytes);
    let all = amounts(&text);
    let total_line = text.lines().find(|l| {
        let u = l.to_ascii_uppercase();
        (u.contains("TOTAL") || u.contains("PAYMENT OF") || u.contains("AMOUNT"))
            && !amounts(l).is_empty()
    });
    let amount = total_line
        .and_then(|l| amounts(l).into_iter().max())
        .or_else(|| all.iter().copied().max())
        .ok_or_else(|| {
            FormatError::new(
                file,
                Position::File,
                "no payment amount (such as $1,234.50) in the text",
            )
        })?;
    let mut lines = Vec::new();
    for l in text.lines() {
        let refs = extract_from_text(l);
        let figures = amounts(l);
        // A line with exactly one reference and one figure that is not the total pays that much.
        let line_amount =
            (refs.len() == 1 && figures.len() == 1 && figures[0] != amount).then(|| figures[0]);
        for r in refs {
            lines.push(RemittanceLine {
                reference: Some(r.reference),
                reference_kind: if r.purchase_order {
                    ReferenceKind::PurchaseOrder
                } else {
                    ReferenceKind::Unknown
                },
                amount_paid: line_amount,
                ..Default::default()
            });
        }
    }
    let currency = currency_in(&text);
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Parsed {
        payments: vec![Payment {
            payment_id: format!("text:{stem}"),
            format: super::Format::FreeText.name().to_string(),
            direction: Direction::Credit,
            payment_date: None,
            amount,
            currency,
            payer: Payer::default(),
            lines,
            free_text: vec![text.trim().to_string()],
            warnings: vec![
                "free text: payment id made from the file name; amount read from the text".into(),
            ],
            returned: None,
        }],
        errors: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn email_body_gives_amount_and_references() {
        let body = b"Hello,\nPlease apply our payment of $3,300.00 to INV 1001, 1002 & 1005.\nThanks, AP team";
        let p = &parse(body, "mail.txt").unwrap().payments[0];
        assert_eq!(p.amount, dec!(3300.00));
        let refs: Vec<_> = p.lines.iter().filter_map(|l| l.reference.clone()).collect();
        assert_eq!(refs, ["1001", "1002", "1005"]);
    }

    #[test]
    fn per_line_amounts_and_ranges() {
        let body = b"Remittance\nINV-0040001   $500.00\nINV-0040008   $642.18\nTOTAL $1,142.18\n";
        let p = &parse(body, "r.txt").unwrap().payments[0];
        assert_eq!(p.amount, dec!(1142.18));
        assert_eq!(p.lines.len(), 2);
        assert_eq!(p.lines[1].amount_paid, Some(dec!(642.18)));
        let p = &parse(b"Paid INV 1001-1004 total 400.00", "r.txt")
            .unwrap()
            .payments[0];
        assert_eq!(p.lines.len(), 4);
    }

    #[test]
    fn text_without_amount_is_an_error_naming_the_file() {
        let e = parse(b"see attached", "mail.txt").unwrap_err();
        assert!(e.to_string().starts_with("mail.txt: file:"), "{e}");
    }
}
