//! Email (.eml, MIME): a remittance advice sent by a payer's AP department. One message becomes
//! one or more advices:
//!
//! - each attachment the project reads: CSV (the project's remittance CSV, one advice per
//!   `payment_id`; or an AP or bank export, whose rows become the lines of one advice), a
//!   spreadsheet (XLSX, XLS, ODS; read as the same CSV), and any other format of
//!   [`super::Format`] found in it (a remt.001, an 820, a text file);
//! - when no attachment gave an advice, the text body (or the HTML body, as text), through the
//!   free-text reader.
//!
//! A PDF is read through its text layer (its remittance table, [`super::pdf`]). Scanned images,
//! PDFs without text and broken PDFs are not guessed at: each is reported in
//! [`Parsed::errors`] as unreadable (a person reads it), and the rest of the message still
//! reads. The sender's display
//! name is the payer where the advice names none, and the message's date is the advice's date
//! where it has none. Advice ids are made from the Message-ID (or the file name), so that reading
//! the same message twice gives the same ids.

use super::{Format, FormatError, Parsed, Position};
use crate::domain::{Payment, RemittanceLine};
use chrono::NaiveDate;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use rust_decimal::Decimal;

/// Largest message read: mail systems refuse more than some tens of megabytes.
pub(crate) const MAX_BYTES: usize = 32 << 20;

/// Header names that open a message; two of them in the first lines make a file an email.
const HEADERS: [&str; 9] = [
    "from",
    "to",
    "subject",
    "date",
    "mime-version",
    "message-id",
    "received",
    "return-path",
    "content-type",
];

/// Whether the head of a file is an email message: it opens with header fields, at least two of
/// them the usual ones of a message (`From:`, `Subject:`, `MIME-Version:`, ...).
pub fn looks_like(head: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(head.get(..2048).unwrap_or(head))
        .or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]))
    else {
        return false;
    };
    let mut known = 0;
    for (i, line) in text.lines().enumerate().take(40) {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) && i > 0 {
            continue;
        }
        let Some((name, _)) = line.split_once(':') else {
            return false;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return false;
        }
        if HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            known += 1;
        }
    }
    known >= 2
}

/// Reads a message into advices; `file` names it in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, FormatError> {
    let err = |m: String| FormatError::new(file, Position::File, m);
    if bytes.len() > MAX_BYTES {
        return Err(err(format!(
            "message of {} bytes, more than the {MAX_BYTES} read",
            bytes.len()
        )));
    }
    let msg = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| err("not a MIME message".to_string()))?;
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = msg.message_id().map(str::to_string).unwrap_or(stem);
    let date = msg.date().and_then(|d| {
        NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
    });
    let sender = msg.from().and_then(|a| a.first()).and_then(|a| {
        a.name()
            .map(str::to_string)
            .filter(|n| !n.trim().is_empty())
    });
    let subject = msg.subject().map(str::to_string);
    let mut out = Parsed::default();
    for (k, part) in msg.attachments().enumerate() {
        let name = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("attachment {}", k + 1));
        let where_ = format!("{file}#{name}");
        let ctype = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let contents = part.contents();
        let unreadable = |what: &str| {
            FormatError::new(
                &where_,
                Position::File,
                format!("{what}: unreadable, for a person to read (not guessed)"),
            )
        };
        // A nested message is read as its own file would be; its parts are not this advice.
        if part.is_message() {
            continue;
        }
        let read = if ctype.starts_with("image/")
            || [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp"]
                .iter()
                .any(|e| lower.ends_with(e))
        {
            out.errors.push(unreadable("a scanned image"));
            continue;
        } else if ctype == "application/pdf"
            || lower.ends_with(".pdf")
            || super::pdf::looks_like(contents)
        {
            // A scan in a PDF, or a broken one, is refused by the reader as unreadable.
            super::pdf::parse(contents, &where_)
        } else if super::spreadsheet::looks_like(contents)
            || [".xlsx", ".xls", ".ods"].iter().any(|e| lower.ends_with(e))
        {
            super::spreadsheet::parse(contents, &where_)
        } else {
            match super::detect(contents) {
                // A signature, a logo's alt text or a calendar invite is not an advice: only an
                // attachment named as text is read as free text.
                Format::FreeText if !(lower.ends_with(".txt") || ctype == "text/plain") => continue,
                f => super::parse(contents, &where_, Some(f)),
            }
        };
        match read {
            Ok(parsed) => {
                out.errors.extend(parsed.errors);
                match advices_of(parsed.payments, &format!("eml:{base}:{}", k + 1)) {
                    Some(advices) => out.payments.extend(advices),
                    None => out.errors.push(FormatError::new(
                        &where_,
                        Position::File,
                        "the rows' amounts overflow when added",
                    )),
                }
            }
            Err(e) => out.errors.push(e),
        }
    }
    if out.payments.is_empty() {
        // The body, plain text or HTML made text; the subject is part of what the payer said.
        let plain = msg.text_bodies().find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        });
        let body = plain
            .or_else(|| msg.body_html(0).map(|h| html_text(&h)))
            .unwrap_or_default();
        let text = match &subject {
            Some(s) => format!("{s}\n{body}"),
            None => body,
        };
        match super::text::parse(text.as_bytes(), file) {
            Ok(parsed) => out
                .payments
                .extend(parsed.payments.into_iter().map(|mut p| {
                    p.payment_id = format!("eml:{base}:body");
                    p
                })),
            Err(e) if out.errors.is_empty() => {
                return Err(err(format!(
                    "no remittance in the message: no attachment the project reads, and the body: {}",
                    e.message
                )));
            }
            // The attachments' errors already say why nothing was read.
            Err(_) => {}
        }
    }
    for p in &mut out.payments {
        if p.payment_date.is_none() {
            p.payment_date = date;
        }
        if p.payer.name.is_none() {
            p.payer.name = sender.clone();
        }
        p.format = format!("{}/{}", Format::Email.name(), p.format);
        p.warnings
            .retain(|w| !w.starts_with("free text: payment id made from the file name"));
    }
    if out.payments.is_empty() && out.errors.is_empty() {
        return Err(err("no remittance in the message".to_string()));
    }
    Ok(out)
}

/// The text of an HTML body, laid out the way the free-text reader reads lines: a table row is
/// one line with its cells apart (`INV-1001   $500.00`), a paragraph or break ends a line, other
/// markup goes, and the common entities are decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = tag.starts_with('/');
        match name.as_str() {
            "td" | "th" if closing => out.push_str("   "),
            "tr" | "p" | "div" | "li" | "table" if closing => out.push('\n'),
            "br" => out.push('\n'),
            _ => {}
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&#36;", "$")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The advices of one attachment. The project's CSV gives whole advices (one per `payment_id`),
/// kept as they are; an AP or bank export gives a payment per row, and its rows are the lines
/// of one advice, each paying its row's amount. `None` when the rows' amounts overflow when
/// added (a hostile attachment).
fn advices_of(payments: Vec<Payment>, id: &str) -> Option<Vec<Payment>> {
    let per_row = payments
        .iter()
        .all(|p| p.format == Format::BankCsv.name() || p.format == Format::FreeText.name());
    if !per_row || payments.len() <= 1 {
        return Some(
            payments
                .into_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    if p.format != Format::Csv.name() {
                        p.payment_id = if i == 0 {
                            id.to_string()
                        } else {
                            format!("{id}.{i}")
                        };
                    }
                    p
                })
                .collect(),
        );
    }
    let mut rows = payments.into_iter();
    let mut advice = rows.next()?;
    let mut all = vec![];
    std::mem::swap(&mut all, &mut advice.lines);
    let first_amount = advice.amount;
    let mut total = Some(Decimal::ZERO);
    let mut take = |lines: Vec<RemittanceLine>, amount: Decimal, out: &mut Vec<RemittanceLine>| {
        total = total.and_then(|t| t.checked_add(amount));
        let n = lines.len();
        for mut l in lines {
            if n == 1 && l.amount_paid.is_none() {
                l.amount_paid = Some(amount);
            }
            out.push(l);
        }
    };
    let mut lines = Vec::new();
    take(all, first_amount, &mut lines);
    for r in rows {
        advice.free_text.extend(r.free_text);
        take(r.lines, r.amount, &mut lines);
    }
    advice.lines = lines;
    advice.amount = total?;
    advice.payment_id = id.to_string();
    // Each row's date was an invoice's; the message's date is the advice's.
    advice.payment_date = None;
    Some(vec![advice])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/advices")
            .join(name)
    }

    fn read(name: &str) -> Parsed {
        let path = fixture(name);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(super::super::detect(&bytes), Format::Email, "{name}");
        parse(&bytes, &path.display().to_string()).unwrap()
    }

    fn refs(p: &Payment) -> Vec<(String, Option<Decimal>)> {
        p.lines
            .iter()
            .map(|l| (l.reference.clone().unwrap_or_default(), l.amount_paid))
            .collect()
    }

    #[test]
    fn a_csv_attachment_becomes_one_advice_with_a_line_per_row() {
        let parsed = read("mail/northwind_csv.eml");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let [p] = parsed.payments.as_slice() else {
            panic!("{:?}", parsed.payments)
        };
        assert_eq!(p.payment_id, "eml:nw-20261207-1@northwind.example:1");
        assert_eq!(p.amount, dec!(1500.00));
        assert_eq!(
            refs(p),
            [
                ("INV-100201".to_string(), Some(dec!(1000.00))),
                ("INV-100202".to_string(), Some(dec!(500.00)))
            ]
        );
        // The message's date and sender, where the attachment has none.
        assert_eq!(p.payment_date, NaiveDate::from_ymd_opt(2026, 12, 7));
        assert_eq!(p.payer.name.as_deref(), Some("Northwind AP"));
        assert_eq!(p.format, "eml/bank_csv");
    }

    #[test]
    fn plain_text_and_html_bodies_go_through_the_free_text_reader() {
        let parsed = read("mail/bluegrass_text.eml");
        let p = &parsed.payments[0];
        assert_eq!(p.amount, dec!(1000.00));
        assert_eq!(refs(p)[0].0, "INV-200301");
        assert_eq!(p.payment_id, "eml:bg-7731@bluegrass.example:body");
        let parsed = read("mail/northwind_html.eml");
        let p = &parsed.payments[0];
        assert_eq!(p.amount, dec!(700.00));
        assert_eq!(refs(p)[0].0, "INV-100203");
        assert!(!p.free_text[0].contains("<td>"), "{:?}", p.free_text);
    }

    #[test]
    fn an_xlsx_attachment_reads_its_amounts_exactly() {
        let parsed = read("mail/pioneer_xlsx.eml");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let p = &parsed.payments[0];
        assert_eq!(p.amount, dec!(2000.00));
        assert_eq!(
            refs(p),
            [
                ("INV-300401".to_string(), Some(dec!(820.4))),
                ("INV-300402".to_string(), Some(dec!(1179.6)))
            ]
        );
        let xlsx = std::fs::read(fixture("pioneer.xlsx")).unwrap();
        assert_eq!(super::super::detect(&xlsx), Format::Spreadsheet);
    }

    #[test]
    fn a_scanned_image_is_reported_unreadable_not_guessed() {
        let parsed = read("mail/bluegrass_scan.eml");
        assert!(parsed.payments.is_empty(), "{:?}", parsed.payments);
        assert_eq!(parsed.errors.len(), 1);
        let e = parsed.errors[0].to_string();
        assert!(e.contains("scan.png") && e.contains("unreadable"), "{e}");
    }

    #[test]
    fn a_pdf_attachment_gives_its_table_and_a_scanned_pdf_beside_it_is_unreadable() {
        let parsed = read("pdf/pioneer_pdf.eml");
        let [p] = parsed.payments.as_slice() else {
            panic!("{:?}", parsed.payments)
        };
        assert_eq!(p.payment_id, "eml:px-552@pioneer.example:1");
        assert_eq!(p.format, "eml/pdf");
        assert_eq!(p.amount, dec!(2000.00));
        assert_eq!(
            refs(p),
            [
                ("INV-300401".to_string(), Some(dec!(820.40))),
                ("INV-300402".to_string(), Some(dec!(1179.60)))
            ]
        );
        let [e] = parsed.errors.as_slice() else {
            panic!("{:?}", parsed.errors)
        };
        assert!(
            e.file.ends_with("#signed.pdf") && e.message.contains("unreadable"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_attachment_is_refused_and_the_rest_of_the_message_still_reads() {
        let text = std::fs::read_to_string(fixture("mail/northwind_csv.eml")).unwrap();
        let broken = text.replace(
            "--b1--",
            "--b1\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name=\"x.xlsx\"\nContent-Disposition: attachment; filename=\"x.xlsx\"\n\nPK\u{3}\u{4}not a zip at all\n--b1--",
        );
        let parsed = parse(broken.as_bytes(), "m.eml").unwrap();
        assert_eq!(parsed.payments.len(), 1);
        assert_eq!(parsed.errors.len(), 1);
        assert!(
            parsed.errors[0].file.ends_with("#x.xlsx"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn rows_whose_amounts_overflow_when_added_are_refused_and_the_rest_still_reads() {
        let text = std::fs::read_to_string(fixture("mail/northwind_csv.eml")).unwrap();
        // Nine rows of the largest amount a bank CSV cell holds (28 digits) add up beyond
        // Decimal's limit.
        let huge: String = std::iter::once("Date,Invoice,Amount Paid\n".to_string())
            .chain((1..=9).map(|i| format!("2026-11-0{i},INV-{i},9999999999999999999999999999\n")))
            .collect();
        let hostile = text.replace(
            "--b1--",
            &format!("--b1\nContent-Type: text/csv; name=\"huge.csv\"\nContent-Disposition: attachment; filename=\"huge.csv\"\n\n{huge}\n--b1--"),
        );
        let parsed = parse(hostile.as_bytes(), "m.eml").unwrap();
        assert_eq!(parsed.payments.len(), 1, "{:?}", parsed.errors);
        let [e] = parsed.errors.as_slice() else {
            panic!("{:?}", parsed.errors)
        };
        assert!(
            e.file.ends_with("#huge.csv") && e.message.contains("overflow"),
            "{e}"
        );
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_inflated() {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..80 {
            w.write_all(&zeros).unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20);
        let e = super::super::spreadsheet::parse(&bytes, "bomb.xlsx").unwrap_err();
        assert!(e.message.contains("zip bomb"), "{e}");
    }

    #[test]
    fn text_that_is_not_a_message_is_not_taken_for_one() {
        assert!(!looks_like(b"Please apply $10.00 to INV 1001"));
        assert!(!looks_like(b"payment_id,payment_amount\nP1,5\n"));
        assert!(looks_like(b"From: a@b.example\r\nSubject: x\r\n\r\nbody"));
    }
}
