//! UN/EDIFACT REMADV (remittance advice, D.96A and the directories around it): the European
//! payer's EDI advice. Each `UNH ... UNT` message is one advice.
//!
//! The service characters come from the `UNA` string when there is one (component `:`, element
//! `+`, decimal mark `.`, release `?`, segment terminator `'` otherwise); the release character
//! makes the next character literal (`?'` is an apostrophe in a name). Line breaks after a
//! terminator are ignored.
//!
//! What is read (docs/formats.md has the table):
//!
//! - `BGM` element 2: the advice's number, its payment id;
//! - `DTM` 209 (value date), else 202 (posting), else 137 (document date): its date;
//! - `NAD+PR` (payer): the payer's name (the party name, else the name-and-address lines);
//! - `CUX` element 1 component 2, or an `MOA`'s currency: the currency;
//! - `MOA` outside any document (before the first `DOC` or after `UNS`): the total remitted,
//!   qualifiers 9, 12, 60 or 128;
//! - `DOC`: a line. Its document number is the reference (type 380 an invoice, 381 a credit
//!   note, 220 an order); then `MOA` 12 (amount remitted) or 9 (amount payable) is what the line
//!   pays, 39 or 77 the invoice amount, 52 the discount; an `AJT` (adjustment, its reason code)
//!   takes the `MOA` after it as an adjustment that reduced the payment.
//!
//! A message that cannot be read (a bad amount, a missing `DOC` number, another message type)
//! is reported with its segment number and the other messages go on; a segment count in `UNT`
//! that disagrees is a warning on the advice.

use super::{FormatError, Parsed, Position};
use crate::domain::{
    Adjustment, Currency, Direction, Payer, Payment, ReferenceKind, RemittanceLine,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

/// Largest file read: an interchange of advices is some hundreds of kilobytes.
pub(crate) const MAX_BYTES: usize = 32 << 20;

const FORMAT: &str = "remadv";

/// The service characters of an interchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Syntax {
    component: u8,
    element: u8,
    decimal: u8,
    release: u8,
    segment: u8,
}

const DEFAULT: Syntax = Syntax {
    component: b':',
    element: b'+',
    decimal: b'.',
    release: b'?',
    segment: b'\'',
};

fn strip(head: &[u8]) -> &[u8] {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = h
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(h.len());
    &h[start..]
}

/// Whether the head of a file is an EDIFACT interchange: a `UNA` service string advice, or a
/// `UNB` header followed by its element separator.
pub fn looks_like(head: &[u8]) -> bool {
    let h = strip(head);
    (h.starts_with(b"UNA") && h.len() >= 9) || h.starts_with(b"UNB+")
}

/// One segment: its tag and elements, each a list of components, release characters removed.
#[derive(Debug)]
struct Segment {
    /// 1-based, counting from the first segment after `UNA`.
    index: usize,
    tag: String,
    elements: Vec<Vec<String>>,
}

impl Segment {
    /// Element `e` (1-based, after the tag), component `c` (1-based); empty when absent.
    fn get(&self, e: usize, c: usize) -> &str {
        self.elements
            .get(e.wrapping_sub(1))
            .and_then(|el| el.get(c.wrapping_sub(1)))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Splits an interchange into segments.
fn segments(bytes: &[u8]) -> Result<Vec<Segment>, String> {
    let mut data = strip(bytes);
    let mut syn = DEFAULT;
    if data.starts_with(b"UNA") {
        let s = data
            .get(3..9)
            .ok_or("the UNA service string is shorter than its 6 characters")?;
        syn = Syntax {
            component: s[0],
            element: s[1],
            decimal: s[2],
            release: s[3],
            segment: s[5],
        };
        let set = [syn.component, syn.element, syn.release, syn.segment];
        if (0..4).any(|i| set[i + 1..].contains(&set[i])) {
            return Err("the UNA service string repeats a separator".to_string());
        }
        data = &data[9..];
    }
    let mut out = Vec::new();
    let mut elements: Vec<Vec<String>> = vec![vec![]];
    let mut current: Vec<u8> = Vec::new();
    let mut escaped = false;
    let finish_component = |current: &mut Vec<u8>, elements: &mut Vec<Vec<String>>| {
        let text = super::common::decode(current);
        if let Some(e) = elements.last_mut() {
            e.push(text);
        }
        current.clear();
    };
    for &b in data {
        if escaped {
            current.push(b);
            escaped = false;
        } else if b == syn.release {
            escaped = true;
        } else if b == syn.component {
            finish_component(&mut current, &mut elements);
        } else if b == syn.element {
            finish_component(&mut current, &mut elements);
            elements.push(vec![]);
        } else if b == syn.segment {
            finish_component(&mut current, &mut elements);
            let mut els = std::mem::replace(&mut elements, vec![vec![]]);
            let tag = els.remove(0).join("");
            out.push(Segment {
                index: out.len() + 1,
                tag: tag.trim().to_string(),
                elements: els,
            });
        } else if (b == b'\r' || b == b'\n') && current.is_empty() && elements.len() == 1 {
            // Line breaks between segments.
        } else {
            current.push(b);
        }
    }
    if !current.iter().all(u8::is_ascii_whitespace) || elements.len() > 1 {
        return Err(format!(
            "segment {} has no terminator {:?}: the file ends inside it",
            out.len() + 1,
            char::from(syn.segment),
        ));
    }
    if syn.decimal != b'.' {
        for s in &mut out {
            if s.tag == "MOA" {
                for c in s.elements.iter_mut().flatten() {
                    *c = c.replace(char::from(syn.decimal), ".");
                }
            }
        }
    }
    Ok(out)
}

/// Reads an interchange of REMADV messages; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let err = |m: String| FormatError::new(file, Position::File, m);
    if bytes.len() > MAX_BYTES {
        return Err(err(format!(
            "EDIFACT file of {} bytes, more than the {MAX_BYTES} read",
            bytes.len()
        )));
    }
    let segs = segments(bytes).map_err(err)?;
    let interchange = segs
        .iter()
        .find(|s| s.tag == "UNB")
        .map(|s| s.get(5, 1).to_string())
        .unwrap_or_default();
    let mut out = Parsed::default();
    let mut i = 0;
    let mut messages = 0;
    while i < segs.len() {
        if segs[i].tag != "UNH" {
            i += 1;
            continue;
        }
        messages += 1;
        let end = segs[i..].iter().position(|s| s.tag == "UNT").map(|k| i + k);
        let body = &segs[i..end.map_or(segs.len(), |e| e + 1)];
        match message(body, end.is_some(), &interchange) {
            Ok(p) => out.payments.push(p),
            Err((seg, element, m)) => out.errors.push(FormatError::new(
                file,
                Position::Segment {
                    index: seg.index,
                    id: seg.tag.clone(),
                    element,
                },
                m,
            )),
        }
        i += body.len();
    }
    if messages == 0 {
        return Err(err("no UNH message in the EDIFACT interchange".to_string()));
    }
    Ok(out)
}

type SegError<'a> = (&'a Segment, Option<usize>, String);

fn amount<'a>(seg: &'a Segment) -> Result<(String, Decimal, Option<Currency>), SegError<'a>> {
    let value = seg.get(1, 2);
    let d = super::x12::parse_amount(value.trim().as_bytes())
        .map_err(|m| (seg, Some(1), format!("MOA {m}")))?;
    let currency = Currency::from_str(seg.get(1, 3)).ok();
    Ok((seg.get(1, 1).to_string(), d, currency))
}

fn date(seg: &Segment) -> Result<NaiveDate, SegError<'_>> {
    let value = seg.get(1, 2).trim();
    let format = seg.get(1, 3);
    let digits = match format {
        // CCYYMMDD, CCYYMMDDHHMM, CCYYMMDDHHMMSS: the day is the first eight.
        "102" | "203" | "204" | "" => value.get(..8).unwrap_or(value),
        f => {
            return Err((
                seg,
                Some(1),
                format!("DTM date format {f:?} is not read (102 or 203)"),
            ));
        }
    };
    super::x12::parse_date(digits.as_bytes())
        .filter(|_| digits.len() == 8)
        .ok_or_else(|| {
            (
                seg,
                Some(1),
                format!("DTM {value:?} is not a CCYYMMDD date"),
            )
        })
}

fn message<'a>(
    segs: &'a [Segment],
    closed: bool,
    interchange: &str,
) -> Result<Payment, SegError<'a>> {
    let unh = &segs[0];
    let kind = unh.get(2, 1);
    if kind != "REMADV" {
        return Err((unh, Some(2), format!("message type {kind:?}, not REMADV")));
    }
    if !closed {
        return Err((unh, None, "message without its UNT trailer".to_string()));
    }
    let mut number = String::new();
    let mut dates: Vec<(String, NaiveDate)> = Vec::new();
    let mut payer: Option<String> = None;
    let mut currency: Option<Currency> = None;
    let mut total: Option<Decimal> = None;
    let mut lines: Vec<RemittanceLine> = Vec::new();
    // Per line: what MOA 12 and 9 said, kept apart until the line ends.
    let mut remitted: Option<Decimal> = None;
    let mut payable: Option<Decimal> = None;
    let mut adjustment: Option<String> = None;
    let mut summary = false;
    let mut warnings = Vec::new();
    let close_line = |lines: &mut Vec<RemittanceLine>,
                      remitted: &mut Option<Decimal>,
                      payable: &mut Option<Decimal>| {
        if let Some(l) = lines.last_mut()
            && l.amount_paid.is_none()
        {
            l.amount_paid = remitted.or(*payable);
            if remitted.is_some() && l.invoice_amount.is_none() {
                l.invoice_amount = *payable;
            }
            // A credit note taken reduces the payment, whichever sign the writer gave it.
            if l.reference_kind == ReferenceKind::CreditNote {
                l.amount_paid = l.amount_paid.map(|d| -d.abs());
            }
        }
        *remitted = None;
        *payable = None;
    };
    for seg in segs {
        match seg.tag.as_str() {
            "BGM" => number = seg.get(2, 1).to_string(),
            "DTM" if lines.is_empty() && !summary => {
                dates.push((seg.get(1, 1).to_string(), date(seg)?));
            }
            "NAD" if seg.get(1, 1) == "PR" => {
                let party: Vec<&str> = (1..=5)
                    .map(|c| seg.get(4, c))
                    .filter(|s| !s.is_empty())
                    .collect();
                let address: Vec<&str> = (1..=5)
                    .map(|c| seg.get(3, c))
                    .filter(|s| !s.is_empty())
                    .collect();
                let name = if party.is_empty() {
                    address.first().map(|s| s.to_string())
                } else {
                    Some(party.join(" "))
                };
                payer = name.filter(|n| !n.trim().is_empty());
            }
            "CUX" => {
                if let Ok(c) = Currency::from_str(seg.get(1, 2)) {
                    currency = Some(c);
                }
            }
            "DOC" => {
                close_line(&mut lines, &mut remitted, &mut payable);
                adjustment = None;
                let reference = seg.get(2, 1).trim();
                if reference.is_empty() {
                    return Err((seg, Some(2), "DOC without a document number".to_string()));
                }
                lines.push(RemittanceLine {
                    reference: Some(reference.to_string()),
                    reference_kind: match seg.get(1, 1) {
                        "380" | "325" => ReferenceKind::Invoice,
                        "381" => ReferenceKind::CreditNote,
                        "220" => ReferenceKind::PurchaseOrder,
                        _ => ReferenceKind::Unknown,
                    },
                    ..Default::default()
                });
            }
            "AJT" => adjustment = Some(seg.get(1, 1).to_string()),
            "UNS" => {
                close_line(&mut lines, &mut remitted, &mut payable);
                summary = true;
            }
            "MOA" => {
                let (q, d, c) = amount(seg)?;
                if currency.is_none() {
                    currency = c;
                }
                match lines.last_mut() {
                    Some(l) if !summary => {
                        if let Some(reason) = adjustment.take() {
                            l.adjustments.push(Adjustment {
                                amount: d,
                                reason_code: Some(reason).filter(|r| !r.is_empty()),
                                text: None,
                            });
                            continue;
                        }
                        match q.as_str() {
                            "12" => remitted = Some(d),
                            "9" => payable = Some(d),
                            "39" | "77" => l.invoice_amount = Some(d),
                            "52" => l.discount = Some(d.abs()),
                            _ => {}
                        }
                    }
                    _ => {
                        if matches!(q.as_str(), "9" | "12" | "60" | "128") && total.is_none() {
                            total = Some(d);
                        }
                    }
                }
            }
            "UNT" => {
                let declared = seg.get(1, 1);
                if declared.parse::<usize>().ok() != Some(segs.len()) {
                    warnings.push(format!(
                        "UNT says {declared} segments, the message has {}",
                        segs.len()
                    ));
                }
            }
            _ => {}
        }
    }
    close_line(&mut lines, &mut remitted, &mut payable);
    // Amounts near Decimal's limit (a hostile file) must be an error, not an overflow.
    let sum = lines
        .iter()
        .filter_map(|l| l.amount_paid)
        .try_fold(Decimal::ZERO, |a, b| a.checked_add(b))
        .ok_or((
            unh,
            None,
            "the documents' amounts overflow when added".to_string(),
        ))?;
    let amount = match total {
        Some(t) => {
            if !lines.is_empty() && t != sum {
                warnings.push(format!(
                    "the documents add up to {sum}, the total MOA says {t}"
                ));
            }
            t
        }
        None if !lines.is_empty() => sum,
        None => {
            return Err((
                unh,
                None,
                "no total MOA and no DOC lines: no amount".to_string(),
            ));
        }
    };
    let date = ["209", "202", "137"]
        .iter()
        .find_map(|q| dates.iter().find(|(k, _)| k == q).map(|(_, d)| *d))
        .or_else(|| dates.first().map(|(_, d)| *d));
    let id = if number.is_empty() {
        format!("{interchange}/{}", unh.get(1, 1))
    } else {
        number
    };
    Ok(Payment {
        payment_id: format!("{FORMAT}:{id}"),
        format: FORMAT.to_string(),
        direction: Direction::Credit,
        payment_date: date,
        amount,
        // EDIFACT is European; a message that names no currency at all is most likely in euros.
        currency: currency
            .or_else(|| Currency::from_str("EUR").ok())
            .unwrap_or(Currency::USD),
        payer: Payer {
            name: payer,
            account: None,
        },
        lines,
        free_text: vec![],
        warnings,
        returned: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use std::path::Path;

    fn fixture() -> (Vec<u8>, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/advices/remadv/northwind_remadv.edi");
        (std::fs::read(&path).unwrap(), path.display().to_string())
    }

    #[test]
    fn the_fixture_gives_payer_total_and_documents() {
        let (bytes, file) = fixture();
        assert_eq!(super::super::detect(&bytes), super::super::Format::Remadv);
        let parsed = parse(&bytes, &file).unwrap();
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let [p] = parsed.payments.as_slice() else {
            panic!("{:?}", parsed.payments)
        };
        assert_eq!(p.payment_id, "remadv:RA-2026-1207");
        assert_eq!(p.amount, dec!(1466.00));
        assert_eq!(p.currency.as_str(), "EUR");
        assert_eq!(p.payment_date, NaiveDate::from_ymd_opt(2026, 12, 8));
        // The release character keeps the apostrophe in the name.
        assert_eq!(
            p.payer.name.as_deref(),
            Some("Northwind Industrial Supply Inc (O'Hara building)")
        );
        let got: Vec<_> = p
            .lines
            .iter()
            .map(|l| {
                (
                    l.reference.clone().unwrap(),
                    l.reference_kind,
                    l.invoice_amount,
                    l.discount,
                    l.amount_paid,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "INV-100201".into(),
                    ReferenceKind::Invoice,
                    Some(dec!(1000.00)),
                    Some(dec!(20.00)),
                    Some(dec!(980.00))
                ),
                (
                    "INV-100203".into(),
                    ReferenceKind::Invoice,
                    Some(dec!(700.00)),
                    None,
                    Some(dec!(686.00))
                ),
                (
                    "CN-100209".into(),
                    ReferenceKind::CreditNote,
                    None,
                    None,
                    Some(dec!(-200.00))
                ),
            ]
        );
        let adj = &p.lines[1].adjustments;
        assert_eq!(adj.len(), 1);
        assert_eq!(
            (adj[0].amount, adj[0].reason_code.as_deref()),
            (dec!(14.00), Some("17"))
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_una_string_sets_the_separators_and_the_decimal_comma() {
        let edi = b"UNA|;,# !UNB;UNOC|3;S;R;261207|1200;X1!UNH;1;REMADV|D|96A|UN!BGM;481;A1!\
MOA;9|1234,50|EUR!DOC;380;INV#!1!MOA;12|1234,50!UNT;6;1!UNZ;1;X1!";
        let p = &parse(edi, "a.edi").unwrap().payments[0];
        assert_eq!(p.amount, dec!(1234.50));
        assert_eq!(p.lines[0].reference.as_deref(), Some("INV!1"));
    }

    #[test]
    fn a_bad_message_is_reported_by_segment_and_the_next_one_reads() {
        let edi = b"UNB+UNOC:3+S+R+261207:1200+X2'\
UNH+1+REMADV:D:96A:UN'BGM+481+A1'DOC+380+INV-1'MOA+12:12,3.4'UNT+5+1'\
UNH+2+REMADV:D:96A:UN'BGM+481+A2'DOC+380+INV-2'MOA+12:50.00'UNT+5+2'\
UNH+3+INVOIC:D:96A:UN'UNT+2+3'UNZ+3+X2'";
        let parsed = parse(edi, "b.edi").unwrap();
        assert_eq!(parsed.payments.len(), 1);
        assert_eq!(parsed.payments[0].payment_id, "remadv:A2");
        let errors: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("segment 5") && errors[0].contains("MOA"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("segment 12") && errors[1].contains("INVOIC"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn a_file_that_ends_inside_a_segment_or_has_no_message_is_refused() {
        let e = parse(
            b"UNB+UNOC:3+S+R+261207:1200+X3'UNH+1+REMADV:D:96A:UN'BGM+481",
            "c.edi",
        )
        .unwrap_err();
        assert!(e.message.starts_with("segment 3 has no terminator"), "{e}");
        let e = parse(b"UNB+UNOC:3+S+R+261207:1200+X3'UNZ+0+X3'", "c.edi").unwrap_err();
        assert!(e.message.contains("no UNH"), "{e}");
    }

    #[test]
    fn every_truncation_of_the_fixture_is_read_or_refused_without_a_panic() {
        let (bytes, _) = fixture();
        for cut in 0..bytes.len() {
            let _ = parse(&bytes[..cut], "t.edi");
        }
    }

    proptest::proptest! {
        #[test]
        fn segment_soup_never_panics(tokens in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just("UNH+1+REMADV:D:96A:UN'"), proptest::strategy::Just("UNT+3+1'"),
            proptest::strategy::Just("DOC+380+INV-1'"), proptest::strategy::Just("DOC+381+CN-1'"),
            proptest::strategy::Just("DOC+380+'"), proptest::strategy::Just("MOA+12:79228162514264337593543950335'"),
            proptest::strategy::Just("MOA+9:-79228162514264337593543950335'"), proptest::strategy::Just("MOA+52:1.5'"),
            proptest::strategy::Just("AJT+1'"), proptest::strategy::Just("UNS+S'"), proptest::strategy::Just("DTM+209:2026'"),
            proptest::strategy::Just("DTM+137:20261301:102'"), proptest::strategy::Just("NAD+PR+::+?'"),
            proptest::strategy::Just("?"), proptest::strategy::Just("+"), proptest::strategy::Just(":"),
            proptest::strategy::Just("'"), proptest::strategy::Just("UNA:+.? '"),
        ], 0..40)) {
            let edi = format!("UNB+UNOC:3+S+R+261207:1200+P'{}", tokens.concat());
            let _ = parse(edi.as_bytes(), "p.edi");
        }
    }

    #[test]
    fn detection_wants_the_service_segments() {
        assert!(looks_like(b"UNA:+.? 'UNB+UNOC:3"));
        assert!(looks_like(b"\r\nUNB+UNOC:3+S"));
        assert!(!looks_like(b"UNBELIEVABLE, apply $5.00 to INV 1"));
    }
}
