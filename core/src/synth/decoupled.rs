//! The decoupled family: the same payments with the money and the detail sent apart. The bank
//! reports each payment as a receipt (amount, payer, date, nothing else) in a BAI2 file; the
//! payer's AP department emails the detail as an advice with a CSV or XLSX attachment, days
//! before or after, sometimes in two emails, sometimes never (docs/advices.md has the shares).
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
/// Share of emails whose attachment is an XLSX workbook (the rest are CSV).
const XLSX: f64 = 0.5;

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

/// Writes `dir/bank.bai2` (the receipts), `dir/advices/ADVICE-ID.eml` (one email per advice, its
/// detail in a CSV or XLSX attachment) and `dir/truth.csv` (advice id, receipt id, whether it
/// arrived within the window).
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
    for a in &d.advices {
        let mut csv = Vec::new();
        crate::io::write_remittances(&mut csv, std::slice::from_ref(a))?;
        let (name, ctype, body) = if rng.random_bool(XLSX) {
            (
                "remittance.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                super::xlsx::from_csv(&csv)?,
            )
        } else {
            ("remittance.csv", "text/csv", csv)
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
        std::fs::write(
            dir.join("advices").join(format!("{}.eml", a.payment_id)),
            eml,
        )?;
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

    /// The emails read back through the email reader as the advices they were written from.
    #[test]
    fn decoupled_advices_read_back_from_their_emails() {
        let world = crate::synth::generate(&crate::synth::SynthConfig::new(3, 60, 400));
        let d = decouple(&world.test, 3);
        assert!(d.receipts.len() == world.test.payments.len());
        assert!(d.receipts.iter().all(crate::advice::is_receipt) || d.advices.is_empty());
        let dir = std::env::temp_dir().join(format!("cashmatch-decoupled-{}", std::process::id()));
        write_decoupled(&d, &dir, 3).unwrap();
        for a in d.advices.iter().take(40) {
            let path = dir.join("advices").join(format!("{}.eml", a.payment_id));
            let parsed = crate::formats::parse_path(&path, None).unwrap();
            assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
            let p = &parsed.payments[0];
            assert_eq!(
                (p.amount, p.lines.len()),
                (a.amount, a.lines.len()),
                "{}",
                a.payment_id
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
