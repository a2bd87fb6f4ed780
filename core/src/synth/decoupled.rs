//! The decoupled family: the same payments with the money and the detail sent apart. The bank
//! reports each payment as a receipt (amount, payer, date, nothing else) in a BAI2 file; the
//! payer's AP department sends the detail as an advice (an email with a CSV, XLSX or PDF
//! attachment, a REMADV, a remt.001 or an 820), days before or after, sometimes in two parts,
//! sometimes never (docs/synth.md has the shares).
//!
//! Payments whose detail travelled with the bank (a memo, no remittance lines) stay as they are:
//! there is no advice to send.

use super::Split;
use crate::domain::Payment;
use chrono::Days;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Share of advices that never come.
const NEVER: f64 = 0.08;
/// Share of advices that come later than the link window (ten days after the money).
const LATE: f64 = 0.03;
/// Share of payments of two or more lines whose detail comes in two emails.
const TWO_EMAILS: f64 = 0.06;

/// A split's payments, decoupled.
#[derive(Clone, Debug, Default)]
pub struct Decoupled {
    /// The bank's side, in the split's order.
    pub receipts: Vec<Payment>,
    /// The advices, each sent as its own email.
    pub advices: Vec<Payment>,
    /// Which receipt each advice belongs to: `(advice id, receipt id, arrived within the window)`.
    pub truth: Vec<(String, String, bool)>,
}

/// Decouples a split's payments; the same seed gives the same result.
pub fn decouple(split: &Split, seed: u64) -> Decoupled {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xAD71CE);
    let mut out = Decoupled::default();
    for p in &split.payments {
        if p.lines.is_empty() {
            out.receipts.push(p.clone());
            continue;
        }
        let mut receipt = p.clone();
        receipt.lines.clear();
        receipt.free_text.clear();
        receipt.warnings.clear();
        out.receipts.push(receipt);
        if rng.random_bool(NEVER) {
            continue;
        }
        let late = rng.random_bool(LATE);
        let offset: i64 = if late { 10 } else { rng.random_range(-3..=3) };
        let date = p.payment_date.and_then(|d| {
            if offset >= 0 {
                d.checked_add_days(Days::new(offset.unsigned_abs()))
            } else {
                d.checked_sub_days(Days::new(offset.unsigned_abs()))
            }
        });
        let stated: Option<Vec<_>> = p.lines.iter().map(|l| l.amount_paid).collect();
        let parts: Vec<Vec<_>> = match &stated {
            Some(paid) if p.lines.len() >= 2 && rng.random_bool(TWO_EMAILS) => {
                let half = p.lines.len() / 2;
                let sum =
                    |s: &[rust_decimal::Decimal]| s.iter().copied().sum::<rust_decimal::Decimal>();
                // Each email must pay something: a half of credit notes alone is not an advice.
                if sum(&paid[..half]).is_sign_positive()
                    && !sum(&paid[..half]).is_zero()
                    && sum(&paid[half..]).is_sign_positive()
                    && !sum(&paid[half..]).is_zero()
                {
                    vec![p.lines[..half].to_vec(), p.lines[half..].to_vec()]
                } else {
                    vec![p.lines.clone()]
                }
            }
            _ => vec![p.lines.clone()],
        };
        let named = rng.random_bool(0.7);
        for (k, lines) in parts.into_iter().enumerate() {
            let amount = match &stated {
                Some(_) => lines.iter().filter_map(|l| l.amount_paid).sum(),
                None => p.amount,
            };
            let id = format!("ADV-{}-{}", p.payment_id, k + 1);
            out.truth.push((id.clone(), p.payment_id.clone(), !late));
            out.advices.push(Payment {
                payment_id: id,
                format: "csv".into(),
                direction: p.direction,
                payment_date: date,
                amount,
                currency: p.currency,
                payer: crate::domain::Payer {
                    name: if named { p.payer.name.clone() } else { None },
                    account: None,
                },
                lines,
                free_text: vec![],
                warnings: vec![],
                returned: None,
            });
        }
    }
    out
}

/// How one advice travels. The shares follow what AP departments send: most advices are
/// emails, with a spreadsheet or the PDF their AP system prints; EDI payers send REMADV (in
/// Europe), remt.001 or an 820 on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    EmailCsv,
    EmailXlsx,
    EmailPdf,
    Remadv,
    Remt001,
    X12_820,
}

impl Form {
    /// The form for a uniform draw in `[0, 1)`.
    fn of(draw: f64) -> Form {
        match draw {
            d if d < 0.25 => Form::EmailCsv,
            d if d < 0.45 => Form::EmailXlsx,
            d if d < 0.65 => Form::EmailPdf,
            d if d < 0.78 => Form::Remadv,
            d if d < 0.89 => Form::Remt001,
            _ => Form::X12_820,
        }
    }
}

/// Writes `dir/bank.bai2` (the receipts), one file per advice under `dir/advices/` and
/// `dir/truth.csv` (advice id, receipt id, whether it arrived within the window). An advice is
/// an email (`ADVICE-ID.eml`) with its detail as a CSV, XLSX or text-PDF attachment, or a file
/// of its own: a REMADV (`.edi`), a remt.001 (`.xml`) or an 820 (`.x12`). An advice a form
/// cannot carry (a PDF table or a REMADV `DOC` needs every line's reference; remt.001 limits
/// references to 35 characters) is emailed as CSV instead.
pub fn write_decoupled(d: &Decoupled, dir: &Path, seed: u64) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE4A1);
    std::fs::create_dir_all(dir.join("advices"))?;
    let bank = std::fs::File::create(dir.join("bank.bai2"))?;
    crate::formats::bai2::write_bai2(&d.receipts, std::io::BufWriter::new(bank))?;
    let mut truth = std::io::BufWriter::new(std::fs::File::create(dir.join("truth.csv"))?);
    writeln!(truth, "advice_id,receipt_id,within_window")?;
    for (a, r, w) in &d.truth {
        writeln!(truth, "{a},{r},{w}")?;
    }
    truth.flush()?;
    let advices = dir.join("advices");
    for a in &d.advices {
        let referenced = a
            .lines
            .iter()
            .all(|l| l.reference.as_deref().is_some_and(|r| !r.trim().is_empty()));
        let file = |ext: &str| advices.join(format!("{}.{ext}", a.payment_id));
        let form = Form::of(rng.random::<f64>());
        let attachment = match form {
            Form::Remadv => match super::advice_files::remadv(a) {
                Some(text) => {
                    std::fs::write(file("edi"), text)?;
                    continue;
                }
                None => None,
            },
            Form::Remt001 => {
                let mut xml = Vec::new();
                if crate::formats::camt::write_remt001(std::slice::from_ref(a), &mut xml).is_ok() {
                    std::fs::write(file("xml"), xml)?;
                    continue;
                }
                None
            }
            Form::X12_820 => {
                let mut x12 = Vec::new();
                crate::formats::x12::write_820(std::slice::from_ref(a), &mut x12)?;
                std::fs::write(file("x12"), x12)?;
                continue;
            }
            Form::EmailPdf if referenced => Some((
                "advice.pdf",
                "application/pdf",
                super::advice_files::pdf(a)?,
            )),
            Form::EmailXlsx => {
                let mut csv = Vec::new();
                crate::io::write_remittances(&mut csv, std::slice::from_ref(a))?;
                Some((
                    "remittance.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    super::xlsx::from_csv(&csv)?,
                ))
            }
            Form::EmailCsv | Form::EmailPdf => None,
        };
        let (name, ctype, body) = match attachment {
            Some(x) => x,
            None => {
                let mut csv = Vec::new();
                crate::io::write_remittances(&mut csv, std::slice::from_ref(a))?;
                ("remittance.csv", "text/csv", csv)
            }
        };
        let date = a
            .payment_date
            .map(|d| d.format("%a, %d %b %Y 09:00:00 +0000").to_string())
            .unwrap_or_default();
        let from = a.payer.name.as_deref().unwrap_or("Accounts Payable");
        let mut eml = format!(
            "From: \"{}\" <ap@payer.example>\r\nTo: cash@seller.example\r\nSubject: Remittance advice\r\nDate: {date}\r\nMessage-ID: <{}@payer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=b\"\r\n\r\n--=b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find our remittance attached.\r\n\r\n--=b\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            from.replace(['"', '\r', '\n'], " "),
            a.payment_id
        );
        eml.push_str(&base64_lines(&body));
        eml.push_str("--=b--\r\n");
        std::fs::write(file("eml"), eml)?;
    }
    Ok(())
}

/// Base64 (RFC 2045) in lines of 76 characters.
fn base64_lines(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len() * 4 / 3 + bytes.len() / 57 * 2 + 8);
    for (i, c) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(A[(n >> 18) as usize & 63] as char);
        s.push(A[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    s.push_str("\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advice file reads back through the parsers as the advice it was written from, and
    /// every form is among them.
    #[test]
    fn decoupled_advices_read_back_from_their_files() {
        let world = crate::synth::generate(&crate::synth::SynthConfig::new(3, 60, 400));
        let d = decouple(&world.test, 3);
        assert!(d.receipts.len() == world.test.payments.len());
        assert!(d.receipts.iter().all(crate::advice::is_receipt) || d.advices.is_empty());
        let dir = std::env::temp_dir().join(format!("cashmatch-decoupled-{}", std::process::id()));
        write_decoupled(&d, &dir, 3).unwrap();
        let mut formats = std::collections::BTreeSet::new();
        for a in &d.advices {
            let path = ["eml", "edi", "xml", "x12"]
                .iter()
                .map(|e| dir.join("advices").join(format!("{}.{e}", a.payment_id)))
                .find(|p| p.exists())
                .unwrap();
            let parsed = crate::formats::parse_path(&path, None).unwrap();
            assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            let p = &parsed.payments[0];
            formats.insert(p.format.clone());
            assert_eq!(
                (p.amount, p.lines.len(), p.payment_date, p.currency),
                (a.amount, a.lines.len(), a.payment_date, a.currency),
                "{} as {}",
                a.payment_id,
                p.format
            );
            let paid = |x: &Payment| -> Vec<_> {
                x.lines
                    .iter()
                    .map(|l| (l.reference.clone(), l.amount_paid))
                    .collect()
            };
            assert_eq!(paid(p), paid(a), "{} as {}", a.payment_id, p.format);
            if let Some(name) = &a.payer.name {
                assert_eq!(p.payer.name.as_ref(), Some(name), "{}", p.format);
            }
        }
        // A workbook reads as the CSV it holds; its emails name the attachment.
        for f in ["eml/csv", "eml/pdf", "remadv", "remt001", "x12_820"] {
            assert!(formats.contains(f), "{f} not among {formats:?}");
        }
        let xlsx = std::fs::read_dir(dir.join("advices"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .any(|t| t.contains("filename=\"remittance.xlsx\""));
        assert!(xlsx);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
